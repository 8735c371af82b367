//! Futexes on a word of a page shared between processes (the ledger's): the waiting copies of
//! the host sleep on their queue slot's word until a freed slot rings it.
//!
//! Shared futexes (no `FUTEX_PRIVATE_FLAG`): the sleepers and the wakers are different
//! processes mapping the same MAP_SHARED page.

use std::sync::atomic::AtomicU32;

/// Sleep while `word` holds `expected`, at most `timeout_ns`. Returns when woken, when the word
/// changed before the call, on a signal, or at the timeout: the caller looks again in any case.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned u32 for the call; the kernel only reads it and `ts`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        )
    };
}

/// Wake up to `n` sleepers on `word`.
pub fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: `word` is a live, aligned u32; FUTEX_WAKE reads nothing else.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n) };
}
