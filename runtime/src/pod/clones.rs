//! Files as they were at the checkpoint, where the file system has reflinks (XFS, btrfs): a cold
//! pod's supervisor clones each watched file (`files::Watch`: the host's files open for writing
//! and their companions) right after the fork, with `FICLONE` into an unnamed file
//! (`O_TMPFILE`) beside it, and binds the clones over their paths in the pod. The pod reads and
//! writes its clones, not the host's live files: no copy, and no host write reaches it.
//!
//! A set of files (a database, its `-wal`, its `-shm`) is consistent only if taken at one
//! instant: the state of each is taken before and after cloning them all, and the set is cloned
//! again (up to `ATTEMPTS` times) while any changed in between. If no file changed since the
//! checkpoint at all, the clones are the checkpoint's state exactly (`exact`), and the record
//! says nothing of them; otherwise they are a consistent state a little after it, and the record
//! names them as any file the host wrote after the checkpoint.
//!
//! All or nothing: where one file cannot be cloned (no reflinks, another file system, a path
//! that cannot be bound), none is, and the pod sees the live files as before (the record then
//! names those the host wrote). The clones are unnamed: they vanish with the supervisor and the
//! pod's mount namespace, whatever ends them. What the pod writes to them takes room on the
//! host's file system (only the blocks it writes), not in the pod's scratch.

use super::files::{state, FileState, Watch};
use super::mounts::c;
use super::SetupError;
use crate::sys;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

/// Tries at a consistent set before settling for the last one.
const ATTEMPTS: usize = 3;

/// File systems with reflinks (`statfs` magic numbers): XFS, btrfs, bcachefs. Elsewhere no
/// clone is tried (each try would make and drop an inode).
const REFLINK_FS: &[i64] = &[0x5846_5342, 0x9123_683e, 0xca45_1a4e];

/// One clone: the path it stands for, its descriptor until it is bound, then its state as bound.
pub struct Clone {
    pub path: String,
    fd: RawFd,
    bound: Option<FileState>,
}

/// The clones of one pod.
pub struct Clones {
    files: Vec<Clone>,
    /// Equal to the files at the checkpoint.
    pub exact: bool,
    /// The pod root they are bound in (in the supervisor's mount namespace).
    root: String,
}

/// Clone every watched file that existed at the checkpoint; `None` where any cannot be.
pub fn take(w: &Watch) -> Option<Clones> {
    let existing: Vec<(&str, FileState)> = w.existing().collect();
    if existing.is_empty() {
        return None;
    }
    for attempt in 1..=ATTEMPTS {
        let before: Vec<Option<FileState>> = existing.iter().map(|(p, _)| state(p)).collect();
        let mut files = Vec::with_capacity(existing.len());
        for ((path, at_ckpt), now) in existing.iter().zip(&before) {
            match now
                .filter(|s| s.same_file(at_ckpt))
                .and_then(|_| clone_one(path, at_ckpt.ino))
            {
                Some(fd) => files.push(Clone {
                    path: path.to_string(),
                    fd,
                    bound: None,
                }),
                None => {
                    files.iter().for_each(|c: &Clone| sys::close(c.fd));
                    return None;
                }
            }
        }
        let after: Vec<Option<FileState>> = existing.iter().map(|(p, _)| state(p)).collect();
        if before == after || attempt == ATTEMPTS {
            let exact = before == after && w.unchanged_since_checkpoint(&after);
            return Some(Clones {
                files,
                exact,
                root: String::new(),
            });
        }
        files.iter().for_each(|c| sys::close(c.fd));
    }
    None
}

/// An unnamed file beside `path` (still inode `ino`), on its file system, sharing its blocks;
/// its owner and mode (without set-id bits).
fn clone_one(path: &str, ino: u64) -> Option<RawFd> {
    let dir = std::path::Path::new(path).parent()?.to_str()?;
    let src = sys::open(
        &c(path).ok()?,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0,
    )
    .ok()?;
    let fits = sys::fs_type(src.as_raw_fd()).is_ok_and(|t| REFLINK_FS.contains(&t))
        && sys::fstat(src.as_raw_fd()).is_ok_and(|st| st.st_ino == ino);
    if !fits {
        return None;
    }
    let dst = c(dir).ok().and_then(|dir| {
        sys::open(
            &dir,
            libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
            0o600,
        )
        .ok()
    })?;
    let (d, src) = (dst.as_raw_fd(), src.as_raw_fd());
    let st = sys::fstat(src).ok()?;
    let cloned = sys::clone_file(d, src).is_ok()
        && sys::fchmod_fchown(d, st.st_mode & 0o777, st.st_uid, st.st_gid);
    cloned.then(|| dst.into_raw_fd())
}

/// In the supervisor, once the pod's mounts are made at `root`: bind each clone over its path
/// (the binds keep the clones; their descriptors are closed). All or none: on a failure the
/// binds made are undone.
pub fn bind(mut clones: Clones, root: &str) -> Result<Option<Clones>, SetupError> {
    let mut bound = Vec::new();
    let mut ok = true;
    for cl in &clones.files {
        let target = c(&format!("{root}{}", cl.path))?;
        let src = c(&format!("/proc/self/fd/{}", cl.fd))?;
        if sys::mount(Some(&src), &target, None, libc::MS_BIND, None).is_err() {
            ok = false;
            break;
        }
        bound.push(target);
    }
    clones.files.iter().for_each(|c| sys::close(c.fd));
    if !ok {
        bound.iter().for_each(|t| sys::detach(t));
        return Ok(None);
    }
    clones.root = root.to_string();
    for cl in &mut clones.files {
        cl.bound = state(&format!("{root}{}", cl.path));
    }
    Ok(Some(clones))
}

impl Clones {
    /// The paths whose clone the pod changed (after the pod, with the scratch's `changed`).
    pub fn changed(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .filter(|c| state(&format!("{}{}", self.root, c.path)) != c.bound)
            .map(|c| c.path.as_str())
    }

    /// Where the pod's version of `path` is, if it is a clone.
    pub fn contents(&self, path: &str) -> Option<std::path::PathBuf> {
        let c = self.files.iter().find(|c| c.path == path)?;
        Some(format!("{}{}", self.root, c.path).into())
    }
}
