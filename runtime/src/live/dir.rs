//! Where checkpoints' sockets live: one private directory per user.
//!
//! `$INVITE_CHECKPOINT_DIR` if set; else `$XDG_RUNTIME_DIR/invite` when that runtime directory
//! exists and belongs to the user; else `/tmp/invite-<uid>`. The directory is created mode 0700
//! and refused unless it is a real directory (not a symbolic link), owned by the process's
//! effective uid, with no access for group or others: the directory is the first gate, the
//! socket's peer-credential check (`park`) the second. Sockets are named `<pid>.<name>.sock`.

use crate::sys;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The variable that overrides the directory (the `invite` command reads it too).
pub const DIR_VAR: &str = "INVITE_CHECKPOINT_DIR";

/// An errno and a message naming the path.
pub type Failure = (i32, String);

pub fn socket_name(pid: i32, name: &str) -> String {
    format!("{pid}.{name}.sock")
}

fn chosen() -> PathBuf {
    // Paths are kept as the bytes the variables hold.
    if let Some(d) = sys::secure_getenv_os(DIR_VAR).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let uid = sys::geteuid();
    let absolute = |d: &std::ffi::OsString| d.as_bytes().starts_with(b"/");
    if let Some(run) = sys::secure_getenv_os("XDG_RUNTIME_DIR").filter(absolute) {
        let owned = fs::metadata(&run).is_ok_and(|m| m.is_dir() && m.uid() == uid);
        if owned {
            return Path::new(&run).join("invite");
        }
    }
    PathBuf::from(format!("/tmp/invite-{uid}"))
}

/// The directory, created if missing, and checked.
pub fn ensure() -> Result<PathBuf, Failure> {
    let dir = chosen();
    let os = |what: &str, e: io::Error| {
        (
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("checkpoint directory {}: {what}: {e}", dir.display()),
        )
    };
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(os("mkdir", e)),
        _ => {}
    }
    let m = fs::symlink_metadata(&dir).map_err(|e| os("lstat", e))?;
    let uid = sys::geteuid();
    if !m.is_dir() || m.uid() != uid || m.mode() & 0o077 != 0 {
        return Err((
            libc::EACCES,
            format!(
                "checkpoint directory {} is not private: it must be a directory owned by uid \
                 {uid} with mode 0700 (found owner {}, mode {:o}{})",
                dir.display(),
                m.uid(),
                m.mode() & 0o7777,
                if m.is_dir() { "" } else { ", not a directory" }
            ),
        ));
    }
    Ok(dir)
}

/// Bind and listen on `path`. A socket file left by a parked copy that was killed (nobody
/// answers on it) is replaced; a live one is not.
pub fn bind(path: &Path) -> Result<UnixListener, Failure> {
    let os = |e: io::Error| {
        (
            e.raw_os_error().unwrap_or(libc::ENAMETOOLONG),
            format!("checkpoint socket {}: {e}", path.display()),
        )
    };
    let listener = match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                return Err((
                    libc::EEXIST,
                    format!("checkpoint socket {} is in use", path.display()),
                ));
            }
            let _ = fs::remove_file(path);
            UnixListener::bind(path).map_err(os)?
        }
        r => r.map_err(os)?,
    };
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
    Ok(listener)
}
