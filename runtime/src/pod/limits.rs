//! Limits on what a test may consume: CPU time (a backstop behind the deadline), address space
//! relative to what it inherited, open files, processes, no core files, lowest CPU priority, and first in
//! line for the OOM killer so the kernel kills the pod, not the host.

use super::{SetupError, Step};
use crate::sys;

/// Address space a test may add to what it inherited.
pub const EXTRA_ADDRESS_SPACE: u64 = 1 << 30;
/// Open files (new ones; descriptors inherited above it stay valid).
pub const MAX_OPEN_FILES: u64 = 4096;
/// Processes (RLIMIT_NPROC; uid 0 is exempt, where the per-namespace pid_max bounds a pod).
pub const MAX_PROCESSES: u64 = 256;

/// `address_space`: what the test inherited, in bytes (0 if unknown).
pub fn apply(timeout_ms: u64, address_space: u64) -> Result<(), SetupError> {
    let cpu_s = timeout_ms.div_ceil(1000) + 1;
    sys::setrlimit(libc::RLIMIT_CPU, cpu_s, cpu_s + 1).step("limit CPU time")?;
    sys::setrlimit(libc::RLIMIT_CORE, 0, 0).step("disable core files")?;
    let vm = address_space;
    if vm > 0 {
        let (_, hard) = sys::getrlimit(libc::RLIMIT_AS);
        let lim = (vm + EXTRA_ADDRESS_SPACE).min(hard);
        sys::setrlimit(libc::RLIMIT_AS, lim, lim).step("limit address space")?;
    }
    let (files, _) = sys::getrlimit(libc::RLIMIT_NOFILE);
    let files = files.min(MAX_OPEN_FILES);
    sys::setrlimit(libc::RLIMIT_NOFILE, files, files).step("limit open files")?;
    let (_, nproc_hard) = sys::getrlimit(libc::RLIMIT_NPROC);
    let n = MAX_PROCESSES.min(nproc_hard);
    sys::setrlimit(libc::RLIMIT_NPROC, n, n).step("limit processes")?;
    lower_priority();
    Ok(())
}

/// First in line for the OOM killer, so the kernel kills the pod, not the host.
pub fn oom_first() {
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
}

pub fn lower_priority() {
    sys::lowest_priority();
}
