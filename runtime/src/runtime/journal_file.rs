//! The host's journal descriptor, created by its first writer (`Runtime::journal`): the first
//! `ckpt()` only checks the path (`journal::check`), and the file system's creation of the file
//! is done off its pause, by the runtime's thread or a supervisor.

use super::Runtime;
use crate::journal;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::sync::atomic::Ordering;

/// `journal_fd` where there is no journal: testing is off, or this is a pod (records go to its
/// supervisor).
pub const NO_JOURNAL: RawFd = -1;
/// `journal_fd` before the first write: checked, created by whoever writes first.
pub const JOURNAL_TO_CREATE: RawFd = -2;

impl Runtime {
    /// The journal to write to, created on first use: by the host's runtime thread or a
    /// supervisor (each process that needs it before the host has it opens its own), so the
    /// first `ckpt()` does not wait for a file system's creation of a file. `None`: no journal
    /// here (testing off, a pod, or the journal could not be created).
    pub fn journal(&self) -> Option<RawFd> {
        match self.journal_fd() {
            JOURNAL_TO_CREATE => self.create_journal(),
            fd => (fd >= 0).then_some(fd),
        }
    }

    fn create_journal(&self) -> Option<RawFd> {
        let path = &self.config.as_ref()?.journal;
        let set = |to| {
            self.journal_fd.compare_exchange(
                JOURNAL_TO_CREATE,
                to,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
        };
        match journal::open(path) {
            Ok(fd) => {
                // Marked before it is published: a pod forked meanwhile closes it.
                let raw = fd.as_raw_fd();
                crate::ownfd::mark(raw);
                match set(raw) {
                    // A number in an atomic from here, held for the life of the process: read
                    // lock-free, in forked children too.
                    Ok(_) => Some(fd.into_raw_fd()),
                    // Another thread of this process opened it first.
                    Err(theirs) => {
                        crate::ownfd::unmark(raw);
                        drop(fd);
                        (theirs >= 0).then_some(theirs)
                    }
                }
            }
            // Usable when checked, not now (replaced or made unwritable since): as if it had
            // failed the check, later.
            Err(e) => {
                self.journal_failed.store(true, Ordering::Relaxed);
                if set(NO_JOURNAL).is_ok() {
                    eprintln!(
                        "invite: INVITE_JOURNAL: cannot use {}: {e}; in vivo testing is off",
                        path.display()
                    );
                }
                None
            }
        }
    }

    /// Whether the journal could not be created when first written (testing is off).
    pub fn journal_failed(&self) -> bool {
        self.journal_failed.load(Ordering::Relaxed)
    }
}
