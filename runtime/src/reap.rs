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
//! The same thread has other duties (`reap::set_duty`), which it knows only as a `Duty`: the flow
//! goes from them to here, never back. When warm pods are on, `warm`'s watcher keeps their stock
//! of blanks full and supervises the warm tests; the runtime's periodic summary
//! (`INVITE_SUMMARY_S`) is written from here too, so a process has one thread of the runtime's,
//! started once (a thread's start costs a host tens of microseconds).

use crate::ownfd::Own;
use crate::sys;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::OnceLock;

/// Work the reaper thread does besides reaping, in the same poll.
pub trait Duty {
    /// Add the descriptors to poll to `fds`; the poll's timeout in milliseconds, if any.
    fn prepare(&mut self, fds: &mut Vec<RawFd>) -> Option<i32>;
    /// After the poll: `rev[i]` are the events of `fds[i]` (the reaper's own come first).
    fn handle(&mut self, rev: &[i16]);
}

/// The duties besides reaping, in the order the thread serves them.
#[derive(Clone, Copy)]
pub enum DutyKind {
    /// The runtime's housekeeping (the periodic summary).
    Runtime = 0,
    /// Warm pods' watcher.
    Warm = 1,
}

const DUTIES: usize = 2;

/// What makes a duty, in the thread.
type MakeDuty = fn() -> Box<dyn Duty>;

/// Each duty's maker, set once; the thread makes the duty when it first sees it set.
static DUTY: [OnceLock<MakeDuty>; DUTIES] = [const { OnceLock::new() }; DUTIES];

const SLOTS: usize = 256;
const PICKUP_MS: i32 = 20;

static PENDING: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

const STOPPED: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(STOPPED);
/// The thread is wanted before any pod (`want`).
static WANTED: AtomicBool = AtomicBool::new(false);

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
    WANTED.store(false, Ordering::Relaxed);
    STATE.store(STOPPED, Ordering::Release);
}

/// In the child of any fork of the host (its own workers included): the reaper thread stayed in
/// the parent.
extern "C" fn after_fork() {
    drop_pending();
}

/// Give the reaper thread a duty of this kind (once per process; later calls are ignored), which
/// it takes up when it next starts or wakes (`ensure`, `reap_when_over`).
pub fn set_duty(kind: DutyKind, make: MakeDuty) {
    let _ = DUTY[kind as usize].set(make);
}

/// Ask for the thread before any pod needs it (a duty of its own is due), without starting it
/// now: `start_wanted` does, where no pause is measured (a call that started no pod, or right
/// after a pod's fork, which starts it anyway).
pub fn want() {
    WANTED.store(true, Ordering::Relaxed);
}

/// Start the thread if it was asked for (`want`).
pub fn start_wanted() {
    if WANTED.load(Ordering::Relaxed) && !ensure() {
        WANTED.store(false, Ordering::Relaxed);
        eprintln!(
            "invite: cannot start the runtime's thread: no periodic summary (INVITE_SUMMARY_S)"
        );
    }
}

/// Start the thread if it is not running; false if it could not be started.
pub fn ensure() -> bool {
    if STATE.load(Ordering::Acquire) != STOPPED
        || STATE
            .compare_exchange(STOPPED, STARTING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return true;
    }
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    // SAFETY: `after_fork` only stores to atomics (`forget`s), async-signal-safe.
    AT_FORK.call_once(|| unsafe { sys::at_fork_child(after_fork) });
    match sys::spawn_thread(thread_main, STACK) {
        Ok(()) => {
            STATE.store(RUNNING, Ordering::Release);
            true
        }
        Err(_) => {
            STATE.store(STOPPED, Ordering::Release);
            false
        }
    }
}

/// The thread's stack: what `std::thread` gives a thread by default.
const STACK: usize = 2 << 20;

extern "C" fn thread_main(_: *mut libc::c_void) -> *mut libc::c_void {
    // The runtime's own thread: its calls of instrumented functions are never tested.
    crate::inside::for_good();
    // Started at the end of a pod's way in (`snapshot`): let the host's pause end before this
    // thread's first steps (its allocations map an arena, its first round opens the journal,
    // makes the warm state and asks for blanks) compete with it for the CPUs and the address
    // space. Nothing is lost: pids are picked up at the first round, and the first pods are cold
    // anyway.
    std::thread::sleep(std::time::Duration::from_millis(NAP_MS));
    sys::set_name(c"invite-reaper");
    // Nothing may unwind out of a thread's start routine.
    let _ = std::panic::catch_unwind(run);
    std::ptr::null_mut()
}

/// The thread's first wait, before anything else.
const NAP_MS: u64 = 2;

fn run() {
    sys::lower_thread_priority(5);
    let mut watched: Vec<(libc::pid_t, Own)> = Vec::new();
    let mut duties: [Option<Box<dyn Duty>>; DUTIES] = [const { None }; DUTIES];
    let mut fds: Vec<RawFd> = Vec::new();
    let mut rev: Vec<i16> = Vec::new();
    loop {
        for slot in &PENDING {
            let pid = slot.swap(0, Ordering::AcqRel);
            if pid > 0 {
                match sys::pidfd_open(pid) {
                    Ok(pfd) => watched.push((pid, Own::new(pfd))),
                    Err(_) => {
                        let _ = sys::wait4(pid, libc::WNOHANG);
                    }
                }
            }
        }
        fds.clear();
        fds.extend(watched.iter().map(|(_, fd)| fd.as_raw_fd()));
        let mut duty_timeout: Option<i32> = None;
        for (duty, make) in duties.iter_mut().zip(&DUTY) {
            if duty.is_none() {
                *duty = make.get().map(|make| make());
            }
            if let Some(t) = duty.as_mut().and_then(|d| d.prepare(&mut fds)) {
                duty_timeout = Some(duty_timeout.map_or(t, |d| d.min(t)));
            }
        }
        rev.clear();
        rev.resize(fds.len(), 0);
        let timeout = duty_timeout.map_or(PICKUP_MS, |t| t.clamp(0, PICKUP_MS));
        if fds.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(timeout as u64));
        } else {
            let _ = sys::poll_in(&fds, timeout, &mut rev);
        }
        for i in (0..watched.len()).rev() {
            if rev[i] != 0 {
                let (pid, _pidfd) = watched.swap_remove(i);
                let _ = sys::wait4(pid, libc::WNOHANG);
            }
        }
        // A bug in the bookkeeping of one pod must not end the thread that watches all pods.
        for d in duties.iter_mut().flatten() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.handle(&rev)));
        }
    }
}
