//! The most recent failing runs, at most as many as will be shown.

use serde::Serialize;

use crate::journal::{Origin, Outcome, TestRecord};

/// Output kept per failure: its end, the part nearest to what ended the test.
const OUTPUT_KEPT: usize = 64 << 10;
/// Changed files kept per failure.
const CHANGED_KEPT: usize = 100;

/// A test that did not pass, as a user wants to see it first.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// `file:line` of the record in the journal.
    pub journal: String,
    pub time: Option<String>,
    pub host: Option<String>,
    pub pid: Option<u64>,
    pub pod: Option<String>,
    pub site: Option<String>,
    pub function: String,
    pub test: String,
    #[serde(serialize_with = "crate::outcome::serialize")]
    pub outcome: Outcome,
    pub duration_us: u64,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    pub message: Option<String>,
    /// The last lines of the pod's output.
    pub output_tail: Vec<String>,
    /// The record was longer than 64 KiB and its output was cut.
    pub truncated: bool,
    /// Files the test created, changed or removed (the first 100).
    pub changed: Vec<String>,
    /// The pod may have read files the host wrote after the checkpoint: the failure may be
    /// theirs, not the code's.
    pub unreliable: bool,
    /// The runtime's notes on the pod (for an unreliable failure, the files it names).
    pub notes: Vec<String>,
    /// The whole output kept (its last 64 KiB), for the HTML report.
    #[serde(skip)]
    pub output: String,
}

/// Newest first, by (time, position in the input).
pub struct Recent {
    keep: usize,
    list: Vec<(Option<String>, u64, Origin, TestRecord)>,
}

impl Recent {
    pub fn new(keep: usize) -> Recent {
        Recent {
            keep,
            list: Vec::new(),
        }
    }

    pub fn offer(&mut self, origin: &Origin, mut t: TestRecord) {
        let key = (&t.time, origin.seq);
        let at = self
            .list
            .iter()
            .position(|(time, seq, _, _)| key > (time, *seq))
            .unwrap_or(self.list.len());
        if at >= self.keep {
            return;
        }
        keep_end(&mut t.output, OUTPUT_KEPT);
        t.changed.truncate(CHANGED_KEPT);
        self.list
            .insert(at, (t.time.clone(), origin.seq, origin.clone(), t));
        self.list.truncate(self.keep);
    }

    pub fn failures(&self, output_lines: usize) -> Vec<Failure> {
        self.list
            .iter()
            .map(|(_, _, origin, t)| failure(origin, t, output_lines))
            .collect()
    }
}

/// Cuts `text` to its last `max` bytes (at a character boundary).
pub fn keep_end(text: &mut String, max: usize) {
    if text.len() > max {
        let mut from = text.len() - max;
        while !text.is_char_boundary(from) {
            from += 1;
        }
        text.drain(..from);
    }
}

/// A row's latest failure, small: its message and output cut to `max` bytes each.
pub fn small(origin: &Origin, t: &TestRecord, max: usize) -> Failure {
    let mut f = failure(origin, t, 5);
    keep_end(&mut f.output, max);
    if let Some(m) = &mut f.message {
        keep_end(m, max);
    }
    f.changed.truncate(10);
    f
}

fn failure(origin: &Origin, t: &TestRecord, output_lines: usize) -> Failure {
    let lines: Vec<&str> = t.output.trim_end_matches('\n').lines().collect();
    let output_tail = lines[lines.len().saturating_sub(output_lines)..]
        .iter()
        .map(|l| l.to_string())
        .collect();
    Failure {
        journal: origin.to_string(),
        time: t.time.clone(),
        host: t.host.clone(),
        pid: t.pid,
        pod: t.pod.clone(),
        site: t.site.clone(),
        function: t.function.clone(),
        test: t.test.clone(),
        outcome: t.outcome,
        duration_us: t.duration_us,
        exit_code: t.exit_code,
        signal: t.signal.clone(),
        message: t.message.clone(),
        output_tail,
        truncated: t.truncated,
        changed: t.changed.iter().take(CHANGED_KEPT).cloned().collect(),
        unreliable: t.unreliable,
        notes: t.notes.clone(),
        output: t.output.clone(),
    }
}
