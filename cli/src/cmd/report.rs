//! `invite report [JOURNAL...]`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::Error;
use crate::journal::{Journal, Outcome};
use crate::render;
use crate::report::{self, Limits};

/// Warnings shown per journal before the rest are only counted.
const WARNINGS_PER_FILE: usize = 20;

#[derive(clap::Args)]
pub struct Args {
    /// Journals to read, `-` for standard input [default: $INVITE_JOURNAL, else invite.jsonl]
    #[arg(value_name = "JOURNAL")]
    journals: Vec<PathBuf>,

    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,

    /// Exit with status 1 when any of these outcomes is in the journal.
    #[arg(long, value_name = "OUTCOME,...", value_delimiter = ',')]
    fail_on: Vec<Outcome>,

    /// How many of the most recent failures to show, with message and output tail.
    #[arg(long, value_name = "N", default_value_t = 5)]
    failures: usize,
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let mut journal = Journal::default();
    if args.journals.is_empty() {
        let path = std::env::var_os("INVITE_JOURNAL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("invite.jsonl"));
        if !path.exists() {
            return Err(Error::NoDefaultJournal { path });
        }
        journal.read_path(&path)?;
    } else {
        for path in &args.journals {
            journal.read_path(path)?;
        }
    }
    print_warnings(&journal);

    let limits = Limits {
        failures: args.failures,
        output_lines: 5,
    };
    let report = report::build(&journal, &limits);
    let text = if args.json {
        render::report_json(&report)
    } else {
        render::report_text(&report)
    };
    super::write_stdout(text.as_bytes())?;

    let found: Vec<String> = Outcome::ALL
        .iter()
        .filter(|o| args.fail_on.contains(o) && report.totals[o] > 0)
        .map(|o| format!("{} {o}", report.totals[o]))
        .collect();
    if found.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let asked: Vec<&str> = args.fail_on.iter().map(|o| o.as_str()).collect();
    eprintln!(
        "invite: --fail-on {}: the journal has {}",
        asked.join(","),
        found.join(", ")
    );
    Ok(ExitCode::from(1))
}

fn print_warnings(journal: &Journal) {
    let mut per_file: HashMap<&str, usize> = HashMap::new();
    for warning in &journal.warnings {
        let seen = per_file.entry(&warning.file).or_default();
        *seen += 1;
        if *seen <= WARNINGS_PER_FILE {
            eprintln!("{warning}");
        }
    }
    let mut files: Vec<_> = per_file.into_iter().collect();
    files.sort();
    for (file, count) in files {
        if count > WARNINGS_PER_FILE {
            eprintln!(
                "{file}: warning: {} more lines ignored",
                count - WARNINGS_PER_FILE
            );
        }
    }
}
