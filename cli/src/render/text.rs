//! The report for a terminal: the table, a totals line, the most recent failures; and `--json`.
//!
//! Every string from a journal goes through [`crate::term`] here or in [`Table::push`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{duration, outcome_text, plural, pod_id, Align, Table};
use crate::journal::Outcome;
use crate::model::{Failure, Report, Row};
use crate::term;

/// The setting that turns a skip reason down, and a word on the reasons no setting changes.
pub fn reason_setting(reason: &str) -> Option<&'static str> {
    match reason {
        "budget" => Some("INVITE_MAX_OVERHEAD"),
        "concurrency" => Some("INVITE_MAX_CONCURRENT"),
        "queue" => Some("INVITE_MAX_QUEUE"),
        "pod_cpu" => Some("INVITE_MAX_POD_CPU"),
        "in_pod" => None,
        _ => None,
    }
}

/// `budget 13 (INVITE_MAX_OVERHEAD=10)`: a skip reason, its count and the setting to change, with
/// its value when the summaries recorded it.
pub fn reason_text(reason: &str, n: u64, settings: &BTreeMap<String, String>) -> String {
    match (reason, reason_setting(reason)) {
        (_, Some(var)) => match settings.get(var) {
            Some(value) => format!("{reason} {n} ({var}={value})"),
            None => format!("{reason} {n} ({var})"),
        },
        ("in_pod", None) => format!("in_pod {n} (called inside a pod)"),
        (_, None) => format!("{reason} {n}"),
    }
}

/// Why a row's tests were not run: never called, never sampled, or the skip reasons, largest
/// first. Empty when nothing was skipped.
pub fn skip_note(row: &Row, settings: &BTreeMap<String, String>) -> String {
    let mut reasons: Vec<(&String, &u64)> = row.skipped_by.iter().filter(|(_, &n)| n > 0).collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let reasons: Vec<String> = reasons
        .into_iter()
        .map(|(r, &n)| reason_text(r, n, settings))
        .collect();
    if !row.never_ran {
        return reasons.join(", ");
    }
    if reasons.is_empty() {
        return if row.calls == 0 {
            "never ran: never called".into()
        } else if row.sampled == 0 {
            format!(
                "never ran: not sampled in {} (INVITE_PROBABILITY, INVITE_RATES)",
                plural(row.calls, "call", "calls")
            )
        } else {
            "never ran".into()
        };
    }
    format!("never ran: {}", reasons.join(", "))
}

/// The report as text.
pub fn report_text(report: &Report) -> String {
    let mut out = String::new();
    if report.tests.is_empty() {
        out.push_str("no test records\n");
        totals_notes(report, &mut out);
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
        ("SKIPPED BY (SETTING)", Align::Left),
    ]);
    let time = |us: Option<u64>, exact: bool| {
        us.map_or_else(
            || "-".to_string(),
            |us| {
                let d = duration(us);
                if exact {
                    d
                } else {
                    format!("~{d}")
                }
            },
        )
    };
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
            time(row.median_us, row.exact),
            time(row.p99_us, row.exact),
            skip_note(row, &report.settings),
        ]);
    }
    table.render(&mut out);

    let mut outcomes = vec![format!("{} pass", report.totals[&Outcome::Pass])];
    outcomes.extend(
        Outcome::ALL[1..]
            .iter()
            .filter(|o| report.totals[o] > 0)
            .map(|o| format!("{} {o}", report.totals[o])),
    );
    let _ = write!(
        out,
        "\n{} in {}: {}; {} skipped",
        plural(report.runs(), "run", "runs"),
        plural(report.tests.len() as u64, "test", "tests"),
        outcomes.join(", "),
        report.skipped(),
    );
    let never = report.tests.iter().filter(|r| r.never_ran).count() as u64;
    if never > 0 {
        let _ = write!(out, "; {} never ran", plural(never, "test", "tests"));
    }
    out.push('\n');
    totals_notes(report, &mut out);

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

/// What the totals do not show: lost records, ignored lines, limits reached.
fn totals_notes(report: &Report, out: &mut String) {
    if report.lost > 0 {
        let _ = writeln!(
            out,
            "{} lost: the runtime could not write {} to the journal",
            plural(report.lost, "record", "records"),
            if report.lost == 1 { "it" } else { "them" }
        );
    }
    if report.warnings > 0 {
        let _ = writeln!(
            out,
            "{} ignored (see warnings)",
            plural(report.warnings, "journal line", "journal lines")
        );
    }
    if report.rows_left_out > 0 {
        let _ = writeln!(
            out,
            "{} of tests past the first {} counted in the totals only",
            plural(report.rows_left_out, "run", "runs"),
            crate::model::MAX_ROWS
        );
    }
}

fn failure_text(f: &Failure, out: &mut String) {
    let how = outcome_text(f.outcome, f.signal.as_deref(), f.exit_code);
    let unreliable = if f.unreliable { " (unreliable)" } else { "" };
    let title = format!("{how}{unreliable}  {} / {}", f.function, f.test);
    let _ = writeln!(out, "{}", term::cell(&title));
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
    let _ = writeln!(out, "    {}", term::cell(&whence.join(" ")));
    if let Some(message) = &f.message {
        for line in message.lines() {
            let _ = writeln!(out, "    {}", term::cell(line));
        }
    }
    if f.unreliable {
        let _ = writeln!(
            out,
            "    unreliable: the pod may have read files the host wrote after the checkpoint:"
        );
        for n in f.notes.iter().filter(|n| n.ends_with("(torn)")) {
            let _ = writeln!(out, "    ! {}", term::cell(n));
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
            if line.is_empty() {
                // No trailing space after the bar of an empty line.
                out.push_str("    |\n");
            } else {
                let _ = writeln!(out, "    | {}", term::cell(line));
            }
        }
    }
}

/// The report as one JSON object (see docs/cli.md for its fields), safe for a terminal.
pub fn report_json(report: &Report) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a report always serializes");
    text.push('\n');
    term::json(&text).into_owned()
}
