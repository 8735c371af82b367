//! Limits on what a test may consume: CPU time (a backstop behind the deadline), address space
//! relative to what it inherited, open files, processes, no core files, lowest CPU priority (set
//! last, `lower_priority`), and first in line for the OOM killer so the kernel kills the pod, not
//! the host. Also the pod's IPC namespace:
//! SysV shared memory, SysV message queues and POSIX message queues are memory no process owns
//! (RLIMIT_AS does not see an unattached segment, and the OOM killer cannot free it), so the
//! namespace's own tunables bound them.

use super::{SetupError, Step};
use crate::sys;

/// Address space a test may add to what it inherited.
pub const EXTRA_ADDRESS_SPACE: u64 = 1 << 30;
/// Open files (new ones; descriptors inherited above it stay valid).
pub const MAX_OPEN_FILES: u64 = 4096;
/// Processes (RLIMIT_NPROC; uid 0 is exempt, where the per-namespace pid_max bounds a pod).
pub const MAX_PROCESSES: u64 = 256;

use crate::headroom::SHM_BYTES;
/// SysV message queues per pod (`msgmni`; each holds at most `msgmnb`, 16 KiB by default).
pub const MSG_QUEUES: u64 = 64;

/// Bound the IPC objects of the calling process's IPC namespace (just made for a pod: a cold
/// pod's supervisor, a warm blank's builder, a warm test that needed a fresh namespace). The
/// files act on the writer's IPC namespace, whichever /proc (`proc_dir`) names them. Called while
/// the writer still has its capabilities, and before /proc/sys is made read-only in the pod.
/// Two writes only: each costs tens of microseconds in a fresh namespace (its sysctl table is
/// looked up anew), and they are on a cold pod's way to its test. POSIX message queues need none:
/// `RLIMIT_MSGQUEUE` (800 KiB per user by default) binds a pod once its capabilities are dropped.
///
/// Only uid 0 of the namespace's user namespace may write them; unprivileged pods run as the
/// user's own uid there, so their IPC objects are left to the user's limits (`RLIMIT_MSGQUEUE`)
/// and the memory cgroup (the README's "not isolated" list).
pub fn bound_ipc(proc_dir: &std::ffi::CStr) -> Result<(), SetupError> {
    if sys::geteuid() != 0 {
        return Ok(());
    }
    let page = sys::page_size() as u64;
    let proc_dir = proc_dir.to_string_lossy();
    let set = |file: &str, value: u64| {
        std::fs::write(format!("{proc_dir}/sys/{file}"), value.to_string())
    };
    set("kernel/shmall", SHM_BYTES / page).step("bound SysV shared memory (shmall)")?;
    set("kernel/msgmni", MSG_QUEUES).step("bound SysV message queues (msgmni)")?;
    Ok(())
}

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
    Ok(())
}

/// First in line for the OOM killer, so the kernel kills the pod, not the host.
pub fn oom_first() {
    let _ = sys::write_existing(c"/proc/self/oom_score_adj", b"1000");
}

/// Nice 19 and `SCHED_IDLE`: the pod's very last setup step, so that the setup itself (a few
/// hundred microseconds of the pod's way in) is not left waiting behind every runnable task of
/// the machine, while the test's first line already runs at the lowest priority.
pub fn lower_priority() {
    sys::lowest_priority();
}
