//! Errors are values: every failure the precompiler can meet, with the place it happened.
//!
//! A [`Diagnostic`] prints like a compiler (`file:line:col: error: message`, then any
//! `note:` lines), so editors and CI logs can jump to it.

use std::fmt;
use std::path::PathBuf;

/// A place in a source file: 1-based line and byte column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file's name as given to the precompiler.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based byte column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// An error in the input, at a place in the `.c` or the `.ic` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where the error is.
    pub location: Location,
    /// What is wrong, in one line (without the `error:` prefix).
    pub message: String,
    /// Related places (`file:line:col: note: ...`), e.g. the first of two duplicate tests.
    pub notes: Vec<(Location, String)>,
}

impl Diagnostic {
    pub(crate) fn new(location: Location, message: impl Into<String>) -> Self {
        Diagnostic {
            location,
            message: message.into(),
            notes: Vec::new(),
        }
    }

    pub(crate) fn note(mut self, location: Location, message: impl Into<String>) -> Self {
        self.notes.push((location, message.into()));
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: error: {}", self.location, self.message)?;
        for (location, note) in &self.notes {
            write!(f, "\n{location}: note: {note}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in `parse → plan → rewrite → emit`, and in locating the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: the message names the file, line and column.
    #[error("{0}")]
    Input(Box<Diagnostic>),
    /// Reading or writing a file failed.
    #[error("{}: error: {what}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (`cannot read`, `refusing to write the output`, ...).
        what: &'static str,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The runtime's header or library could not be found (for `--cflags`, `--libs`).
    #[error("error: {0}")]
    Runtime(String),
    /// Several files failed (`--dir`); each error is printed on its own line(s).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Several(Vec<Error>),
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Self {
        Error::Input(Box::new(d))
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, what: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            what,
            source,
        }
    }

    /// The diagnostic, when this is an input error.
    pub fn diagnostic(&self) -> Option<&Diagnostic> {
        match self {
            Error::Input(d) => Some(d),
            _ => None,
        }
    }
}

/// A result whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
