//! The lazy copy-up traps in classic BPF: which calls write through a descriptor, folded into
//! the search of the pod's own filter (`head`, planned once), and which descriptors are lazy and
//! where the pod's own code is (`tail`, the test's own, appended to it).

use super::super::bpf::{off_arg, Asm, To, ALLOW, JEQ, JGE, JGT, JSET, LD, OFF_IP_HI, OFF_IP_LO};
use super::super::seccomp;
use crate::sys;

/// The data of a trap on a write through a lazy descriptor (`SECCOMP_RET_DATA`).
pub(super) const DATA_WRITE: u32 = 1;
const TRAP_WRITE: To = To::Ret(libc::SECCOMP_RET_TRAP | DATA_WRITE);
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

/// The pod's filter with these calls in its search (`seccomp::write`), each going on to the
/// checks below, which leave the descriptor it writes through in the accumulator and jump past
/// the program to `tail`. Not this architecture, or a call not listed: decided by the pod's filter
/// alone, by its number (the kernel's per-number cache then decides it without running the
/// filter; its search takes a few comparisons more at most for the calls listed here, under one on average). A listed
/// call looks at its descriptor argument (`fcntl` at its command first, `mmap` at its flags and
/// protection first), and `tail` decides. None of them is one the pod's filter refuses or looks
/// at: what `tail` does not trap is allowed.
#[cfg(target_arch = "x86_64")]
pub(super) fn head(notify: bool) -> Vec<sys::Insn> {
    let mut a = Asm::with_capacity(100);
    let (fcntl, mmap, arg2, arg0) = (a.label(), a.label(), a.label(), a.label());
    let calls: Vec<(u32, To)> = WRITES
        .iter()
        .map(|&(nr, arg)| (nr as u32, if arg == 0 { arg0 } else { arg2 }))
        .chain([
            (libc::SYS_fcntl as u32, fcntl),
            (libc::SYS_mmap as u32, mmap),
        ])
        .collect();
    seccomp::write(&mut a, &calls, notify);
    a.place(fcntl);
    a.op(LD, off_arg(1), To::Next, To::Next);
    let commands = [
        libc::F_DUPFD,
        libc::F_DUPFD_CLOEXEC,
        libc::F_SETLK,
        libc::F_SETLKW,
        libc::F_OFD_SETLK,
        libc::F_OFD_SETLKW,
    ]
    .map(|c| c as u32);
    a.any_of(commands.iter().map(|&c| (c, arg0)), ALLOW);
    a.place(mmap);
    a.op(LD, off_arg(3), To::Next, To::Next);
    a.op(JSET, libc::MAP_SHARED as u32, To::Next, ALLOW);
    a.op(LD, off_arg(2), To::Next, To::Next);
    a.op(JSET, libc::PROT_WRITE as u32, To::Next, ALLOW);
    a.op(LD, off_arg(4), To::Next, To::Next);
    a.jump(To::End);
    a.place(arg2);
    a.op(LD, off_arg(2), To::Next, To::Next);
    a.jump(To::End);
    a.place(arg0);
    a.op(LD, off_arg(0), To::Next, To::Next);
    a.jump(To::End);
    a.finish()
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn head(_notify: bool) -> Vec<sys::Insn> {
    Vec::new()
}

/// After `head`, appended to it in `prog`, with the descriptor a listed call writes through in
/// the accumulator: not one of `fds`, allowed. Else, where the call comes from: the gate, or
/// outside `code` (the pod's own code at install time, sorted, each range within one 4 GiB-aligned
/// region: a program the test execs runs elsewhere, and keeps the filter but not the handler),
/// allowed; else trapped. Few instructions (each one costs the kernel as it takes the filter):
/// ranges that share the high word of their addresses are told apart by their low words alone.
pub(super) fn tail(fds: &[u32], gate: u64, code: &[(u64, u64)], prog: &mut Vec<sys::Insn>) {
    // Room for all of it at once (the pod allocates as it starts: each new page it touches
    // is copied from the host's).
    let mut a = Asm::with_capacity(8 + fds.len() + 4 * code.len());
    let caller = a.label();
    a.any_of(fds.iter().map(|&fd| (fd, caller)), ALLOW);
    a.place(caller);
    a.op(LD, OFF_IP_LO, To::Next, To::Next);
    a.op(JEQ, gate as u32, To::Next, To::Skip(2));
    a.op(LD, OFF_IP_HI, To::Next, To::Next);
    a.op(JEQ, (gate >> 32) as u32, ALLOW, To::Next);
    a.op(LD, OFF_IP_HI, To::Next, To::Next);
    let mut highs: Vec<u32> = code.iter().map(|&(s, _)| (s >> 32) as u32).collect();
    highs.dedup();
    let places: Vec<To> = highs.iter().map(|_| a.label()).collect();
    a.any_of(highs.iter().copied().zip(places.iter().copied()), ALLOW);
    for (&high, &place) in highs.iter().zip(&places) {
        a.place(place);
        a.op(LD, OFF_IP_LO, To::Next, To::Next);
        let mut ranges = code
            .iter()
            .filter(|&&(s, _)| (s >> 32) as u32 == high)
            .peekable();
        while let Some(&(s, e)) = ranges.next() {
            // Below this range: the next one (or allowed); above it: the next one; in it: trap.
            let last = ranges.peek().is_none();
            let below = if last { ALLOW } else { To::Skip(1) };
            let above = if last { ALLOW } else { To::Next };
            a.op(JGE, s as u32, To::Next, below);
            a.op(JGT, e as u32, above, TRAP_WRITE);
        }
    }
    a.finish_into(prog);
}

#[cfg(all(test, target_arch = "x86_64"))]
pub(super) mod tests {
    use super::super::super::bpf::{self, AUDIT_ARCH, EXCEPTIONS};
    use super::super::MAX_LAZY;
    use super::*;

    /// The filter a pod with lazy descriptors `fds` installs.
    pub(in super::super) fn full(fds: &[u32], gate: u64, code: &[(u64, u64)]) -> Vec<sys::Insn> {
        let mut p = head(false);
        tail(fds, gate, code, &mut p);
        p
    }

    /// Run the program on one call, as the kernel would.
    fn run(p: &[sys::Insn], ip: u64, nr: libc::c_long, args: [u32; 6]) -> u32 {
        walk(p, ip, nr, args).0
    }

    /// The return, and whether the walk looked past the call's number and architecture.
    fn walk(p: &[sys::Insn], ip: u64, nr: libc::c_long, args: [u32; 6]) -> (u32, bool) {
        let (ret, _, looked) = bpf::walk(p, AUDIT_ARCH, nr as u32, ip, args);
        (ret, looked)
    }

    fn listed(nr: libc::c_long) -> bool {
        WRITES.iter().any(|&(n, _)| n == nr) || [libc::SYS_fcntl, libc::SYS_mmap].contains(&nr)
    }

    /// Which argument of a listed call is the descriptor it writes through.
    fn fd_arg(nr: libc::c_long) -> usize {
        match WRITES.iter().find(|&&(n, _)| n == nr) {
            Some(&(_, arg)) => arg as usize,
            None if nr == libc::SYS_mmap => 4,
            None => 0,
        }
    }

    #[test]
    fn what_the_lazy_checks_let_through_the_pods_filter_decides() {
        let (gate, own, elsewhere) = (0x7f12_3456_789a, 0x5555_0000_2000, 0x5555_0001_2000);
        let p = full(&[3, 7], gate, &[(0x5555_0000_1000, 0x5555_0000_8fff)]);
        let plain = seccomp::program(false);
        let trap = libc::SECCOMP_RET_TRAP | DATA_WRITE;
        const I386: u32 = 0x4000_0003;
        let (mut compared, mut walked, mut walked_plain, mut unlisted) = (0, 0, 0, 0);
        for arch in [AUDIT_ARCH, I386] {
            for nr in (0..460).chain([0x4000_0001, u32::MAX]) {
                for ip in [own, elsewhere, gate] {
                    for fd in [3, 4, 7] {
                        // fcntl's command, mmap's protection and flags, clone's and socket's
                        // first argument: from the same values.
                        let args = [fd, 1030, 3, 1, fd, 0];
                        let (got, steps, _) = bpf::walk(&p, arch, nr, ip, args);
                        let (want, plain_steps, _) = bpf::walk(&plain, arch, nr, ip, args);
                        let nr_l = nr as libc::c_long;
                        let lazy = arch == AUDIT_ARCH && listed(nr_l);
                        if lazy && [3, 7].contains(&args[fd_arg(nr_l)]) && ip == own {
                            assert_eq!(got, trap, "call {nr} fd {fd}");
                        } else {
                            assert_eq!(got, want, "arch {arch:#x} call {nr} ip {ip:#x} fd {fd}");
                        }
                        if !lazy && ip == own && fd == 3 {
                            // One search: the calls not listed take few comparisons more
                            // than in the pod's filter alone (two searches took six).
                            let most = plain_steps + EXCEPTIONS;
                            assert!(steps <= most, "call {nr}: {steps} steps");
                            walked += steps;
                            walked_plain += plain_steps;
                            unlisted += 1;
                        }
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared > 8000);
        // What the kernel walks as it takes the filter: under one comparison more per call.
        assert!(
            walked <= walked_plain + unlisted,
            "{walked} steps, {walked_plain} alone"
        );
    }

    #[test]
    fn ranges_that_share_a_high_word_are_each_told_apart_by_the_low_word() {
        let gate = 0x7f12_3456_789a;
        let code = [
            (0x5555_0000_1000, 0x5555_0000_8fff),
            (0x7f12_0000_1000, 0x7f12_0000_1fff),
            (0x7f12_0010_0000, 0x7f12_001f_ffff),
            (0x7f12_8000_0000, 0x7f12_8000_0fff),
        ];
        let p = full(&[3], gate, &code);
        let (allow, write) = (libc::SECCOMP_RET_ALLOW, libc::SECCOMP_RET_TRAP | DATA_WRITE);
        let w = |ip: u64| run(&p, ip, libc::SYS_write, [3, 0, 0, 0, 0, 0]);
        for &(a, b) in &code {
            assert_eq!(
                (w(a), w(b), w((a + b) / 2)),
                (write, write, write),
                "{a:#x}"
            );
            assert_eq!((w(a - 1), w(b + 1)), (allow, allow), "{a:#x}");
        }
        assert_eq!(w(0x7f13_0000_1000), allow);
        assert_eq!(w(0x7f11_0000_1000), allow);
        assert_eq!(w(gate), allow);
        // Few instructions: two per code range, and per high word a compare and a load (in
        // place of the one jump of a program with no code to tell), and the trap (which such a
        // program never returns).
        let bare = full(&[3], gate, &[]).len();
        assert_eq!(p.len(), bare - 1 + 2 * code.len() + 2 * 2 + 1);
    }

    #[test]
    fn writes_through_lazy_descriptors_trap_and_nothing_else_does() {
        let gate = 0x7f12_3456_789a;
        // The pod's code: a range within one 4 GiB region and one split across two.
        let code = [
            (0x5555_0000_1000, 0x5555_0000_8fff),
            (0x7f12_0000_0000, 0x7f12_ffff_ffff),
            (0x7f13_0000_0000, 0x7f13_0000_0fff),
        ];
        let p = full(&[3, 7], gate, &code);
        // A call from the pod's code (1) and from a program it ran (elsewhere).
        let (own, exec_d) = (0x5555_0000_2000, 0x5555_0001_2000);
        assert_eq!(
            run(&p, 0x7f13_0000_0800, libc::SYS_write, [3, 0, 0, 0, 0, 0]),
            0x3_0001
        );
        assert_eq!(
            run(&p, exec_d, libc::SYS_write, [3, 0, 0, 0, 0, 0]),
            0x7fff_0000
        );
        assert_eq!(
            run(&p, 0x7f14_0000_0000, libc::SYS_write, [3, 0, 0, 0, 0, 0]),
            0x7fff_0000
        );
        let (allow, write) = (libc::SECCOMP_RET_ALLOW, libc::SECCOMP_RET_TRAP | DATA_WRITE);
        let a = |fd: u32| [fd, 0, 0, 0, 0, 0];
        assert_eq!(run(&p, own, libc::SYS_write, a(3)), write);
        assert_eq!(run(&p, own, libc::SYS_pwrite64, a(7)), write);
        assert_eq!(run(&p, own, libc::SYS_write, a(4)), allow);
        assert_eq!(run(&p, gate, libc::SYS_write, a(3)), allow);
        assert_eq!(run(&p, own, libc::SYS_read, a(3)), allow);
        assert_eq!(run(&p, own, libc::SYS_dup2, [7, 9, 0, 0, 0, 0]), write);
        assert_eq!(
            run(&p, own, libc::SYS_copy_file_range, [5, 0, 3, 0, 0, 0]),
            write
        );
        assert_eq!(
            run(&p, own, libc::SYS_copy_file_range, [3, 0, 5, 0, 0, 0]),
            allow
        );
        let dupfd = libc::F_DUPFD_CLOEXEC as u32;
        assert_eq!(run(&p, own, libc::SYS_fcntl, [3, dupfd, 0, 0, 0, 0]), write);
        let setlk = libc::F_SETLK as u32;
        assert_eq!(run(&p, own, libc::SYS_fcntl, [7, setlk, 0, 0, 0, 0]), write);
        let getfl = libc::F_GETFL as u32;
        assert_eq!(run(&p, own, libc::SYS_fcntl, [3, getfl, 0, 0, 0, 0]), allow);
        let (rw, ro) = (
            (libc::PROT_READ | libc::PROT_WRITE) as u32,
            libc::PROT_READ as u32,
        );
        let shared = libc::MAP_SHARED as u32;
        let private = libc::MAP_PRIVATE as u32;
        for (prot, flags, fd, want) in [
            (rw, shared, 3, write),
            (ro, shared, 3, allow),
            (rw, private, 3, allow),
            (rw, shared, 8, allow),
        ] {
            let got = run(&p, own, libc::SYS_mmap, [0, 9, prot, flags, fd, 0]);
            assert_eq!(got, want, "mmap {prot:#x} {flags:#x} fd {fd}");
        }
        assert_eq!(run(&p, own, libc::SYS_execve, a(0)), allow);
        // The kernel caches, per call number, a filter that allows it whatever its arguments:
        // every call not listed must be decided as by the pod's filter alone, by its number
        // alone where that filter does.
        let plain = seccomp::program(false);
        for nr in 0..500 {
            if listed(nr) {
                assert!(walk(&p, own, nr, a(3)).1, "call {nr} not looked at");
            } else {
                assert_eq!(walk(&p, own, nr, a(3)), walk(&plain, own, nr, a(3)), "{nr}");
            }
        }
        let all = full(&(3..3 + MAX_LAZY as u32).collect::<Vec<_>>(), gate, &code);
        assert_eq!(
            run(&all, own, libc::SYS_write, a(3 + MAX_LAZY as u32 - 1)),
            write
        );
    }
}
