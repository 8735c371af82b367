//! A warm test's parent-death signal follows the *thread* that forked it: if that thread ends
//! while its pod runs, the kernel kills the pod, though the host lives on. So a thread that
//! started warm pods waits for them when it ends (a thread-local destructor), as the process
//! does at exit: up to `INVITE_DRAIN_MS`. The host's path pays one atomic store per pod.

use super::stock::MAX_BLANKS;
use crate::sys;
use std::sync::atomic::{AtomicI32, Ordering};

/// Per blank: the thread (tid) whose pod is running in it, 0 if none.
static OWNER: [AtomicI32; MAX_BLANKS] = [const { AtomicI32::new(0) }; MAX_BLANKS];

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        let me = sys::gettid();
        // Registered ahead of any pod on the thread that loaded the library (`ahead`): nothing
        // to wait for, and nothing of the runtime to build.
        if !OWNER.iter().any(|o| o.load(Ordering::Acquire) == me) {
            return;
        }
        let drain_ms = crate::runtime::get()
            .config
            .as_ref()
            .map_or(0, |c| c.drain_ms);
        let limit = sys::monotonic_ns() + drain_ms * 1_000_000;
        while OWNER.iter().any(|o| o.load(Ordering::Acquire) == me) && sys::monotonic_ns() < limit {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

thread_local! {
    static GUARD: Guard = const { Guard };
}

/// In the host, after the fork: the calling thread has a pod running in blank `slot`.
pub fn started(slot: usize) {
    OWNER[slot].store(sys::gettid(), Ordering::Release);
    // First use on this thread registers the destructor; after a thread's own destructors
    // have run there is nothing left to guard.
    let _ = GUARD.try_with(|_| ());
}

/// On this thread, register the guard's destructor now: at load, on the thread that loads the
/// library (most often the one that calls `ckpt()`; a first use allocates and takes glibc's
/// locks: ~15 µs of the first warm pod's pause otherwise), and in the host having forked a
/// waiting copy (`lend`) on this thread: the thread's end waits for the pods it started, that
/// one's included once it runs.
pub fn guard_this_thread() {
    let _ = GUARD.try_with(|_| ());
}

/// In the watcher: a waiting copy forked by thread `tid` runs its pod in blank `slot` now.
pub fn started_by(slot: usize, tid: i32) {
    OWNER[slot].store(tid, Ordering::Release);
}

/// In the watcher: the pod of blank `slot` is over.
pub fn ended(slot: usize) {
    OWNER[slot].store(0, Ordering::Release);
}

/// In a fresh fork of the host: none of these pods is this process's (async-signal-safe).
pub fn clear_owners() {
    for o in &OWNER {
        o.store(0, Ordering::Relaxed);
    }
}
