//! The errors that stop a command. Each one exits with status 2; warnings about single journal
//! lines are not errors (see [`crate::journal::Warning`]).

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error(
        "no journal at {} in the current directory: run an instrumented program here first, \
         set INVITE_JOURNAL when running it, or name a journal: invite report PATH",
        path.display()
    )]
    NoDefaultJournal { path: PathBuf },

    #[error(
        "no kept pods: {} does not exist (run the program with INVITE_KEEP_PODS=failed or =all, \
         or name the directory with --dir)",
        dir.display()
    )]
    NoPodDir { dir: PathBuf },

    #[error("no pod {pod:?} in {}{}", dir.display(), hint(kept))]
    NoSuchPod {
        pod: String,
        dir: PathBuf,
        kept: Vec<String>,
    },

    #[error("pod {pod:?} is ambiguous: it could be {}; give <pid>.<pod>", candidates.join(", "))]
    AmbiguousPod {
        pod: String,
        candidates: Vec<String>,
    },

    #[error("cannot read the record of pod {pod}: {why}")]
    BadRecord { pod: String, why: String },

    #[error("pod {pod} removed {path}: there is nothing to print")]
    Removed { pod: String, path: String },

    #[error("pod {pod} did not change {path}{}", changed_hint(changed))]
    NotChanged {
        pod: String,
        path: String,
        changed: Vec<String>,
    },

    #[error("{path} in pod {pod} is a symbolic link to {target}; not following it")]
    Symlink {
        pod: String,
        path: String,
        target: String,
    },

    #[error("{path} in pod {pod} is a directory; name a file in it")]
    Directory { pod: String, path: String },

    #[error("{path:?} is not an absolute path without `..` (give the path as the pod saw it, for example /etc/app.conf)")]
    BadPath { path: String },

    /// A live checkpoint that is missing, ambiguous, out of reach or refused the request.
    #[error("{0}")]
    Live(String),

    #[error("cannot write the output: {0}")]
    Write(io::Error),

    #[error("cannot write {}: {source}", path.display())]
    WriteFile { path: PathBuf, source: io::Error },

    #[error("{}: not a regular file ({kind}); not reading it", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },

    #[error("{0}")]
    Usage(String),
}

fn hint(kept: &[String]) -> String {
    match kept {
        [] => String::new(),
        [..] if kept.len() <= 8 => format!(" (kept: {})", kept.join(", ")),
        _ => format!(" ({} kept; `invite pods` lists them)", kept.len()),
    }
}

fn changed_hint(changed: &[String]) -> String {
    if changed.is_empty() {
        "; it changed no files".into()
    } else {
        format!("; it changed {}", changed.join(", "))
    }
}
