//! The seam for checkpoints that outlive their process or move to another machine.
//!
//! A live checkpoint is a parked fork: it lives in memory, next to its process, and dies with it.
//! Writing it to disk and branching from the image later, or elsewhere, needs a process
//! checkpointer that saves a running process's whole state — CRIU. CRIU must be 4.1 or newer on
//! kernels ≥ 6.13 (the vDSO layout changed; 3.17, Debian 12's, stops with "vdso: Unexpected rt vDSO
//! area bounds"), and nothing invite ships may depend on it being installed. So no backend is
//! built in; a `PERSIST DIR` request reaches [`Persist::persist`] and is answered with why.
//!
//! A CRIU backend implements [`Persist`]: dump the parked copy (`criu dump -t PID -D DIR
//! --leave-running`, run by a process that is not its child, or the dump would include itself),
//! and add a branch-from-image path that restores the image inside a fresh pod's namespaces
//! (`criu restore -D DIR` after the pod's isolation steps), so the restored copy returns from
//! `invite_checkpoint()` with its id as a fork does. docs/live-checkpoints.md has the details.

use std::path::Path;

/// Where a parked checkpoint can be saved to.
pub trait Persist {
    /// Write the parked copy `parked` as an image into `dir`, leaving it parked.
    fn persist(&self, parked: libc::pid_t, dir: &Path) -> Result<(), String>;
}

/// The backend of this build: none.
pub struct Unavailable;

impl Persist for Unavailable {
    fn persist(&self, _parked: libc::pid_t, dir: &Path) -> Result<(), String> {
        Err(format!(
            "cannot persist to {}: live checkpoints are in memory only; saving one needs a CRIU \
             backend (CRIU >= 4.1 on kernels >= 6.13), which this build does not have",
            dir.display()
        ))
    }
}

pub fn backend() -> &'static dyn Persist {
    &Unavailable
}
