//! The report as JUnit XML, as CI systems read it (GitLab, Jenkins, GitHub reporters).
//!
//! A `testsuite` per function, a `testcase` per (function, test). A test case stands for all of
//! its runs: it has a `failure` when any run failed, crashed or timed out, else an `error` when any
//! run ended in `error`, with the latest such run's message and output; `skipped` when it never
//! ran. `time` is the sum of its runs' durations. There is no single JUnit schema; this follows
//! the Ant/Surefire shape every reader accepts.

use std::fmt::Write as _;

use super::text::skip_note;
use crate::model::{Report, Row};

/// Text for XML 1.0: markup characters as entities; characters XML cannot carry at all (most C0
/// controls, U+FFFE, U+FFFF) and the ones a terminal acts on shown as visible escapes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if let Some(entity) = super::markup_entity(c) {
            out.push_str(entity);
            continue;
        }
        match c {
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            '\u{fffe}' | '\u{ffff}' => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c if crate::term::is_dangerous(c) => out.push_str(&crate::term::cell(&c.to_string())),
            c => out.push(c),
        }
    }
    out
}

fn seconds(us: u64) -> String {
    format!("{:.6}", us as f64 / 1e6)
}

#[derive(Default)]
struct Counts {
    tests: u64,
    failures: u64,
    errors: u64,
    skipped: u64,
    time_us: u64,
}

impl Counts {
    fn add(&mut self, row: &Row) {
        self.tests += 1;
        if row.fail + row.crash + row.timeout > 0 {
            self.failures += 1;
        } else if row.error > 0 {
            self.errors += 1;
        } else if row.never_ran {
            self.skipped += 1;
        }
        self.time_us = self.time_us.saturating_add(row.total_us);
    }

    fn attributes(&self) -> String {
        format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\"",
            self.tests,
            self.failures,
            self.errors,
            self.skipped,
            seconds(self.time_us)
        )
    }
}

/// The JUnit XML document.
pub fn document(report: &Report) -> String {
    let mut all = Counts::default();
    report.tests.iter().for_each(|r| all.add(r));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(out, "<testsuites name=\"invite\" {}>", all.attributes());
    let mut rows = report.tests.iter().peekable();
    while let Some(first) = rows.next() {
        let mut suite = vec![first];
        while let Some(row) = rows.next_if(|r| r.function == first.function) {
            suite.push(row);
        }
        let mut counts = Counts::default();
        suite.iter().for_each(|r| counts.add(r));
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" {}>",
            escape(&first.function),
            counts.attributes()
        );
        for row in suite {
            testcase(row, report, &mut out);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(row: &Row, report: &Report, out: &mut String) {
    let _ = writeln!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
        escape(&row.test),
        escape(&row.function),
        seconds(row.total_us)
    );
    let failed = row.fail + row.crash + row.timeout;
    let (element, bad) = if failed > 0 {
        ("failure", failed)
    } else {
        ("error", row.error)
    };
    if bad > 0 {
        let latest = row.last_failure.as_ref();
        let what = latest.map_or(String::new(), |f| {
            let how = super::outcome_text(f.outcome, f.signal.as_deref(), f.exit_code);
            match &f.message {
                Some(m) => format!(": latest {how}: {m}"),
                None => format!(": latest {how}"),
            }
        });
        let message = format!("{bad} of {} runs did not pass{what}", row.runs);
        let kind = latest.map_or("fail".to_string(), |f| f.outcome.to_string());
        let body = latest.map_or(String::new(), |f| f.output.clone());
        let _ = writeln!(
            out,
            "      <{element} message=\"{}\" type=\"{kind}\">{}</{element}>",
            escape(&message),
            escape(&body)
        );
    } else if row.never_ran {
        let _ = writeln!(
            out,
            "      <skipped message=\"{}\"/>",
            escape(&skip_note(row, &report.settings))
        );
    }
    let _ = writeln!(
        out,
        "      <system-out>{}</system-out>",
        escape(&format!(
            "runs {}: pass {}, fail {}, crash {}, timeout {}, error {}; skipped {}",
            row.runs, row.pass, row.fail, row.crash, row.timeout, row.error, row.skipped
        ))
    );
    out.push_str("    </testcase>\n");
}
