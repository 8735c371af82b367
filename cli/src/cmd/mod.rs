//! One module per subcommand: its arguments (a `clap::Args` struct) and a `run` that returns the
//! exit code. A new subcommand is a new module here and one variant in `main.rs`'s `Command`.

pub mod checkpoints;
pub mod pods;
pub mod report;

use std::io::{self, Write};

use crate::error::Error;

/// Writes a command's output in one go. A reader that went away (`invite report | head`) is not
/// an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::Write(e)),
        _ => Ok(()),
    }
}
