//! One module per subcommand: its arguments (a `clap::Args` struct) and a `run` that returns the
//! exit code. A new subcommand is a new module here and one variant in `main.rs`'s `Command`.
//! What several of them share — reading journals into the model, warnings, writing output — is
//! here.

pub mod checkpoints;
pub mod export;
mod follow;
pub mod pods;
pub mod report;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::journal::{Event, Reader, Warning};
use crate::model::{Aggregate, Report};
use crate::{source, term};

/// Warnings shown per journal before the rest are only counted.
const WARNINGS_PER_FILE: usize = 20;

/// Writes a command's output in one go. A reader that went away (`invite report | head`) is not
/// an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::Write(e)),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` whole or not at all (see [`Output`]).
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut out = Output::file(path)?;
    out.write_all(bytes).map_err(|e| out.error(e))?;
    out.finish()
}

/// Where a command's output goes: standard output, or a file written whole or not at all — into
/// a new file beside it, renamed over it at the end, so a reader (node_exporter, a CI job, a
/// browser) never sees half a file. A path that exists and is not a regular file (`/dev/stdout`,
/// a FIFO) is written to directly, never replaced.
pub struct Output {
    sink: io::BufWriter<Box<dyn Write>>,
    /// (temp file, final path) while writing a file by rename; the path alone when direct.
    rename: Option<(PathBuf, PathBuf)>,
    path: Option<PathBuf>,
}

impl Output {
    pub fn stdout() -> Output {
        Output {
            sink: io::BufWriter::new(Box::new(io::stdout())),
            rename: None,
            path: None,
        }
    }

    pub fn file(path: &Path) -> Result<Output, Error> {
        let fail = |source| Error::WriteFile {
            path: path.into(),
            source,
        };
        if let Ok(meta) = fs::metadata(path) {
            if !meta.is_file() {
                let file = File::options().write(true).open(path).map_err(fail)?;
                return Ok(Output {
                    sink: io::BufWriter::new(Box::new(file)),
                    rename: None,
                    path: Some(path.into()),
                });
            }
        }
        let name = path
            .file_name()
            .ok_or_else(|| fail(io::Error::other("not a file name")))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.tmp", std::process::id()));
        let temp = path.with_file_name(temp_name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&temp)
            .map_err(fail)?;
        Ok(Output {
            sink: io::BufWriter::new(Box::new(file)),
            rename: Some((temp, path.into())),
            path: Some(path.into()),
        })
    }

    /// The error for a failed write, naming the file.
    pub fn error(&self, source: io::Error) -> Error {
        match &self.path {
            Some(path) => Error::WriteFile {
                path: path.clone(),
                source,
            },
            None => Error::Write(source),
        }
    }

    /// Flushes, and puts a file in place.
    pub fn finish(mut self) -> Result<(), Error> {
        let flushed = self.sink.flush();
        if let Err(e) = flushed {
            if self.path.is_none() && e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(self.error(e));
        }
        if let Some((temp, path)) = self.rename.take() {
            // The data is on disk before the name points to it.
            let synced = File::open(&temp).and_then(|f| f.sync_all());
            if let Err(e) = synced.and_then(|()| fs::rename(&temp, &path)) {
                let _ = fs::remove_file(&temp);
                return Err(self.error(e));
            }
        }
        Ok(())
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sink.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.flush()
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Some((temp, _)) = &self.rename {
            let _ = fs::remove_file(temp);
        }
    }
}

/// Warnings about journal lines: the first `WARNINGS_PER_FILE` of each journal on stderr,
/// escaped, the rest counted.
#[derive(Default)]
pub struct Warnings {
    per_file: HashMap<String, usize>,
}

impl Warnings {
    pub fn warn(&mut self, warning: &Warning) {
        let seen = self.per_file.entry(warning.file.clone()).or_default();
        *seen += 1;
        if *seen <= WARNINGS_PER_FILE {
            eprintln!("{}", term::cell(&warning.to_string()));
        }
    }

    /// The counts of warnings not shown, and what the model could not hold.
    pub fn finish(&mut self, report: &Report) {
        let mut files: Vec<_> = self.per_file.drain().collect();
        files.sort();
        for (file, count) in files {
            if count > WARNINGS_PER_FILE {
                eprintln!(
                    "{}: warning: {} more lines ignored",
                    term::cell(&file),
                    count - WARNINGS_PER_FILE
                );
            }
        }
        for counter in &report.saturated {
            eprintln!(
                "invite: warning: the sum of `{}` saturated at {} (the largest count); the true \
                 value is larger",
                term::cell(counter),
                u64::MAX
            );
        }
        if report.summaries_left_out > 0 {
            eprintln!(
                "invite: warning: summaries of {} processes past the first {} were not counted",
                report.summaries_left_out,
                crate::model::MAX_PROCESSES
            );
        }
    }
}

/// Reads every journal to its end, in order, handing each record and warning to `each`.
pub fn read_events(journals: &[PathBuf], each: &mut dyn FnMut(Event)) -> Result<(), Error> {
    let mut seq = 0;
    for path in journals {
        let input = source::open(path)?;
        let name = if path.as_os_str() == "-" {
            "<stdin>".to_string()
        } else {
            path.display().to_string()
        };
        Reader::new(&name, input)
            .read_all(&mut seq, each)
            .map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Reads every journal into the model; warnings go to stderr as they come.
pub fn read_journals(
    journals: &[PathBuf],
    aggregate: &mut Aggregate,
    warnings: &mut Warnings,
) -> Result<(), Error> {
    read_events(journals, &mut |event| match event {
        Event::Record(origin, record) => aggregate.add(&origin, record),
        Event::Warning(w) => {
            aggregate.add_warning();
            warnings.warn(&w);
        }
    })
}
