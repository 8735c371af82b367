//! The pod's system call filter, in the spirit of Docker's default seccomp profile: built once
//! in the plan (before any fork), installed in the test as its last setup step.
//!
//! Refused (the call fails with EPERM, and the record's `notes` name it once per process):
//! - what reaches past the pod's namespaces: `AF_VSOCK` sockets (an empty network namespace
//!   does not cover them), keyrings (`add_key`, `request_key`, `keyctl`: the pod has a fresh
//!   session keyring, and root's user keyring is the host's), new user namespaces (`clone`,
//!   `unshare` with a namespace flag), `setns`;
//! - kernel-wide state: `bpf`, `perf_event_open`, `userfaultfd`, `kexec_*`, module loading,
//!   `syslog`, `acct`, clocks, `swapon`/`swapoff`, `reboot`, quotas, `iopl`/`ioperm`;
//! - file system layout: `mount`, `umount2`, `pivot_root`, the new mount API, `open_by_handle_at`;
//! - `io_uring_*`, whose operations would not pass through this filter.
//!
//! `clone3` fails with ENOSYS (its flags sit in memory the filter cannot read): glibc then falls
//! back to `clone`, whose flags it can. Another architecture's calls (i386 `int 0x80`) and x32
//! calls fail with EPERM. `ptrace` and `process_vm_*` stay: the PID namespace bounds them to the
//! pod, and debuggers and tracers in tests need them.
//!
//! Unprivileged pods that see a host's tree bound whole: `connect` goes to the supervisor, and
//! what would get past it is refused too (`unotify`).
//!
//! A refused call raises SIGSYS (`SECCOMP_RET_TRAP`); the handler makes the call return EPERM
//! and sends a note frame to the supervisor. A test that installs its own SIGSYS handler gets
//! the signal instead; a program the test execs has no handler, and SIGSYS ends it.

use super::bpf::{self, Asm, To, ALLOW, ENOSYS, EPERM, JEQ, JSET, LD, OFF_ARCH, OFF_NR, TRAP};
use super::unotify;
use crate::sys::{self, Filter};

#[cfg(target_arch = "x86_64")]
use bpf::{off_arg, AUDIT_ARCH};

/// x32 system calls have this bit set in their number (x86_64 kernels).
#[cfg(target_arch = "x86_64")]
const X32_BIT: u32 = 0x4000_0000;

/// Refused outright: (number, name).
#[cfg(target_arch = "x86_64")]
const REFUSED: &[(libc::c_long, &str)] = &[
    (libc::SYS_add_key, "add_key"),
    (libc::SYS_request_key, "request_key"),
    (libc::SYS_keyctl, "keyctl"),
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_perf_event_open, "perf_event_open"),
    (libc::SYS_userfaultfd, "userfaultfd"),
    (libc::SYS_kexec_load, "kexec_load"),
    (libc::SYS_kexec_file_load, "kexec_file_load"),
    (libc::SYS_init_module, "init_module"),
    (libc::SYS_finit_module, "finit_module"),
    (libc::SYS_delete_module, "delete_module"),
    (libc::SYS_syslog, "syslog"),
    (libc::SYS_acct, "acct"),
    (libc::SYS_settimeofday, "settimeofday"),
    (libc::SYS_clock_settime, "clock_settime"),
    (libc::SYS_clock_adjtime, "clock_adjtime"),
    (libc::SYS_swapon, "swapon"),
    (libc::SYS_swapoff, "swapoff"),
    (libc::SYS_reboot, "reboot"),
    (libc::SYS_quotactl, "quotactl"),
    (libc::SYS_quotactl_fd, "quotactl_fd"),
    (libc::SYS_iopl, "iopl"),
    (libc::SYS_ioperm, "ioperm"),
    (libc::SYS_vhangup, "vhangup"),
    (libc::SYS_lookup_dcookie, "lookup_dcookie"),
    (libc::SYS_nfsservctl, "nfsservctl"),
    (libc::SYS_uselib, "uselib"),
    (libc::SYS_mount, "mount"),
    (libc::SYS_umount2, "umount2"),
    (libc::SYS_pivot_root, "pivot_root"),
    (libc::SYS_open_tree, "open_tree"),
    (libc::SYS_move_mount, "move_mount"),
    (libc::SYS_fsopen, "fsopen"),
    (libc::SYS_fsconfig, "fsconfig"),
    (libc::SYS_fsmount, "fsmount"),
    (libc::SYS_fspick, "fspick"),
    (libc::SYS_mount_setattr, "mount_setattr"),
    (libc::SYS_open_by_handle_at, "open_by_handle_at"),
    (libc::SYS_setns, "setns"),
    (libc::SYS_io_uring_setup, "io_uring_setup"),
    (libc::SYS_io_uring_enter, "io_uring_enter"),
    (libc::SYS_io_uring_register, "io_uring_register"),
];

/// Refused when their first argument matches: (number, name, mask or value, how).
#[cfg(target_arch = "x86_64")]
const REFUSED_IF: &[(libc::c_long, &str, u32, ArgTest)] = &[
    (
        libc::SYS_socket,
        "socket",
        libc::AF_VSOCK as u32,
        ArgTest::Equals,
    ),
    (libc::SYS_clone, "clone", CLONE_NAMESPACES, ArgTest::AnyBit),
    (
        libc::SYS_unshare,
        "unshare",
        CLONE_NAMESPACES | libc::CLONE_NEWTIME as u32,
        ArgTest::AnyBit,
    ),
];

/// Every namespace flag of `clone` (CLONE_NEWTIME shares its bit with the exit signal there).
const CLONE_NAMESPACES: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;

#[derive(Clone, Copy)]
enum ArgTest {
    Equals,
    AnyBit,
}

/// The filter, both ways (`sys::Filter`). `notify`: the pod's `connect` goes to its supervisor
/// (`unotify`), for unprivileged pods that see a host's tree bound whole.
pub fn plan(notify: bool) -> Filter {
    Filter {
        plain: program(notify),
        lazy_head: super::lazy::head(notify),
        notify,
    }
}

/// The filter program alone.
#[cfg(target_arch = "x86_64")]
pub fn program(notify: bool) -> Vec<sys::Insn> {
    let mut a = Asm::with_capacity(80);
    write(&mut a, &[], notify);
    a.finish()
}

/// Write the filter into `a`: the architecture, then a binary search over ranges of call
/// numbers (x32 calls, numbered from `X32_BIT` up, are one of them), then the argument checks.
/// `more`: other calls to look at in the same search, each (number, where it goes: checks
/// written after these, none of this filter's calls), so that the calls no one looks at take
/// no more comparisons than in one search.
/// `notify`: with the checks of `unotify` in the same search.
#[cfg(target_arch = "x86_64")]
pub fn write(a: &mut Asm, more: &[(u32, To)], notify: bool) {
    a.op(LD, OFF_ARCH, To::Next, To::Next);
    a.op(JEQ, AUDIT_ARCH, To::Next, EPERM);
    a.op(LD, OFF_NR, To::Next, To::Next);
    let checks: Vec<To> = REFUSED_IF.iter().map(|_| a.label()).collect();
    let connects = notify.then(|| unotify::Checks::new(a));
    let mut more = more.to_vec();
    more.extend(connects.iter().flat_map(unotify::Checks::calls));
    a.search(&ranges(&checks, &more));
    // The argument checks: load the first argument, decide.
    for (&check, &(nr, _, k, test)) in checks.iter().zip(REFUSED_IF) {
        a.place(check);
        a.op(LD, off_arg(0), To::Next, To::Next);
        let code = match test {
            ArgTest::Equals => JEQ,
            ArgTest::AnyBit => JSET,
        };
        let miss = match &connects {
            Some(c) if nr == libc::SYS_socket => c.socket_family(),
            _ => ALLOW,
        };
        a.op(code, k, TRAP, miss);
    }
    if let Some(c) = connects {
        c.write(a);
    }
}

/// What each call number gets, as ranges: (first number, what), sorted, each up to the next;
/// neighbours that get the same are one range. `checks`: where each call of `REFUSED_IF` goes;
/// `more`: see `write`.
#[cfg(target_arch = "x86_64")]
fn ranges(checks: &[To], more: &[(u32, To)]) -> Vec<(u32, To)> {
    let mut listed: Vec<(u32, To)> = REFUSED
        .iter()
        .map(|&(nr, _)| (nr as u32, TRAP))
        .chain([(libc::SYS_clone3 as u32, ENOSYS)])
        .chain(
            REFUSED_IF
                .iter()
                .zip(checks)
                .map(|(&(nr, ..), &c)| (nr as u32, c)),
        )
        .chain(more.iter().copied())
        .collect();
    listed.sort_by_key(|l| l.0);
    debug_assert!(
        listed.windows(2).all(|w| w[0].0 != w[1].0),
        "a call looked at twice"
    );
    let mut ranges: Vec<(u32, To)> = vec![(0, ALLOW)];
    let mut push = |from: u32, to: To| match ranges.last_mut() {
        Some(last) if last.0 == from => last.1 = to,
        _ => ranges.push((from, to)),
    };
    for (nr, to) in listed {
        push(nr, to);
        push(nr + 1, ALLOW);
    }
    push(X32_BIT, EPERM);
    ranges.dedup_by(|next, prev| next.1 == prev.1);
    ranges
}

/// No filter on other architectures (README: "not isolated").
#[cfg(not(target_arch = "x86_64"))]
pub fn program(_notify: bool) -> Vec<sys::Insn> {
    Vec::new()
}

/// The name of a refused call.
fn name(nr: i64) -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let hit = REFUSED
            .iter()
            .copied()
            .chain(REFUSED_IF.iter().map(|&(n, s, _, _)| (n, s)))
            .find(|&(n, _)| n == nr);
        if let Some((_, s)) = hit.or_else(|| unotify::name(nr)) {
            return s;
        }
    }
    let _ = nr;
    "?"
}

/// Calls already noted by this process (one note per call, whatever the number of attempts).
static NOTED: [std::sync::atomic::AtomicU64; 8] =
    [const { std::sync::atomic::AtomicU64::new(0) }; 8];

/// In the SIGSYS handler: note the refused call once. Formats on the stack, one `write`.
fn report(nr: i64) {
    use std::sync::atomic::Ordering;
    if (0..512).contains(&nr) {
        let bit = 1u64 << (nr % 64);
        if NOTED[nr as usize / 64].fetch_or(bit, Ordering::Relaxed) & bit != 0 {
            return;
        }
    }
    let mut buf = [0u8; 128];
    let mut len = 0;
    let mut put = |s: &[u8]| {
        let n = s.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&s[..n]);
        len += n;
    };
    put(b"seccomp refused the system call ");
    put(name(nr).as_bytes());
    put(b" (");
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = nr.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    put(&digits[i..]);
    put(b"): EPERM");
    super::report_note(&buf[..len]);
}

/// The last setup step: the filter, with refused calls returning EPERM and noted. `listen`: with
/// a listener for the calls it notifies (`unotify`), returned.
pub fn install(prog: &[sys::Insn], listen: bool) -> std::io::Result<Option<std::os::fd::OwnedFd>> {
    if prog.is_empty() {
        return Ok(None);
    }
    // SAFETY: `report` is async-signal-safe: atomic bit operations, a frame built on the stack
    // and one `write` (`report_note`).
    unsafe { sys::refuse_trapped_calls(report) }?;
    if listen {
        return sys::install_filter_listening(prog).map(Some);
    }
    sys::install_filter(prog).map(|()| None)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Run the program on one call, as the kernel would.
    fn run(prog: &[sys::Insn], arch: u32, nr: u32, arg0: u32) -> u32 {
        walk(prog, arch, nr, arg0).0
    }

    /// The return, and how many instructions ran.
    fn walk(prog: &[sys::Insn], arch: u32, nr: u32, arg0: u32) -> (u32, usize) {
        let (ret, steps, _) = bpf::walk(prog, arch, nr, 0, [arg0, 0, 0, 0, 0, 0]);
        (ret, steps)
    }

    /// The ranges of the filter alone, its argument checks at any labels.
    fn own_ranges() -> Vec<(u32, To)> {
        let checks: Vec<To> = (0..REFUSED_IF.len()).map(To::Label).collect();
        ranges(&checks, &[])
    }

    #[test]
    fn the_filter_refuses_what_it_lists_and_allows_the_rest() {
        let p = program(false);
        let nr = |n: libc::c_long| n as u32;
        let allow = libc::SECCOMP_RET_ALLOW;
        let trap = libc::SECCOMP_RET_TRAP;
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        for &(n, _) in REFUSED {
            assert_eq!(run(&p, AUDIT_ARCH, nr(n), 0), trap, "{}", name(n));
        }
        for n in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_ptrace,
            libc::SYS_execve,
            libc::SYS_socketpair,
        ] {
            assert_eq!(run(&p, AUDIT_ARCH, nr(n), 0), allow, "{n}");
        }
        let sock = nr(libc::SYS_socket);
        assert_eq!(run(&p, AUDIT_ARCH, sock, libc::AF_VSOCK as u32), trap);
        assert_eq!(run(&p, AUDIT_ARCH, sock, libc::AF_UNIX as u32), allow);
        assert_eq!(run(&p, AUDIT_ARCH, sock, libc::AF_INET6 as u32), allow);
        let clone = nr(libc::SYS_clone);
        let fork_flags = (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as u32 | 17;
        assert_eq!(run(&p, AUDIT_ARCH, clone, fork_flags), allow);
        let user = libc::CLONE_NEWUSER as u32;
        assert_eq!(run(&p, AUDIT_ARCH, clone, fork_flags | user), trap);
        let unshare = nr(libc::SYS_unshare);
        assert_eq!(
            run(&p, AUDIT_ARCH, unshare, libc::CLONE_FILES as u32),
            allow
        );
        assert_eq!(run(&p, AUDIT_ARCH, unshare, user), trap);
        assert_eq!(
            run(&p, AUDIT_ARCH, nr(libc::SYS_clone3), 0),
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
        assert_eq!(run(&p, AUDIT_ARCH, X32_BIT | 39, 0), eperm);
        assert_eq!(run(&p, 0x4000_0003, 20, 0), eperm); // i386
    }

    #[test]
    fn every_call_number_takes_a_short_walk_to_the_right_return() {
        let p = program(false);
        for nr in 0..500u32 {
            let listed = REFUSED.iter().any(|&(n, _)| n as u32 == nr);
            let want = if listed {
                libc::SECCOMP_RET_TRAP
            } else if nr == libc::SYS_clone3 as u32 {
                libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
            } else {
                libc::SECCOMP_RET_ALLOW // REFUSED_IF calls with argument 0 too
            };
            let (ret, steps) = walk(&p, AUDIT_ARCH, nr, 0);
            assert_eq!(ret, want, "system call {nr}");
            // The kernel runs the filter for every number when installing it: a binary
            // search keeps that, and every call's cost, to a few comparisons.
            assert!(steps <= 14, "system call {nr}: {steps} instructions");
        }
    }

    #[test]
    fn the_program_is_short_and_every_walk_through_it_too() {
        // The kernel compiles every instruction when a pod installs the filter: three to
        // load and check the architecture, fewer than one per boundary between ranges of
        // numbers that get the same (a number refused among allowed ones is one comparison at
        // a leaf, not two boundaries), two per argument check, four returns. (A search over
        // single numbers took one comparison per listed call and more: 83 instructions; one
        // over ranges alone, 62.)
        let r = own_ranges();
        assert_eq!(r[0], (0, ALLOW));
        assert!(r.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 != w[1].1));
        let p = program(false);
        assert!(p.len() < 3 + (r.len() - 1) + 2 * REFUSED_IF.len() + 4);
        assert!(p.len() <= 52, "{} instructions", p.len());
        // Every path through the search: log2(ranges) comparisons, and a leaf's few.
        let depth = usize::BITS - (r.len() - 1).leading_zeros();
        for nr in (0..500u32).chain([X32_BIT, X32_BIT | 1, u32::MAX]) {
            let (_, steps) = walk(&p, AUDIT_ARCH, nr, 0);
            assert!(
                steps <= 3 + depth as usize + bpf::EXCEPTIONS + 3,
                "system call {nr}: {steps} steps"
            );
        }
    }

    #[test]
    fn refused_calls_have_names() {
        assert_eq!(name(libc::SYS_keyctl), "keyctl");
        assert_eq!(name(libc::SYS_socket), "socket");
        assert_eq!(name(libc::SYS_read), "?");
    }
}
