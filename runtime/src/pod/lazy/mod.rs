//! Lazy copy-up: a file the host has open for writing is reopened read-only in the pod (no
//! copy), and made writable on the test's first write through it.
//!
//! Reopening it for writing would make the overlay copy it whole into the pod's scratch at pod
//! start, whether the test ever touches it or not (a 1 GiB file: a 1 GiB copy per pod). So
//! `fds` reopens it read-only, and checks put in the pod's own system call filter (`within`,
//! else ahead of it; one filter: each the kernel takes costs tens of microseconds) trap what would write through one of those descriptor numbers: `write`, `pwrite64`,
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
use filter::{program, DATA_WRITE};
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

/// The pod's system call filter `main` with the traps of writes through the lazy descriptors
/// inside it (`within`; where `main` does not begin as expected, ahead of it): one filter, not
/// two (each filter the kernel takes costs tens of microseconds, most of it fixed). A call the
/// lazy checks let through goes on to `main`'s checks, as it would with two filters; one they trap goes to `main`'s when the handler makes it again
/// through the gate. `main` alone where nothing is lazy. `code`: the pod's own code (`own_code`).
pub fn ahead_of(lazy: Vec<Lazy>, code: &[(u64, u64)], main: &[sys::Insn]) -> Vec<sys::Insn> {
    if lazy.is_empty() || cfg!(not(target_arch = "x86_64")) {
        return main.to_vec();
    }
    let fds: Vec<u32> = lazy.iter().map(|l| l.fd as u32).collect();
    if LAZY.set(lazy).is_err() {
        return main.to_vec(); // a nested pod: its parent's table and filter hold
    }
    // SAFETY: `on_trap` is async-signal-safe: system calls, atomics and reads of a table set
    // before the filter is installed.
    unsafe { sys::on_trapped(on_trap) };
    let lazy = program(&fds, gate(), code);
    if main.is_empty() {
        return lazy;
    }
    if let Some(prog) = within(&lazy, main) {
        return prog;
    }
    // The program's last instruction is its `allow`, where `main` begins instead.
    let mut prog = Vec::with_capacity(lazy.len() - 1 + main.len());
    prog.extend_from_slice(&lazy[..lazy.len() - 1]);
    prog.extend_from_slice(main);
    prog
}

/// The lazy checks inside `main`, after its own check of the architecture and load of the call
/// number, where `main` begins so (`None`: it does not): the kernel runs the filter for every
/// call number of both architectures as it takes it, and so runs neither the lazy checks' own
/// look at the architecture (~4 us) nor, for the other architecture's numbers, their search.
/// Their `allow` becomes a load of the number again, on which `main` goes on.
fn within(lazy: &[sys::Insn], main: &[sys::Insn]) -> Option<Vec<sys::Insn>> {
    let head = |p: &[sys::Insn]| {
        let ld = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
        let jeq = (libc::BPF_JMP | libc::BPF_JEQ) as u16;
        p.len() > 3
            && (p[0].code, p[0].k) == (ld, 4)
            && (p[1].code, p[1].k, p[1].jt) == (jeq, filter::AUDIT_ARCH, 0)
            && (p[2].code, p[2].k) == (ld, 0)
    };
    // (`main` sends another architecture past its head, or the insertion would not move it.)
    if !head(lazy) || !head(main) || main[1].jf == 0 {
        return None;
    }
    // Lazy body: past its head, up to its `allow` (the last instruction), which the load of
    // the number takes the place of: its jumps stay as they are.
    let body = &lazy[3..lazy.len() - 1];
    let mut prog = Vec::with_capacity(main.len() + body.len() + 1);
    prog.extend_from_slice(&main[..3]);
    // Past the inserted instructions to where `main` sends another architecture.
    prog[1].jf = u8::try_from(main[1].jf as usize + body.len() + 1).ok()?;
    prog.extend_from_slice(body);
    prog.push(sys::Insn {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    });
    prog.extend_from_slice(&main[3..]);
    Some(prog)
}

/// At most this many address ranges of the pod's own code are told apart in the filter.
const MAX_RANGES: usize = 12;

/// The pod's executable mappings now (the host's program, its libraries, the vDSO), merged into
/// at most `MAX_RANGES` ranges, each within one 4 GiB-aligned region: (start, last byte). Asked
/// of the kernel mapping by mapping where it can (`PROCMAP_QUERY`), else read from the text of
/// `/proc/self/maps` (slower: the kernel writes a line per mapping, a path in each). The same in
/// the host's child that plans the pod's descriptors (`fds::scan`) as in the test: no code is
/// mapped in between.
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

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_lazy_checks_inside_the_pods_filter_decide_as_ahead_of_it() {
        use filter::tests::walk_arch;
        let main = crate::pod::seccomp_program();
        let (gate, own, elsewhere) = (0x7f12_3456_789a, 0x5555_0000_2000, 0x5555_0001_2000);
        let lazy = program(&[3, 7], gate, &[(0x5555_0000_1000, 0x5555_0000_8fff)]);
        let inside = within(&lazy, &main).expect("the pod's filter begins as expected");
        let mut ahead = lazy[..lazy.len() - 1].to_vec();
        ahead.extend_from_slice(&main);
        const I386: u32 = 0x4000_0003;
        let mut compared = 0;
        for arch in [filter::AUDIT_ARCH, I386] {
            for nr in (0..460).chain([0x4000_0001]) {
                for ip in [own, elsewhere, gate] {
                    for fd in [3, 4, 7] {
                        // fcntl's command, mmap's protection and flags, clone's and socket's
                        // first argument: from the same values.
                        let args = [fd, 1030, 3, 1, fd, 0];
                        let a = walk_arch(&ahead, arch, ip, nr, args).0;
                        let b = walk_arch(&inside, arch, ip, nr, args).0;
                        assert_eq!(a, b, "arch {arch:#x} call {nr} ip {ip:#x} fd {fd}");
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 8000);
        // Where the trap is: the lazy checks did run inside.
        let trap = libc::SECCOMP_RET_TRAP | filter::DATA_WRITE;
        assert_eq!(
            walk_arch(
                &inside,
                filter::AUDIT_ARCH,
                own,
                libc::SYS_write,
                [3, 0, 0, 0, 0, 0]
            )
            .0,
            trap
        );
        assert!(inside.len() < ahead.len());
    }

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
