//! The report as one self-contained HTML page: inline CSS, JS and SVG, and a Content Security
//! Policy that forbids every network request, so the page opens the same offline, from a CI
//! artifact or an email.
//!
//! Everything from a journal is hostile (a test's output is whatever the test printed): it goes
//! through [`h`], which escapes markup and shows control and bidi characters as visible escapes.

mod charts;

use std::fmt::Write as _;

use super::text::{reason_text, skip_note};
use super::{duration, outcome_text, plural, pod_id};
use crate::journal::Outcome;
use crate::model::{Failure, Report, Row};
use crate::term;

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// Text for HTML, in an element or a quoted attribute.
pub fn h(text: &str) -> String {
    let text = term::lines(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match super::markup_entity(c) {
            Some(entity) => out.push_str(entity),
            None if c == '\'' => out.push_str("&#39;"),
            None => out.push(c),
        }
    }
    out
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 * 100.0 / of as f64
    }
}

/// The page.
pub fn page(report: &Report, journals: &[String]) -> String {
    let mut out = String::with_capacity(64 << 10);
    let title = format!("invite report: {}", journals.join(", "));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
         <title>{}</title><style>{CSS}</style></head><body><main>",
        h(&title)
    );
    let _ = write!(
        out,
        "<header><h1>In vivo tests</h1><p>{} · {} in {}</p></header>",
        h(&journals.join(", ")),
        plural(report.runs(), "run", "runs"),
        plural(report.tests.len() as u64, "test", "tests"),
    );
    totals(report, &mut out);
    tests(report, &mut out);
    let _ = write!(
        out,
        "<h2 id=\"durations\">Test durations <small>all runs, by power of two</small></h2>\
         <div class=\"panel chart\">{}</div>",
        charts::durations(&report.durations)
    );
    let _ = write!(
        out,
        "<h2 id=\"timeline\">Outcomes over time <small>per {}, per host and process</small></h2>{}",
        report.timeline.unit(),
        charts::timeline(&report.timeline)
    );
    failures(report, &mut out);
    let _ = writeln!(out, "</main><script>{JS}</script></body></html>");
    out
}

fn totals(report: &Report, out: &mut String) {
    out.push_str("<section class=\"cards\" id=\"totals\">");
    let card = |out: &mut String, class: &str, n: u64, label: &str| {
        let _ = write!(
            out,
            "<div class=\"card {class}\"><b>{n}</b><span>{label}</span></div>"
        );
    };
    card(out, "", report.runs(), "runs");
    for o in Outcome::ALL {
        card(out, o.as_str(), report.totals[&o], o.as_str());
    }
    card(out, "", report.skipped(), "skipped");
    let never = report.tests.iter().filter(|r| r.never_ran).count() as u64;
    card(out, if never > 0 { "warn" } else { "" }, never, "never ran");
    if report.lost > 0 {
        card(out, "warn", report.lost, "records lost");
    }
    if report.warnings > 0 {
        card(out, "warn", report.warnings, "lines ignored");
    }
    out.push_str("</section>");
}

fn legend(out: &mut String) {
    out.push_str("<div class=\"legend\">");
    for (class, label) in [
        ("pass", "pass"),
        ("fail", "fail"),
        ("crash", "crash"),
        ("timeout", "timeout"),
        ("error", "error"),
        ("started", "skips bar: started"),
        ("concurrency", "skipped: concurrency"),
        ("budget", "skipped: budget"),
        ("in_pod", "skipped: in pod"),
        ("other", "skipped: other"),
    ] {
        let _ = write!(
            out,
            "<span><i style=\"background:var(--{class}, #cfd6df)\"></i>{label}</span>"
        );
    }
    out.push_str("</div>");
}

/// Links each row to its failure on the page: the recent failures list, by function and test.
fn failure_anchor(report: &Report, row: &Row) -> Option<String> {
    report
        .recent_failures
        .iter()
        .position(|f| f.function == row.function && f.test == row.test)
        .map(|i| format!("#f-{i}"))
}

fn tests(report: &Report, out: &mut String) {
    out.push_str(
        "<h2 id=\"tests\">Tests <small>one row per function and test</small></h2><div class=\"panel\">",
    );
    legend(out);
    out.push_str(
        "<label class=\"filter\"><input type=\"checkbox\" id=\"only-problems\"> only tests that \
         did not pass or never ran</label>",
    );
    if report.tests.is_empty() {
        out.push_str("<p class=\"empty\">no test records</p></div>");
        return;
    }
    out.push_str(
        "<table class=\"tests\"><thead><tr><th>Test</th><th>Outcomes</th><th>Runs</th>\
         <th>Failed</th><th>Skipped</th><th>Median</th><th>P99</th></tr></thead><tbody>",
    );
    for row in &report.tests {
        let failed = row.runs - row.pass;
        let class = if row.never_ran {
            "never"
        } else if failed > 0 {
            "failing"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<tr class=\"{class}\"><td class=\"name\"><span class=\"fn\">{}</span><br>{}",
            h(&row.function),
            h(&row.test)
        );
        if row.never_ran {
            out.push_str(" <span class=\"badge never\">never ran</span>");
        }
        let note = skip_note(row, &report.settings);
        if !note.is_empty() {
            let _ = write!(out, "<div class=\"note\">{}</div>", h(&note));
        }
        out.push_str("</td><td>");
        outcome_bar(row, out);
        skip_bar(row, report, out);
        let time = |us: Option<u64>| us.map_or_else(|| "-".into(), duration);
        let failed_cell = match failure_anchor(report, row) {
            Some(anchor) if failed > 0 => format!("<a href=\"{anchor}\">{failed}</a>"),
            _ => failed.to_string(),
        };
        let _ = write!(
            out,
            "</td><td class=\"num\" data-label=\"runs\">{}</td><td class=\"num\" data-label=\"failed\">{failed_cell}</td>\
             <td class=\"num\" data-label=\"skipped\">{}</td><td class=\"num\" data-label=\"median\">{}</td>\
             <td class=\"num\" data-label=\"p99\">{}</td></tr>",
            row.runs,
            row.skipped,
            h(&time(row.median_us)),
            h(&time(row.p99_us)),
        );
    }
    out.push_str("</tbody></table></div>");
}

fn outcome_bar(row: &Row, out: &mut String) {
    let title: Vec<String> = Outcome::ALL
        .iter()
        .filter(|&&o| row.count(o) > 0)
        .map(|&o| format!("{} {o}", row.count(o)))
        .collect();
    let _ = write!(
        out,
        "<div class=\"bar\" title=\"{}\">",
        h(&title.join(", "))
    );
    for o in Outcome::ALL {
        let n = row.count(o);
        if n > 0 {
            let _ = write!(
                out,
                "<span class=\"{o}\" style=\"width:{:.2}%\"></span>",
                pct(n, row.runs)
            );
        }
    }
    out.push_str("</div>");
}

/// Of the sampled calls, the share started and the share skipped by each reason.
fn skip_bar(row: &Row, report: &Report, out: &mut String) {
    let sampled = row.started.saturating_add(row.skipped);
    if row.skipped == 0 || sampled == 0 {
        return;
    }
    let parts: Vec<String> = row
        .skipped_by
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(r, &n)| reason_text(r, n, &report.settings))
        .collect();
    let _ = write!(
        out,
        "<div class=\"bar skips\" title=\"{} of {} sampled calls skipped: {}\">\
         <span class=\"started\" style=\"width:{:.2}%\"></span>",
        row.skipped,
        sampled,
        h(&parts.join(", ")),
        pct(row.started, sampled)
    );
    for (reason, &n) in &row.skipped_by {
        if n == 0 {
            continue;
        }
        let class = match reason.as_str() {
            "concurrency" | "budget" | "in_pod" => reason.as_str(),
            _ => "other",
        };
        let _ = write!(
            out,
            "<span class=\"{class}\" style=\"width:{:.2}%\"></span>",
            pct(n, sampled)
        );
    }
    out.push_str("</div>");
}

fn failures(report: &Report, out: &mut String) {
    let _ = write!(
        out,
        "<h2 id=\"failures\">Most recent failures <small>{} of {}, newest first</small></h2>",
        report.recent_failures.len(),
        report.failures
    );
    if report.recent_failures.is_empty() {
        out.push_str("<p class=\"empty\">none: every run passed</p>");
    }
    for (i, f) in report.recent_failures.iter().enumerate() {
        failure(i, f, out);
    }
}

fn failure(i: usize, f: &Failure, out: &mut String) {
    let how = outcome_text(f.outcome, f.signal.as_deref(), f.exit_code);
    let _ = write!(
        out,
        "<article class=\"failure\" id=\"f-{i}\"><h3><span class=\"badge {}\">{}</span> {} / {}</h3>",
        f.outcome,
        h(&how),
        h(&f.function),
        h(&f.test)
    );
    let mut meta = Vec::new();
    if let Some(id) = pod_id(f.pid, f.pod.as_deref()) {
        meta.push(format!("pod {id}"));
    }
    if let Some(host) = &f.host {
        meta.push(format!("on {host}"));
    }
    if let Some(time) = &f.time {
        meta.push(format!("at {time}"));
    }
    meta.push(format!("took {}", duration(f.duration_us)));
    meta.push(f.journal.clone());
    let _ = write!(out, "<div class=\"meta\">{}</div>", h(&meta.join(" · ")));
    if let Some(message) = &f.message {
        let _ = write!(out, "<div class=\"message\">{}</div>", h(message));
    }
    if !f.output.is_empty() {
        let cut = if f.truncated {
            " (cut to fit the journal)"
        } else {
            ""
        };
        let _ = write!(
            out,
            "<div class=\"meta\">output{cut}</div><pre>{}</pre>",
            h(&f.output)
        );
    }
    if !f.changed.is_empty() {
        out.push_str("<div class=\"meta\">changed files</div><ul class=\"changed\">");
        for path in &f.changed {
            let _ = write!(out, "<li>{}</li>", h(path));
        }
        out.push_str("</ul>");
    }
    out.push_str("</article>");
}
