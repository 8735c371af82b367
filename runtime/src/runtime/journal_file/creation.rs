//! The journal's creation as one step for a fork: held by the creating thread from its `open` to
//! its publication of the number, and by every fork of the process from glibc's atfork
//! `prepare` to its `parent`/`child` handlers. A fork waits at most for one `open` of the
//! journal; a creation waits for a fork in progress.

use crate::sys;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Who holds it: 0 nobody, the creating thread's id, or `FORK`.
static HOLDER: AtomicI32 = AtomicI32::new(0);
const FORK: i32 = -1;
/// The fork in progress took it (its handlers give it back).
static FORK_HOLDS: AtomicBool = AtomicBool::new(false);

fn acquire(who: i32) {
    while HOLDER
        .compare_exchange(0, who, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
}

/// Held by a creating thread until dropped.
pub struct Held;

impl Held {
    pub fn take() -> Held {
        acquire(sys::gettid());
        Held
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HOLDER.store(0, Ordering::Release);
    }
}

extern "C" fn prepare() {
    // A fork from a signal handler that interrupted this very thread's creation would wait for
    // itself: that one fork goes on without it.
    // (Most forks find it free: no system call then.)
    let holder = HOLDER.load(Ordering::Relaxed);
    if holder != 0 && holder == sys::gettid() {
        return;
    }
    acquire(FORK);
    FORK_HOLDS.store(true, Ordering::Relaxed);
}

extern "C" fn after() {
    if FORK_HOLDS.swap(false, Ordering::Relaxed) {
        HOLDER.store(0, Ordering::Release);
    }
}

/// Make every fork of this process wait for a creation in progress (once, when the runtime is
/// built, before it may create anything).
pub fn register_fork_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: the handlers only use atomics, gettid and sched_yield (async-signal-safe); in the
    // child, `after` frees what the fork held (the child has one thread, the forking one).
    ONCE.call_once(|| unsafe { sys::at_fork(prepare, after, after) });
}
