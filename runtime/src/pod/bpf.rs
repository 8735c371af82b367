//! The classic BPF the pod's system call filter is written in (`seccomp`, with the lazy copy-up
//! checks folded into its search: `lazy`): instructions with symbolic forward jumps, a binary
//! search over ranges of call numbers, the returns laid out after the instructions.

use crate::sys;

// struct seccomp_data: nr, arch, instruction_pointer (low, high), args[6] (little-endian halves).
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
pub const OFF_IP_LO: u32 = 8;
pub const OFF_IP_HI: u32 = 12;
/// The low half of argument `i`.
pub const fn off_arg(i: u32) -> u32 {
    16 + 8 * i
}

#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(not(target_arch = "x86_64"))]
pub const AUDIT_ARCH: u32 = 0;

pub const LD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
pub const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ) as u16; // BPF_K is 0
pub const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE) as u16;
pub const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT) as u16;
pub const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET) as u16;
/// Jump always, to `jt` (laid out as the offset in `k`).
pub const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
pub const RET: u16 = libc::BPF_RET as u16;

/// Where a jump goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum To {
    /// The next instruction.
    Next,
    /// Past the next n.
    Skip(usize),
    /// An instruction by index.
    At(usize),
    /// Where a label is placed (`Asm::label`, `Asm::place`).
    Label(usize),
    /// A return of this value.
    Ret(u32),
    /// The first instruction after the program, returns included: what is appended to it.
    End,
}

pub const ALLOW: To = To::Ret(libc::SECCOMP_RET_ALLOW);
/// Refused, and noted (`seccomp`).
pub const TRAP: To = To::Ret(libc::SECCOMP_RET_TRAP);
pub const EPERM: To = To::Ret(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
pub const ENOSYS: To = To::Ret(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);

/// At most this many call numbers are told apart by a `JEQ` each at one leaf of `search`.
pub const EXCEPTIONS: usize = 3;

/// A program being written: (code, k, jump if true, jump if false), and where labels are.
#[derive(Default)]
pub struct Asm {
    ops: Vec<(u16, u32, To, To)>,
    /// Per label: the instruction it is placed at (`usize::MAX`: not yet).
    labels: Vec<usize>,
}

impl Asm {
    pub fn with_capacity(n: usize) -> Asm {
        Asm {
            ops: Vec::with_capacity(n),
            labels: Vec::with_capacity(16),
        }
    }

    pub fn op(&mut self, code: u16, k: u32, jt: To, jf: To) -> usize {
        self.ops.push((code, k, jt, jf));
        self.ops.len() - 1
    }

    /// A jump always.
    pub fn jump(&mut self, to: To) {
        self.op(JA, 0, to, to);
    }

    /// A new label, to be placed once (`place`).
    pub fn label(&mut self) -> To {
        self.labels.push(usize::MAX);
        To::Label(self.labels.len() - 1)
    }

    /// Place `label` at the next instruction.
    pub fn place(&mut self, label: To) {
        if let To::Label(l) = label {
            self.labels[l] = self.ops.len();
        }
    }

    /// A balanced binary search over `ranges` (sorted, adjacent: each starts where the one
    /// before ends, the first at 0), one `JGE` per boundary, every leaf a jump straight to
    /// what its range gets: about log2(ranges) comparisons for any call, and as many
    /// instructions as boundaries. The kernel runs the filter once per system call number when
    /// installing it (to find those it always allows), and compiles every instruction: both
    /// costs of a pod's way in. Returns where the search starts.
    fn tree(&mut self, ranges: &[(u32, To)]) -> To {
        if let [(_, to)] = ranges {
            return *to;
        }
        let mid = ranges.len() / 2;
        let at = self.op(JGE, ranges[mid].0, To::Next, To::Next);
        let below = self.tree(&ranges[..mid]);
        let above = self.tree(&ranges[mid..]);
        self.ops[at].2 = above;
        self.ops[at].3 = below;
        To::At(at)
    }

    /// `tree` over `ranges` (see there), but where one number gets other than its allowed
    /// neighbours, it is an exception of theirs instead of two boundaries of a range of its
    /// own: a `JEQ` at the leaf, up to `EXCEPTIONS` per leaf. The kernel compiles every
    /// instruction as it takes the filter, and that costs more than a comparison or two more on
    /// the way to some numbers' decisions.
    pub fn search(&mut self, ranges: &[(u32, To)]) {
        let mut blocks: Vec<(u32, To)> = Vec::with_capacity(ranges.len());
        let mut exceptions: Vec<(To, Vec<(u32, To)>)> = Vec::new();
        let mut i = 0;
        while i < ranges.len() {
            let (from, to) = ranges[i];
            let single = ranges
                .get(i + 1)
                .is_some_and(|n| n.0 == from + 1 && n.1 == ALLOW);
            let allowed_before = match blocks.last() {
                Some(&(_, ALLOW)) => true,
                Some(&(_, label)) => exceptions
                    .last()
                    .is_some_and(|(l, e)| *l == label && e.len() < EXCEPTIONS),
                None => false,
            };
            if single && allowed_before {
                if blocks.last().is_some_and(|b| b.1 == ALLOW) {
                    let label = self.label();
                    blocks.last_mut().expect("checked").1 = label;
                    exceptions.push((label, Vec::new()));
                }
                exceptions
                    .last_mut()
                    .expect("made above")
                    .1
                    .push((from, to));
                i += 2; // the allowed range after it is the same leaf's
                continue;
            }
            blocks.push((from, to));
            i += 1;
        }
        let root = self.tree(&blocks);
        if root != To::Next && !matches!(root, To::At(_)) {
            self.jump(root);
        }
        for (label, cases) in exceptions {
            self.place(label);
            self.any_of(cases.into_iter(), ALLOW);
        }
    }

    /// Compare the accumulator with each case's value in turn: equal, to its target; to none,
    /// to `miss`.
    pub fn any_of(&mut self, cases: impl ExactSizeIterator<Item = (u32, To)>, miss: To) {
        let n = cases.len();
        for (i, (k, hit)) in cases.enumerate() {
            self.op(JEQ, k, hit, if i + 1 == n { miss } else { To::Next });
        }
        if n == 0 {
            self.jump(miss);
        }
    }

    /// The program: every jump resolved to a forward offset, then the returns jumped to.
    pub fn finish(self) -> Vec<sys::Insn> {
        let mut prog = Vec::with_capacity(self.ops.len() + 4);
        self.finish_into(&mut prog);
        prog
    }

    /// `finish`, appended to `prog` (its jumps are relative: it runs there as well as alone).
    pub fn finish_into(self, prog: &mut Vec<sys::Insn>) {
        let n = self.ops.len();
        let mut rets: Vec<u32> = Vec::with_capacity(4);
        for &(_, _, jt, jf) in &self.ops {
            for to in [jt, jf] {
                if let To::Ret(r) = to {
                    if !rets.contains(&r) {
                        rets.push(r);
                    }
                }
            }
        }
        let end = n + rets.len();
        for (i, &(code, k, jt, jf)) in self.ops.iter().enumerate() {
            let offset = |to: To| -> usize {
                let target = match to {
                    To::Next => i + 1,
                    To::Skip(s) => i + 1 + s,
                    To::At(t) => t,
                    To::Label(l) => self.labels[l],
                    To::Ret(r) => n + rets.iter().position(|&q| q == r).unwrap_or(0),
                    To::End => end,
                };
                assert!(
                    target > i && target <= end,
                    "a forward jump within the program"
                );
                target - i - 1
            };
            let short = |to: To| u8::try_from(offset(to)).expect("8-bit jumps");
            let insn = match code {
                JA => (0, 0, offset(jt) as u32),
                c if c & 0x07 == libc::BPF_JMP as u16 => (short(jt), short(jf), k),
                _ => (0, 0, k),
            };
            prog.push(sys::Insn {
                code,
                jt: insn.0,
                jf: insn.1,
                k: insn.2,
            });
        }
        prog.extend(rets.into_iter().map(|k| sys::Insn {
            code: RET,
            jt: 0,
            jf: 0,
            k,
        }));
    }
}

/// Run a program on one call, as the kernel would: (the return, how many instructions ran,
/// whether it looked past the call's number and architecture, as the kernel's per-number cache
/// of calls always allowed cannot).
#[cfg(test)]
pub fn walk(p: &[sys::Insn], arch: u32, nr: u32, ip: u64, args: [u32; 6]) -> (u32, usize, bool) {
    let (mut pc, mut acc, mut steps, mut looked) = (0usize, 0u32, 0, false);
    loop {
        steps += 1;
        let i = p[pc];
        match i.code {
            LD => {
                looked |= i.k >= OFF_IP_LO;
                acc = match i.k {
                    OFF_NR => nr,
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
            RET => return (i.k, steps, looked),
            c => panic!("opcode {c:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_reach_labels_returns_and_what_is_appended() {
        let mut a = Asm::default();
        let there = a.label();
        a.op(LD, OFF_NR, To::Next, To::Next);
        a.op(JEQ, 1, there, To::Next);
        a.op(JEQ, 2, ALLOW, EPERM);
        a.place(there);
        a.jump(To::End);
        let mut p = a.finish();
        assert_eq!(p.len(), 4 + 2);
        p.push(sys::Insn {
            code: RET,
            jt: 0,
            jf: 0,
            k: 7,
        });
        let run = |nr| walk(&p, 0, nr, 0, [0; 6]).0;
        assert_eq!(run(1), 7);
        assert_eq!(run(2), libc::SECCOMP_RET_ALLOW);
        assert_eq!(run(3), libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    }
}
