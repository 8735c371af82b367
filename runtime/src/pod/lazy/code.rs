//! Where the pod's own code is (its executable mappings at the fork), for the lazy copy-up's
//! traps (`filter::tail`): calls from elsewhere (a program the test runs) are not trapped.
//!
//! The host notes it before each pod's fork (`note`), from the dynamic linker's list of loaded
//! objects, and only when the linker has loaded or unloaded an object since (its counts): the
//! pod reads the note from its copy of the host's memory, where asking the kernel
//! (`PROCMAP_QUERY` per mapping) took a freshly forked pod ~30 µs. A pod without a whole note (a
//! host whose threads noted at once, more segments than the note holds, a C library without the
//! counts) asks the kernel as before; that answer also counts a JIT's anonymous code, which the
//! linker's list does not (such code makes its system calls through the C library's, which is
//! in the list).

use crate::sys;
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};

/// At most this many address ranges of the pod's own code are told apart in the filter.
const MAX_RANGES: usize = 12;
/// At most this many after splitting at 4 GiB boundaries (a range rarely crosses one).
const MAX_SPLIT: usize = 24;
/// At most this many executable segments are read from the linker (2 KiB of the host's stack).
const MAX_SEGMENTS: usize = 128;

/// The note: a sequence lock (odd while a host thread writes it; a fork in between leaves the
/// pod an odd count, and the pod asks the kernel), the linker's counts it was taken at, and the
/// ranges (none: not known).
struct Note {
    seq: AtomicU64,
    adds: AtomicU64,
    subs: AtomicU64,
    n: AtomicUsize,
    ranges: [[AtomicU64; 2]; MAX_SPLIT],
}

static NOTE: Note = Note {
    seq: AtomicU64::new(0),
    adds: AtomicU64::new(0),
    subs: AtomicU64::new(0),
    n: AtomicUsize::new(0),
    ranges: [const { [AtomicU64::new(0), AtomicU64::new(0)] }; MAX_SPLIT],
};

/// In the host, right before a pod's fork: note the loaded code anew if the linker loaded or
/// unloaded an object since the last note. No allocation, no system call (a lock of the
/// linker's, held by another thread only while it links an object in or out).
pub fn note() {
    let Some(key) = sys::loaded_objects_generation() else {
        return;
    };
    let seq = NOTE.seq.load(Ordering::Acquire);
    let same = (
        NOTE.adds.load(Ordering::Relaxed),
        NOTE.subs.load(Ordering::Relaxed),
    ) == key;
    if seq & 1 == 1 || (seq != 0 && same) {
        return; // another thread is noting, or nothing changed
    }
    if NOTE
        .seq
        .compare_exchange(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    let mut segments = [(0u64, 0u64); MAX_SEGMENTS];
    let mut out = [(0u64, 0u64); MAX_SPLIT];
    let n = sys::loaded_code(&mut segments)
        .and_then(|n| ranges(&mut segments[..n], &mut out))
        .unwrap_or(0);
    for (slot, &(a, b)) in NOTE.ranges.iter().zip(&out[..n]) {
        slot[0].store(a, Ordering::Relaxed);
        slot[1].store(b, Ordering::Relaxed);
    }
    NOTE.n.store(n, Ordering::Relaxed);
    NOTE.adds.store(key.0, Ordering::Relaxed);
    NOTE.subs.store(key.1, Ordering::Relaxed);
    NOTE.seq.store(seq + 2, Ordering::Release);
}

/// The note, whole, as the host left it at the fork.
fn noted() -> Option<Vec<(u64, u64)>> {
    let seq = NOTE.seq.load(Ordering::Acquire);
    let n = NOTE.n.load(Ordering::Relaxed);
    if seq == 0 || seq & 1 == 1 || n == 0 || n > MAX_SPLIT {
        return None;
    }
    let r = NOTE.ranges[..n]
        .iter()
        .map(|s| (s[0].load(Ordering::Relaxed), s[1].load(Ordering::Relaxed)))
        .collect();
    fence(Ordering::Acquire);
    (NOTE.seq.load(Ordering::Relaxed) == seq).then_some(r)
}

/// The pod's executable mappings now (the host's program, its libraries, the vDSO), merged into
/// at most `MAX_RANGES` ranges, each within one 4 GiB-aligned region: (start, last byte). The
/// host's note where whole; else asked of the kernel mapping by mapping (`PROCMAP_QUERY`), else
/// read from the text of `/proc/self/maps` (slower: the kernel writes a line per mapping, a path
/// in each). The same in the host's child that plans the pod's descriptors (`fds::scan`) as in
/// the test: no code is mapped in between.
pub fn own_code() -> Vec<(u64, u64)> {
    noted().unwrap_or_else(asked)
}

/// The executable mappings as the kernel has them.
fn asked() -> Vec<(u64, u64)> {
    let mut r = sys::executable_mappings().unwrap_or_else(executable_mappings_as_text);
    let mut out = [(0u64, 0u64); MAX_SPLIT];
    let n = ranges(&mut r, &mut out).unwrap_or(0);
    out[..n].to_vec()
}

/// `code` (start, end) merged into at most `MAX_RANGES` ranges, then split at 4 GiB boundaries
/// (where the instruction pointer's high word changes), as (start, last byte) into `out`; how
/// many. `None` if `out` cannot hold them. Sorts and rewrites `code`; allocates nothing.
fn ranges(code: &mut [(u64, u64)], out: &mut [(u64, u64)]) -> Option<usize> {
    code.sort_unstable();
    // Overlapping or touching ranges are one; empty ones none.
    let mut n = 0;
    for i in 0..code.len() {
        let (a, b) = code[i];
        if b <= a {
            continue;
        }
        if n > 0 && a <= code[n - 1].1 {
            code[n - 1].1 = code[n - 1].1.max(b);
        } else {
            code[n] = (a, b);
            n += 1;
        }
    }
    // Merge the closest neighbours until few enough (the gaps between them join the ranges).
    while n > MAX_RANGES {
        let i = (1..n)
            .min_by_key(|&i| code[i].0 - code[i - 1].1)
            .unwrap_or(1);
        code[i - 1].1 = code[i].1;
        code.copy_within(i + 1..n, i);
        n -= 1;
    }
    let mut m = 0;
    for &(mut a, end) in &code[..n] {
        let b = end - 1;
        loop {
            let last = if a >> 32 == b >> 32 {
                b
            } else {
                a | 0xffff_ffff
            };
            *out.get_mut(m)? = (a, last);
            m += 1;
            if last == b {
                break;
            }
            a = last + 1;
        }
    }
    Some(m)
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

    /// Whether `addr` is in one of `ranges` (start, last byte).
    fn within(ranges: &[(u64, u64)], addr: u64) -> bool {
        ranges.iter().any(|&(a, b)| a <= addr && addr <= b)
    }

    #[test]
    fn the_linker_s_code_is_the_kernel_s_and_holds_the_callers_of_write() {
        let mut segments = [(0u64, 0u64); MAX_SEGMENTS];
        let n = sys::loaded_code(&mut segments).expect("fewer segments than the note holds");
        assert!(n >= 2, "the program and the C library at least: {n}");
        // Every segment the linker names is executable as the kernel has it.
        let kernel = executable_mappings_as_text();
        for &(a, b) in &segments[..n] {
            assert!(
                kernel.iter().any(|&(s, e)| s <= a && b <= e),
                "{a:#x}-{b:#x} not executable in {kernel:x?}"
            );
        }
        // The note holds this program's code and the C library's, which writes.
        note();
        let noted = noted().expect("a whole note");
        let here = the_linker_s_code_is_the_kernel_s_and_holds_the_callers_of_write as *const ();
        assert!(within(&noted, here as u64));
        assert!(within(&noted, libc::write as *const () as u64));
        assert!(within(&noted, libc::syscall as *const () as u64));
        // And what the kernel is asked gives the same ranges where no code is anonymous.
        let asked = asked();
        for &(a, b) in &noted {
            assert!(
                within(&asked, a) && within(&asked, b),
                "{a:#x}-{b:#x} in {asked:x?}"
            );
        }
    }

    #[test]
    fn ranges_merge_the_closest_and_split_at_4_gib() {
        let mut out = [(0u64, 0u64); MAX_SPLIT];
        let mut code = vec![
            (0x3000, 0x4000),
            (0x1000, 0x2000),
            (0x1800, 0x2800),
            (0x9000, 0x9000),
        ];
        let n = ranges(&mut code, &mut out).unwrap();
        assert_eq!(&out[..n], &[(0x1000, 0x27ff), (0x3000, 0x3fff)]);
        let mut code = vec![(0xffff_f000, 0x1_0000_1000)];
        let n = ranges(&mut code, &mut out).unwrap();
        assert_eq!(
            &out[..n],
            &[(0xffff_f000, 0xffff_ffff), (0x1_0000_0000, 0x1_0000_0fff)]
        );
        // Twenty ranges 0x10000 apart but for one pair 0x100 apart: that pair is merged first.
        let mut code: Vec<(u64, u64)> = (0..20u64).map(|i| (i << 16, (i << 16) + 0x1000)).collect();
        code[1] = (0x1100, 0x1200);
        let n = ranges(&mut code, &mut out).unwrap();
        assert_eq!(n, MAX_RANGES);
        assert_eq!(out[0], (0, 0x11ff));
        let mut small = [(0u64, 0u64); 1];
        assert_eq!(
            ranges(&mut [(0, 0x1000), (0x10000, 0x11000)], &mut small),
            None
        );
    }
}
