//! What a pod is for (`PodKind`) and what starting one returns (`Ckpt`, `CkptError`): the
//! words shared by the fork sites (`snapshot`, `warm`, `live`) and the record of a pod's end.

use crate::site::Site;
use std::fmt;
use std::sync::Mutex;

/// Which side of a checkpoint this process is on.
///
/// ```no_run
/// match invite::ckpt() {
///     Ok(invite::Ckpt::Original) => { /* the host: goes on as if nothing happened */ }
///     Ok(invite::Ckpt::Pod(k)) => {
///         // A private copy of the process, in its own pod: look around, then end.
///         println!("pod {k}");
///         std::process::exit(0); // status 0 is `pass`
///     }
///     Err(e) => eprintln!("no pod: {e}"),
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ckpt {
    /// The original process, which goes on as if nothing happened.
    Original,
    /// Inside the pod: the k-th pod this process started (1, 2, 3, ...).
    Pod(u32),
}

/// Why no pod was started: the fork failed, in vivo testing is off or over its budget, or this
/// host cannot isolate a pod (the start-up probe names the missing piece).
///
/// ```no_run
/// if let Err(e) = invite::ckpt() {
///     eprintln!("no pod (errno {}): {}", e.errno, e.message);
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CkptError {
    /// A positive errno value.
    pub errno: i32,
    /// What was missing or failed, in words.
    pub message: String,
}

impl fmt::Display for CkptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CkptError {}

static LAST_ERROR: Mutex<String> = Mutex::new(String::new());

/// The last failure's message, locked. In a pod, where another thread of the host may have held
/// the lock at the fork (and never releases it there), it is only tried: `None` if taken.
fn last_error_slot() -> Option<std::sync::MutexGuard<'static, String>> {
    if !crate::runtime::in_pod() {
        return Some(LAST_ERROR.lock().unwrap_or_else(|e| e.into_inner()));
    }
    match LAST_ERROR.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

pub fn last_error() -> String {
    last_error_slot().map(|m| m.clone()).unwrap_or_default()
}

pub(crate) fn fail(errno: i32, message: String) -> CkptError {
    if let Some(mut slot) = last_error_slot() {
        *slot = message.clone();
    }
    CkptError { errno, message }
}

/// What a pod is for.
#[derive(Clone, Copy)]
pub enum PodKind {
    /// An in vivo test at a site; the test body runs in the pod, then `pod::end_test` ends it.
    Site {
        site: &'static Site,
        owner: Option<&'static str>,
    },
    /// An explicit `ckpt()`: the pod goes on from the call and ends when its code exits.
    Manual {
        file: &'static str,
        line: u32,
        function: &'static str,
    },
    /// A pod branched from a live checkpoint (`live`): it goes on from the
    /// `invite_checkpoint()` call and ends when its code exits, like `Manual`.
    Branch {
        file: &'static str,
        line: u32,
        function: &'static str,
    },
}
