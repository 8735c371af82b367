//! The runtime's own descriptors in the host: namespaces, the journal, warm pods' blanks and
//! pipes, the watcher's pidfds. A test forked from the host inherits the whole table and must
//! close these before its code runs (a mount namespace or a scratch directory would lead out of
//! the pod). A bitmap of atomics: marking and testing take no lock, so a freshly forked test reads
//! it safely whatever the host's other threads were doing.

use crate::sys;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

const WORDS: usize = 1024; // descriptors below 65536

static OWN: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

fn slot(fd: RawFd) -> Option<(&'static AtomicU64, u64)> {
    let i = usize::try_from(fd).ok()?;
    OWN.get(i / 64).map(|w| (w, 1u64 << (i % 64)))
}

pub fn mark(fd: RawFd) {
    if let Some((w, bit)) = slot(fd) {
        w.fetch_or(bit, Ordering::Release);
    }
}

pub fn is_own(fd: RawFd) -> bool {
    slot(fd).is_some_and(|(w, bit)| w.load(Ordering::Acquire) & bit != 0)
}

/// No longer one of the runtime's descriptors (its owner closes it).
pub fn unmark(fd: RawFd) {
    if let Some((w, bit)) = slot(fd) {
        w.fetch_and(!bit, Ordering::Release);
    }
}

/// Forget and close one of the runtime's descriptors.
pub fn close(fd: RawFd) {
    unmark(fd);
    sys::close(fd);
}

/// Mark a fresh descriptor and hand it back.
pub fn own(fd: RawFd) -> RawFd {
    mark(fd);
    fd
}
