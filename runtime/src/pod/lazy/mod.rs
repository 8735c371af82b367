//! Lazy copy-up: a file the host has open for writing is reopened read-only in the pod (no
//! copy), and made writable on the test's first write through it.
//!
//! Reopening it for writing would make the overlay copy it whole into the pod's scratch at pod
//! start, whether the test ever touches it or not (a 1 GiB file: a 1 GiB copy per pod). So
//! `fds` reopens it read-only, and checks folded into the pod's own system call filter (`filter`:
//! one filter, one search of call numbers) trap what would write through one of those descriptor
//! numbers: `write`, `pwrite64`,
//! `writev`, `pwritev`, `pwritev2`, `ftruncate`, `fallocate`, `sendfile` and `copy_file_range`
//! and `splice` to it, a shared writable `mmap` of it, and the ways to duplicate it (`dup`,
//! `dup2`, `dup3`, `fcntl(F_DUPFD*)`), and record locks (below). The SIGSYS handler then reopens the file by path with
//! the host's flags (the overlay copies it up now), puts it at the same number with the same
//! offset and close-on-exec flag, and makes the trapped call through the gate, which the filter
//! lets through. A descriptor number the test has since reused for another file is left alone.
//! Setting a record lock (`fcntl(F_SETLK*)`, `F_OFD_SETLK*`) also makes the file writable first:
//! a write lock needs a descriptor open for writing (SQLite locks its database and `-shm` so),
//! and taking it before the reopen keeps the reopen from dropping a lock the test holds (closing
//! any descriptor of a file drops the process's POSIX locks on it).
//!
//! The filter traps by number, and stays on after `execve`, where no handler is: so it traps only
//! calls made from the pod's own code (its executable mappings when the filter is installed; a
//! program the test runs is mapped elsewhere). Such a program sees the lazy files as the test
//! left them: read-only until the test wrote them (its writes to them fail with EBADF). A call
//! trapped while SIGSYS is blocked (a test that blocked every signal) ends the test with
//! SIGSYS, as the pod's own filter does.

mod filter;

use crate::sys;
use filter::DATA_WRITE;
use std::borrow::Cow;
use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::OnceLock;

/// At most this many descriptors are reopened lazily (the filter's jumps are 8-bit); the rest
/// are reopened for writing at once.
pub const MAX_LAZY: usize = 16;

/// One descriptor reopened read-only.
pub struct Lazy {
    pub fd: RawFd,
    pub path: CString,
    /// The host's flags, for the writable reopen.
    pub flags: i32,
    /// The read-only file as reopened (to tell it from another the test put at that number).
    pub dev: u64,
    pub ino: u64,
}

impl Lazy {
    pub fn new(fd: RawFd, path: CString, flags: i32, st: &libc::stat) -> Lazy {
        Lazy {
            fd,
            path,
            flags,
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// The pod's lazy descriptors, set once during its setup, read by the SIGSYS handler.
static LAZY: OnceLock<Vec<Lazy>> = OnceLock::new();

/// The pod's filter with the calls that write through a descriptor folded into its search, as
/// planned once (`sys::Filter`); `filter` completes it in the test.
pub fn head(notify: bool) -> Vec<sys::Insn> {
    filter::head(notify)
}

/// The system call filter the test installs: `planned.plain` where nothing is lazy; else
/// `planned.lazy_head` (one filter, one search: each filter the kernel takes costs tens of
/// microseconds, and each comparison on the way to a call number's decision costs it as it takes
/// the filter) with the check of the lazy descriptors and of where the call comes from appended.
/// A call the lazy checks let through is decided as by the pod's filter alone; one they trap is
/// decided by it when the handler makes it again through the gate. `code`: the pod's own code
/// (`own_code`).
pub fn filter<'a>(
    lazy: Vec<Lazy>,
    code: &[(u64, u64)],
    planned: &'a crate::sys::Filter,
) -> Cow<'a, [sys::Insn]> {
    if lazy.is_empty() || planned.lazy_head.is_empty() {
        return Cow::Borrowed(&planned.plain);
    }
    let mut fds = [0u32; MAX_LAZY];
    let n = lazy.len().min(MAX_LAZY);
    for (slot, l) in fds.iter_mut().zip(&lazy) {
        *slot = l.fd as u32;
    }
    if LAZY.set(lazy).is_err() {
        return Cow::Borrowed(&planned.plain); // a nested pod: its parent's table and filter hold
    }
    // SAFETY: `on_trap` is async-signal-safe: system calls, atomics and reads of a table set
    // before the filter is installed.
    unsafe { sys::on_trapped(on_trap) };
    let mut prog = Vec::with_capacity(planned.lazy_head.len() + 16 + n + 4 * code.len());
    prog.extend_from_slice(&planned.lazy_head);
    filter::tail(&fds[..n], gate(), code, &mut prog);
    Cow::Owned(prog)
}

/// At most this many address ranges of the pod's own code are told apart in the filter.
const MAX_RANGES: usize = 12;

/// The pod's executable mappings now (the host's program, its libraries, the vDSO), merged into
/// at most `MAX_RANGES` ranges, each within one 4 GiB-aligned region: (start, last byte). Asked
/// of the kernel mapping by mapping where it can (`PROCMAP_QUERY`), else read from the text of
/// `/proc/self/maps` (slower: the kernel writes a line per mapping, a path in each). The same in
/// the host's child that plans the pod's descriptors (`fds::scan`) as in the test: no code is
/// mapped in between.
///
/// Not from the dynamic linker's list (`dl_iterate_phdr`, no system call, ~30 µs less per pod
/// with a lazy file, ~13 µs once the shared-memory step pays the first look at
/// `/proc/self/maps`): it takes the linker's lock, which `dlclose` holds while it frees memory.
/// Taken in `ckpt()`, a call holding the program's allocator's lock hangs the host while another
/// thread unloads a library; taken by the runtime's thread, each such call waited a second for
/// it (`a_thread_unloading_libraries_beside_a_locked_allocator_does_not_hang_the_host`).
pub fn own_code() -> Vec<(u64, u64)> {
    let mut r: Vec<(u64, u64)> = sys::executable_mappings()
        .unwrap_or_else(executable_mappings_as_text)
        .into_iter()
        .filter(|&(a, b)| b > a)
        .map(|(a, b)| (a, b - 1))
        .collect();
    r.sort_unstable();
    // Merge the closest neighbours until few enough (the gaps between them join the ranges).
    while r.len() > MAX_RANGES {
        let i = (1..r.len())
            .min_by_key(|&i| r[i].0 - r[i - 1].1)
            .unwrap_or(1);
        r[i - 1].1 = r[i].1;
        r.remove(i);
    }
    // Split at 4 GiB boundaries, where the instruction pointer's high word changes.
    let mut out = Vec::new();
    for (mut a, b) in r {
        while a >> 32 != b >> 32 {
            let end = a | 0xffff_ffff;
            out.push((a, end));
            a = end + 1;
        }
        out.push((a, b));
    }
    out
}

/// The executable mappings from `/proc/self/maps`: (start, end).
fn executable_mappings_as_text() -> Vec<(u64, u64)> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (range, perms) = (it.next()?, it.next()?);
            if perms.as_bytes().get(2) != Some(&b'x') {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            Some((
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect()
}

#[cfg(target_arch = "x86_64")]
fn gate() -> u64 {
    sys::gate_address()
}

#[cfg(not(target_arch = "x86_64"))]
fn gate() -> u64 {
    0
}

/// In the SIGSYS handler: make the lazy file the call writes to writable.
fn on_trap(data: u32, nr: i64, args: &[u64; 6]) -> Option<i32> {
    if data != DATA_WRITE {
        return None;
    }
    let table = LAZY.get()?;
    let fd = match nr {
        libc::SYS_copy_file_range | libc::SYS_splice => args[2],
        libc::SYS_mmap => args[4],
        _ => args[0],
    } as i32;
    let l = table.iter().find(|l| l.fd == fd)?;
    upgrade(l).err()
}

/// Reopen `l` for writing at its number, at its offset; the overlay copies the file up. An
/// errno if that fails (the scratch is full: ENOSPC).
fn upgrade(l: &Lazy) -> Result<(), i32> {
    let same = sys::fstat(l.fd).is_ok_and(|st| st.st_dev == l.dev && st.st_ino == l.ino)
        && sys::get_fl(l.fd).is_ok_and(|f| f & libc::O_ACCMODE == libc::O_RDONLY);
    if !same {
        return Ok(()); // the test closed it, or put another file at its number
    }
    let offset = sys::lseek(l.fd, 0, libc::SEEK_CUR).unwrap_or(0);
    let fd_flags = sys::get_fd_flags(l.fd).unwrap_or(0);
    let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let new = sys::open(&l.path, l.flags | libc::O_CLOEXEC, 0).map_err(errno)?;
    let _ = sys::lseek(new.as_raw_fd(), offset, libc::SEEK_SET);
    // SAFETY: `l.fd` is the pod's read-only reopen of the file (checked above); replacing it by
    // the writable one is what the test's call needs, and the test holds no other meaning for it.
    let r = unsafe { sys::dup2(new.as_raw_fd(), l.fd) };
    drop(new);
    r.map_err(errno)?;
    let _ = sys::set_fd_flags(l.fd, fd_flags);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_and_the_text_of_the_maps_agree_on_the_code() {
        // The kernel does not count the legacy vsyscall page (above user space) as a mapping;
        // it makes no system call that writes.
        let mut text = executable_mappings_as_text();
        text.retain(|&(a, _)| a < 1 << 47);
        assert!(!text.is_empty());
        if let Some(asked) = sys::executable_mappings() {
            assert_eq!(asked, text);
        }
    }
}
