//! Reaping supervisors. Each supervisor is a child of the host; when it exits it must be waited
//! for, or it stays a zombie. The host's own code owns SIGCHLD, so a small thread
//! (`invite-reaper`, started with the first pod) waits on each supervisor's pidfd and reaps
//! exactly that pid — never `waitpid(-1)`, which would steal the host's children. If the host
//! reaps a supervisor first (its own `waitpid(-1)`), the reaper gets ECHILD: not an error.
//!
//! The host hands a pid over by storing it in a free slot of a static array: no syscall, no
//! lock (a fork could leave a lock held) on the host's path. The reaper picks new pids up every
//! `PICKUP_MS`, so a supervisor is a zombie at most that long after it exits. A pod (a fork
//! without the thread) starts its own reaper when it needs one.
//!
//! The same thread has one more duty when warm pods are on: `warm` registers its watcher
//! (`reap::add_duty`), which keeps their stock of blanks full and supervises the warm tests. The
//! reaper knows it only as a `Duty`: the flow goes from `warm` to here, never back.

use crate::sys;
use std::os::fd::{IntoRawFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::OnceLock;

/// Work the reaper thread does besides reaping, in the same poll.
pub trait Duty {
    /// Add the descriptors to poll to `fds`; the poll's timeout in milliseconds, if any.
    fn prepare(&mut self, fds: &mut Vec<RawFd>) -> Option<i32>;
    /// After the poll: `rev[i]` are the events of `fds[i]` (the reaper's own come first).
    fn handle(&mut self, rev: &[i16]);
}

/// The extra duty's maker, set once; the thread makes the duty when it first sees it set.
static DUTY: OnceLock<fn() -> Box<dyn Duty>> = OnceLock::new();

const SLOTS: usize = 256;
const PICKUP_MS: i32 = 20;

static PENDING: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

const STOPPED: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(STOPPED);

/// Hand a supervisor's pid to the reaper (starting it on first use).
pub fn reap_when_over(pid: libc::pid_t) {
    ensure();
    for slot in &PENDING {
        if slot
            .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
    // Every slot taken (a burst of pods): reap it now if it is already over.
    let _ = sys::wait4(pid, libc::WNOHANG);
}

/// Descriptors of the reaper that pods must not inherit (none: it works through memory).
pub fn own_fds() -> [RawFd; 0] {
    []
}

/// In a new pod or checkpoint: the reaper thread did not survive the fork; drop its pending
/// pids (async-signal-safe: stores only).
pub fn drop_pending() {
    for slot in &PENDING {
        slot.store(0, Ordering::Relaxed);
    }
    STATE.store(STOPPED, Ordering::Release);
}

/// In the child of any fork of the host (its own workers included): the reaper thread stayed in
/// the parent.
extern "C" fn after_fork() {
    drop_pending();
}

/// Give the reaper thread one more duty (once per process; later calls are ignored), which it
/// takes up when it next starts or wakes (`ensure`, `reap_when_over`).
pub fn set_duty(make: fn() -> Box<dyn Duty>) {
    let _ = DUTY.set(make);
}

pub fn ensure() {
    if STATE.load(Ordering::Acquire) != STOPPED
        || STATE
            .compare_exchange(STOPPED, STARTING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return;
    }
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    // SAFETY: `after_fork` only stores to atomics (`forget`s), async-signal-safe.
    AT_FORK.call_once(|| unsafe { sys::at_fork_child(after_fork) });
    match std::thread::Builder::new()
        .name("invite-reaper".into())
        .spawn(run)
    {
        Ok(_) => STATE.store(RUNNING, Ordering::Release),
        Err(_) => STATE.store(STOPPED, Ordering::Release),
    }
}

fn run() {
    sys::lower_thread_priority(5);
    let mut watched: Vec<(libc::pid_t, RawFd)> = Vec::new();
    let mut duty: Option<Box<dyn Duty>> = None;
    let mut fds: Vec<RawFd> = Vec::new();
    let mut rev: Vec<i16> = Vec::new();
    loop {
        for slot in &PENDING {
            let pid = slot.swap(0, Ordering::AcqRel);
            if pid > 0 {
                match sys::pidfd_open(pid) {
                    Ok(pfd) => watched.push((pid, crate::ownfd::own(pfd.into_raw_fd()))),
                    Err(_) => {
                        let _ = sys::wait4(pid, libc::WNOHANG);
                    }
                }
            }
        }
        fds.clear();
        fds.extend(watched.iter().map(|(_, fd)| *fd));
        if duty.is_none() {
            duty = DUTY.get().map(|make| make());
        }
        let duty_timeout = duty.as_mut().and_then(|d| d.prepare(&mut fds));
        rev.clear();
        rev.resize(fds.len(), 0);
        if fds.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(PICKUP_MS as u64));
            continue;
        }
        let timeout = duty_timeout.map_or(PICKUP_MS, |t| t.min(PICKUP_MS));
        let _ = sys::poll_in(&fds, timeout, &mut rev);
        for i in (0..watched.len()).rev() {
            if rev[i] != 0 {
                let (pid, pfd) = watched.swap_remove(i);
                let _ = sys::wait4(pid, libc::WNOHANG);
                crate::ownfd::close(pfd);
            }
        }
        // A bug in the bookkeeping of one pod must not end the thread that watches all pods.
        if let Some(d) = duty.as_mut() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.handle(&rev)));
        }
    }
}
