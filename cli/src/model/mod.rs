//! The one model of the journal: every record is folded into an [`Aggregate`] as it is read, and
//! every output — the table, `--json`, HTML, JUnit, Prometheus, `--follow` — is drawn from the
//! [`Report`] it gives. Nothing here prints.
//!
//! Memory does not grow with the number of records, only with what is distinct in them, and that
//! is capped: at most [`MAX_ROWS`] (function, test) rows, each with a bounded duration
//! distribution ([`durations`]); at most [`MAX_PROCESSES`] processes' latest summaries; the
//! `--failures` most recent failures; a bounded [`timeline`]. Past a cap, what is left out is
//! counted and reported, never silently dropped.
//!
//! The join with summaries: a summary record holds a process's counters since it started, so only
//! the latest summary of each process, keyed by (host, pid), is counted. "Latest" is the greatest
//! `time`, and among equal times the one later in the input. Site entries join rows by
//! (`function`, `test`); an entry without `test` goes to a row of its own, test `*`.

pub mod durations;
mod failures;
pub mod timeline;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::journal::{Origin, Outcome, Record, SiteCounts, Summary, TestRecord};
pub use durations::Durations;
pub use failures::Failure;
use failures::Recent;
use timeline::Timeline;

/// The test name of a row that holds a site's skips when the site did not name its test.
pub const ANY_TEST: &str = "*";
/// Distinct (function, test) rows kept; records of further pairs count in the totals only.
pub const MAX_ROWS: usize = 10_000;
/// Processes whose latest summary is kept; summaries of further processes are left out.
pub const MAX_PROCESSES: usize = 10_000;

/// How much of the failures to keep.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub failures: usize,
    pub output_lines: usize,
}

#[derive(Clone, Debug, Default)]
struct RowState {
    outcomes: [u64; 5],
    durations: Durations,
    /// The latest failing run: (time, seq) and the failure, message and output cut short.
    last_failure: Option<(Option<String>, u64, Failure)>,
}

/// Message and output kept of each row's latest failure.
const ROW_FAILURE_KEPT: usize = 4 << 10;

#[derive(Clone, Debug)]
struct Latest {
    time: Option<String>,
    seq: u64,
    summary: Summary,
}

/// Everything read so far, folded.
pub struct Aggregate {
    limits: Limits,
    rows: BTreeMap<(String, String), RowState>,
    rows_left_out: u64,
    totals: [u64; 5],
    durations: Durations,
    failures: u64,
    recent: Recent,
    processes: HashMap<(Option<String>, Option<u64>), Latest>,
    processes_left_out: u64,
    timeline: Timeline,
    warnings: u64,
}

/// One row of the report: a (function, test).
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
    /// Sampled calls whose test was not started, all reasons together, and by reason.
    pub skipped: u64,
    pub skipped_by: BTreeMap<String, u64>,
    /// From the summaries: calls of the function at this site, calls sampled, tests started.
    pub calls: u64,
    pub sampled: u64,
    pub started: u64,
    /// No run of this test is in the journal: it is known from the summaries only.
    pub never_ran: bool,
    pub median_us: Option<u64>,
    pub p99_us: Option<u64>,
    /// Whether median and p99 are exact (else within 3 %, past 256 runs).
    pub exact: bool,
    /// The sum of all runs' durations.
    pub total_us: u64,
    /// The latest run that did not pass (message and output cut to 4 KiB).
    #[serde(skip)]
    pub last_failure: Option<Failure>,
    /// Runs per power of two of `duration_us` (see [`Durations::octaves`]).
    #[serde(skip)]
    pub octaves: BTreeMap<i32, u64>,
}

impl Row {
    pub fn count(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Pass => self.pass,
            Outcome::Fail => self.fail,
            Outcome::Crash => self.crash,
            Outcome::Timeout => self.timeout,
            Outcome::Error => self.error,
        }
    }
}

/// The model at one moment: what every output shows.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub tests: Vec<Row>,
    /// Runs per outcome over all records.
    #[serde(serialize_with = "crate::outcome::counts")]
    pub totals: BTreeMap<Outcome, u64>,
    /// All failing runs (fail, crash, timeout, error), of which `recent_failures` are the latest.
    pub failures: u64,
    pub recent_failures: Vec<Failure>,
    /// Journal lines that were ignored.
    pub warnings: u64,
    /// Records the runtime could not write (`lost` in the latest summary of each process).
    pub lost: u64,
    /// The settings the processes ran with, as their summaries recorded them (`settings`).
    pub settings: BTreeMap<String, String>,
    /// Records of (function, test) pairs past the row limit, counted in `totals` only.
    pub rows_left_out: u64,
    /// Summaries of processes past the process limit, not counted.
    pub summaries_left_out: u64,
    /// Counters that reached u64::MAX and stopped there.
    pub saturated: Vec<String>,
    /// Every run's duration, per power of two (HTML).
    #[serde(skip)]
    pub durations: BTreeMap<i32, u64>,
    #[serde(skip)]
    pub timeline: Timeline,
}

impl Report {
    pub fn runs(&self) -> u64 {
        self.totals.values().fold(0u64, |a, &b| a.saturating_add(b))
    }

    pub fn skipped(&self) -> u64 {
        self.tests
            .iter()
            .fold(0u64, |a, r| a.saturating_add(r.skipped))
    }
}

/// Adds `b` to `a`, stopping at u64::MAX and noting `what` when it does.
fn add(a: &mut u64, b: u64, what: &str, saturated: &mut Vec<String>) {
    match a.checked_add(b) {
        Some(sum) => *a = sum,
        None => {
            *a = u64::MAX;
            if !saturated.iter().any(|s| s == what) {
                saturated.push(what.to_string());
            }
        }
    }
}

impl Aggregate {
    pub fn new(limits: Limits) -> Aggregate {
        Aggregate {
            limits,
            rows: BTreeMap::new(),
            rows_left_out: 0,
            totals: [0; 5],
            durations: Durations::default(),
            failures: 0,
            recent: Recent::new(limits.failures),
            processes: HashMap::new(),
            processes_left_out: 0,
            timeline: Timeline::default(),
            warnings: 0,
        }
    }

    /// Folds one record in.
    pub fn add(&mut self, origin: &Origin, record: Record) {
        match record {
            Record::Test(test) => self.add_test(origin, *test),
            Record::Summary(summary) => self.add_summary(origin, summary),
        }
    }

    /// Counts one ignored journal line.
    pub fn add_warning(&mut self) {
        self.warnings = self.warnings.saturating_add(1);
    }

    fn add_test(&mut self, origin: &Origin, t: TestRecord) {
        let o = t.outcome as usize;
        self.totals[o] = self.totals[o].saturating_add(1);
        self.durations.add(t.duration_us);
        let key = (t.function.clone(), t.test.clone());
        let room = self.rows.len() < MAX_ROWS;
        let row = match self.rows.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => Some(e.into_mut()),
            std::collections::btree_map::Entry::Vacant(e) if room => {
                Some(e.insert(RowState::default()))
            }
            std::collections::btree_map::Entry::Vacant(_) => {
                self.rows_left_out = self.rows_left_out.saturating_add(1);
                None
            }
        };
        if let Some(row) = row {
            row.outcomes[o] = row.outcomes[o].saturating_add(1);
            row.durations.add(t.duration_us);
            if t.outcome != Outcome::Pass {
                let newer = match &row.last_failure {
                    None => true,
                    Some((time, seq, _)) => (&t.time, origin.seq) > (time, *seq),
                };
                if newer {
                    let f = failures::small(origin, &t, ROW_FAILURE_KEPT);
                    row.last_failure = Some((t.time.clone(), origin.seq, f));
                }
            }
        }
        let series = match (&t.host, t.pid) {
            (Some(host), Some(pid)) => format!("{host} pid {pid}"),
            (None, Some(pid)) => format!("pid {pid}"),
            (Some(host), None) => host.clone(),
            (None, None) => "?".into(),
        };
        self.timeline.add(&series, t.time.as_deref(), t.outcome);
        if t.outcome != Outcome::Pass {
            self.failures = self.failures.saturating_add(1);
            self.recent.offer(origin, t);
        }
    }

    fn add_summary(&mut self, origin: &Origin, summary: Summary) {
        let key = (summary.host.clone(), summary.pid);
        let newer = match self.processes.get(&key) {
            None if self.processes.len() >= MAX_PROCESSES => {
                self.processes_left_out = self.processes_left_out.saturating_add(1);
                return;
            }
            None => true,
            Some(seen) => (&summary.time, origin.seq) >= (&seen.time, seen.seq),
        };
        if newer {
            let latest = Latest {
                time: summary.time.clone(),
                seq: origin.seq,
                summary,
            };
            self.processes.insert(key, latest);
        }
    }

    /// The report as of now.
    pub fn report(&self) -> Report {
        let mut saturated = Vec::new();
        let mut rows: BTreeMap<(&str, &str), Row> = BTreeMap::new();
        for ((function, test), state) in &self.rows {
            let o = state.outcomes;
            let d = &state.durations;
            rows.insert(
                (function, test),
                Row {
                    function: function.clone(),
                    test: test.clone(),
                    runs: o.iter().fold(0u64, |a, &b| a.saturating_add(b)),
                    pass: o[0],
                    fail: o[1],
                    crash: o[2],
                    timeout: o[3],
                    error: o[4],
                    skipped: 0,
                    skipped_by: base_reasons(),
                    calls: 0,
                    sampled: 0,
                    started: 0,
                    never_ran: false,
                    median_us: d.median(),
                    p99_us: d.percentile(99),
                    exact: d.is_exact(),
                    total_us: d.total(),
                    last_failure: state.last_failure.as_ref().map(|(_, _, f)| f.clone()),
                    octaves: d.octaves(),
                },
            );
        }
        let mut latest: Vec<&Latest> = self.processes.values().collect();
        latest.sort_by_key(|l| l.seq);
        let mut lost = 0u64;
        let mut settings = BTreeMap::new();
        for l in &latest {
            add(
                &mut lost,
                l.summary.lost.unwrap_or(0),
                "lost",
                &mut saturated,
            );
            for (k, v) in &l.summary.settings {
                settings.insert(k.clone(), v.clone());
            }
            for site in &l.summary.sites {
                let test = site.test.as_deref().unwrap_or(ANY_TEST);
                let key = (site.function.as_str(), test);
                if !rows.contains_key(&key) && rows.len() >= MAX_ROWS {
                    continue;
                }
                let row = rows
                    .entry(key)
                    .or_insert_with(|| empty_row(&site.function, test));
                add_site(row, site, &mut saturated);
            }
        }
        let tests: Vec<Row> = rows
            .into_values()
            .map(|mut row| {
                row.never_ran = row.runs == 0;
                row
            })
            .collect();
        Report {
            tests,
            totals: Outcome::ALL
                .iter()
                .map(|&o| (o, self.totals[o as usize]))
                .collect(),
            failures: self.failures,
            recent_failures: self.recent.failures(self.limits.output_lines),
            warnings: self.warnings,
            lost,
            settings,
            rows_left_out: self.rows_left_out,
            summaries_left_out: self.processes_left_out,
            saturated,
            durations: self.durations.octaves(),
            timeline: self.timeline.clone(),
        }
    }
}

/// The reasons every row shows, even at 0.
fn base_reasons() -> BTreeMap<String, u64> {
    ["concurrency", "budget", "in_pod"]
        .iter()
        .map(|r| (r.to_string(), 0))
        .collect()
}

fn empty_row(function: &str, test: &str) -> Row {
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
        skipped_by: base_reasons(),
        calls: 0,
        sampled: 0,
        started: 0,
        never_ran: true,
        median_us: None,
        p99_us: None,
        exact: true,
        total_us: 0,
        last_failure: None,
        octaves: BTreeMap::new(),
    }
}

fn add_site(row: &mut Row, site: &SiteCounts, saturated: &mut Vec<String>) {
    add(&mut row.calls, site.calls, "calls", saturated);
    add(&mut row.sampled, site.sampled, "sampled", saturated);
    add(&mut row.started, site.started, "started", saturated);
    for (reason, &n) in &site.skipped.0 {
        let slot = row.skipped_by.entry(reason.clone()).or_insert(0);
        add(slot, n, &format!("skipped.{reason}"), saturated);
        add(&mut row.skipped, n, "skipped", saturated);
    }
}
