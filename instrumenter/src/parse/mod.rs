//! Step 1, `parse`: read the `.c` file and the `.ic` file into structures the plan can use.
//!
//! - [`scan`] finds, in one fast lexical pass over the whole `.c` file, where the functions named
//!   in the `.ic` could be defined: the head before each top-level body, with braces matched.
//! - [`c`] reads each such head into a [`c::FunctionDef`]; bodies are never parsed.
//! - [`ic`] parses the `.ic` file (the 2008 Invite format plus extensions, docs/ic-format.md).
//! - [`head`] reads a function head (name, parameters, storage class) from [`tokens`], taking
//!   every identifier it does not know for a macro; for both files. It matches [`brackets`],
//!   knows the [`words`] of C, and reads the parameter list with [`params`].
//! - [`lexical`] says where comments, literals, numbers and directives end (for the scan and
//!   the tokens); [`fx`] is the fast hash of the maps keyed by names.
//!
//! This step owns no decisions about phases or output; it only says what is there and where.

pub mod brackets;
pub mod c;
pub mod fx;
pub mod head;
pub mod ic;
pub mod lexical;
pub mod params;
pub mod scan;
pub mod tokens;
pub mod words;

use crate::error::{Diagnostic, Location};
use std::sync::OnceLock;

/// A source file held as bytes (C sources need not be UTF-8), with its display name.
pub struct Source {
    pub name: String,
    pub text: Vec<u8>,
    line_starts: OnceLock<Vec<usize>>,
}

impl Source {
    pub fn new(name: impl Into<String>, text: Vec<u8>) -> Self {
        Source {
            name: name.into(),
            text,
            line_starts: OnceLock::new(),
        }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| line_starts(&self.text))
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        match self.line_starts().binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// 1-based byte column of a byte offset.
    pub fn column(&self, offset: usize) -> usize {
        let line = self.line(offset);
        offset - self.line_starts()[line - 1] + 1
    }

    pub fn location(&self, offset: usize) -> Location {
        Location {
            file: self.name.clone(),
            line: self.line(offset),
            column: self.column(offset),
        }
    }

    pub fn error(&self, offset: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.location(offset), message)
    }

    pub fn str(&self, range: std::ops::Range<usize>) -> String {
        String::from_utf8_lossy(&self.text[range]).into_owned()
    }

    /// Refuse inputs that are not C text at all: empty, or binary (a NUL byte).
    pub fn check_text(&self, what: &str) -> Result<(), Diagnostic> {
        if self.text.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(self.error(0, format!("{what} file is empty")));
        }
        if !self.text.contains(&0) {
            return Ok(());
        }
        if let Some(at) = self.text.iter().position(|&b| b == 0) {
            return Err(self.error(
                at,
                format!("{what} file is binary (NUL byte at offset {at})"),
            ));
        }
        Ok(())
    }
}

/// The offset of every line's first byte. (A scan a word at a time per line: measured on
/// sqlite3.c, as fast as gathering 64 bytes' newlines into a mask, and four times as fast as a
/// mask built with a fold, which the compiler does not vectorize.)
fn line_starts(text: &[u8]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(text.len() / 32 + 1);
    starts.push(0);
    let mut at = 0;
    while let Some(nl) = lexical::find_byte(text, at, b'\n') {
        at = nl + 1;
        starts.push(at);
    }
    starts
}

/// Is `b` a byte that can continue a C identifier? (`$` is a common extension.)
pub(crate) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

pub(crate) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b >= 0x80
}

#[cfg(test)]
mod tests {
    /// The word-at-a-time scan finds the same lines as a byte-by-byte count, at every position
    /// of a word and in the tail.
    #[test]
    fn line_starts_match_a_plain_count() {
        for len in 0..200 {
            for every in [1, 2, 3, 7, 63, 64, 65] {
                let text: Vec<u8> = (0..len)
                    .map(|i| if i % every == every - 1 { b'\n' } else { b'x' })
                    .collect();
                let mut want = vec![0];
                want.extend((0..len).filter(|&i| text[i] == b'\n').map(|i| i + 1));
                assert_eq!(super::line_starts(&text), want, "len {len}, every {every}");
            }
        }
    }
}
