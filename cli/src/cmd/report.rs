//! `invite report [JOURNAL...]`: the table, `--json`, `--html FILE`, `--junit FILE`, `--follow`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{read_journals, write_file, Warnings};
use crate::error::Error;
use crate::journal::Outcome;
use crate::model::{Aggregate, Limits, Report};
use crate::render;

#[derive(clap::Args)]
pub struct Args {
    /// Journals to read, `-` for standard input [default: $INVITE_JOURNAL, else invite.jsonl]
    #[arg(value_name = "JOURNAL")]
    journals: Vec<PathBuf>,

    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,

    /// Also write the report as one self-contained HTML page to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,

    /// Also write the report as JUnit XML to FILE, for CI systems.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Keep reading lines appended to the journal and redraw the table, until Ctrl-C.
    #[arg(long, conflicts_with_all = ["json", "html", "junit", "fail_on"])]
    follow: bool,

    /// Exit with status 1 when any of these outcomes is in the journal.
    #[arg(long, value_name = "OUTCOME,...", value_delimiter = ',', value_parser = crate::outcome::fail_on_parser())]
    fail_on: Vec<Outcome>,

    /// How many of the most recent failures to show, with message and output tail.
    #[arg(long, value_name = "N", default_value_t = 5)]
    failures: usize,
}

/// Failures the HTML page shows at least.
const HTML_FAILURES: usize = 20;

/// The journals named, or else the default one.
pub fn journals_or_default(named: Vec<PathBuf>) -> Result<Vec<PathBuf>, Error> {
    if !named.is_empty() {
        return Ok(named);
    }
    let path = std::env::var_os("INVITE_JOURNAL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("invite.jsonl"));
    if !path.exists() {
        return Err(Error::NoDefaultJournal { path });
    }
    Ok(vec![path])
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let journals = journals_or_default(args.journals)?;
    let limits = Limits {
        failures: if args.html.is_some() {
            args.failures.max(HTML_FAILURES)
        } else {
            args.failures
        },
        output_lines: 5,
    };
    if args.follow {
        return super::follow::run(&journals, limits);
    }
    let mut aggregate = Aggregate::new(limits);
    let mut warnings = Warnings::default();
    read_journals(&journals, &mut aggregate, &mut warnings)?;
    let report = aggregate.report();
    warnings.finish(&report);

    if let Some(path) = &args.html {
        let names: Vec<String> = journals.iter().map(|j| j.display().to_string()).collect();
        write_file(path, render::html::page(&report, &names).as_bytes())?;
    }
    if let Some(path) = &args.junit {
        write_file(path, render::junit::document(&report).as_bytes())?;
    }
    let mut shown = report.clone();
    shown.recent_failures.truncate(args.failures);
    let text = if args.json {
        render::text::report_json(&shown)
    } else {
        render::text::report_text(&shown)
    };
    super::write_stdout(text.as_bytes())?;
    fail_on(&args.fail_on, &report)
}

fn fail_on(asked: &[Outcome], report: &Report) -> Result<ExitCode, Error> {
    let found: Vec<String> = Outcome::ALL
        .iter()
        .filter(|o| asked.contains(o) && report.totals[o] > 0)
        .map(|o| format!("{} {o}", report.totals[o]))
        .collect();
    if found.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let asked: Vec<&str> = asked.iter().map(|o| o.as_str()).collect();
    eprintln!(
        "invite: --fail-on {}: the journal has {}",
        asked.join(","),
        found.join(", ")
    );
    Ok(ExitCode::from(1))
}
