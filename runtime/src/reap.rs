//! Reaping supervisors. Each supervisor is a child of the host; when it exits it must be waited
//! for, or it stays a zombie. The host's own code owns SIGCHLD, so a small thread
//! (`invite-reaper`) waits on each supervisor's pidfd and reaps exactly that pid — never
//! `waitpid(-1)`, which would steal the host's children. If the host reaps a supervisor first
//! (its own `waitpid(-1)`), the reaper gets ECHILD: not an error.
//!
//! The thread is started by the library's constructor when testing is on (`start::at_load`),
//! while the process is small and has one thread: a thread's start costs tens of microseconds
//! here, as much as the fork of a small process, and no `ckpt()` should pay it. Until the first
//! pod it waits on its doorbell (an eventfd) and allocates nothing. A process forked from the
//! host (a worker, `daemon()`) has no thread: its first pod starts one, and a pod (a fork
//! without the thread) starts its own when it needs one.
//!
//! The host hands a pid over by storing it in a free slot of a static array: no lock (a fork
//! could leave a lock held) on the host's path. The thread sleeps until there is work: before it
//! looks at the slots it flags itself idle, and whoever hands it work while it is flagged clears
//! the flag and rings the doorbell (one eventfd write, ~3 µs, only then). An idle host wakes it
//! only for its duties' own timeouts (the summary's period).
//!
//! The same thread has other duties (`reap::set_duty`), which it knows only as a `Duty`: the flow
//! goes from them to here, never back. When warm pods are on, `warm`'s watcher keeps their stock
//! of blanks full and supervises the warm tests; the runtime's periodic summary
//! (`INVITE_SUMMARY_S`) is written from here too, so a process has one thread of the runtime's.
//! It blocks every signal: the host's signals are for the host's threads.

use crate::ownfd::Own;
use crate::sys;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
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

static PENDING: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];

const STOPPED: u8 = 0;
const STARTING: u8 = 1;
const RUNNING: u8 = 2;
static STATE: AtomicU8 = AtomicU8::new(STOPPED);
/// The thread is wanted before any pod (`want`).
static WANTED: AtomicBool = AtomicBool::new(false);
/// The thread's doorbell (an eventfd, -1 before the first start). After a fork the child keeps
/// its parent's number until it starts a thread of its own, which closes it: a pod closes it
/// with the runtime's other descriptors (`own_fds`).
static BELL: AtomicI32 = AtomicI32::new(-1);
/// Whether the thread's next (or current) wait has no timeout: nothing but new work wakes it
/// (`nudge`). Set before it looks for work, cleared once its duties gave the wait a timeout.
static SLEEPS_FOREVER: AtomicBool = AtomicBool::new(true);
/// Set by the thread before it last looked for work and blocked: whoever hands it work next
/// rings the doorbell (once: it clears the flag). While it is busy nobody rings, and it looks
/// for work again before it blocks.
static IDLE: AtomicBool = AtomicBool::new(false);

/// Hand a supervisor's pid to the reaper (starting it if this process has none yet).
pub fn reap_when_over(pid: libc::pid_t) {
    start();
    for slot in &PENDING {
        if slot
            .compare_exchange(0, pid, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            wake();
            return;
        }
    }
    // Every slot taken (a burst of pods): reap it now if it is already over.
    let _ = sys::wait4(pid, libc::WNOHANG);
}

/// Ring the doorbell if the thread is waiting without having seen the work just handed to it.
fn wake() {
    if IDLE.swap(false, Ordering::SeqCst) {
        sys::ring(BELL.load(Ordering::Relaxed));
    }
}

/// Start the thread if this process has none, and wake it only if it would otherwise sleep until
/// new work comes: for work it picks up at its next round anyway, when one is due.
pub fn nudge() {
    if start() && SLEEPS_FOREVER.load(Ordering::SeqCst) {
        wake();
    }
}

/// Descriptors of the reaper that pods must not inherit: its doorbell.
pub fn own_fds() -> [RawFd; 1] {
    [BELL.load(Ordering::Relaxed)]
}

/// In a new pod or checkpoint: the reaper thread did not survive the fork; drop its pending
/// pids, and forget the doorbell, which the pod closes with the runtime's other descriptors
/// (its number may be a test's file next; async-signal-safe: stores only).
pub fn drop_pending() {
    forget_thread();
    BELL.store(-1, Ordering::Relaxed);
}

fn forget_thread() {
    for slot in &PENDING {
        slot.store(0, Ordering::Relaxed);
    }
    WANTED.store(false, Ordering::Relaxed);
    IDLE.store(false, Ordering::Relaxed);
    SLEEPS_FOREVER.store(true, Ordering::Relaxed);
    STATE.store(STOPPED, Ordering::Release);
}

/// In the child of any fork of the host (its own workers and supervisors included): the reaper
/// thread stayed in the parent. The doorbell stays open: a supervisor lists it among what its
/// pod closes (`own_fds`), a worker closes it when it starts a thread of its own.
extern "C" fn after_fork() {
    forget_thread();
}

/// Give the reaper thread a duty of this kind (once per process; later calls are ignored), which
/// it takes up when it next wakes (`ensure`, `start_wanted`, `reap_when_over`).
pub fn set_duty(kind: DutyKind, make: MakeDuty) {
    let _ = DUTY[kind as usize].set(make);
}

/// Ask for the thread before any pod needs it (a duty of its own is due), without waking or
/// starting it now: `start_wanted` does, where no pause is measured (a call that started no pod,
/// or right after a pod's fork, which wakes it anyway).
pub fn want() {
    WANTED.store(true, Ordering::Relaxed);
}

/// Start or wake the thread if it was asked for (`want`).
pub fn start_wanted() {
    if WANTED.swap(false, Ordering::Relaxed) && !ensure() {
        eprintln!(
            "invite: cannot start the runtime's thread: no periodic summary (INVITE_SUMMARY_S)"
        );
    }
}

/// At start-up, while the process is small and has one thread, when testing is on: start the
/// thread, which waits on its doorbell (no wake-up, no allocation) until there is work, so that
/// no `ckpt()` pays a thread's start (tens of microseconds here, as much as a fork). A process
/// forked from this one starts its own with its first pod, on this thread's stack: glibc gives a
/// fork's new threads the stacks of the parent's threads it did not inherit (same `STACK`), with
/// their thread-local storage, so that start calls no `calloc` of the program's
/// (fixtures/c/worker_alloc.c).
pub fn start_early() {
    start();
}

/// Have the thread running and looking at its duties; false if it could not be started.
pub fn ensure() -> bool {
    let started = start();
    if started {
        wake();
    }
    started
}

/// Start the thread if it is not running; false if it could not be started.
fn start() -> bool {
    if STATE.load(Ordering::Acquire) != STOPPED
        || STATE
            .compare_exchange(STOPPED, STARTING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
    {
        return true;
    }
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    // SAFETY: `after_fork` only stores to atomics (`forget_thread`), async-signal-safe.
    AT_FORK.call_once(|| unsafe { sys::at_fork_child(after_fork) });
    // A doorbell of this process's own: a forked worker's inherited one is its parent's.
    let inherited = BELL.swap(-1, Ordering::Relaxed);
    if inherited >= 0 {
        crate::ownfd::close(inherited);
    }
    let Ok(bell) = sys::eventfd() else {
        STATE.store(STOPPED, Ordering::Release);
        return false;
    };
    BELL.store(crate::ownfd::own(bell.into_raw_fd()), Ordering::Relaxed);
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
    // Started by a forked child's first pod, at the end of its way in (`snapshot`): let the
    // pause end before this thread's first steps (its allocations map an arena, its first round
    // opens the journal, makes the warm state and asks for blanks) compete with it for the CPUs
    // and the address space. Nothing is lost: pids are picked up at the first round, and the
    // first pods are cold anyway. (Started at load, it then waits on its doorbell.)
    std::thread::sleep(std::time::Duration::from_millis(NAP_MS));
    sys::set_name(c"invite-reaper");
    // Nothing may unwind out of a thread's start routine.
    let _ = std::panic::catch_unwind(run);
    std::ptr::null_mut()
}

/// The thread's first wait, before anything else.
const NAP_MS: u64 = 2;

/// Block until there may be work: the doorbell, a supervisor's end, a duty's descriptor or
/// timeout. The first wait, before any work was handed over, allocates nothing (the thread may
/// have been started at load, before the program's allocator is ready).
fn park_until_work() {
    let bell = BELL.load(Ordering::Relaxed);
    IDLE.store(true, Ordering::SeqCst);
    let work = PENDING.iter().any(|s| s.load(Ordering::SeqCst) != 0)
        || DUTY.iter().any(|d| d.get().is_some());
    if !work {
        sys::wait_readable(bell, -1);
    }
    IDLE.store(false, Ordering::Relaxed);
}

fn run() {
    sys::lower_thread_priority(5);
    park_until_work();
    let bell = BELL.load(Ordering::Relaxed);
    let mut watched: Vec<(libc::pid_t, Own)> = Vec::new();
    let mut duties: [Option<Box<dyn Duty>>; DUTIES] = [const { None }; DUTIES];
    let mut fds: Vec<RawFd> = Vec::new();
    let mut rev: Vec<i16> = Vec::new();
    loop {
        // Flagged before looking for work, so a pid handed over after the look rings.
        IDLE.store(true, Ordering::SeqCst);
        SLEEPS_FOREVER.store(true, Ordering::SeqCst);
        for slot in &PENDING {
            let pid = slot.swap(0, Ordering::SeqCst);
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
        fds.push(bell);
        fds.extend(watched.iter().map(|(_, fd)| fd.as_raw_fd()));
        let mut timeout: Option<i32> = None;
        for (duty, make) in duties.iter_mut().zip(&DUTY) {
            if duty.is_none() {
                *duty = make.get().map(|make| make());
            }
            if let Some(t) = duty.as_mut().and_then(|d| d.prepare(&mut fds)) {
                timeout = Some(timeout.map_or(t, |d| d.min(t)));
            }
        }
        SLEEPS_FOREVER.store(timeout.is_none(), Ordering::SeqCst);
        rev.clear();
        rev.resize(fds.len(), 0);
        // No timeout of its own: the thread sleeps until there is work.
        let _ = sys::poll_in(&fds, timeout.map_or(-1, |t| t.max(0)), &mut rev);
        IDLE.store(false, Ordering::Relaxed);
        if rev[0] != 0 {
            let mut count = [0u8; 8];
            let _ = sys::read(bell, &mut count);
        }
        for i in (0..watched.len()).rev() {
            if rev[1 + i] != 0 {
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
