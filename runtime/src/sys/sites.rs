//! The sites compiled into the loaded objects: each instrumented function's site has a pointer
//! to it in the `invite_sites` section of its object (the precompiler's wrappers and
//! `#[in_vivo]` put it there), and the linker gathers an object's entries in one section.
//!
//! - The object the runtime is linked into (the program, or a shared library that links
//!   `libinvite.a`): between `__start_invite_sites` and `__stop_invite_sites`, which the linker
//!   defines in it.
//! - Every other loaded object (the program when it links `libinvite.so`, shared libraries with
//!   sites, `dlopen`ed or not): `dl_iterate_phdr` gives each object's load bias and segments;
//!   its section's address comes from the section headers of its file, read only if that file
//!   is the one mapped (same device and inode as the mapping at the object's first segment in
//!   /proc/self/maps), and only a section that lies inside a loaded segment, and only entries
//!   that point inside one, are read.
//!
//! Read only when the summary is written: nothing registers at load, so a site's fast path is
//! unchanged. The entries are pointers, all 8 bytes and 8-aligned, so the linker has nothing to
//! pad between them; the runtime's own entry is null and is skipped.

use crate::site::Site;
use std::collections::HashSet;
use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The runtime's own entry: the section exists in every object that links the runtime, so its
/// bounds are always defined (a program without sites links).
#[used]
#[link_section = "invite_sites"]
static NONE: Option<&Site> = None;

extern "C" {
    static __start_invite_sites: Option<&'static Site>;
    static __stop_invite_sites: Option<&'static Site>;
}

const ENTRY: usize = std::mem::size_of::<Option<&Site>>();

/// Every compiled-in site of every loaded object, each once: this object's in link order, then
/// the others' in load order.
pub fn compiled_sites() -> Vec<&'static Site> {
    let mut seen = HashSet::new();
    own_sites()
        .chain(loaded_objects().iter().flat_map(object_sites))
        .filter(|s| seen.insert(std::ptr::from_ref(*s)))
        .collect()
}

/// Whether the object the runtime is linked into has a site (no file is read).
pub fn has_own_sites() -> bool {
    own_sites().next().is_some()
}

/// The sites of the object the runtime is linked into.
fn own_sites() -> impl Iterator<Item = &'static Site> {
    // Referencing `NONE` keeps its object file (and so the section) in the link.
    let _ = std::hint::black_box(&NONE);
    let start = std::ptr::addr_of!(__start_invite_sites);
    let stop = std::ptr::addr_of!(__stop_invite_sites);
    // SAFETY: the linker defines both bounds of the one `invite_sites` section of this object,
    // whose every entry is an `Option<&'static Site>` (a null or a pointer to a static site, as
    // `invite_site *` in `invite.h`): an 8-aligned array of `stop - start` entries that lives
    // as long as the object, and no one writes to it after relocation.
    let entries = unsafe {
        let n = usize::try_from(stop.offset_from(start)).unwrap_or(0);
        std::slice::from_raw_parts(start, n)
    };
    entries.iter().filter_map(|e| *e)
}

/// A loaded object: its file, load bias and loaded segments (start, end).
struct Object {
    path: PathBuf,
    bias: usize,
    loads: Vec<(usize, usize)>,
}

impl Object {
    fn holds(&self, start: usize, len: usize) -> bool {
        self.loads
            .iter()
            .any(|(s, e)| *s <= start && start.checked_add(len).is_some_and(|end| end <= *e))
    }
}

fn loaded_objects() -> Vec<Object> {
    extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `dl_iterate_phdr` passes a valid `dl_phdr_info` for the call, and `data` is
        // the `Vec<Object>` given below, borrowed by nobody else meanwhile.
        let (info, out) = unsafe { (&*info, &mut *data.cast::<Vec<Object>>()) };
        let phdrs = if info.dlpi_phdr.is_null() {
            &[][..]
        } else {
            // SAFETY: the loader's program headers of this object, `dlpi_phnum` of them.
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
        };
        let bias = info.dlpi_addr as usize;
        let loads = phdrs
            .iter()
            .filter(|p| p.p_type == libc::PT_LOAD)
            .map(|p| {
                (
                    bias + p.p_vaddr as usize,
                    bias + (p.p_vaddr + p.p_memsz) as usize,
                )
            })
            .collect();
        let name = if info.dlpi_name.is_null() {
            &[][..]
        } else {
            // SAFETY: a NUL-terminated name owned by the loader, alive during the call.
            unsafe { CStr::from_ptr(info.dlpi_name) }.to_bytes()
        };
        // The program is the first object, with an empty name.
        let path = match (out.is_empty(), name.is_empty()) {
            (true, true) => PathBuf::from("/proc/self/exe"),
            (_, true) => return 0,
            _ => PathBuf::from(OsStr::from_bytes(name)),
        };
        out.push(Object { path, bias, loads });
        0
    }
    let mut out: Vec<Object> = Vec::new();
    // SAFETY: `each` matches the callback's type and only reads what it is given; the loader
    // holds its lock meanwhile, so no object is unloaded during the walk.
    unsafe { libc::dl_iterate_phdr(Some(each), std::ptr::from_mut(&mut out).cast()) };
    out
}

/// The sites of `obj`'s `invite_sites` section, if its file is the one mapped.
fn object_sites(obj: &Object) -> Vec<&'static Site> {
    let Some(&(first, _)) = obj.loads.first() else {
        return Vec::new();
    };
    let Ok(f) = File::open(&obj.path) else {
        return Vec::new();
    };
    let same = f
        .metadata()
        .ok()
        .zip(mapped_file(first))
        .is_some_and(|(m, (dev, ino))| m.ino() == ino && m.dev() == dev);
    let Some((addr, size)) = same
        .then(|| crate::elf::section(&f, b"invite_sites"))
        .flatten()
    else {
        return Vec::new();
    };
    let (start, len) = (obj.bias.wrapping_add(addr as usize), size as usize);
    if start % ENTRY != 0 || len % ENTRY != 0 || !obj.holds(start, len) {
        return Vec::new();
    }
    // SAFETY: the section's place in the mapped file itself, within a loaded segment of its
    // object (checked above) and aligned: `len / ENTRY` relocated entries, each null or a
    // pointer to a static site of that object; the object stays loaded (the runtime does not
    // unload objects, and one `dlclose`d after this is the program's bug as with any pointer).
    let entries = unsafe { std::slice::from_raw_parts(start as *const usize, len / ENTRY) };
    entries
        .iter()
        .filter(|p| **p != 0 && obj.holds(**p, std::mem::size_of::<Site>()))
        // SAFETY: a non-null entry of the section points to a site of this object (above).
        .map(|p| unsafe { &*(*p as *const Site) })
        .collect()
}

/// The device and inode of the file mapped at `addr`, from /proc/self/maps.
fn mapped_file(addr: usize) -> Option<(u64, u64)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (lo, hi) = f.next()?.split_once('-')?;
        let (lo, hi) = (
            usize::from_str_radix(lo, 16).ok()?,
            usize::from_str_radix(hi, 16).ok()?,
        );
        if !(lo <= addr && addr < hi) {
            return None;
        }
        let (_perms, _offset) = (f.next()?, f.next()?);
        let (major, minor) = f.next()?.split_once(':')?;
        let (major, minor) = (
            u64::from_str_radix(major, 16).ok()?,
            u64::from_str_radix(minor, 16).ok()?,
        );
        let ino = f.next()?.parse().ok()?;
        Some((makedev(major, minor), ino))
    })
}

/// `st_dev` of a device number (glibc's encoding).
fn makedev(major: u64, minor: u64) -> u64 {
    ((major & 0xffff_f000) << 32)
        | ((major & 0x0000_0fff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0x0000_00ff)
}
