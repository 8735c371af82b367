//! The pod's standard streams: the test's output, and only the test's, reaches the capture, and
//! the runtime takes no lock in the pod that the host's other threads may hold.
//!
//! - **C stdio.** A pod is a fork of the host, so `stdout`'s buffer holds what the host had not
//!   written yet; the pod's `exit()` or the runtime's flush would write it a second time, into the
//!   test's `output`. Before the test runs (its only thread is the runtime's), both streams are
//!   purged (`__fpurge`, which takes no lock). The locks of C `FILE`s are reset by the fork in
//!   the child (`sys::fork` takes glibc's stdio steps), so the locked `fflush(NULL)` at the
//!   test's end cannot wait for a host thread, only for the test's own threads (which is right:
//!   they are alive).
//! - **Rust's `stdout`** is a line buffer behind a re-entrant lock that std offers no way to try.
//!   If another host thread held it at the fork, taking it in the pod waits for ever. So, in a
//!   Rust pod, once the pod is isolated and before the test runs, a short-lived thread takes the
//!   lock and flushes the host's pending partial line into /dev/null; the pod's thread waits until
//!   it is done, or until `/proc` shows it asleep on a futex without a timeout — in a process with
//!   no other thread that could release it, a lock held at the fork, for ever. Only when the lock
//!   proved free does the test's end flush it (the lock's only possible holders are then the
//!   test's own live threads); otherwise what the test left in the buffer is not flushed, and the
//!   record's `notes` say so. (A test that prints through that lock itself deadlocks on it, and
//!   is named as such by the supervisor: see `deadlock`.) Rust's `stderr` is unbuffered: it is
//!   never flushed, since flushing it only takes its lock.

use crate::sys;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

const UNKNOWN: u8 = 0;
const FREE: u8 = 1;
const HELD: u8 = 2;

/// What the pod found of Rust's `stdout` lock (`UNKNOWN` in C pods, which do not look).
static RUST_STDOUT: AtomicU8 = AtomicU8::new(UNKNOWN);

/// The note of a record whose test's buffered `stdout` could not be flushed.
pub const NOT_FLUSHED: &str = "Rust's stdout was not flushed at the test's end (a line the test \
     printed without its newline is missing from `output`): another thread of the host held the \
     stdout lock when the checkpoint was taken";

/// Before the test runs, in the pod's only thread: drop the host's pending C stdio output.
pub fn purge_host_c_output() {
    // SAFETY: called in the freshly forked test before any of its code runs: the calling thread
    // is the process's only one.
    unsafe { sys::purge_c_std_streams() };
}

/// In a Rust pod, isolated, before the test: drop the host's pending line in Rust's `stdout`
/// if its lock is free, and remember whether it was.
pub fn take_rust_stdout() {
    let Ok(null) = sys::open(c"/dev/null", libc::O_WRONLY | libc::O_CLOEXEC, 0) else {
        RUST_STDOUT.store(HELD, Ordering::Relaxed);
        return;
    };
    // SAFETY: descriptors 1 and 2 are the pod's capture, set up by its steps; 1 points at
    // /dev/null while the host's bytes are flushed away, then back at the capture (2 is the same
    // pipe). No other thread of the pod writes meanwhile: the test has not started.
    let free = unsafe {
        let _ = sys::dup2(null.as_raw_fd(), 1);
        drop(null);
        let free = completes(|| {
            let _ = std::io::stdout().lock().flush();
        });
        let _ = sys::dup2(2, 1);
        free
    };
    RUST_STDOUT.store(if free { FREE } else { HELD }, Ordering::Relaxed);
}

/// The record's note when Rust's `stdout` will be left unflushed at the test's end.
pub fn left_unflushed() -> Option<&'static str> {
    (RUST_STDOUT.load(Ordering::Relaxed) == HELD).then_some(NOT_FLUSHED)
}

/// At the test's end: flush what it buffered where that takes no lock a host thread may hold.
pub fn flush_test_output() {
    sys::flush_c_stdio();
    if RUST_STDOUT.load(Ordering::Relaxed) == FREE {
        let _ = std::io::stdout().flush();
    }
}

/// Whether `f`, run on a thread of its own, completes, rather than sleeping for ever on a futex
/// (a lock no thread of the pod holds). Gives up after a second if it can tell neither.
fn completes(f: impl FnOnce() + Send + 'static) -> bool {
    let done = Arc::new((AtomicBool::new(false), AtomicI32::new(0)));
    let theirs = Arc::clone(&done);
    let spawned = std::thread::Builder::new()
        .name("invite-stdout".into())
        .stack_size(64 << 10)
        .spawn(move || {
            crate::inside::for_good();
            theirs.1.store(sys::gettid(), Ordering::Release);
            f();
            theirs.0.store(true, Ordering::Release);
        });
    if spawned.is_err() {
        return false;
    }
    let pid = sys::getpid();
    let give_up = sys::monotonic_ns() + 1_000_000_000;
    loop {
        if done.0.load(Ordering::Acquire) {
            return true;
        }
        let tid = done.1.load(Ordering::Acquire);
        if tid > 0 && crate::deadlock::waits_for_ever(pid, tid) {
            return done.0.load(Ordering::Acquire);
        }
        if sys::monotonic_ns() > give_up {
            return false;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
}
