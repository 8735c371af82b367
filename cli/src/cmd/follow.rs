//! `invite report --follow JOURNAL...`: the table, redrawn as lines are appended, until Ctrl-C.
//!
//! The journals are read as a stream into the same model as `invite report`; a line still being
//! written (no newline yet) waits for its end. On a terminal the screen is redrawn in place; on a
//! pipe or file each new state is printed after a separator line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::Warnings;
use crate::error::Error;
use crate::journal::{Event, Reader};
use crate::model::{Aggregate, Limits};
use crate::{render, source};

/// How often the journals are looked at.
const POLL: Duration = Duration::from_millis(250);

pub fn run(journals: &[PathBuf], limits: Limits) -> Result<ExitCode, Error> {
    if journals.iter().any(|j| j.as_os_str() == "-") {
        return Err(Error::Usage(
            "--follow reads journal files, not standard input".into(),
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(Error::Write)?;
    }
    let mut readers = Vec::new();
    for path in journals {
        readers.push((
            path,
            Reader::new(&path.display().to_string(), source::open(path)?),
        ));
    }
    let terminal = std::io::stdout().is_terminal();
    let mut aggregate = Aggregate::new(limits);
    let mut warnings = Warnings::default();
    let (mut seq, mut records, mut first) = (0u64, 0u64, true);
    while !stop.load(Ordering::Relaxed) {
        let mut changed = first;
        for (path, reader) in &mut readers {
            reader
                .poll(&mut seq, &mut |event| {
                    changed = true;
                    match event {
                        Event::Record(origin, record) => {
                            records += 1;
                            aggregate.add(&origin, record);
                        }
                        Event::Warning(w) => {
                            aggregate.add_warning();
                            warnings.warn(&w);
                        }
                    }
                })
                .map_err(|source| Error::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
        }
        if changed {
            let report = aggregate.report();
            let table = render::text::report_text(&report);
            let heading =
                format!("invite report --follow: {records} records read; Ctrl-C to stop\n\n");
            // The only control sequence: home and clear, made here, on a terminal only.
            let frame = if terminal {
                format!("\u{1b}[H\u{1b}[2J{heading}{table}")
            } else if first {
                format!("{heading}{table}")
            } else {
                format!("\n{}\n{heading}{table}", "-".repeat(72))
            };
            super::write_stdout(frame.as_bytes())?;
            first = false;
        }
        std::thread::sleep(POLL);
    }
    Ok(ExitCode::SUCCESS)
}
