//! The lazy copy-up traps as a classic BPF program (`program`): which calls write through a
//! descriptor, where the pod's own code is, and the jumps laid out for the kernel.

use crate::sys;

/// The data of a trap on a write through a lazy descriptor (`SECCOMP_RET_DATA`).
pub(super) const DATA_WRITE: u32 = 1;

// struct seccomp_data: nr, arch, instruction_pointer (low, high), args[6].
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_IP_LO: u32 = 8;
const OFF_IP_HI: u32 = 12;
const fn off_arg(i: u32) -> u32 {
    16 + 8 * i
}

#[cfg(target_arch = "x86_64")]
pub(super) const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(not(target_arch = "x86_64"))]
pub(super) const AUDIT_ARCH: u32 = 0;

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
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE) as u16;
const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT) as u16;
const RET: u16 = libc::BPF_RET as u16;
/// Jump always, to `jt` (laid out as the offset in `k`).
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

/// Jump targets: the next instruction, past the next n, a place laid out further on, or a
/// return.
#[derive(Clone, Copy, PartialEq)]
enum To {
    Next,
    Skip(usize),
    Place(Place),
    Allow,
    TrapWrite,
}

/// The places jumped to from afar, laid out in this order (jumps go forward only).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Fcntl,
    Mmap,
    Arg2,
    Arg0,
    /// The lazy descriptor numbers, compared with the accumulator.
    Fds,
    /// Who makes a call that writes through a lazy descriptor: the gate, the pod's code.
    Caller,
    /// The code ranges whose addresses share one high word (by its index among them).
    High(usize),
}

/// A program being laid out: instructions with symbolic jumps, and where the places begin.
struct Asm {
    ops: Vec<(u16, u32, To, To)>,
    places: Vec<(Place, usize)>,
}

impl Asm {
    fn op(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.ops.push((code, k, jt, jf));
    }

    fn place(&mut self, p: Place) {
        self.places.push((p, self.ops.len()));
    }

    /// Compare the accumulator with each case's value in turn: equal, to its target; to none,
    /// allowed.
    fn any_of(&mut self, cases: impl ExactSizeIterator<Item = (u32, To)>) {
        let n = cases.len();
        for (i, (k, hit)) in cases.enumerate() {
            let miss = if i + 1 == n { To::Allow } else { To::Next };
            self.op(JEQ, k, hit, miss);
        }
        if n == 0 {
            self.op(JA, 0, To::Allow, To::Allow);
        }
    }

    /// A binary search of the sorted (number, place) `calls` (the number in the accumulator):
    /// a listed one goes to its place, any other is allowed. Few steps for any number: when
    /// the filter is installed the kernel runs it for every call number to find those it allows
    /// whatever their arguments, and each step of that costs (15 comparisons in a row: ~20 us).
    fn search(&mut self, calls: &[(u32, Place)]) {
        if calls.len() <= 3 {
            return self.any_of(calls.iter().map(|&(nr, p)| (nr, To::Place(p))));
        }
        let (low, high) = calls.split_at(calls.len() / 2);
        let at = self.ops.len();
        self.op(JGE, high[0].0, To::Next, To::Next);
        self.search(low);
        self.ops[at].2 = To::Skip(self.ops.len() - at - 1);
        self.search(high);
    }

    /// The instructions, jumps resolved, then the returns (trap, and allow last).
    fn finish(self) -> Vec<sys::Insn> {
        let n = self.ops.len();
        let (trap_write, allow) = (n, n + 1);
        let place = |p: Place| {
            self.places
                .iter()
                .find(|&&(q, _)| q == p)
                .map(|&(_, at)| at)
                .expect("every place jumped to is laid out")
        };
        let mut prog: Vec<sys::Insn> = Vec::with_capacity(n + 2);
        for (i, &(code, k, jt, jf)) in self.ops.iter().enumerate() {
            let off = |to: To| -> u8 {
                let target = match to {
                    To::Next => i + 1,
                    To::Skip(n) => i + 1 + n,
                    To::Place(p) => place(p),
                    To::Allow => allow,
                    To::TrapWrite => trap_write,
                };
                u8::try_from(target - i - 1).expect("a filter short enough for 8-bit jumps")
            };
            let jump = code & 0x07 == libc::BPF_JMP as u16 && code != JA;
            prog.push(sys::Insn {
                code,
                jt: if jump { off(jt) } else { 0 },
                jf: if jump { off(jf) } else { 0 },
                k: if code == JA { off(jt) as u32 } else { k },
            });
        }
        // `allow` last: `ahead_of` puts the pod's own filter in its place.
        for ret in [libc::SECCOMP_RET_TRAP | DATA_WRITE, libc::SECCOMP_RET_ALLOW] {
            prog.push(sys::Insn {
                code: RET,
                jt: 0,
                jf: 0,
                k: ret,
            });
        }
        prog
    }
}

/// The filter (its last instruction: allow). Not this architecture, or a call not listed:
/// allowed by its number alone (the kernel's per-number cache then allows it without running
/// the filter). A listed call looks at its descriptor argument (`fcntl` at its command first,
/// `mmap` at its flags and protection first): not a lazy one, allowed. Only then at where the
/// call comes from: the gate, or outside `code` (the pod's own code at install time, sorted, each
/// range within one 4 GiB-aligned region: a program the test execs runs elsewhere, and keeps the
/// filter but not the handler), allowed; else trapped. Few instructions (each one costs the
/// kernel as it takes the filter): ranges that share the high word of their addresses are told
/// apart by their low words alone.
pub(super) fn program(fds: &[u32], gate: u64, code: &[(u64, u64)]) -> Vec<sys::Insn> {
    // Room for all of it at once (the pod allocates as it starts: each new page it touches
    // is copied from the host's).
    let mut a = Asm {
        ops: Vec::with_capacity(64 + fds.len() + 3 * code.len()),
        places: Vec::with_capacity(8 + code.len()),
    };
    a.op(LD, OFF_ARCH, To::Next, To::Next);
    a.op(JEQ, AUDIT_ARCH, To::Next, To::Allow);
    a.op(LD, OFF_NR, To::Next, To::Next);
    let fd_place = |arg: u32| if arg == 0 { Place::Arg0 } else { Place::Arg2 };
    let mut calls: Vec<(u32, Place)> = WRITES
        .iter()
        .map(|&(nr, arg)| (nr as u32, fd_place(arg)))
        .chain([
            (libc::SYS_fcntl as u32, Place::Fcntl),
            (libc::SYS_mmap as u32, Place::Mmap),
        ])
        .collect();
    calls.sort_unstable_by_key(|c| c.0);
    a.search(&calls);
    a.place(Place::Fcntl);
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
    a.any_of(commands.iter().map(|&c| (c, To::Place(Place::Arg0))));
    a.place(Place::Mmap);
    a.op(LD, off_arg(3), To::Next, To::Next);
    a.op(JSET, libc::MAP_SHARED as u32, To::Next, To::Allow);
    a.op(LD, off_arg(2), To::Next, To::Next);
    a.op(JSET, libc::PROT_WRITE as u32, To::Next, To::Allow);
    a.op(LD, off_arg(4), To::Next, To::Next);
    a.op(JA, 0, To::Place(Place::Fds), To::Place(Place::Fds));
    a.place(Place::Arg2);
    a.op(LD, off_arg(2), To::Next, To::Next);
    a.op(JA, 0, To::Place(Place::Fds), To::Place(Place::Fds));
    a.place(Place::Arg0);
    a.op(LD, off_arg(0), To::Next, To::Next);
    a.place(Place::Fds);
    a.any_of(fds.iter().map(|&fd| (fd, To::Place(Place::Caller))));
    a.place(Place::Caller);
    a.op(LD, OFF_IP_LO, To::Next, To::Next);
    a.op(JEQ, gate as u32, To::Next, To::Skip(2));
    a.op(LD, OFF_IP_HI, To::Next, To::Next);
    a.op(JEQ, (gate >> 32) as u32, To::Allow, To::Next);
    a.op(LD, OFF_IP_HI, To::Next, To::Next);
    let mut highs: Vec<u32> = code.iter().map(|&(s, _)| (s >> 32) as u32).collect();
    highs.dedup();
    a.any_of((highs.iter().enumerate()).map(|(j, &h)| (h, To::Place(Place::High(j)))));
    for (j, &high) in highs.iter().enumerate() {
        a.place(Place::High(j));
        a.op(LD, OFF_IP_LO, To::Next, To::Next);
        let ranges: Vec<(u32, u32)> = code
            .iter()
            .filter(|&&(s, _)| (s >> 32) as u32 == high)
            .map(|&(s, e)| (s as u32, e as u32))
            .collect();
        for (i, &(s, e)) in ranges.iter().enumerate() {
            // Below this range: the next one (or allowed); above it: the next one; in it: trap.
            let last = i + 1 == ranges.len();
            let below = if last { To::Allow } else { To::Skip(1) };
            let above = if last { To::Allow } else { To::Next };
            a.op(JGE, s, To::Next, below);
            a.op(JGT, e, above, To::TrapWrite);
        }
    }
    a.finish()
}

#[cfg(all(test, target_arch = "x86_64"))]
pub(super) mod tests {
    use super::super::MAX_LAZY;
    use super::*;

    /// Run the program on one call, as the kernel would.
    fn run(p: &[sys::Insn], ip: u64, nr: libc::c_long, args: [u32; 6]) -> u32 {
        walk(p, ip, nr, args).0
    }

    /// The return, and whether the walk looked past the call's number and architecture.
    fn walk(p: &[sys::Insn], ip: u64, nr: libc::c_long, args: [u32; 6]) -> (u32, bool) {
        walk_arch(p, AUDIT_ARCH, ip, nr, args)
    }

    /// `walk`, for a call of architecture `arch`.
    pub(in super::super) fn walk_arch(
        p: &[sys::Insn],
        arch: u32,
        ip: u64,
        nr: libc::c_long,
        args: [u32; 6],
    ) -> (u32, bool) {
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
                        OFF_ARCH => arch,
                        OFF_IP_LO => ip as u32,
                        OFF_IP_HI => (ip >> 32) as u32,
                        k => args[((k - 16) / 8) as usize],
                    };
                    pc += 1;
                }
                JA => pc += 1 + i.k as usize,
                JEQ | JSET | JGE | JGT => {
                    let yes = match i.code {
                        JEQ => acc == i.k,
                        JGE => acc >= i.k,
                        JGT => acc > i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += 1 + if yes { i.jt } else { i.jf } as usize;
                }
                RET => return (i.k, looked),
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn what_the_lazy_checks_let_through_goes_on_to_the_pods_filter() {
        let (gate, own) = (0x7f12_3456_789a, 0x5555_0000_2000);
        let mut p = program(&[3], gate, &[(0x5555_0000_1000, 0x5555_0000_8fff)]);
        let errno = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        // `ahead_of`, with a pod filter that refuses everything.
        p.pop();
        p.push(sys::Insn {
            code: RET,
            jt: 0,
            jf: 0,
            k: errno,
        });
        let trap = libc::SECCOMP_RET_TRAP | DATA_WRITE;
        assert_eq!(run(&p, own, libc::SYS_write, [3, 0, 0, 0, 0, 0]), trap);
        assert_eq!(run(&p, gate, libc::SYS_write, [3, 0, 0, 0, 0, 0]), errno);
        assert_eq!(run(&p, own, libc::SYS_write, [4, 0, 0, 0, 0, 0]), errno);
        assert_eq!(run(&p, own, libc::SYS_getpid, [0; 6]), errno);
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
        let p = program(&[3], gate, &code);
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
        // place of the one jump of a program with no code to tell).
        let bare = program(&[3], gate, &[]).len();
        assert_eq!(p.len(), bare - 1 + 2 * code.len() + 2 * 2);
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
        let p = program(&[3, 7], gate, &code);
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
        // every call not listed must be decided by its number alone.
        for nr in 0..500 {
            let listed = WRITES.iter().any(|&(n, _)| n == nr)
                || [libc::SYS_fcntl, libc::SYS_mmap].contains(&nr);
            if listed {
                assert!(walk(&p, own, nr, a(3)).1, "call {nr} not looked at");
            } else {
                assert_eq!(walk(&p, own, nr, a(3)), (allow, false), "call {nr}");
            }
        }
        let full = program(&(3..3 + MAX_LAZY as u32).collect::<Vec<_>>(), gate, &code);
        assert_eq!(
            run(&full, own, libc::SYS_write, a(3 + MAX_LAZY as u32 - 1)),
            write
        );
    }
}
