//! The one home of the words shared by invite's runtime (which writes journals and answers on a
//! live checkpoint's socket) and the `invite` command (which reads them and asks): the journal's
//! schema version, record kinds, field names, outcome and phase names, and the live-checkpoint
//! line protocol. Data only, no dependencies.
//!
//! A change here is a change of the journal's format or of the protocol: bump [`SCHEMA`] or
//! [`live::VERSION`] when a reader of the old words would misread the new ones.
//!
//! ```
//! use invite_vocab::{field, kind, Outcome};
//! // A reader telling a test record from a summary, and reading its outcome.
//! let record = [(field::KIND, kind::TEST), (field::OUTCOME, "fail")];
//! let outcome = record.iter().find(|(k, _)| *k == field::OUTCOME).map(|(_, v)| *v);
//! assert_eq!(outcome.and_then(Outcome::from_name), Some(Outcome::Fail));
//! ```

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
    /// The record's schema version ([`crate::SCHEMA`]).
    pub const SCHEMA: &str = "schema";
    /// The record's kind ([`crate::kind`]).
    pub const KIND: &str = "kind";
    /// When the record was written, RFC 3339 in UTC with microseconds.
    pub const TIME: &str = "time";
    /// The host name of the machine the program ran on.
    pub const HOST: &str = "host";
    /// The process id of the original process (the one the pods are forked from).
    pub const PID: &str = "pid";
    /// The version of the runtime that wrote the record.
    pub const RUNTIME_VERSION: &str = "runtime_version";
    // A test record.
    /// The pod's path within its process: `"3"`, or `"2/1"` for a pod started inside pod 2.
    pub const POD: &str = "pod";
    /// `"file:line"` of the function under test.
    pub const SITE: &str = "site";
    /// The function under test: its C name or its Rust path.
    pub const FUNCTION: &str = "function";
    /// The test's name.
    pub const TEST: &str = "test";
    /// When the test ran ([`crate::phase`]).
    pub const PHASE: &str = "phase";
    /// What happened ([`crate::Outcome`]'s names).
    pub const OUTCOME: &str = "outcome";
    /// The test's own time, in microseconds of wall-clock time: from its first instruction to
    /// its end, as the pod saw it.
    pub const DURATION_US: &str = "duration_us";
    /// The rest of the pod's time, in microseconds: from `ckpt()` (the fork) through the pod's
    /// set-up, and from the test's end through the pod's tear-down to the record.
    pub const POD_US: &str = "pod_us";
    /// The pod's exit status, when it exited.
    pub const EXIT_CODE: &str = "exit_code";
    /// The signal that ended the pod, when one did.
    pub const SIGNAL: &str = "signal";
    /// Why the test did not pass, in words.
    pub const MESSAGE: &str = "message";
    /// The tail of what the pod wrote to stdout and stderr.
    pub const OUTPUT: &str = "output";
    /// Absolute paths of the files the test created, changed or removed.
    pub const CHANGED: &str = "changed";
    /// How the test was isolated: `"pod"` or `"fork"`.
    pub const ISOLATION: &str = "isolation";
    /// The runtime's remarks on the pod, present only when there is something to say.
    pub const NOTES: &str = "notes";
    /// `true` on the record of a nested pod, reported by the pod it ran in.
    pub const RELAYED: &str = "relayed";
    /// `true` on a record cut to fit a line's limit.
    pub const TRUNCATED: &str = "truncated";
    /// `true` on a failing record whose pod may have read a file the host wrote after the
    /// checkpoint (named in `notes`): the failure may be the file's, not the code's.
    pub const UNRELIABLE: &str = "unreliable";
    // A summary record.
    /// How many records the runtime could not write.
    pub const LOST: &str = "lost";
    /// `false` when other threads that called sites were running as the summary was written:
    /// the counts are exact up to then, and their later calls are not in them (see
    /// docs/journal.md).
    pub const CALLS_EXACT: &str = "calls_exact";
    /// How many such threads were running.
    pub const THREADS_RUNNING: &str = "threads_running";
    /// The `INVITE_*` settings the runtime ran with.
    pub const SETTINGS: &str = "settings";
    /// The per-site counters, one object per test.
    pub const SITES: &str = "sites";
    /// Calls of the function under test.
    pub const CALLS: &str = "calls";
    /// Calls sampled to run the test.
    pub const SAMPLED: &str = "sampled";
    /// Sampled calls whose test started in a pod (those that waited in the queue first included).
    pub const STARTED: &str = "started";
    /// Started calls that waited in the queue for a slot first.
    pub const QUEUED: &str = "queued";
    /// Sampled tests not started, per reason ([`SKIPPED_REASONS`]).
    pub const SKIPPED: &str = "skipped";
    /// The reasons under `skipped`: every slot taken and no queue (`concurrency`), the host's
    /// budget (`budget`), called inside a pod (`in_pod`), no room in the host's cgroup
    /// (`cgroup`), the pods' own CPU bound (`pod_cpu`), the queue full or a never-run test took
    /// the waiting call's place (`queue`).
    pub const SKIPPED_REASONS: [&str; 6] = [
        "concurrency",
        "budget",
        "in_pod",
        "cgroup",
        "pod_cpu",
        "queue",
    ];
    /// What testing cost, the budget's terms ([`BUDGET_FIELDS`]).
    pub const BUDGET: &str = "budget";
    /// Under `budget`: the host's elapsed time; what testing cost it (pauses, copy-on-write faults
    /// and the exit drain); the exit drain alone; the pods' own CPU time; the CPUs the pods may
    /// share (a cgroup quota counts). Times in microseconds.
    pub const BUDGET_FIELDS: [&str; 5] =
        ["elapsed_us", "host_us", "drain_us", "pod_cpu_us", "cpus"];
    /// The wait queue ([`QUEUE_FIELDS`]).
    pub const QUEUE: &str = "queue";
    /// Under `queue`: its bound (`INVITE_MAX_QUEUE`); calls that waited in it; waiting repeats a
    /// never-run test displaced; calls still waiting when the summary was written (after the exit
    /// drain: pods that never ran).
    pub const QUEUE_FIELDS: [&str; 4] = ["max", "queued", "displaced", "waiting"];
}

/// When a test runs relative to the call of the function under test (`"phase"`): before it,
/// after it, or `manual` for a pod of an explicit `ckpt()` or a live checkpoint's branch.
pub mod phase {
    /// Before the call, on its arguments.
    pub const PRE: &str = "pre";
    /// After the call, on its arguments and result.
    pub const POST: &str = "post";
    /// At an explicit checkpoint.
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
    /// Request: describe the checkpoint.
    pub const INFO: &str = "INFO";
    /// Request: start a pod branched from the checkpoint.
    pub const BRANCH: &str = "BRANCH";
    /// Request: discard the checkpoint.
    pub const DROP: &str = "DROP";
    /// Request: `PERSIST /DIR`, the seam for a persistence backend.
    pub const PERSIST: &str = "PERSIST";
    /// Answer: success, then `key=value` fields.
    pub const OK: &str = "OK";
    /// Answer: `ERR ` then a message.
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
