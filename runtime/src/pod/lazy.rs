//! Lazy copy-up: a file the host has open for writing is reopened read-only in the pod (no
//! copy), and made writable on the test's first write through it.
//!
//! Reopening it for writing would make the overlay copy it whole into the pod's scratch at pod
//! start, whether the test ever touches it or not (a 1 GiB file: a 1 GiB copy per pod). So
//! `fds` reopens it read-only, and a second system call filter, installed after the pod's own,
//! traps what would write through one of those descriptor numbers: `write`, `pwrite64`,
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
//! The filter traps by number, and stays on after `execve`: before one, every lazy file is made
//! writable, and the record's notes say that a program the test ran dies of SIGSYS if it writes
//! to one of those numbers (it has no handler).

use crate::sys;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
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
    upgraded: AtomicBool,
}

impl Lazy {
    pub fn new(fd: RawFd, path: CString, flags: i32, st: &libc::stat) -> Lazy {
        Lazy {
            fd,
            path,
            flags,
            dev: st.st_dev,
            ino: st.st_ino,
            upgraded: AtomicBool::new(false),
        }
    }
}

/// The pod's lazy descriptors, set once during its setup, read by the SIGSYS handler.
static LAZY: OnceLock<Vec<Lazy>> = OnceLock::new();

const DATA_WRITE: u32 = 1;
const DATA_EXEC: u32 = 2;

/// After the pod's own filter: trap writes through the lazy descriptors.
pub fn install(lazy: Vec<Lazy>) -> std::io::Result<()> {
    if lazy.is_empty() || cfg!(not(target_arch = "x86_64")) {
        return Ok(());
    }
    let fds: Vec<u32> = lazy.iter().map(|l| l.fd as u32).collect();
    if LAZY.set(lazy).is_err() {
        return Ok(()); // a nested pod: its parent's table and filter hold
    }
    // SAFETY: `on_trap` is async-signal-safe: system calls, atomics and reads of a table set
    // before the filter is installed.
    unsafe { sys::on_trapped(on_trap) };
    sys::install_filter(&program(&fds, gate()))
}

#[cfg(target_arch = "x86_64")]
fn gate() -> u64 {
    sys::gate_address()
}

#[cfg(not(target_arch = "x86_64"))]
fn gate() -> u64 {
    0
}

/// In the SIGSYS handler: make the lazy file the call writes to writable; before `execve`,
/// all of them.
fn on_trap(data: u32, nr: i64, args: &[u64; 6]) -> Option<i32> {
    let table = LAZY.get()?;
    if data == DATA_EXEC {
        for l in table {
            let _ = upgrade(l);
        }
        super::report_note(EXEC_NOTE);
        return None;
    }
    let fd = match nr {
        libc::SYS_copy_file_range | libc::SYS_splice => args[2],
        libc::SYS_mmap => args[4],
        _ => args[0],
    } as i32;
    let l = table.iter().find(|l| l.fd == fd)?;
    upgrade(l).err()
}

const EXEC_NOTE: &[u8] = b"the test ran a program with lazily copied files open: a write to \
their descriptor numbers ends it with SIGSYS (it has no handler)";

/// Reopen `l` for writing at its number, at its offset; the overlay copies the file up. An
/// errno if that fails (the scratch is full: ENOSPC).
fn upgrade(l: &Lazy) -> Result<(), i32> {
    if l.upgraded.load(Ordering::Relaxed) {
        return Ok(());
    }
    let same = sys::fstat(l.fd).is_ok_and(|st| st.st_dev == l.dev && st.st_ino == l.ino)
        && sys::get_fl(l.fd).is_ok_and(|f| f & libc::O_ACCMODE == libc::O_RDONLY);
    if !same {
        return Ok(()); // the test closed it, or put another file at its number
    }
    let offset = sys::lseek(l.fd, 0, libc::SEEK_CUR).unwrap_or(0);
    let fd_flags = sys::get_fd_flags(l.fd).unwrap_or(0);
    let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EIO);
    let new = sys::open(&l.path, l.flags | libc::O_CLOEXEC, 0).map_err(errno)?;
    let _ = sys::lseek(new, offset, libc::SEEK_SET);
    // SAFETY: `l.fd` is the pod's read-only reopen of the file (checked above); replacing it by
    // the writable one is what the test's call needs, and the test holds no other meaning for it.
    let r = unsafe { sys::dup2(new, l.fd) };
    sys::close(new);
    r.map_err(errno)?;
    let _ = sys::set_fd_flags(l.fd, fd_flags);
    l.upgraded.store(true, Ordering::Relaxed);
    Ok(())
}

// struct seccomp_data: nr, arch, instruction_pointer (low, high), args[6].
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP_LO: u32 = 8;
const OFF_IP_HI: u32 = 12;
const fn off_arg(i: u32) -> u32 {
    16 + 8 * i
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(not(target_arch = "x86_64"))]
const AUDIT_ARCH: u32 = 0;

/// The calls that write through their descriptor argument: (number, which argument).
const WRITES: &[(libc::c_long, u32)] = &[
    (libc::SYS_write, 0),
    (libc::SYS_pwrite64, 0),
    (libc::SYS_writev, 0),
    (libc::SYS_pwritev, 0),
    (libc::SYS_pwritev2, 0),
    (libc::SYS_ftruncate, 0),
    (libc::SYS_fallocate, 0),
    (libc::SYS_sendfile, 0),
    (libc::SYS_dup, 0),
    (libc::SYS_dup2, 0),
    (libc::SYS_dup3, 0),
    (libc::SYS_copy_file_range, 2),
    (libc::SYS_splice, 2),
];

const LD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET) as u16;
const RET: u16 = libc::BPF_RET as u16;

/// Jump targets: the next instruction, a labelled block, or a return.
#[derive(Clone, Copy, PartialEq)]
enum To {
    Next,
    Block(usize),
    Allow,
    TrapWrite,
    TrapExec,
}

/// The filter: not this architecture, or a call through the gate: allowed. Then by number:
/// the writing calls look at their descriptor argument, `fcntl` at its command first, `mmap` at
/// its flags and protection first, `execve`/`execveat` trap.
fn program(fds: &[u32], gate: u64) -> Vec<sys::Insn> {
    // Blocks, laid out in this order (jumps go forward only): 0 the gate, 1 by number, 2 fcntl,
    // 3 mmap, then 4, 5, 6 check descriptor argument 0, 2, 4. A call not listed is allowed
    // before anything else is looked at: the kernel's per-number cache then allows it without
    // running the filter.
    let fd_block = |arg: u32| To::Block(4 + arg as usize / 2);
    let listed: Vec<u32> = WRITES
        .iter()
        .map(|&(nr, _)| nr)
        .chain([
            libc::SYS_fcntl,
            libc::SYS_mmap,
            libc::SYS_execve,
            libc::SYS_execveat,
        ])
        .map(|nr| nr as u32)
        .collect();
    let mut head: Vec<(u16, u32, To, To)> = vec![
        (LD, OFF_ARCH, To::Next, To::Next),
        (JEQ, AUDIT_ARCH, To::Next, To::Allow),
        (LD, OFF_NR, To::Next, To::Next),
    ];
    for (i, &nr) in listed.iter().enumerate() {
        let miss = if i + 1 == listed.len() {
            To::Allow
        } else {
            To::Next
        };
        head.push((JEQ, nr, To::Block(0), miss));
    }
    let gate_check = vec![
        (LD, OFF_IP_LO, To::Next, To::Next),
        (JEQ, gate as u32, To::Next, To::Block(1)),
        (LD, OFF_IP_HI, To::Next, To::Next),
        (JEQ, (gate >> 32) as u32, To::Allow, To::Block(1)),
    ];
    let mut by_nr = vec![(LD, OFF_NR, To::Next, To::Next)];
    for &(nr, arg) in WRITES {
        by_nr.push((JEQ, nr as u32, fd_block(arg), To::Next));
    }
    by_nr.push((JEQ, libc::SYS_fcntl as u32, To::Block(2), To::Next));
    by_nr.push((JEQ, libc::SYS_mmap as u32, To::Block(3), To::Next));
    by_nr.push((JEQ, libc::SYS_execve as u32, To::TrapExec, To::Next));
    by_nr.push((JEQ, libc::SYS_execveat as u32, To::TrapExec, To::Allow));
    let mut blocks = vec![
        gate_check,
        by_nr,
        vec![
            (LD, off_arg(1), To::Next, To::Next),
            (JEQ, libc::F_DUPFD as u32, fd_block(0), To::Next),
            (JEQ, libc::F_DUPFD_CLOEXEC as u32, fd_block(0), To::Next),
            (JEQ, libc::F_SETLK as u32, fd_block(0), To::Next),
            (JEQ, libc::F_SETLKW as u32, fd_block(0), To::Next),
            (JEQ, libc::F_OFD_SETLK as u32, fd_block(0), To::Next),
            (JEQ, libc::F_OFD_SETLKW as u32, fd_block(0), To::Allow),
        ],
        vec![
            (LD, off_arg(3), To::Next, To::Next),
            (JSET, libc::MAP_SHARED as u32, To::Next, To::Allow),
            (LD, off_arg(2), To::Next, To::Next),
            (JSET, libc::PROT_WRITE as u32, fd_block(4), To::Allow),
        ],
    ];
    for arg in [0, 2, 4] {
        let mut b = vec![(LD, off_arg(arg), To::Next, To::Next)];
        b.extend(fds.iter().map(|&fd| (JEQ, fd, To::TrapWrite, To::Next)));
        b.push((RET, libc::SECCOMP_RET_ALLOW, To::Next, To::Next));
        blocks.push(b);
    }
    // Lay out: head, blocks in order; then the returns.
    let mut starts = Vec::new();
    let mut at = head.len();
    for b in &blocks {
        starts.push(at);
        at += b.len();
    }
    for b in blocks {
        head.extend(b);
    }
    let n = head.len();
    let (allow, trap_write, trap_exec) = (n, n + 1, n + 2);
    let mut prog: Vec<sys::Insn> = head
        .iter()
        .enumerate()
        .map(|(i, &(code, k, jt, jf))| {
            let off = |to: To| -> u8 {
                let target = match to {
                    To::Next => i + 1,
                    To::Block(b) => starts[b],
                    To::Allow => allow,
                    To::TrapWrite => trap_write,
                    To::TrapExec => trap_exec,
                };
                u8::try_from(target - i - 1).expect("a filter short enough for 8-bit jumps")
            };
            let jump = code & 0x07 == libc::BPF_JMP as u16;
            sys::Insn {
                code,
                jt: if jump { off(jt) } else { 0 },
                jf: if jump { off(jf) } else { 0 },
                k,
            }
        })
        .collect();
    for ret in [
        libc::SECCOMP_RET_ALLOW,
        libc::SECCOMP_RET_TRAP | DATA_WRITE,
        libc::SECCOMP_RET_TRAP | DATA_EXEC,
    ] {
        prog.push(sys::Insn {
            code: RET,
            jt: 0,
            jf: 0,
            k: ret,
        });
    }
    prog
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Run the program on one call, as the kernel would.
    fn run(p: &[sys::Insn], ip: u64, nr: libc::c_long, args: [u32; 6]) -> u32 {
        walk(p, ip, nr, args).0
    }

    /// The return, and whether the walk looked past the call's number and architecture.
    fn walk(p: &[sys::Insn], ip: u64, nr: libc::c_long, args: [u32; 6]) -> (u32, bool) {
        let mut pc = 0usize;
        let mut acc = 0u32;
        let mut looked = false;
        loop {
            let i = p[pc];
            match i.code {
                LD => {
                    looked |= i.k >= OFF_IP_LO;
                    acc = match i.k {
                        OFF_NR => nr as u32,
                        OFF_ARCH => AUDIT_ARCH,
                        OFF_IP_LO => ip as u32,
                        OFF_IP_HI => (ip >> 32) as u32,
                        k => args[((k - 16) / 8) as usize],
                    };
                    pc += 1;
                }
                JEQ | JSET => {
                    let yes = if i.code == JEQ {
                        acc == i.k
                    } else {
                        acc & i.k != 0
                    };
                    pc += 1 + if yes { i.jt } else { i.jf } as usize;
                }
                RET => return (i.k, looked),
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn writes_through_lazy_descriptors_trap_and_nothing_else_does() {
        let gate = 0x7f12_3456_789a;
        let p = program(&[3, 7], gate);
        let (allow, write) = (libc::SECCOMP_RET_ALLOW, libc::SECCOMP_RET_TRAP | DATA_WRITE);
        let a = |fd: u32| [fd, 0, 0, 0, 0, 0];
        assert_eq!(run(&p, 1, libc::SYS_write, a(3)), write);
        assert_eq!(run(&p, 1, libc::SYS_pwrite64, a(7)), write);
        assert_eq!(run(&p, 1, libc::SYS_write, a(4)), allow);
        assert_eq!(run(&p, gate, libc::SYS_write, a(3)), allow);
        assert_eq!(run(&p, 1, libc::SYS_read, a(3)), allow);
        assert_eq!(run(&p, 1, libc::SYS_dup2, [7, 9, 0, 0, 0, 0]), write);
        assert_eq!(
            run(&p, 1, libc::SYS_copy_file_range, [5, 0, 3, 0, 0, 0]),
            write
        );
        assert_eq!(
            run(&p, 1, libc::SYS_copy_file_range, [3, 0, 5, 0, 0, 0]),
            allow
        );
        let dupfd = libc::F_DUPFD_CLOEXEC as u32;
        assert_eq!(run(&p, 1, libc::SYS_fcntl, [3, dupfd, 0, 0, 0, 0]), write);
        let setlk = libc::F_SETLK as u32;
        assert_eq!(run(&p, 1, libc::SYS_fcntl, [7, setlk, 0, 0, 0, 0]), write);
        let getfl = libc::F_GETFL as u32;
        assert_eq!(run(&p, 1, libc::SYS_fcntl, [3, getfl, 0, 0, 0, 0]), allow);
        let (rw, ro) = (
            (libc::PROT_READ | libc::PROT_WRITE) as u32,
            libc::PROT_READ as u32,
        );
        let shared = libc::MAP_SHARED as u32;
        let private = libc::MAP_PRIVATE as u32;
        assert_eq!(run(&p, 1, libc::SYS_mmap, [0, 9, rw, shared, 3, 0]), write);
        assert_eq!(run(&p, 1, libc::SYS_mmap, [0, 9, ro, shared, 3, 0]), allow);
        assert_eq!(run(&p, 1, libc::SYS_mmap, [0, 9, rw, private, 3, 0]), allow);
        assert_eq!(run(&p, 1, libc::SYS_mmap, [0, 9, rw, shared, 8, 0]), allow);
        assert_eq!(
            run(&p, 1, libc::SYS_execve, a(0)),
            libc::SECCOMP_RET_TRAP | DATA_EXEC
        );
        assert_eq!(run(&p, gate, libc::SYS_execve, a(0)), allow);
        // The kernel caches, per call number, a filter that allows it whatever its arguments:
        // every call not listed must be decided by its number alone.
        for nr in 0..500 {
            let listed = WRITES.iter().any(|&(n, _)| n == nr)
                || [
                    libc::SYS_fcntl,
                    libc::SYS_mmap,
                    libc::SYS_execve,
                    libc::SYS_execveat,
                ]
                .contains(&nr);
            if !listed {
                assert_eq!(walk(&p, 1, nr, a(3)), (allow, false), "call {nr}");
            }
        }
        let full = program(&(3..3 + MAX_LAZY as u32).collect::<Vec<_>>(), gate);
        assert_eq!(
            run(&full, 1, libc::SYS_write, a(3 + MAX_LAZY as u32 - 1)),
            write
        );
    }
}
