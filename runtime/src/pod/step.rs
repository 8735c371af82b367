//! A setup step: its name and what a failure of it reports (`SetupError`), and the faults tests
//! inject into named steps (`INVITE_FAULT_STEP`).

use crate::sys;
use std::fmt;
use std::io;

/// A setup step that failed, with the OS error.
#[derive(Debug)]
pub struct SetupError {
    pub step: &'static str,
    pub err: io::Error,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pod setup failed at step \"{}\": {}",
            self.step, self.err
        )
    }
}

pub(crate) trait Step<T> {
    fn step(self, name: &'static str) -> Result<T, SetupError>;
}

impl<T> Step<T> for io::Result<T> {
    fn step(self, step: &'static str) -> Result<T, SetupError> {
        if death_injected(step) {
            sys::exit_now(137);
        }
        if fault_injected(step) {
            return Err(SetupError {
                step,
                err: io::Error::from_raw_os_error(libc::EPERM),
            });
        }
        self.map_err(|err| SetupError { step, err })
    }
}

/// `INVITE_FAULT_STEP=<step name>` makes that setup step fail with EPERM, so tests can prove
/// that a failing step stops the pod before user code runs and is journaled with its name.
/// Read once, in the host, before any fork.
static FAULT_STEP: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

pub fn read_fault_injection() {
    FAULT_STEP.get_or_init(|| sys::secure_getenv_str("INVITE_FAULT_STEP"));
}

pub(crate) fn fault_injected(step: &str) -> bool {
    matches!(FAULT_STEP.get(), Some(Some(s)) if s == step)
}

/// `INVITE_FAULT_STEP="die at <step>"`: the test ends at that step without a word, as one the
/// OOM killer took would.
fn death_injected(step: &str) -> bool {
    matches!(FAULT_STEP.get(), Some(Some(s)) if s.strip_prefix("die at ") == Some(step))
}
