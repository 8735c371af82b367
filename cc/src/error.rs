//! What can go wrong in the wrapper itself. The compiler's own failures are not errors here: its
//! exit status is passed on.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The precompiler refused a source or its `.ic`: printed as the compiler would
    /// (`file:line:col: error: ...`).
    #[error("{0}")]
    Instrument(#[from] invite_instrumenter::Error),
    #[error("invite-cc: error: {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invite-cc: error: {0}")]
    Setup(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
