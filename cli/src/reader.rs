//! From lines to records: a journal read as a stream, each line parsed once (by
//! [`crate::journal::parse_line`]) into a record with its origin, or a warning with its line
//! number.

use std::io::Read;
use std::sync::Arc;

use crate::journal::{parse_line, LineError, Origin, Record, Warning};
use crate::source::{Line, Lines, MAX_LINE};

/// What reading a journal yields, line by line.
pub enum Event {
    Record(Origin, Record),
    Warning(Warning),
}

/// Reads one journal as a stream, in bounded memory (see [`crate::source`]).
pub struct Reader<R> {
    file: Arc<str>,
    lines: Lines<R>,
}

impl<R: Read> Reader<R> {
    /// `file` names the journal in warnings and origins.
    pub fn new(file: &str, input: R) -> Reader<R> {
        Reader {
            file: file.into(),
            lines: Lines::new(input),
        }
    }

    /// Every complete line that can be read now; `seq` numbers records across journals.
    pub fn poll(&mut self, seq: &mut u64, sink: &mut dyn FnMut(Event)) -> std::io::Result<()> {
        while let Some(line) = self.lines.next_line()? {
            handle(&self.file, line, seq, sink);
        }
        Ok(())
    }

    /// At the real end: the last line, if it had no newline.
    pub fn finish(&mut self, seq: &mut u64, sink: &mut dyn FnMut(Event)) {
        if let Some(line) = self.lines.rest() {
            handle(&self.file, line, seq, sink);
        }
    }

    /// Reads to the end.
    pub fn read_all(&mut self, seq: &mut u64, sink: &mut dyn FnMut(Event)) -> std::io::Result<()> {
        self.poll(seq, sink)?;
        self.finish(seq, sink);
        Ok(())
    }
}

fn handle(file: &Arc<str>, line: Line<'_>, seq: &mut u64, sink: &mut dyn FnMut(Event)) {
    let warn = |line: usize, message: String| {
        Event::Warning(Warning {
            file: file.to_string(),
            line,
            message,
        })
    };
    let (number, bytes, ended) = match line {
        Line::TooLong { number, length } => {
            let message = format!(
                "line longer than {} MiB ({length} bytes): not written by invite; ignored",
                MAX_LINE >> 20
            );
            return sink(warn(number, message));
        }
        Line::Text {
            number,
            bytes,
            ended,
        } => (number, bytes, ended),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    match parse_line(bytes) {
        Ok(record) => {
            let origin = Origin {
                file: file.clone(),
                line: number,
                seq: *seq,
            };
            *seq += 1;
            sink(Event::Record(origin, record));
        }
        Err(message) => {
            // The runtime ends every record with a newline in the same write, so a last line
            // without one was cut short (a full disk, a copy taken mid-write).
            let message = if !ended && matches!(message, LineError::Json(_)) {
                format!(
                    "torn line: no newline at the end of the file and not complete JSON \
                     ({} bytes); ignored",
                    bytes.len()
                )
            } else {
                format!("{message}; line ignored")
            };
            sink(warn(number, message));
        }
    }
}
