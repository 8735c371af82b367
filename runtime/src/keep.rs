//! Kept pods (`INVITE_KEEP_PODS=failed|all`): before the scratch vanishes with its supervisor,
//! the pod's record and the files it created or changed are copied to
//! `INVITE_POD_DIR/<pid>.<pod path with '/' as '.'>/`: `record.json`, and `changes/<path>` for
//! each changed file (removed files are only listed in the record). `invite pods` reads them.
//!
//! The pod directory is checked once, at start-up: a directory owned by the effective user that
//! no one else may write (else one line on stderr, and nothing is kept). Each kept pod gets a
//! fresh directory, made with `mkdir` (never an existing one: the next free `~2`, `~3`... suffix
//! when a process with the same pid kept one before), mode 0700. Every file is made relative to
//! a directory descriptor opened without following links, with `O_CREAT|O_EXCL|O_NOFOLLOW`, mode
//! 0600; the pod's symbolic links are recreated, never followed. At most `MAX_FILES` entries and
//! `MAX_BYTES` of file contents per pod; what the caps leave out is said in the record's `notes`.

use crate::journal::TestRecord;
use crate::pod::Scratch;
use crate::sys;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Files, directories and links kept per pod.
pub const MAX_FILES: usize = 1000;
/// Bytes of file contents kept per pod.
pub const MAX_BYTES: u64 = 64 << 20;

/// Open (creating it, mode 0700) the pod directory and check it. The error says why it cannot
/// be used.
pub fn open_dir(dir: &Path) -> Result<RawFd, String> {
    if let Some(parent) = dir.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| "a NUL byte in the path")?;
    match sys::mkdirat(libc::AT_FDCWD, &c, 0o700) {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
            return Err(format!("cannot create it: {e}"))
        }
        _ => {}
    }
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let fd = sys::open(&c, flags, 0).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOTDIR) | Some(libc::ELOOP) => "not a directory".to_string(),
        _ => e.to_string(),
    })?;
    let checked = sys::fstat(fd.as_raw_fd())
        .map_err(|e| e.to_string())
        .and_then(|st| {
            let euid = sys::geteuid();
            if st.st_uid != euid {
                Err(format!("owned by uid {}, not by uid {euid}", st.st_uid))
            } else if st.st_mode & 0o022 != 0 {
                Err(format!(
                    "writable by others (mode {:o}): another user could plant files in it",
                    st.st_mode & 0o7777
                ))
            } else {
                Ok(())
            }
        });
    checked.map(|()| fd.into_raw_fd())
}

/// Keep one pod: its files, then `record.json` with `rec` and the notes of what was not kept.
/// Returns the record's notes with those added, for the journal.
pub fn keep_pod(
    dir_fd: RawFd,
    path: &str,
    pid: i32,
    rec: &TestRecord,
    changed: &[String],
    scratch: Option<&Scratch>,
) -> Vec<String> {
    let mut notes = rec.notes.to_vec();
    let name = format!("{pid}.{}", path.replace('/', "."));
    let Some(base) = fresh_dir(dir_fd, &name) else {
        notes.push(format!(
            "not kept: no fresh directory {name} in the pod directory"
        ));
        return notes;
    };
    if let Some(scratch) = scratch {
        let mut copy = Copy::default();
        if let Some(changes) = sub_dir(base, c"changes") {
            for p in changed {
                if copy.files >= MAX_FILES {
                    copy.skipped += 1;
                    continue;
                }
                if let Some(src) = scratch.upper_path(p) {
                    copy.one(changes, &src, p);
                }
            }
            sys::close(changes);
        }
        if copy.skipped > 0 {
            notes.push(format!(
                "kept {} changed paths; {} more not kept (at most {MAX_FILES} and {} MiB per kept pod)",
                copy.files,
                copy.skipped,
                MAX_BYTES >> 20
            ));
        }
    }
    let kept = TestRecord {
        notes: &notes,
        ..*rec
    };
    if let Ok(fd) = create_file(base, c"record.json") {
        let _ = sys::write_all(fd.as_raw_fd(), kept.to_line().as_bytes());
    }
    sys::close(base);
    notes
}

/// `name`, or `name~2`, `name~3`... : the first that `mkdir` creates.
fn fresh_dir(dir_fd: RawFd, name: &str) -> Option<RawFd> {
    for k in 1..100 {
        let n = if k == 1 {
            name.to_string()
        } else {
            format!("{name}~{k}")
        };
        let c = CString::new(n).ok()?;
        match sys::mkdirat(dir_fd, &c, 0o700) {
            Ok(()) => return open_dir_at(dir_fd, &c),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(_) => return None,
        }
    }
    None
}

fn open_dir_at(dir: RawFd, name: &CStr) -> Option<RawFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // The copy walks directories by number (`Copy::close` knows which to close).
    sys::openat(dir, name, flags, 0)
        .ok()
        .map(IntoRawFd::into_raw_fd)
}

/// A directory below `dir`: made (0700) if missing, refused if it is anything else.
fn sub_dir(dir: RawFd, name: &CStr) -> Option<RawFd> {
    match sys::mkdirat(dir, name, 0o700) {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => None,
        _ => open_dir_at(dir, name),
    }
}

fn create_file(dir: RawFd, name: &CStr) -> std::io::Result<OwnedFd> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    sys::openat(dir, name, flags, 0o600)
}

#[derive(Default)]
struct Copy {
    files: usize,
    bytes: u64,
    skipped: usize,
}

impl Copy {
    /// Copy the upper-layer entry `src` (pod path `p`) to `changes/<p>`.
    fn one(&mut self, changes: RawFd, src: &Path, p: &str) {
        let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
        let Some((leaf, dirs)) = parts.split_last() else {
            return;
        };
        let Ok(src_c) = CString::new(src.as_os_str().as_bytes()) else {
            return;
        };
        let Ok(st) = sys::fstatat_nofollow(libc::AT_FDCWD, &src_c) else {
            return;
        };
        let mut cur = changes;
        for d in dirs {
            let Some(next) = CString::new(*d).ok().and_then(|c| sub_dir(cur, &c)) else {
                self.close(cur, changes);
                return;
            };
            self.close(cur, changes);
            cur = next;
        }
        if let Ok(leaf) = CString::new(*leaf) {
            self.entry(cur, &leaf, &src_c, &st);
        }
        self.close(cur, changes);
    }

    fn close(&self, fd: RawFd, changes: RawFd) {
        if fd != changes {
            sys::close(fd);
        }
    }

    fn entry(&mut self, dir: RawFd, leaf: &CStr, src: &CStr, st: &libc::stat) {
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                if let Some(fd) = sub_dir(dir, leaf) {
                    sys::close(fd);
                    self.files += 1;
                }
            }
            libc::S_IFLNK => {
                if let Ok(target) = sys::readlinkat(libc::AT_FDCWD, src) {
                    if sys::symlinkat(&target, dir, leaf).is_ok() {
                        self.files += 1;
                    }
                }
            }
            libc::S_IFREG => {
                let size = st.st_size as u64;
                if self.bytes + size > MAX_BYTES {
                    self.skipped += 1;
                    return;
                }
                if copy_file(src, dir, leaf).is_ok() {
                    self.files += 1;
                    self.bytes += size;
                }
            }
            // Device nodes, FIFOs and sockets the pod made are listed, not kept.
            _ => {}
        }
    }
}

fn copy_file(src: &CStr, dir: RawFd, leaf: &CStr) -> std::io::Result<()> {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let from = sys::open(src, flags, 0)?;
    create_file(dir, leaf).and_then(|to| {
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = MAX_BYTES;
        loop {
            match sys::read(from.as_raw_fd(), &mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    let n = n.min(left as usize);
                    if let Err(e) = sys::write_all(to.as_raw_fd(), &buf[..n]) {
                        break Err(e);
                    }
                    left -= n as u64;
                    if left == 0 {
                        break Ok(());
                    }
                }
                Err(e) => break Err(e),
            }
        }
    })
}
