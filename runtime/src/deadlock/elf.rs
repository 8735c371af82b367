//! The name of the object at an address of a process: the ELF file mapped there (from
//! `/proc/PID/maps`, opened through `/proc/PID/map_files` where allowed, else by its path, else
//! through the pod's or the host's `/proc/PID/root`) and
//! the object symbol of its symbol table (`.symtab`, else `.dynsym`) that covers the address.
//! 64-bit little-endian ELF only; anything else, or anything unreadable, is no name.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// A symbol table larger than this is not read.
const MAX_TABLE: u64 = 64 << 20;

/// `(symbol, file name)` for `addr` in process `pid`, e.g. `("g_lock", "server")` or
/// `("std::io::stdio::STDOUT+8", "app")`. `host`: the process `pid` was forked from, whose view of
/// the same mapping names a path the caller can open when `pid`'s does not (unprivileged, the
/// pod's paths are inside its overlay and `map_files` needs CAP_SYS_ADMIN).
pub fn symbol_at(pid: i32, host: i32, addr: u64) -> Option<(String, String)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    // The object mapped at offset 0 nearest below the address: its data and the anonymous .bss
    // that follows it.
    let (start, end, path) = maps
        .lines()
        .filter_map(file_start)
        .filter(|(s, _, _)| *s <= addr)
        .max_by_key(|(s, _, _)| *s)?;
    let host_path = || {
        let maps = std::fs::read_to_string(format!("/proc/{host}/maps")).ok()?;
        let line = maps.lines().filter_map(file_start).find(|l| l.0 == start)?;
        File::open(format!("/proc/{host}/root{}", line.2)).ok()
    };
    let file = File::open(format!("/proc/{pid}/map_files/{start:x}-{end:x}"))
        .or_else(|_| File::open(path))
        .or_else(|_| File::open(format!("/proc/{pid}/root{path}")))
        .ok()
        .or_else(host_path)?;
    let sym = lookup(&file, start, addr)?;
    let base = path.rsplit('/').next().unwrap_or(path).to_string();
    Some((sym, base))
}

/// A maps line of a file mapped from offset 0: its range and path.
fn file_start(line: &str) -> Option<(u64, u64, &str)> {
    let mut f = line.split_whitespace();
    let (a, b) = f.next()?.split_once('-')?;
    let _perms = f.next()?;
    let offset = u64::from_str_radix(f.next()?, 16).ok()?;
    let (_dev, _inode) = (f.next()?, f.next()?);
    let path = f.next().filter(|p| p.starts_with('/'))?;
    (offset == 0).then_some(())?;
    Some((
        u64::from_str_radix(a, 16).ok()?,
        u64::from_str_radix(b, 16).ok()?,
        path,
    ))
}

fn read(file: &File, off: u64, len: u64) -> Option<Vec<u8>> {
    if len > MAX_TABLE {
        return None;
    }
    let mut b = vec![0u8; len as usize];
    file.read_exact_at(&mut b, off).ok()?;
    Some(b)
}

fn u16_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?) as u64)
}

fn u32_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?) as u64)
}

fn u64_at(b: &[u8], i: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
}

/// The symbol covering `addr` in the ELF `file` whose first page is mapped at `start`.
fn lookup(file: &File, start: u64, addr: u64) -> Option<String> {
    let h = read(file, 0, 64)?;
    if &h[..4] != b"\x7fELF" || h[4] != 2 || h[5] != 1 {
        return None;
    }
    let (phoff, shoff) = (u64_at(&h, 0x20)?, u64_at(&h, 0x28)?);
    let (phentsize, phnum) = (u16_at(&h, 0x36)?, u16_at(&h, 0x38)?);
    let (shentsize, shnum) = (u16_at(&h, 0x3a)?, u16_at(&h, 0x3c)?);
    // The load bias: where the first loadable segment's page went.
    let ph = read(file, phoff, phentsize * phnum)?;
    let loads: Vec<(u64, u64)> = (0..phnum as usize)
        .map(|i| i * phentsize as usize)
        .filter(|&o| u32_at(&ph, o) == Some(1))
        .filter_map(|o| Some((u64_at(&ph, o + 16)?, u64_at(&ph, o + 40)?)))
        .collect();
    let first = loads.iter().map(|l| l.0).min()?;
    let rel = addr.checked_sub(start.checked_sub(first & !0xfff)?)?;
    if !loads.iter().any(|&(v, m)| (v..v + m).contains(&rel)) {
        return None;
    }
    let sh = read(file, shoff, shentsize * shnum)?;
    let section = |i: u64| -> Option<(u64, u64, u64, u64)> {
        let o = (i * shentsize) as usize;
        Some((
            u32_at(&sh, o + 4)?,  // type
            u64_at(&sh, o + 24)?, // offset
            u64_at(&sh, o + 32)?, // size
            u32_at(&sh, o + 40)?, // link
        ))
    };
    // SHT_SYMTAB, else SHT_DYNSYM.
    let table = [2, 11]
        .into_iter()
        .find_map(|t| (0..shnum).find_map(|i| section(i).filter(|s| s.0 == t)))?;
    let syms = read(file, table.1, table.2)?;
    let strtab = section(table.3)?;
    let strs = read(file, strtab.1, strtab.2)?;
    let (name, value) = syms.chunks_exact(24).find_map(|s| {
        let (info, value, size) = (s[4], u64_at(s, 8)?, u64_at(s, 16)?);
        let object = info & 0xf == 1; // STT_OBJECT
        (object && value <= rel && rel < value + size.max(1)).then_some((u32_at(s, 0)?, value))
    })?;
    let raw = strs.get(name as usize..)?;
    let raw = &raw[..raw.iter().position(|&c| c == 0)?];
    let name = demangle(std::str::from_utf8(raw).ok()?);
    Some(match rel - value {
        0 => name,
        off => format!("{name}+{off}"),
    })
}

/// A Rust-mangled name of a plain path, legacy (`_ZN3std2io5stdio6STDOUT17h0123456789abcdefE`)
/// or v0 (`_RNvNtNtCs1234_3std2io5stdio6STDOUT`), as a path (`std::io::stdio::STDOUT`); other
/// names as they are.
fn demangle(s: &str) -> String {
    if let Some(v0) = s.strip_prefix("_R") {
        return demangle_v0(v0).unwrap_or_else(|| s.to_string());
    }
    let Some(mut rest) = s.strip_prefix("_ZN") else {
        return s.to_string();
    };
    let mut parts = Vec::new();
    while !rest.starts_with('E') {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(n) = rest[..digits].parse::<usize>() else {
            return s.to_string();
        };
        let Some(part) = rest.get(digits..digits + n) else {
            return s.to_string();
        };
        parts.push(part);
        rest = &rest[digits + n..];
    }
    if parts
        .last()
        .is_some_and(|p| p.len() == 17 && p.starts_with('h'))
    {
        parts.pop();
    }
    parts.join("::")
}

/// A v0 path made only of nested names in a crate root (`N<ns>`... `C` crate, identifiers with
/// their `s<base62>_` disambiguators); `None` for anything else (generics, closures, impls).
fn demangle_v0(mut rest: &str) -> Option<String> {
    while let Some(r) = rest.strip_prefix('N') {
        rest = r.get(1..)?;
    }
    rest = rest.strip_prefix('C')?;
    let mut parts = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix('s') {
            rest = &r[r.find('_')? + 1..];
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            break;
        }
        let n: usize = rest[..digits].parse().ok()?;
        parts.push(rest.get(digits..digits + n)?);
        rest = &rest[digits + n..];
    }
    (rest.is_empty() && !parts.is_empty()).then(|| parts.join("::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_names_read_as_paths() {
        assert_eq!(
            demangle("_ZN3std2io5stdio6STDOUT17h0123456789abcdefE"),
            "std::io::stdio::STDOUT"
        );
        assert_eq!(
            demangle("_RNvNtNtCsjrHSEGnQ3l9_3std2io5stdio6STDOUT"),
            "std::io::stdio::STDOUT"
        );
        assert_eq!(
            demangle("_RNvXs_Cs1_3fooINtB2_3BarE"),
            "_RNvXs_Cs1_3fooINtB2_3BarE"
        );
        assert_eq!(demangle("g_lock"), "g_lock");
        assert_eq!(demangle("_ZN3bad"), "_ZN3bad");
    }

    #[test]
    fn a_static_of_this_test_is_named_at_its_address() {
        static NAMED_FOR_THE_TEST: std::sync::atomic::AtomicU64 =
            std::sync::atomic::AtomicU64::new(7);
        let addr = &NAMED_FOR_THE_TEST as *const _ as u64;
        let (sym, _) = symbol_at(std::process::id() as i32, 0, addr).expect("named");
        assert!(sym.contains("NAMED_FOR_THE_TEST"), "{sym}");
        NAMED_FOR_THE_TEST.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
