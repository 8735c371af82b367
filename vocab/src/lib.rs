//! The one home of the words shared by invite's runtime (which writes journals and answers on a
//! live checkpoint's socket) and the `invite` command (which reads them and asks): the journal's
//! schema version, record kinds, field names, outcome and phase names, and the live-checkpoint
//! line protocol. Data only, no dependencies.
//!
//! A change here is a change of the journal's format or of the protocol: bump [`SCHEMA`] or
//! [`live::VERSION`] when a reader of the old words would misread the new ones.

#![no_std]
#![forbid(unsafe_code)]

use core::fmt;

/// The journal's schema version (`"schema"` in every record).
pub const SCHEMA: u64 = 1;

/// The record kinds (`"kind"`).
pub mod kind {
    /// One test's record: a pod's end.
    pub const TEST: &str = "test";
    /// The summary written at the host's exit: per-site counters.
    pub const SUMMARY: &str = "summary";
}

/// The fields of journal records, in the order the runtime writes them.
pub mod field {
    pub const SCHEMA: &str = "schema";
    pub const KIND: &str = "kind";
    pub const TIME: &str = "time";
    pub const HOST: &str = "host";
    pub const PID: &str = "pid";
    pub const RUNTIME_VERSION: &str = "runtime_version";
    // A test record.
    pub const POD: &str = "pod";
    pub const SITE: &str = "site";
    pub const FUNCTION: &str = "function";
    pub const TEST: &str = "test";
    pub const PHASE: &str = "phase";
    pub const OUTCOME: &str = "outcome";
    pub const DURATION_US: &str = "duration_us";
    pub const EXIT_CODE: &str = "exit_code";
    pub const SIGNAL: &str = "signal";
    pub const MESSAGE: &str = "message";
    pub const OUTPUT: &str = "output";
    pub const CHANGED: &str = "changed";
    pub const ISOLATION: &str = "isolation";
    pub const NOTES: &str = "notes";
    pub const RELAYED: &str = "relayed";
    pub const TRUNCATED: &str = "truncated";
    // A summary record.
    pub const LOST: &str = "lost";
    pub const SETTINGS: &str = "settings";
    pub const SITES: &str = "sites";
    pub const CALLS: &str = "calls";
    pub const SAMPLED: &str = "sampled";
    pub const STARTED: &str = "started";
    pub const SKIPPED: &str = "skipped";
    /// The reasons under `skipped`.
    pub const SKIPPED_REASONS: [&str; 4] = ["concurrency", "budget", "in_pod", "cgroup"];
}

/// When a test runs relative to the call of the function under test (`"phase"`): before it,
/// after it, or `manual` for a pod of an explicit `ckpt()` or a live checkpoint's branch.
pub mod phase {
    pub const PRE: &str = "pre";
    pub const POST: &str = "post";
    pub const MANUAL: &str = "manual";
}

/// What happened to an in vivo test in its pod.
///
/// ```
/// assert_eq!(invite_vocab::Outcome::Timeout.as_str(), "timeout");
/// assert_eq!(invite_vocab::Outcome::from_name("crash"), Some(invite_vocab::Outcome::Crash));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// Every outcome, in the contract's order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Crash,
        Outcome::Timeout,
        Outcome::Error,
    ];

    /// The outcome's name as the journal writes it (`pass`, `fail`, `crash`, `timeout`, `error`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Crash => "crash",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
        }
    }

    /// The outcome a journal's name stands for.
    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The line protocol on a live checkpoint's socket: one request line per connection, one answer
/// line (`OK key=value ...` or `ERR message`).
pub mod live {
    /// The protocol's version.
    pub const VERSION: u32 = 1;
    /// Requests.
    pub const INFO: &str = "INFO";
    pub const BRANCH: &str = "BRANCH";
    pub const DROP: &str = "DROP";
    /// `PERSIST /DIR`.
    pub const PERSIST: &str = "PERSIST";
    /// Answers: `OK` then fields, or `ERR ` then a message.
    pub const OK: &str = "OK";
    pub const ERR: &str = "ERR";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_reads_back_from_its_name() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::from_name(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::from_name("passed"), None);
        assert_eq!(Outcome::from_name("PASS"), None);
    }
}
