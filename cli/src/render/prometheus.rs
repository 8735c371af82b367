//! The report as Prometheus metrics in the text exposition format, for node_exporter's textfile
//! collector (`invite export --prometheus -o DIR/invite.prom`, written by rename so the collector
//! never reads half a file).
//!
//! Counters are the journal's totals (they only grow while the journal grows); durations are a
//! summary per (function, test) with the 0.5 and 0.99 quantiles.

use std::fmt::Write as _;

use crate::journal::Outcome;
use crate::model::Report;

/// A label value: backslash, double quote and line feed escaped, as the format requires.
pub fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The metrics text.
pub fn metrics(report: &Report) -> String {
    let mut out = String::new();
    let ids: Vec<String> = report
        .tests
        .iter()
        .map(|r| {
            format!(
                "function=\"{}\",test=\"{}\"",
                label(&r.function),
                label(&r.test)
            )
        })
        .collect();

    family(
        &mut out,
        "invite_test_runs_total",
        "counter",
        "Tests that ran to an outcome, by outcome.",
    );
    for (row, id) in report.tests.iter().zip(&ids) {
        for outcome in Outcome::ALL {
            let n = row.count(outcome);
            let _ = writeln!(
                out,
                "invite_test_runs_total{{{id},outcome=\"{outcome}\"}} {n}"
            );
        }
    }
    family(
        &mut out,
        "invite_test_skipped_total",
        "counter",
        "Sampled calls whose test was not started, by reason (from the latest summary of each process).",
    );
    for (row, id) in report.tests.iter().zip(&ids) {
        for (reason, n) in &row.skipped_by {
            let _ = writeln!(
                out,
                "invite_test_skipped_total{{{id},reason=\"{}\"}} {n}",
                label(reason)
            );
        }
    }
    for (name, help, get) in [
        (
            "invite_site_calls_total",
            "Calls of the function under test at its site.",
            (|r| r.calls) as fn(&crate::model::Row) -> u64,
        ),
        (
            "invite_site_sampled_total",
            "Calls the sampler chose for a test.",
            |r| r.sampled,
        ),
        (
            "invite_site_started_total",
            "Tests started in a pod.",
            |r| r.started,
        ),
    ] {
        family(&mut out, name, "counter", help);
        for (row, id) in report.tests.iter().zip(&ids) {
            let _ = writeln!(out, "{name}{{{id}}} {}", get(row));
        }
    }
    family(
        &mut out,
        "invite_test_duration_seconds",
        "summary",
        "The test's own time (duration_us).",
    );
    for (row, id) in report.tests.iter().zip(&ids) {
        if row.runs == 0 {
            continue;
        }
        for (q, v) in [("0.5", row.median_us), ("0.99", row.p99_us)] {
            if let Some(us) = v {
                let _ = writeln!(
                    out,
                    "invite_test_duration_seconds{{{id},quantile=\"{q}\"}} {}",
                    us as f64 / 1e6
                );
            }
        }
        let name = "invite_test_duration_seconds";
        let _ = writeln!(out, "{name}_sum{{{id}}} {}", row.total_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{{id}}} {}", row.runs);
    }
    family(
        &mut out,
        "invite_records_lost_total",
        "counter",
        "Records the runtime could not write to the journal.",
    );
    let _ = writeln!(out, "invite_records_lost_total {}", report.lost);
    family(
        &mut out,
        "invite_journal_lines_ignored",
        "gauge",
        "Journal lines that are not invite records (torn, foreign, another schema).",
    );
    let _ = writeln!(out, "invite_journal_lines_ignored {}", report.warnings);
    out
}
