//! The runtime's own descriptors in the host: namespaces, the journal, warm pods' blanks and
//! pipes, the watcher's pidfds. A test forked from the host inherits the whole table and must
//! close these before its code runs (a mount namespace or a scratch directory would lead out of
//! the pod). A bitmap of atomics: marking and testing take no lock, so a freshly forked test reads
//! it safely whatever the host's other threads were doing.

use crate::sys;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
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

/// One of the runtime's descriptors, owned: marked while it lives, unmarked and closed when
/// dropped. For descriptors a thread of the host holds (the reaper's pidfds, the warm state, the
/// helper's reply sockets, blanks being taken in); those a freshly forked child reads lock-free
/// from shared state (the journal, the blanks in the stock) are published as numbers
/// (`into_raw`), which their owner closes with `close`.
#[derive(Debug)]
pub struct Own(Option<OwnedFd>);

impl Own {
    pub fn new(fd: OwnedFd) -> Own {
        mark(fd.as_raw_fd());
        Own(Some(fd))
    }

    pub fn raw(&self) -> RawFd {
        self.0.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// Publish the number, still marked: whoever reads it from shared state now owns it.
    pub fn into_raw(mut self) -> RawFd {
        self.0.take().map_or(-1, IntoRawFd::into_raw_fd)
    }
}

impl AsFd for Own {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // Some until `into_raw`, which consumes it.
        let fd = self.0.as_ref().map(AsFd::as_fd);
        fd.unwrap_or_else(|| unreachable!("an Own is only emptied by into_raw"))
    }
}

impl AsRawFd for Own {
    fn as_raw_fd(&self) -> RawFd {
        self.raw()
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        if let Some(fd) = self.0.take() {
            unmark(fd.as_raw_fd());
        } // then closed, with the OwnedFd
    }
}
