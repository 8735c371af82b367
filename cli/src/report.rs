//! Aggregation: test records and summaries into one row per (function, test), and the most
//! recent failures.
//!
//! Pure data in, data out; printing is [`crate::render`]'s.
//!
//! The join with summaries: a summary record holds a process's counters since it started, so only
//! the latest summary of each process, keyed by (host, pid), is counted — a process that writes a
//! summary on demand and again at exit is not counted twice. "Latest" is the greatest `time`, and
//! among equal times the one later in the input. Each summary site entry names its `function` and
//! `test` (the join is on those, not on `site`, which the tests of one function share), and its
//! `skipped` counts are added to that row; an entry without `test` goes to a row of its own,
//! test `*`.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::journal::{Journal, Origin, Outcome, Skipped, Summary, TestRecord};

/// The test name of a row that holds a site's skips when the site did not name its test.
pub const ANY_TEST: &str = "*";

/// One row of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub function: String,
    pub test: String,
    pub runs: u64,
    pub pass: u64,
    pub fail: u64,
    pub crash: u64,
    pub timeout: u64,
    pub error: u64,
    /// Tests turned away, all reasons together.
    pub skipped: u64,
    pub skipped_by: Skipped,
    /// From the summaries: calls of the function at this site, calls sampled, tests started.
    pub calls: u64,
    pub sampled: u64,
    pub started: u64,
    /// Median of `duration_us` over all runs (mean of the two middle ones for an even count);
    /// `None` without runs.
    pub median_us: Option<u64>,
    /// 99th percentile, nearest rank: the smallest duration at or above 99% of runs.
    pub p99_us: Option<u64>,
}

impl Row {
    fn new(function: &str, test: &str) -> Row {
        Row {
            function: function.to_string(),
            test: test.to_string(),
            runs: 0,
            pass: 0,
            fail: 0,
            crash: 0,
            timeout: 0,
            error: 0,
            skipped: 0,
            skipped_by: Skipped::default(),
            calls: 0,
            sampled: 0,
            started: 0,
            median_us: None,
            p99_us: None,
        }
    }

    fn count_mut(&mut self, outcome: Outcome) -> &mut u64 {
        match outcome {
            Outcome::Pass => &mut self.pass,
            Outcome::Fail => &mut self.fail,
            Outcome::Crash => &mut self.crash,
            Outcome::Timeout => &mut self.timeout,
            Outcome::Error => &mut self.error,
        }
    }
}

/// A test that did not pass, as a user wants to see it first.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// `file:line` of the record in the journal.
    pub journal: String,
    pub time: Option<String>,
    pub host: Option<String>,
    pub pid: Option<u64>,
    pub pod: Option<String>,
    pub function: String,
    pub test: String,
    pub outcome: Outcome,
    pub exit_code: Option<i64>,
    pub signal: Option<String>,
    pub message: Option<String>,
    /// The last lines of the pod's output.
    pub output_tail: Vec<String>,
    /// The record was longer than 64 KiB and its output was cut.
    pub truncated: bool,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tests: Vec<Row>,
    /// Runs per outcome over all rows.
    pub totals: BTreeMap<Outcome, u64>,
    /// All failing runs (fail, crash, timeout, error), of which `recent_failures` are the latest.
    pub failures: u64,
    pub recent_failures: Vec<Failure>,
    /// Journal lines that were ignored.
    pub warnings: usize,
}

/// How much of a failure to keep.
pub struct Limits {
    pub failures: usize,
    pub output_lines: usize,
}

pub fn build(journal: &Journal, limits: &Limits) -> Report {
    let mut rows: BTreeMap<(String, String), (Row, Vec<u64>)> = BTreeMap::new();
    let mut totals: BTreeMap<Outcome, u64> = Outcome::ALL.iter().map(|&o| (o, 0)).collect();
    for (_, record) in &journal.tests {
        let (row, durations) = rows
            .entry((record.function.clone(), record.test.clone()))
            .or_insert_with(|| (Row::new(&record.function, &record.test), Vec::new()));
        row.runs += 1;
        *row.count_mut(record.outcome) += 1;
        *totals.entry(record.outcome).or_default() += 1;
        durations.push(record.duration_us);
    }
    for summary in latest_per_process(&journal.summaries) {
        for site in &summary.sites {
            let test = site.test.as_deref().unwrap_or(ANY_TEST);
            let (row, _) = rows
                .entry((site.function.clone(), test.to_string()))
                .or_insert_with(|| (Row::new(&site.function, test), Vec::new()));
            row.skipped_by.add(&site.skipped);
            row.calls += site.calls;
            row.sampled += site.sampled;
            row.started += site.started;
        }
    }
    let tests = rows
        .into_values()
        .map(|(mut row, mut durations)| {
            durations.sort_unstable();
            row.median_us = median(&durations);
            row.p99_us = percentile(&durations, 99);
            row.skipped = row.skipped_by.total();
            row
        })
        .collect();

    let mut failing: Vec<&(Origin, TestRecord)> = journal
        .tests
        .iter()
        .filter(|(_, t)| t.outcome != Outcome::Pass)
        .collect();
    let failures = failing.len() as u64;
    // Most recent first: by time, then by position in the input.
    failing.sort_by(|(a_origin, a), (b_origin, b)| {
        (&b.time, b_origin.seq).cmp(&(&a.time, a_origin.seq))
    });
    let recent_failures = failing
        .into_iter()
        .take(limits.failures)
        .map(|(origin, t)| failure(origin, t, limits.output_lines))
        .collect();

    Report {
        tests,
        totals,
        failures,
        recent_failures,
        warnings: journal.warnings.len(),
    }
}

/// A process: (host, pid).
type Process<'a> = (Option<&'a str>, Option<u64>);

fn latest_per_process(summaries: &[(Origin, Summary)]) -> Vec<&Summary> {
    let mut latest: HashMap<Process, &(Origin, Summary)> = HashMap::new();
    for entry in summaries {
        let (origin, summary) = entry;
        let key = (summary.host.as_deref(), summary.pid);
        let newer = match latest.get(&key) {
            None => true,
            Some((seen_origin, seen)) => {
                (&summary.time, origin.seq) >= (&seen.time, seen_origin.seq)
            }
        };
        if newer {
            latest.insert(key, entry);
        }
    }
    let mut chosen: Vec<_> = latest.into_values().collect();
    chosen.sort_by_key(|(origin, _)| origin.seq);
    chosen.into_iter().map(|(_, s)| s).collect()
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
        function: t.function.clone(),
        test: t.test.clone(),
        outcome: t.outcome,
        exit_code: t.exit_code,
        signal: t.signal.clone(),
        message: t.message.clone(),
        output_tail,
        truncated: t.truncated,
    }
}

/// The median of sorted values; the mean of the two middle values for an even count.
pub fn median(sorted: &[u64]) -> Option<u64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => {
            let (a, b) = (sorted[n / 2 - 1], sorted[n / 2]);
            // Halves first, so two durations near u64::MAX do not overflow.
            Some(a / 2 + b / 2 + (a % 2 + b % 2) / 2)
        }
    }
}

/// The nearest-rank percentile of sorted values: the smallest value that at least `p`% of the
/// values are at or below.
pub fn percentile(sorted: &[u64], p: usize) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p99() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7]), Some(7));
        assert_eq!(median(&[1, 2, 9]), Some(2));
        assert_eq!(median(&[10, 21]), Some(15));
        assert_eq!(median(&[u64::MAX, u64::MAX]), Some(u64::MAX));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 99), Some(99));
        assert_eq!(percentile(&hundred, 50), Some(50));
        let two_hundred: Vec<u64> = (1..=200).collect();
        assert_eq!(percentile(&two_hundred, 99), Some(198));
        assert_eq!(percentile(&[3], 99), Some(3));
        assert_eq!(percentile(&[1, 2, 3, 1000], 99), Some(1000));
    }
}
