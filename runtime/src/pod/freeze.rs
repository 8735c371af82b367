//! The host held still while its files are cloned (`clones`): every thread of it stopped with
//! ptrace, by the pod's supervisor (the host's child, in its PID namespace).
//!
//! A clone holds off the host's writes to the one file it clones, for as long as it takes
//! (tens of milliseconds for a database the host writes all the time: a clone's cost grows
//! with the file's extents, and each write after a clone makes more). Between the clones of
//! a set, a host thread that writes all the time writes one of them: the set mixes states.
//! Stopped, the host writes nothing until the set is taken; its other processes' writes still
//! show (`clones::take` checks the files' states).
//!
//! Neither the host nor its parent sees the stop: `PTRACE_SEIZE` sends no signal, a
//! `PTRACE_INTERRUPT` stop is no group stop (no `SIGCHLD`, no job-control stop), and a system
//! call it interrupts (a sleep, a wait) is restarted. A write under way ends before its thread
//! stops. The host only loses the time it is held (the set's cloning). Where ptrace is refused
//! (another tracer such as a debugger, no permission, a pod with its own user namespace), the
//! files are cloned without it.

use crate::sys::{self, TraceStop};

/// How long the host's threads may take to stop before the freeze is given up (a thread in an
/// uninterruptible sleep: a write waiting for a slow disk, or for a clone another process
/// takes of its file).
const STOP_WITHIN_NS: u64 = 2_000_000_000;

/// How long to wait while other pods' supervisors hold the host still (their clones, each up
/// to a second on a loaded disk, one after the other): a thread has one tracer at a time. Past
/// it, the files are cloned without holding the host (a set that may come out mixed, and says
/// so).
const TURN_WITHIN_NS: u64 = 300_000_000_000;

/// The host's threads, held still until this is dropped.
pub struct Frozen {
    /// The host's `/proc` directory, locked (`flock`) while this pod holds the host.
    _turn: std::os::fd::OwnedFd,
    /// Stopped threads and the signal each stop held back.
    stopped: Vec<(libc::pid_t, libc::c_int)>,
    /// Seized threads that had not stopped yet.
    pending: Vec<libc::pid_t>,
}

/// Stop every thread of process `pid`; `None` (and none held) where it cannot be.
pub fn freeze(pid: libc::pid_t) -> Option<Frozen> {
    let mut f = Frozen {
        _turn: turn(pid)?,
        stopped: Vec::new(),
        pending: Vec::new(),
    };
    let deadline = sys::monotonic_ns() + STOP_WITHIN_NS;
    // Until a look at the threads finds none not held: a thread the host started while the
    // others were being stopped is stopped in turn.
    loop {
        let fresh: Vec<libc::pid_t> = threads(pid)?
            .into_iter()
            .filter(|t| !f.stopped.iter().any(|(s, _)| s == t))
            .collect();
        if fresh.is_empty() {
            return Some(f);
        }
        for tid in fresh {
            match sys::ptrace_seize(tid) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => continue,
                Err(_) => return None,
            }
            f.pending.push(tid);
            if sys::ptrace_interrupt(tid).is_err() {
                return None;
            }
        }
        while !f.pending.is_empty() {
            f.poll();
            if sys::monotonic_ns() > deadline {
                return None;
            }
            if !f.pending.is_empty() {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }
}

/// This pod's turn to hold process `pid`: its `/proc` directory, locked; `None` after
/// `TURN_WITHIN_NS`.
fn turn(pid: libc::pid_t) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::AsRawFd;
    let path = sys::cstring(&format!("/proc/{pid}")).ok()?;
    let dir = sys::open(
        &path,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .ok()?;
    let deadline = sys::monotonic_ns() + TURN_WITHIN_NS;
    while !sys::try_lock(dir.as_raw_fd()) {
        if sys::monotonic_ns() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_micros(500));
    }
    Some(dir)
}

/// The threads of process `pid`, as `/proc` lists them.
fn threads(pid: libc::pid_t) -> Option<Vec<libc::pid_t>> {
    let dir =
        crate::sys::dir_entries(&crate::sys::cstring(&format!("/proc/{pid}/task")).ok()?).ok()?;
    Some(
        dir.iter()
            .filter_map(|(name, _)| name.to_str()?.parse().ok())
            .collect(),
    )
}

impl Frozen {
    /// Move the pending threads that stopped (or are gone) out of `pending`.
    fn poll(&mut self) {
        let mut still = Vec::new();
        for tid in self.pending.drain(..) {
            match sys::trace_poll(tid) {
                Ok(TraceStop::Stopped(sig)) => self.stopped.push((tid, sig)),
                Ok(TraceStop::Running) => still.push(tid),
                Ok(TraceStop::Gone) | Err(_) => {}
            }
        }
        self.pending = still;
    }
}

impl Drop for Frozen {
    /// Let every thread go on (with the signal its stop held back); a thread seized that had
    /// not stopped yet is waited for (its stop is due) and let go as soon as it stops.
    fn drop(&mut self) {
        for (tid, sig) in self.stopped.drain(..) {
            let _ = sys::ptrace_detach(tid, sig);
        }
        while !self.pending.is_empty() {
            self.poll();
            for (tid, sig) in self.stopped.drain(..) {
                let _ = sys::ptrace_detach(tid, sig);
            }
            if !self.pending.is_empty() {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
    }
}
