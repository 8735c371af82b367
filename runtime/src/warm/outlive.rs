//! A warm test's parent-death signal follows the *thread* that forked it: if that thread ends
//! while its pod runs, the kernel kills the pod, though the host lives on. So a thread that
//! started warm pods waits for them when it ends (a thread-specific key's destructor), as the
//! process does at exit: up to `INVITE_DRAIN_MS`. The host's path pays one atomic store and one
//! `pthread_setspecific` per pod, and allocates nothing: a Rust thread-local with a destructor
//! would register it through `calloc` on the thread's first pod, inside a sampled call that may
//! hold the program's allocator's lock (jemalloc's threads sample as they exit, under its decay
//! mutex).

use super::stock::MAX_BLANKS;
use crate::sys;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

/// Per blank: the thread (tid) whose pod is running in it, 0 if none.
static OWNER: [AtomicI32; MAX_BLANKS] = [const { AtomicI32::new(0) }; MAX_BLANKS];

/// The key whose destructor waits for the exiting thread's pods (`None`: no key left, and a
/// thread's end may kill its pods).
static KEY: OnceLock<Option<libc::pthread_key_t>> = OnceLock::new();

fn key() -> Option<libc::pthread_key_t> {
    *KEY.get_or_init(|| sys::thread_exit_key(wait_for_own_pods))
}

/// At a thread's end, if it set the key: wait for the pods it started.
extern "C" fn wait_for_own_pods(_: *mut libc::c_void) {
    let me = sys::gettid();
    if !OWNER.iter().any(|o| o.load(Ordering::Acquire) == me) {
        return;
    }
    let drain_ms = crate::runtime::built()
        .and_then(|rt| rt.config.as_ref())
        .map_or(0, |c| c.drain_ms);
    let limit = sys::monotonic_ns() + drain_ms * 1_000_000;
    while OWNER.iter().any(|o| o.load(Ordering::Acquire) == me) && sys::monotonic_ns() < limit {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// In the host, after the fork: the calling thread has a pod running in blank `slot`.
pub fn started(slot: usize) {
    OWNER[slot].store(sys::gettid(), Ordering::Release);
    guard_this_thread();
}

/// The calling thread's end waits for the pods it started (at load, the key is made; in the
/// host having forked a waiting copy, `lend`, that one's pod included once it runs).
pub fn guard_this_thread() {
    if let Some(k) = key() {
        // Any non-null value: the destructor runs only for threads that set one.
        sys::set_thread_value(k, std::ptr::NonNull::<libc::c_void>::dangling().as_ptr());
    }
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
