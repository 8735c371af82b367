//! Output: aligned text tables, durations a person can read, and the report as text or JSON.
//!
//! Everything here returns a `String`; the commands write it out in one go.

use std::fmt::Write as _;

use crate::journal::Outcome;
use crate::report::{Failure, Report};

/// Column alignment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A plain text table: a header row, then one line per row, columns two spaces apart.
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
    }

    pub fn render(&self, out: &mut String) {
        // Widths in characters, not bytes: "µs" is one column wide.
        let width = |s: &str| s.chars().count();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| width(&r[i]))
                    .chain([width(self.columns[i].0)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let headers: Vec<String> = self.columns.iter().map(|c| c.0.to_string()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - width(cell));
                match self.columns[i].1 {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

/// A duration in microseconds, in the unit that keeps it short: `850 µs`, `12.3 ms`, `2.50 s`.
pub fn duration(us: u64) -> String {
    fn scaled(value: f64, unit: &str) -> String {
        if value < 10.0 {
            format!("{value:.2} {unit}")
        } else if value < 100.0 {
            format!("{value:.1} {unit}")
        } else {
            format!("{value:.0} {unit}")
        }
    }
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        scaled(us as f64 / 1e3, "ms")
    } else {
        scaled(us as f64 / 1e6, "s")
    }
}

/// The id a kept pod goes by: `<pid>.<pod path with '/' as '.'>`, as in `invite pods`.
pub fn pod_id(pid: Option<u64>, pod: Option<&str>) -> Option<String> {
    let pod = pod?.replace('/', ".");
    Some(match pid {
        Some(pid) => format!("{pid}.{pod}"),
        None => pod,
    })
}

/// The outcome with what ended the pod: `crash (SIGSEGV)`, `error (exit 3)`. An exit status of 0
/// says nothing (a failing test's pod may still exit 0), so it is left out.
pub fn outcome_text(outcome: Outcome, signal: Option<&str>, exit_code: Option<i64>) -> String {
    match (signal, exit_code) {
        (Some(signal), _) => format!("{outcome} ({signal})"),
        (None, Some(code)) if code != 0 => format!("{outcome} (exit {code})"),
        _ => outcome.to_string(),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The report as text: the table, a totals line, then the most recent failures.
pub fn report_text(report: &Report) -> String {
    let mut out = String::new();
    if report.tests.is_empty() {
        out.push_str("no test records\n");
        return out;
    }
    let right = Align::Right;
    let mut table = Table::new(&[
        ("FUNCTION", Align::Left),
        ("TEST", Align::Left),
        ("RUNS", right),
        ("PASS", right),
        ("FAIL", right),
        ("CRASH", right),
        ("TIMEOUT", right),
        ("ERROR", right),
        ("SKIPPED", right),
        ("MEDIAN", right),
        ("P99", right),
    ]);
    let time = |us: Option<u64>| us.map_or_else(|| "-".to_string(), duration);
    for row in &report.tests {
        table.push(vec![
            row.function.clone(),
            row.test.clone(),
            row.runs.to_string(),
            row.pass.to_string(),
            row.fail.to_string(),
            row.crash.to_string(),
            row.timeout.to_string(),
            row.error.to_string(),
            row.skipped.to_string(),
            time(row.median_us),
            time(row.p99_us),
        ]);
    }
    table.render(&mut out);

    let runs: u64 = report.totals.values().sum();
    let skipped: u64 = report.tests.iter().map(|r| r.skipped).sum();
    let mut outcomes = vec![format!("{} pass", report.totals[&Outcome::Pass])];
    outcomes.extend(
        Outcome::ALL[1..]
            .iter()
            .filter(|o| report.totals[o] > 0)
            .map(|o| format!("{} {o}", report.totals[o])),
    );
    let _ = write!(
        out,
        "\n{} in {}: {}; {skipped} skipped",
        plural(runs, "run", "runs"),
        plural(report.tests.len() as u64, "test", "tests"),
        outcomes.join(", "),
    );
    if report.warnings > 0 {
        let _ = write!(
            out,
            "; {} ignored (see warnings)",
            plural(report.warnings as u64, "journal line", "journal lines")
        );
    }
    out.push('\n');

    if !report.recent_failures.is_empty() {
        let _ = writeln!(
            out,
            "\nmost recent failures ({} of {}, newest first):",
            report.recent_failures.len(),
            report.failures
        );
        for failure in &report.recent_failures {
            out.push('\n');
            failure_text(failure, &mut out);
        }
    }
    out
}

fn failure_text(f: &Failure, out: &mut String) {
    let how = outcome_text(f.outcome, f.signal.as_deref(), f.exit_code);
    let _ = writeln!(out, "{how}  {} / {}", f.function, f.test);
    let mut whence = Vec::new();
    if let Some(id) = pod_id(f.pid, f.pod.as_deref()) {
        whence.push(format!("pod {id}"));
    }
    if let Some(host) = &f.host {
        whence.push(format!("on {host}"));
    }
    if let Some(time) = &f.time {
        whence.push(format!("at {time}"));
    }
    whence.push(format!("({})", f.journal));
    let _ = writeln!(out, "    {}", whence.join(" "));
    if let Some(message) = &f.message {
        for line in message.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    if !f.output_tail.is_empty() {
        let cut = if f.truncated {
            ", cut to fit the journal"
        } else {
            ""
        };
        let _ = writeln!(out, "    output (last lines{cut}):");
        for line in &f.output_tail {
            let _ = writeln!(out, "    | {line}");
            if line.is_empty() {
                // No trailing space after the bar of an empty line.
                out.truncate(out.len() - 2);
                out.push('\n');
            }
        }
    }
}

/// The report as one JSON object (see docs/cli.md for its fields).
pub fn report_json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a report always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0), "0 µs");
        assert_eq!(duration(999), "999 µs");
        assert_eq!(duration(1_000), "1.00 ms");
        assert_eq!(duration(12_345), "12.3 ms");
        assert_eq!(duration(456_000), "456 ms");
        assert_eq!(duration(2_500_000), "2.50 s");
        assert_eq!(duration(125_000_000), "125 s");
    }

    #[test]
    fn table_aligns_by_characters() {
        let mut t = Table::new(&[("A", Align::Left), ("B", Align::Right)]);
        t.push(vec!["µµ".into(), "1".into()]);
        t.push(vec!["x".into(), "100".into()]);
        let mut out = String::new();
        t.render(&mut out);
        assert_eq!(out, "A     B\nµµ    1\nx   100\n");
    }
}
