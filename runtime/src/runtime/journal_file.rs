//! The host's journal descriptor, created by its first writer (`Runtime::journal`): the first
//! `ckpt()` only checks the path (`journal::check`), and the file system's creation of the file
//! is done off its pause, by the runtime's thread or a supervisor.
//!
//! The creation is one step as far as a fork can tell (`creation`): the kernel copies the
//! descriptor table before the memory, so a fork between another thread's `open` and its
//! publication of the number could give the child the number without the descriptor (its next
//! descriptor, a pidfd, then takes the number and the record written there is lost) or the
//! descriptor, unmarked, without the number (the pod would inherit the journal).

use super::Runtime;
use crate::journal;
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

mod creation;
#[cfg(test)]
mod tests;

pub use creation::register_fork_handlers;

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
        // Made before every fork waits for the creation (`creation`): a fork may come from a
        // sampled call that holds the program's allocator's lock.
        let c = journal::c_path(path);
        match create_in(&self.journal_fd, || journal::open_c(c.as_ref()?)) {
            Ok(fd) => fd,
            // Usable when checked, not now (replaced or made unwritable since): as if it had
            // failed the check, later. Said once: whoever comes next finds `NO_JOURNAL`.
            Err(e) => {
                self.journal_failed.store(true, Ordering::Relaxed);
                eprintln!(
                    "invite: INVITE_JOURNAL: cannot use {}: {e}; in vivo testing is off",
                    path.display()
                );
                None
            }
        }
    }

    /// Whether the journal could not be created when first written (testing is off).
    pub fn journal_failed(&self) -> bool {
        self.journal_failed.load(Ordering::Relaxed)
    }
}

/// If `slot` still says `JOURNAL_TO_CREATE`: open the descriptor, mark it as the runtime's and
/// publish its number there, all while no fork of this process can happen (`creation`), so a
/// child has both the open descriptor and its number, or neither. `Ok(None)`: another thread
/// found it could not be opened.
fn create_in<E>(
    slot: &AtomicI32,
    open: impl FnOnce() -> Result<OwnedFd, E>,
) -> Result<Option<RawFd>, E> {
    let _held = creation::Held::take();
    match slot.load(Ordering::Acquire) {
        JOURNAL_TO_CREATE => {}
        fd => return Ok((fd >= 0).then_some(fd)),
    }
    match open() {
        Ok(fd) => {
            // A number in an atomic from here, held for the life of the process: read
            // lock-free, in forked children too, which close it before a pod's code runs.
            let raw = fd.into_raw_fd();
            crate::ownfd::mark(raw);
            slot.store(raw, Ordering::Release);
            Ok(Some(raw))
        }
        Err(e) => {
            slot.store(NO_JOURNAL, Ordering::Release);
            Err(e)
        }
    }
}
