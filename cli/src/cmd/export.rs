//! `invite export --otlp|--prometheus [-o FILE] JOURNAL...`: the journal for other tools.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::{read_events, read_journals, Output, Warnings};
use crate::error::Error;
use crate::journal::Event;
use crate::model::{Aggregate, Limits};
use crate::{render, term};

#[derive(clap::Args)]
#[group(skip)]
#[command(group(clap::ArgGroup::new("format").required(true).args(["otlp", "prometheus"])))]
pub struct Args {
    /// Journals to read, `-` for standard input [default: $INVITE_JOURNAL, else invite.jsonl]
    #[arg(value_name = "JOURNAL")]
    journals: Vec<PathBuf>,

    /// OpenTelemetry logs: OTLP JSON lines, one LogsData per record (the Collector's
    /// otlpjsonfile receiver reads them).
    #[arg(long)]
    otlp: bool,

    /// Prometheus text format, for node_exporter's textfile collector.
    #[arg(long)]
    prometheus: bool,

    /// Write to FILE (whole, by rename) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let journals = super::report::journals_or_default(args.journals)?;
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let mut out = match &args.output {
        Some(path) => Output::file(path)?,
        None => Output::stdout(),
    };
    let mut warnings = Warnings::default();
    if args.otlp {
        // Streamed: one line per record as it is read, in bounded memory.
        let mut failed = None;
        read_events(&journals, &mut |event| match event {
            Event::Record(_, record) => {
                let line = render::otlp::line(&record);
                if failed.is_none() {
                    failed = out.write_all(term::json(&line).as_bytes()).err();
                }
            }
            Event::Warning(w) => warnings.warn(&w),
        })?;
        match failed {
            // `invite export --otlp | head`: the reader went away.
            Some(e) if args.output.is_none() && e.kind() == std::io::ErrorKind::BrokenPipe => {
                return Ok(ExitCode::SUCCESS)
            }
            Some(e) => return Err(out.error(e)),
            None => {}
        }
    } else {
        let limits = Limits {
            failures: 0,
            output_lines: 0,
        };
        let mut aggregate = Aggregate::new(limits);
        read_journals(&journals, &mut aggregate, &mut warnings)?;
        let report = aggregate.report();
        warnings.finish(&report);
        let text = render::prometheus::metrics(&report);
        let text = if to_terminal {
            term::lines(&text)
        } else {
            text.into()
        };
        out.write_all(text.as_bytes()).map_err(|e| out.error(e))?;
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}
