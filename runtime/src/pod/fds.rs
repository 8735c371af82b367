//! Inherited descriptors. Every inherited regular file or directory shares its open file
//! description (offset, status flags) with the host, and writes through it reach the host's
//! file; sockets, pipes and event descriptors lead out of the pod. So, planned in the supervisor
//! (which still sees the host's paths) and applied in the test (inside the overlay):
//!
//! - regular files and directories are reopened by path in the overlay, same number, flags and
//!   offset, after checking the inode is the one the host had open;
//! - a file open for writing is reopened read-only, and made writable on the test's first write
//!   through it (`lazy`): a pod copies no file it does not write; its state at the checkpoint is
//!   taken for the record (`files`);
//! - sockets, pipes, FIFOs, eventfd, timerfd, signalfd, epoll and inotify become new objects of
//!   the same kind that lead nowhere (`inert`), held open by the pod where they need a peer;
//! - deleted files, memfds and everything else that is not a file or a harmless character
//!   device (pidfd, io_uring, ...) are replaced by /dev/null;
//! - the runtime's own descriptors (journal, namespaces) are closed.

use super::files::{FileState, Watch};
use super::inert::{self, InertPlan};
use super::lazy::{Lazy, MAX_LAZY};
use super::{SetupError, Step};
use crate::sys;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

#[derive(Debug)]
enum Action {
    Reopen {
        path: CString,
        flags: i32,
        cloexec: bool,
        offset: i64,
        ino: u64,
        dir: bool,
        /// Reopened read-only, made writable with these flags on the first write (`lazy`).
        lazy: Option<i32>,
    },
    Inert(InertPlan),
    Null,
    Keep,
}

/// What to do with each inherited descriptor.
#[derive(Debug, Default)]
pub struct FdPlan {
    entries: Vec<(RawFd, Action)>,
    /// Notes for the record: files the pod does not see.
    pub notes: Vec<String>,
    /// The files open for writing (and their companions) as they were at the checkpoint.
    pub watch: Watch,
    /// Where some file is to be reopened lazily: the pod's own code (`lazy::own_code`), asked
    /// here, where `/proc/self` is already looked up (`fd_target`), rather than in the pod's
    /// fresh `/proc`, where each entry is made anew (~20 us).
    pub lazy_code: Vec<(u64, u64)>,
}

/// The memory devices a pod may keep: null, zero, full, random, urandom (major 1), known by
/// their device numbers, whatever path the host opened them by.
const HARMLESS_DEV: &[libc::dev_t] = &[
    libc::makedev(1, 3),
    libc::makedev(1, 5),
    libc::makedev(1, 7),
    libc::makedev(1, 8),
    libc::makedev(1, 9),
];

/// Plan the descriptors of the calling process (the supervisor, right after the fork: the same
/// table as the host's). `own` are the runtime's descriptors, to be closed; `ckpt_ns` the
/// monotonic time of the fork.
pub fn scan(own: &[RawFd], ckpt_ns: u64) -> FdPlan {
    let mut plan = FdPlan::default();
    let mut listed = [0 as RawFd; 512];
    let fds: Vec<RawFd> = match sys::list_fds(&mut listed) {
        Some(n) => listed[..n].to_vec(),
        None => scan_slow(),
    };
    let mut link = [0u8; 4096];
    // The files open for writing: their descriptors, and (path, state now).
    let (mut writable, mut files): (Vec<RawFd>, Vec<(String, FileState, bool)>) =
        Default::default();
    for fd in fds {
        if fd <= 2 || own.contains(&fd) || crate::ownfd::is_own(fd) {
            continue;
        }
        let Ok(st) = sys::fstat(fd) else { continue };
        let fmt = st.st_mode & libc::S_IFMT;
        // Pipes, sockets and devices are told by their type and number alone: their /proc link
        // ("pipe:[...]"), a lookup that makes an inode in a freshly forked test (~10 us), is
        // read only for files, directories and anonymous inodes (eventfd, epoll, ...).
        let n = match fmt {
            libc::S_IFIFO | libc::S_IFSOCK | libc::S_IFCHR | libc::S_IFBLK => 0,
            _ => sys::fd_target(fd, &mut link).unwrap_or(0),
        };
        let target = String::from_utf8_lossy(&link[..n]);
        let action = if fmt == libc::S_IFREG || fmt == libc::S_IFDIR {
            reopen_action(fd, &st, &target, &mut plan.notes)
        } else if fmt == libc::S_IFCHR && HARMLESS_DEV.contains(&st.st_rdev) {
            Action::Keep
        } else if fmt == libc::S_IFCHR || fmt == libc::S_IFBLK {
            Action::Null
        } else {
            inert::plan(fd, fmt, &target).map_or(Action::Null, Action::Inert)
        };
        if let Action::Reopen {
            path,
            lazy: Some(flags),
            ..
        } = &action
        {
            writable.push(fd);
            let companions = super::files::may_have_companions(fd, *flags, &st);
            files.push((
                path.to_string_lossy().into_owned(),
                FileState::of(&st),
                companions,
            ));
        }
        plan.entries.push((fd, action));
    }
    plan.watch = Watch::take(&files, ckpt_ns);
    // Where no such file is on a file system with reflinks, no clone is tried at all.
    plan.watch.may_clone = writable.iter().any(|&fd| super::clones::may_clone(fd));
    if !writable.is_empty() {
        plan.lazy_code = super::lazy::own_code();
    }
    plan
}

/// More descriptors than `scan` lists on the stack.
fn scan_slow() -> Vec<RawFd> {
    let Ok(entries) = sys::dir_entries(c"/proc/self/fd") else {
        return Vec::new();
    };
    let mut fds: Vec<RawFd> = entries
        .iter()
        .filter_map(|(name, _)| name.to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

fn reopen_action(fd: RawFd, st: &libc::stat, target: &str, notes: &mut Vec<String>) -> Action {
    if !target.starts_with('/') || target.ends_with(" (deleted)") || target.starts_with("/memfd:") {
        notes.push(format!(
            "fd {fd} ({target}) has no path in the pod; replaced by /dev/null"
        ));
        return Action::Null;
    }
    let Ok(path) = CString::new(target) else {
        return Action::Null;
    };
    let fl = sys::get_fl(fd).unwrap_or(libc::O_RDONLY);
    let cloexec = sys::get_fd_flags(fd)
        .map(|f| f & libc::FD_CLOEXEC != 0)
        .unwrap_or(false);
    let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let flags = fl & !(libc::O_CREAT | libc::O_TRUNC | libc::O_EXCL | libc::O_NOCTTY);
    let lazy = (!dir && fl & libc::O_ACCMODE != libc::O_RDONLY).then_some(flags);
    let offset = if dir {
        0
    } else {
        sys::lseek(fd, 0, libc::SEEK_CUR).unwrap_or(0)
    };
    Action::Reopen {
        path,
        flags,
        cloexec,
        offset,
        ino: st.st_ino,
        dir,
        lazy,
    }
}

impl FdPlan {
    /// Descriptors that stay open in the test (reopened, replaced or kept).
    pub fn kept(&self) -> Vec<RawFd> {
        let mut v: Vec<RawFd> = vec![0, 1, 2];
        v.extend(self.entries.iter().map(|(fd, _)| *fd));
        v
    }
}

/// In the test, after chroot: reopen, replace, keep. Returns the descriptors the pod must hold
/// open besides (the other ends of its inert pipes and sockets), and the files reopened
/// read-only until their first write (`lazy`).
/// `watch`: which paths are clones bound over the host's files (whose inode differs).
/// `no_dgram`: the pod may hold no Unix datagram socket (`unotify`).
pub fn apply(
    plan: &FdPlan,
    null: RawFd,
    watch: &Watch,
    no_dgram: bool,
) -> Result<(Vec<RawFd>, Vec<Lazy>), SetupError> {
    let mut held = Vec::new();
    let mut lazies = Vec::new();
    // Each `dup2` below: the test is a single-threaded fork before any of its code
    // runs; the descriptors it replaces are the ones it inherited, which nothing in it will use
    // as the files they were.
    for (fd, action) in &plan.entries {
        match action {
            Action::Keep => {}
            Action::Inert(p) => {
                let (new, other) =
                    inert::make(p, no_dgram).step("make an inert socket, pipe or event fd")?;
                // SAFETY: see above.
                unsafe { sys::dup2(new, *fd) }
                    .step("replace an inherited socket, pipe or event fd")?;
                sys::close(new);
                if p.cloexec {
                    sys::set_fd_flags(*fd, libc::FD_CLOEXEC).step("restore close-on-exec")?;
                }
                held.extend(other);
            }
            Action::Null => {
                // SAFETY: see above.
                unsafe { sys::dup2(null, *fd) }.step("replace a descriptor by /dev/null")?
            }
            Action::Reopen {
                path,
                flags,
                cloexec,
                offset,
                ino,
                dir,
                lazy,
            } => match reopen(
                path,
                *flags,
                (!watch.is_clone(&path.to_string_lossy())).then_some(*ino),
                *dir,
                lazy.is_some() && lazies.len() < MAX_LAZY,
            ) {
                Some((new, lazy_st)) => {
                    if let (Some(st), Some(host_flags)) = (lazy_st, lazy) {
                        lazies.push(Lazy::new(*fd, path.clone(), *host_flags, &st));
                    }
                    // SAFETY: see above.
                    unsafe { sys::dup2(new.as_raw_fd(), *fd) }.step("reopen an inherited file")?;
                    drop(new);
                    if !*cloexec {
                        sys::set_fd_flags(*fd, 0).step("restore close-on-exec")?;
                    }
                    if *offset > 0 {
                        let _ = sys::lseek(*fd, *offset, libc::SEEK_SET);
                    }
                }
                None => {
                    // SAFETY: see above.
                    unsafe { sys::dup2(null, *fd) }.step("replace a descriptor by /dev/null")?
                }
            },
        }
    }
    Ok((held, lazies))
}

/// Open `path` in the overlay if it is still the inode the host has open (checked read-only
/// first, so a file replaced since is never copied up; `None`: any inode, the pod's clone of
/// the file). `lazy`: keep it read-only for now, and return its state.
fn reopen(
    path: &CString,
    flags: i32,
    ino: Option<u64>,
    dir: bool,
    lazy: bool,
) -> Option<(OwnedFd, Option<libc::stat>)> {
    let probe_flags = if dir {
        libc::O_RDONLY | libc::O_DIRECTORY
    } else {
        libc::O_RDONLY | libc::O_NONBLOCK
    };
    let probe = sys::open(path, probe_flags | libc::O_CLOEXEC, 0).ok()?;
    let st = sys::fstat(probe.as_raw_fd())
        .ok()
        .filter(|st| ino.is_none_or(|ino| st.st_ino == ino))?;
    if lazy {
        return Some((probe, Some(st)));
    }
    if flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Some((probe, None));
    }
    drop(probe);
    sys::open(path, flags | libc::O_CLOEXEC, 0)
        .ok()
        .map(|fd| (fd, None))
}
