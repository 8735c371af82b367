//! Where a section is in an ELF file on disk (its address and size), read from the file's
//! section headers: the loaded image has no section table, and the `invite_sites` section of an
//! object that does not link the runtime statically (the program, when it links
//! `libinvite.so`; a shared library with sites) has no symbol the runtime could find it by.
//!
//! Plain reads and bounds checks; a malformed file is `None`, never a panic.

use std::fs::File;
use std::os::unix::fs::FileExt;

const EHDR: usize = 64;
const SHDR: usize = 64;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn read(f: &File, offset: u64, len: usize) -> Option<Vec<u8>> {
    // Section tables are small; a larger one is not a file this runtime reads.
    if len > 1 << 22 {
        return None;
    }
    let mut buf = vec![0; len];
    f.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

/// The address (before the object's load bias) and size of the section `name` of the 64-bit
/// little-endian ELF file `f`, if it has one.
pub fn section(f: &File, name: &[u8]) -> Option<(u64, u64)> {
    let eh = read(f, 0, EHDR)?;
    // \x7fELF, 64-bit, little-endian.
    if eh[..4] != *b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return None;
    }
    let shoff = u64_at(&eh, 0x28)?;
    let shentsize = u16_at(&eh, 0x3a)? as usize;
    let shnum = u16_at(&eh, 0x3c)? as usize;
    let shstrndx = u16_at(&eh, 0x3e)? as usize;
    if shentsize != SHDR || shnum == 0 || shstrndx >= shnum {
        return None;
    }
    let table = read(f, shoff, shnum * SHDR)?;
    let header = |i: usize| table.get(i * SHDR..(i + 1) * SHDR);
    let strtab = header(shstrndx)?;
    let names = read(f, u64_at(strtab, 0x18)?, u64_at(strtab, 0x20)? as usize)?;
    (0..shnum).find_map(|i| {
        let h = header(i)?;
        let at = u32_at(h, 0)? as usize;
        let end = at + names.get(at..)?.iter().position(|b| *b == 0)?;
        (&names[at..end] == name).then(|| Some((u64_at(h, 0x10)?, u64_at(h, 0x20)?)))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_section_of_this_test_binary_and_not_a_missing_one() {
        let f = File::open("/proc/self/exe").unwrap();
        let (addr, size) = section(&f, b".text").expect(".text");
        assert!(addr > 0 && size > 0);
        assert_eq!(section(&f, b"no_such_section"), None);
    }

    #[test]
    fn a_file_that_is_not_elf_is_none() {
        let f = File::open("/proc/self/cmdline").unwrap();
        assert_eq!(section(&f, b".text"), None);
        let f = File::open("/dev/null").unwrap();
        assert_eq!(section(&f, b".text"), None);
    }
}
