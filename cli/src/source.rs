//! Opening a journal and cutting it into lines, in bounded memory.
//!
//! A journal is a file someone else may control: `/dev/zero`, a FIFO nobody writes, a line of a
//! gigabyte. [`open`] takes regular files and pipes (`-`, `<(zcat old.jsonl.gz)`) and refuses
//! anything else before reading a byte. [`Lines`] never holds more than [`MAX_LINE`] bytes of a
//! line: a longer one is skipped to its end and reported, however long it is.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::Error;

/// The longest line kept, in bytes: sixteen times the 64 KiB the runtime ever writes.
pub const MAX_LINE: usize = 1 << 20;

/// Read in chunks of this size.
const CHUNK: usize = 64 << 10;

/// Opens a journal for reading: a regular file or a pipe; `-` is standard input.
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>, Error> {
    if path.as_os_str() == "-" {
        return Ok(Box::new(io::stdin()));
    }
    let read_error = |source| Error::Read {
        path: path.into(),
        source,
    };
    // O_NONBLOCK: opening a FIFO nobody writes to must not hang before we can look at it.
    let file = File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(read_error)?;
    let kind = file.metadata().map_err(read_error)?.file_type();
    if kind.is_fifo() {
        // A pipe with a writer: blocking reads from here on, so it is read to its end.
        rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::empty())
            .map_err(|e| read_error(e.into()))?;
    } else if !kind.is_file() {
        return Err(Error::NotRegular {
            path: path.into(),
            kind: kind_name(kind),
        });
    }
    Ok(Box::new(file))
}

/// What a file that is not a regular file is, in words.
pub fn kind_name(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// One line of a journal.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line and its number; `ended` is false for a last line without `\n`.
    Text {
        number: usize,
        bytes: &'a [u8],
        ended: bool,
    },
    /// A line longer than [`MAX_LINE`]: skipped, `length` bytes without its `\n`.
    TooLong { number: usize, length: u64 },
}

/// The lines of a reader, each at most [`MAX_LINE`] bytes.
pub struct Lines<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    number: usize,
    /// Bytes of an overlong line skipped so far.
    skipping: Option<u64>,
}

impl<R: Read> Lines<R> {
    pub fn new(inner: R) -> Lines<R> {
        Lines {
            inner,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            number: 0,
            skipping: None,
        }
    }

    /// The next complete line; `None` at the end of what can be read now. A last line without
    /// `\n` stays buffered (more may be appended: `report --follow`); [`Lines::rest`] takes it.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        loop {
            if let Some(at) = self.buf[self.start..self.end]
                .iter()
                .position(|&b| b == b'\n')
            {
                let (from, to) = (self.start, self.start + at);
                self.start = to + 1;
                self.number += 1;
                if let Some(skipped) = self.skipping.take() {
                    return Ok(Some(Line::TooLong {
                        number: self.number,
                        length: skipped + at as u64,
                    }));
                }
                return Ok(Some(Line::Text {
                    number: self.number,
                    bytes: &self.buf[from..to],
                    ended: true,
                }));
            }
            let pending = self.end - self.start;
            if let Some(skipped) = &mut self.skipping {
                *skipped += pending as u64;
                self.start = 0;
                self.end = 0;
            } else if pending >= MAX_LINE {
                self.skipping = Some(pending as u64);
                self.start = 0;
                self.end = 0;
            } else {
                self.buf.copy_within(self.start..self.end, 0);
                self.start = 0;
                self.end = pending;
                if self.buf.len() - self.end < CHUNK {
                    let grown = (self.buf.len() * 2).min(MAX_LINE + CHUNK);
                    self.buf.resize(grown, 0);
                }
            }
            let n = loop {
                match self.inner.read(&mut self.buf[self.end..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other?,
                }
            };
            if n == 0 {
                return Ok(None);
            }
            self.end += n;
        }
    }

    /// At the real end: the last line if it had no `\n` (a torn write, a copy taken mid-write).
    pub fn rest(&mut self) -> Option<Line<'_>> {
        let (from, to) = (self.start, self.end);
        self.start = self.end;
        if let Some(skipped) = self.skipping.take() {
            self.number += 1;
            return Some(Line::TooLong {
                number: self.number,
                length: skipped + (to - from) as u64,
            });
        }
        if to == from {
            return None;
        }
        self.number += 1;
        Some(Line::Text {
            number: self.number,
            bytes: &self.buf[from..to],
            ended: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[u8]) -> Vec<String> {
        let mut lines = Lines::new(input);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            out.push(format!("{line:?}"));
        }
        if let Some(line) = lines.rest() {
            out.push(format!("{line:?}"));
        }
        out
    }

    #[test]
    fn lines_numbers_and_a_torn_end() {
        let got = all(b"a\n\nbc\nd");
        assert_eq!(got.len(), 4);
        assert!(got[2].contains("number: 3") && got[2].contains("[98, 99]"));
        assert!(got[3].contains("ended: false"));
    }

    #[test]
    fn an_overlong_line_is_skipped_whole() {
        let mut input = b"x\n".to_vec();
        input.extend(std::iter::repeat_n(b'y', MAX_LINE * 3 + 5));
        input.extend(b"\nz\n");
        let got = all(&input);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[1],
            format!("TooLong {{ number: 2, length: {} }}", MAX_LINE * 3 + 5)
        );
        assert!(got[2].contains("number: 3"));
    }
}
