//! Opening files inside a directory someone else may have written to, without ever leaving it.
//!
//! A kept pod's directory can hold links planted by another user (`changes` → `/etc`), FIFOs that
//! hang a reader, devices that never end. Every path here is walked one component at a time from
//! a directory descriptor, each component opened with `O_NOFOLLOW` relative to the one before
//! (the `openat` equivalent of `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, which also names
//! the component that was a link), files with `O_NONBLOCK` so a FIFO cannot block the open, and
//! then checked with `fstat` to be a regular file before a byte is read, and read with a bound.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

/// Why a path could not be opened beneath a directory.
#[derive(Debug)]
pub enum Refusal {
    /// `component` (the path up to and including it) is a symbolic link to `target`.
    Link {
        component: String,
        target: String,
    },
    /// The file exists but is not a regular file: a directory, FIFO, device or socket.
    NotRegular {
        kind: &'static str,
    },
    /// A regular file longer than the bound.
    TooLong {
        limit: u64,
    },
    Io(io::Error),
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Refusal {
        Refusal::Io(e)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Link { component, target } => {
                write!(
                    f,
                    "{component} is a symbolic link to {target}; not following it"
                )
            }
            Refusal::NotRegular { kind } => write!(f, "not a regular file ({kind})"),
            Refusal::TooLong { limit } => write!(f, "longer than {limit} bytes"),
            Refusal::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Opens a directory the user named (links in it are the user's own choice).
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Turns an `ELOOP`/`ENOTDIR` from an `O_NOFOLLOW` open into the link it met, if it was one.
fn why(dir: &OwnedFd, name: &str, shown: &str, e: rustix::io::Errno) -> Refusal {
    if let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            let target = rustix::fs::readlinkat(dir, name, Vec::new())
                .map(|t| t.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "?".into());
            return Refusal::Link {
                component: shown.to_string(),
                target,
            };
        }
    }
    Refusal::Io(e.into())
}

/// Opens the directory at `rel` (components separated by `/`) beneath `dir`.
pub fn dir_beneath(dir: &OwnedFd, rel: &str, shown_prefix: &str) -> Result<OwnedFd, Refusal> {
    let mut current = rustix::io::dup(dir).map_err(io::Error::from)?;
    let mut shown = shown_prefix.to_string();
    for name in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if name == ".." {
            return Err(Refusal::Io(io::Error::other("`..` in a path")));
        }
        shown.push_str(if shown.is_empty() || shown.ends_with('/') {
            ""
        } else {
            "/"
        });
        shown.push_str(name);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        current = match rustix::fs::openat(&current, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => return Err(why(&current, name, &shown, e)),
        };
    }
    Ok(current)
}

/// Splits `rel` into its directory part and last component.
fn split(rel: &str) -> (&str, &str) {
    let rel = rel.trim_end_matches('/');
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// What is at `rel` beneath `dir`, without following a link anywhere; `None` if nothing is.
pub fn stat_beneath(dir: &OwnedFd, rel: &str) -> Result<Option<FileType>, Refusal> {
    let (parent, name) = split(rel);
    let parent = match dir_beneath(dir, parent, "") {
        Ok(fd) => fd,
        Err(Refusal::Io(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(Refusal::Io(e.into())),
    }
}

/// Opens the regular file at `rel` beneath `dir`. `shown_prefix` starts the component paths in
/// messages.
pub fn file_beneath(dir: &OwnedFd, rel: &str, shown_prefix: &str) -> Result<File, Refusal> {
    let (parent, name) = split(rel);
    let parent_fd = dir_beneath(dir, parent, shown_prefix)?;
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let fd = match rustix::fs::openat(&parent_fd, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            let shown = format!(
                "{shown_prefix}{}{rel}",
                if shown_prefix.is_empty() || shown_prefix.ends_with('/') {
                    ""
                } else {
                    "/"
                }
            );
            return Err(why(&parent_fd, name, &shown, e));
        }
    };
    let file = File::from(fd);
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(Refusal::NotRegular {
            kind: crate::source::kind_name(kind),
        });
    }
    Ok(file)
}

/// Reads the regular file at `rel` beneath `dir`, at most `limit` bytes.
pub fn read_beneath(dir: &OwnedFd, rel: &str, limit: u64) -> Result<Vec<u8>, Refusal> {
    let file = file_beneath(dir, rel, "")?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(Refusal::TooLong { limit });
    }
    Ok(bytes)
}
