//! The one vocabulary of outcomes, shared by C, Rust, the journal and the CLI.

use std::fmt;

/// What happened to an in vivo test in its pod.
///
/// ```
/// assert_eq!(invite::Outcome::Timeout.as_str(), "timeout");
/// assert_eq!(invite::Outcome::Fail.to_string(), "fail");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Returned normally: `()`/void, nonzero int, `true`, `Ok(_)`.
    Pass,
    /// Returned 0/`false`/`Err`, `invite_fail`, `abort()` (SIGABRT), or a Rust panic.
    Fail,
    /// Killed by another signal (SIGSEGV, SIGBUS, SIGKILL from a limit, ...).
    Crash,
    /// Past its deadline.
    Timeout,
    /// The pod could not be built, the test called `exit()`, or the runtime failed.
    Error,
}

impl Outcome {
    /// The outcome's name as the journal writes it (`pass`, `fail`, `crash`, `timeout`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Crash => "crash",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The conventional name of a signal, as the journal writes it.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSTKFLT => "SIGSTKFLT",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("SIG{sig}"),
    };
    name.to_string()
}
