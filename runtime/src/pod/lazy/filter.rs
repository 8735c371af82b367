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
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE) as u16;
const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT) as u16;
const RET: u16 = libc::BPF_RET as u16;
/// Jump always, to `jt` (laid out as the offset in `k`).
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

/// Jump targets: the next instruction, past the next n, a labelled block, or a return.
#[derive(Clone, Copy, PartialEq)]
enum To {
    Next,
    Skip(usize),
    Block(usize),
    Allow,
    TrapWrite,
}

/// A binary search of the sorted call numbers `nrs` (in the accumulator): a listed one goes to
/// block 0, any other is allowed. Few steps for any number: when the filter is installed the
/// kernel runs it for every call number to find those it allows whatever their arguments, and
/// each step of that costs (15 comparisons in a row: ~20 us).
fn search(nrs: &[u32]) -> Vec<(u16, u32, To, To)> {
    if nrs.len() <= 3 {
        return nrs
            .iter()
            .enumerate()
            .map(|(i, &nr)| {
                let miss = if i + 1 == nrs.len() {
                    To::Allow
                } else {
                    To::Next
                };
                (JEQ, nr, To::Block(0), miss)
            })
            .collect();
    }
    let (low, high) = nrs.split_at(nrs.len() / 2);
    let low = search(low);
    let mut out = vec![(JGE, high[0], To::Skip(low.len()), To::Next)];
    out.extend(low);
    out.extend(search(high));
    out
}

/// The filter (its last instruction: allow): not this architecture, a call not listed, a call through the gate, or a call
/// from outside `code` (the pod's own code at install time: a program the test execs runs
/// elsewhere, and keeps the filter but not the handler): allowed. Then by number: the writing
/// calls look at their descriptor argument, `fcntl` at its command first, `mmap` at its flags
/// and protection first.
pub(super) fn program(fds: &[u32], gate: u64, code: &[(u64, u64)]) -> Vec<sys::Insn> {
    // Blocks, laid out in this order (jumps go forward only): 0 the gate and the code ranges,
    // 1 by number, 2 fcntl, 3 mmap, then 4, 5, 6 check descriptor argument 0, 2, 4. A call not
    // listed is allowed before anything else is looked at: the kernel's per-number cache then
    // allows it without running the filter.
    let fd_block = |arg: u32| To::Block(4 + arg as usize / 2);
    let listed: Vec<u32> = WRITES
        .iter()
        .map(|&(nr, _)| nr)
        .chain([libc::SYS_fcntl, libc::SYS_mmap])
        .map(|nr| nr as u32)
        .collect();
    let mut head: Vec<(u16, u32, To, To)> = vec![
        (LD, OFF_ARCH, To::Next, To::Next),
        (JEQ, AUDIT_ARCH, To::Next, To::Allow),
        (LD, OFF_NR, To::Next, To::Next),
    ];
    let mut listed = listed;
    listed.sort_unstable();
    head.extend(search(&listed));
    let mut gate_check = vec![
        (LD, OFF_IP_LO, To::Next, To::Next),
        (JEQ, gate as u32, To::Next, To::Skip(2)),
        (LD, OFF_IP_HI, To::Next, To::Next),
        (JEQ, (gate >> 32) as u32, To::Allow, To::Next),
    ];
    // In one of the code ranges: on to the checks by number; in none: allowed.
    for &(a, b) in code {
        gate_check.extend([
            (LD, OFF_IP_HI, To::Next, To::Next),
            (JEQ, (a >> 32) as u32, To::Next, To::Skip(3)),
            (LD, OFF_IP_LO, To::Next, To::Next),
            (JGE, a as u32, To::Next, To::Skip(1)),
            (JGT, b as u32, To::Next, To::Block(1)),
        ]);
    }
    gate_check.push((JA, 0, To::Allow, To::Allow));
    let mut by_nr = vec![(LD, OFF_NR, To::Next, To::Next)];
    for &(nr, arg) in WRITES {
        by_nr.push((JEQ, nr as u32, fd_block(arg), To::Next));
    }
    by_nr.push((JEQ, libc::SYS_fcntl as u32, To::Block(2), To::Next));
    by_nr.push((JEQ, libc::SYS_mmap as u32, To::Block(3), To::Allow));
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
        b.push((JA, 0, To::Allow, To::Allow));
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
    let (trap_write, allow) = (n, n + 1);
    let mut prog: Vec<sys::Insn> = head
        .iter()
        .enumerate()
        .map(|(i, &(code, k, jt, jf))| {
            let off = |to: To| -> u8 {
                let target = match to {
                    To::Next => i + 1,
                    To::Skip(n) => i + 1 + n,
                    To::Block(b) => starts[b],
                    To::Allow => allow,
                    To::TrapWrite => trap_write,
                };
                u8::try_from(target - i - 1).expect("a filter short enough for 8-bit jumps")
            };
            let jump = code & 0x07 == libc::BPF_JMP as u16 && code != JA;
            sys::Insn {
                code,
                jt: if jump { off(jt) } else { 0 },
                jf: if jump { off(jf) } else { 0 },
                k: if code == JA { off(jt) as u32 } else { k },
            }
        })
        .collect();
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

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::MAX_LAZY;
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
