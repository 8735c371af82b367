//! "Inside the runtime": a per-thread depth, set on every entry into the runtime's own work (a
//! sampled call's slow path and admission, `ckpt()` and a pod's start, the summary, the exit
//! handler, records, the C entry points that allocate), and for good on the runtime's own
//! threads. A site's slow path called while it is set (the runtime's allocations going through
//! an instrumented allocator, as jemalloc built with invite does) counts the call and returns
//! "not this time" at once, touching no lock of the runtime: such a call would otherwise wait
//! for the very work it is part of (issue #16: `headroom::no_room`'s `OnceLock`, filled by a read
//! whose `realloc` was sampled again).
//!
//! Forked children (supervisors, a pod's setup) inherit the forking thread's depth, so they
//! never sample either. The fast path does not look at it: only the slow path does.

use std::cell::Cell;

thread_local! {
    // `const` and `Drop`-free: no allocation, no destructor to register, usable at any time.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Whether the calling thread is inside the runtime's own work.
pub fn now() -> bool {
    DEPTH.try_with(|d| d.get() > 0).unwrap_or(true)
}

/// Held while the calling thread does the runtime's work; the depth drops again when it goes
/// (by unwinding too).
#[must_use = "the thread is inside the runtime only while the guard lives"]
pub struct Inside(());

impl Inside {
    pub fn enter() -> Inside {
        let _ = DEPTH.try_with(|d| d.set(d.get().saturating_add(1)));
        Inside(())
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        let _ = DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// The calling thread is one of the runtime's own: it never samples, for as long as it runs.
pub fn for_good() {
    std::mem::forget(Inside::enter());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_depth_nests_and_unwinds() {
        assert!(!now());
        {
            let _a = Inside::enter();
            assert!(now());
            {
                let _b = Inside::enter();
                assert!(now());
            }
            assert!(now(), "the inner guard left the outer one's depth");
        }
        assert!(!now());
        let r = std::panic::catch_unwind(|| {
            let _a = Inside::enter();
            panic!("unwinds");
        });
        assert!(r.is_err());
        assert!(!now(), "unwinding lowers the depth");
        std::thread::spawn(|| {
            for_good();
            assert!(now());
        })
        .join()
        .unwrap();
        assert!(!now(), "another thread's depth is its own");
    }
}
