//! Shared memory. MAP_SHARED mappings (anonymous, file-backed, /dev/shm, SysV segments) stay
//! shared after fork: a test writing them would write the host's memory. Each is replaced by a
//! private anonymous mapping holding its current contents, at the same address and protection.
//! The contents are read through /proc/self/mem, so pages past the end of a file read as zeros
//! instead of raising SIGBUS. The host's flock/fcntl locks are untouched: they belong to its
//! open file descriptions, which the pod no longer holds.

use super::{SetupError, Step};
use crate::sys;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Returns the size of the address space (the sum of all mappings), which the limits use.
/// `own_page`: the runtime's counters page, which the pod unmaps itself (see
/// `Runtime::become_pod`) and so is not copied.
pub fn privatize(own_page: usize) -> Result<u64, SetupError> {
    let mut shared = Vec::new();
    if sys::shared_mappings(&mut shared).step("query the shared mappings")? {
        let total = sys::address_space_size().unwrap_or(0);
        shared.retain(|m| m.0 != own_page);
        zero_own(&mut shared)?;
        return remap(&shared).map(|()| total);
    }
    shared.clear();
    let maps = std::fs::read_to_string("/proc/self/maps").step("read /proc/self/maps")?;
    let mut total: u64 = 0;
    for line in maps.lines() {
        let mut it = line.split_whitespace();
        let (Some(range), Some(perms)) = (it.next(), it.next()) else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        total += (b - a) as u64;
        if perms.as_bytes().get(3) != Some(&b's') {
            continue;
        }
        let p = perms.as_bytes();
        let mut prot = 0;
        if p[0] == b'r' {
            prot |= libc::PROT_READ;
        }
        if p[1] == b'w' {
            prot |= libc::PROT_WRITE;
        }
        if p[2] == b'x' {
            prot |= libc::PROT_EXEC;
        }
        shared.push((a, b - a, prot));
    }
    shared.retain(|m| m.0 != own_page);
    zero_own(&mut shared)?;
    remap(&shared).map(|()| total)
}

/// A shared page of the runtime's own that pods zero rather than copy (`zero_own`): the warm
/// stock's slots, said by `warm` when it maps them (0: none).
static ZEROED_IN_PODS: AtomicUsize = AtomicUsize::new(0);

/// The shared page at `addr` (the warm stock's slots) holds atomics only, all zero valid, and
/// is the host's: a pod replaces it with a private zero page.
pub fn zero_in_pods(addr: usize) {
    ZEROED_IN_PODS.store(addr, Ordering::Release);
}

/// The runtime's pages a pod has no use for once isolated, made private and zero in place (one
/// `mmap` each) instead of copied through /proc/self/mem (~35 us of a warm pod's way in: the
/// descriptor, a temporary copy, the remap): the one on which pods tell the host it is writing
/// the files they clone (`clones::writing_seen_page`: read by the host only, written by the pod
/// only before this step), and the warm stock's slots (`zero_in_pods`: the host's, which a
/// waiting copy takes its blank from before this step).
fn zero_own(shared: &mut Vec<(usize, usize, libc::c_int)>) -> Result<(), SetupError> {
    let stock = Some(ZEROED_IN_PODS.load(Ordering::Acquire)).filter(|a| *a != 0);
    for page in [super::clones::writing_seen_page(), stock]
        .into_iter()
        .flatten()
    {
        let Some(i) = shared.iter().position(|m| m.0 == page) else {
            continue;
        };
        let (addr, len, _) = shared.swap_remove(i);
        // SAFETY: a whole mapping of the runtime's own that holds atomics only (all zero is a
        // valid value: "never seen", empty slots), in the single-threaded test before its
        // code runs, which never reads it (a pod's stock is not the host's, `disown_stock`).
        unsafe { sys::zero_private(addr, len) }.step("make the runtime's shared page private")?;
    }
    Ok(())
}

fn remap(shared: &[(usize, usize, libc::c_int)]) -> Result<(), SetupError> {
    if shared.is_empty() {
        return Ok(());
    }
    let mem = sys::open(c"/proc/self/mem", libc::O_RDONLY | libc::O_CLOEXEC, 0)
        .step("open /proc/self/mem")?;
    let result = shared
        .iter()
        // SAFETY: each range is a whole MAP_SHARED mapping read from this process's maps, in
        // the single-threaded test before its code runs; the runtime's only reference into
        // one, its counter page, was taken out of the list (`own_page`).
        .try_for_each(|&(addr, len, prot)| unsafe {
            sys::privatize_mapping(mem.as_raw_fd(), addr, len, prot)
        })
        .step("remap shared memory private");
    result
}
