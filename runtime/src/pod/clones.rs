//! Files as they were at the checkpoint, where the file system has reflinks (XFS, btrfs): a pod
//! clones each watched file (`files::Watch`: the host's files open for writing and their
//! companions) right after the fork, on its own side of it (a cold pod's supervisor, a warm
//! test), with `FICLONE` into an unnamed file (`O_TMPFILE`) beside it, and binds the clones over
//! their paths in the pod. The pod reads and writes its clones, not the host's live files: no
//! copy, and no host write reaches it.
//!
//! A set of files (a database, its `-wal`, its `-shm`) is consistent only if taken at one
//! instant. A clone holds off writes to its own file only, and where the host writes a file all
//! the time it takes long (each write after a clone makes the file more extents to share: tens
//! to hundreds of milliseconds): a host thread would write one file of the set between the
//! clones of the others. So a cold pod's supervisor holds the host still while it clones
//! (`freeze`), from the first try where the host wrote a file lately, else from the second. The
//! state of each file (`files::state`: size, modification and change times) is taken before and
//! after cloning them all; the kernel gives a file a new, fine-grained change time on any write
//! that follows a look at its state (multigrain time stamps, Linux 6.13+, on XFS, btrfs, ext4,
//! tmpfs), so equal states mean no write reached any of them in between (the host's, or another
//! process's): the set is one instant's. (A write already under way at the first look has its
//! time stamp already; the clone of its file waits for it to end: the set is then the instant
//! after it.) On older kernels two writes within a tick may share a time stamp: a set counts as
//! consistent there only if each file was last changed over a tick before the first look. While
//! they differ the set is cloned again, up to `ATTEMPTS` times within `PATIENCE_NS`; a set still
//! mixed after that is named as such in the record (`consistent` false). If no file changed
//! since the checkpoint at all, the clones are the checkpoint's state exactly (`late` empty),
//! and the record says nothing of them; a consistent set taken after the host wrote is the
//! files' state a little after the checkpoint, and the record says so. Not seen: a write
//! through a shared mapping to a page already dirty by another process than the host (it
//! changes no time stamp; the host's own threads are held); the set stays consistent if only
//! one of its files is written so (SQLite's `-shm`, which a new connection rebuilds anyway).
//!
//! A warm test, PID 1 of a PID namespace of its own, cannot hold the host (ptrace names threads
//! by their id in the caller's PID namespace): once a pod has found the host writing such files,
//! its next pods are cold (`host_is_writing_clonable_files`, checked before a warm pod's fork).
//!
//! A file with no name cannot be bound (`ENOENT`), nor can a mount of another mount namespace:
//! so a clone is named beside its file (`.invite-clone-<inode>`) just long enough to be copied
//! as a detached mount (`open_tree`) in the namespace it was made in (`stage`), and the detached
//! mount is moved over the file's path in the pod (`bind`, maybe in another namespace).
//!
//! All or nothing: where one file cannot be cloned (no reflinks, another file system, a path
//! that cannot be bound), none is, and the pod sees the live files as before (the record then
//! names those the host wrote). The clones vanish with the pod's mount namespace, whatever ends
//! it. What the pod writes to them takes room on the host's file system (only the blocks it
//! writes), not in the pod's scratch.

use super::files::{state, wall_ns, writes_show, FileState, Watch};
use super::mounts::c;
use super::{SetupError, Step};
use crate::sys;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI64, Ordering};

/// Tries at a consistent set before settling for the last one (each try holds off the host's
/// writes to the file being cloned while it is cloned)...
const ATTEMPTS: usize = 5;
/// ... and for how long (a try takes tens of microseconds when the host is quiet; on a busy
/// disk, tens of milliseconds; a file the host writes all the time has many extents, and its
/// clone takes hundreds of milliseconds on a loaded loop device).
const PATIENCE_NS: u64 = 1_000_000_000;

/// File systems with reflinks (`statfs` magic numbers): XFS, btrfs, bcachefs. Elsewhere no
/// clone is tried (each try would make and drop an inode).
const REFLINK_FS: &[i64] = &[0x5846_5342, 0x9123_683e, 0xca45_1a4e];

/// One clone: the path it stands for; until it is bound, the unnamed file, its directory and,
/// once staged, its name there and the detached mount of it; then its state as bound.
pub struct Clone {
    pub path: String,
    file: Option<OwnedFd>,
    dir: Option<OwnedFd>,
    name: Option<CString>,
    tree: Option<OwnedFd>,
    bound: Option<FileState>,
}

/// The clones of one pod.
pub struct Clones {
    files: Vec<Clone>,
    /// Which of them (by index among the watched files that existed) the host wrote after the
    /// checkpoint, before they were taken (none: the checkpoint's state exactly).
    pub late: Vec<usize>,
    /// Taken at one instant (no write reached any of them while they were taken).
    pub consistent: bool,
    /// How long the host was held still while they were taken (`freeze`): what testing cost
    /// it, which the supervisor charges to its budget.
    pub held_ns: u64,
    /// The pod root they are bound in (in the supervisor's mount namespace).
    root: String,
}

/// Whether the file open at `fd` is on a file system with reflinks.
pub fn may_clone(fd: std::os::fd::RawFd) -> bool {
    sys::fs_type(fd).is_ok_and(|t| REFLINK_FS.contains(&t))
}

/// When a pod last found the host writing a file it clones (wall-clock ns; 0: never), on a page
/// the host shares with its children (mapped before the host's first warm pod's fork).
static WRITING_SEEN: std::sync::OnceLock<Option<&'static AtomicI64>> = std::sync::OnceLock::new();

/// For this long after a pod found the host writing a file it clones, its pods are built cold.
const COLD_FOR_NS: i64 = 60_000_000_000;

/// In the host, when its warm pods' state is made (by the runtime's thread, right after the
/// first pod's fork, before the stock holds a blank): map the page above and look at the host's
/// descriptors once (`writing_clonable_files`), off the host's pause (a listing, a `fcntl` each
/// and a page: tens of microseconds on a first `ckpt()`).
pub fn look_for_clonable_writes() {
    let _ = writing_seen();
}

fn writing_seen() -> Option<&'static AtomicI64> {
    *WRITING_SEEN.get_or_init(|| {
        let page = sys::map_zeroed_shared::<AtomicI64>().ok()?;
        if writing_clonable_files() {
            page.store(wall_ns() as i64, Ordering::Relaxed);
        }
        Some(page)
    })
}

/// In the host, before a warm pod's fork: whether it is writing a file on a file system with
/// reflinks, as the descriptors showed when its warm pods' state was made
/// (`look_for_clonable_writes`; looked at now if that has not happened) and every pod since
/// from the files it watched (`take`). A warm test, PID 1 of a PID namespace of its own, cannot
/// hold the host still while it clones such files (`freeze`): the pod is built cold, by a
/// supervisor that can. One atomic load.
pub fn host_is_writing_clonable_files() -> bool {
    writing_seen().is_some_and(|s| {
        let at = s.load(Ordering::Relaxed);
        at != 0 && (wall_ns() as i64).saturating_sub(at) < COLD_FOR_NS
    })
}

/// Where the page of `WRITING_SEEN` is, if mapped: a pod needs it only until its clones are
/// taken, and replaces it with a private zero page rather than copy it (`shm::privatize`).
pub fn writing_seen_page() -> Option<usize> {
    WRITING_SEEN
        .get()
        .copied()
        .flatten()
        .map(|p| p as *const AtomicI64 as usize)
}

/// In a pod: the host is writing a watched file (`Watch::written_lately`): its next pods are cold.
fn note_writing() {
    if let Some(Some(s)) = WRITING_SEEN.get() {
        s.store(wall_ns() as i64, Ordering::Relaxed);
    }
}

/// Whether this process has a file open for writing on a file system with reflinks, changed
/// within `LATELY_NS`: a listing of the descriptors and an `fcntl` for each, `fstat` and
/// `fstatfs` for those open for writing; nothing allocated.
fn writing_clonable_files() -> bool {
    let mut listed = [0 as std::os::fd::RawFd; 512];
    let Some(n) = sys::list_fds(&mut listed) else {
        return false;
    };
    let lately = (wall_ns() - super::files::LATELY_NS) / 1_000_000_000;
    listed[..n].iter().any(|&fd| {
        fd > 2
            && !crate::ownfd::is_own(fd)
            && sys::get_fl(fd).is_ok_and(|fl| fl & libc::O_ACCMODE != libc::O_RDONLY)
            && sys::fstat(fd).is_ok_and(|st| {
                st.st_mode & libc::S_IFMT == libc::S_IFREG && i128::from(st.st_ctime) >= lately
            })
            && may_clone(fd)
    })
}

/// Clone every watched file that existed at the checkpoint; `None` where any cannot be.
pub fn take(w: &Watch) -> Option<Clones> {
    let existing: Vec<(&str, FileState)> = w.existing().collect();
    if existing.is_empty() || !w.may_clone {
        return None;
    }
    let t0 = sys::monotonic_ns();
    // A host that wrote a file lately is held still from the first try (`freeze`), another
    // from the second.
    let busy = w.written_lately();
    if busy {
        note_writing();
    }
    let mut held_ns = 0;
    for attempt in 1..=ATTEMPTS {
        // What the host wrote that has not reached the disk is written out while it still
        // runs, not by the clones while it is held.
        existing.iter().for_each(|(p, _)| write_out(p));
        let mut frozen = w
            .host
            .filter(|_| busy || attempt > 1)
            .and_then(super::freeze::freeze);
        let held_from = sys::monotonic_ns();
        let wall = wall_ns();
        let before: Vec<Option<FileState>> = existing.iter().map(|(p, _)| state(p)).collect();
        let mut files = Vec::with_capacity(existing.len());
        for ((path, at_ckpt), now) in existing.iter().zip(&before) {
            let (file, dir) = now
                .filter(|s| s.same_file(at_ckpt))
                .and_then(|_| clone_one(path, at_ckpt.ino))?;
            files.push(Clone {
                path: path.to_string(),
                file: Some(file),
                dir: Some(dir),
                name: None,
                tree: None,
                bound: None,
            });
        }
        let after: Vec<Option<FileState>> = existing.iter().map(|(p, _)| state(p)).collect();
        let held = frozen.take().is_some();
        if held {
            held_ns += sys::monotonic_ns().saturating_sub(held_from);
        }
        let consistent = before == after && writes_show(&before, wall);
        // A try the host was not held for (it could not be, yet) is followed by one it is,
        // however long the first took.
        let patience =
            sys::monotonic_ns().saturating_sub(t0) < PATIENCE_NS || (w.host.is_some() && !held);
        if consistent || attempt == ATTEMPTS || !patience {
            return Some(Clones {
                files,
                late: w.changed_since_checkpoint(&after),
                consistent,
                held_ns,
                root: String::new(),
            });
        }
    }
    None
}

/// Write out what the host wrote of `path` that has not reached the disk (a clone does it
/// first).
fn write_out(path: &str) {
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    if let Some(fd) = c(path).ok().and_then(|p| sys::open(&p, flags, 0).ok()) {
        let _ = sys::write_out(fd.as_raw_fd());
    }
}

/// An unnamed file beside `path` (still inode `ino`), on its file system, sharing its blocks;
/// its owner and mode (without set-id bits). With the directory it is in.
fn clone_one(path: &str, ino: u64) -> Option<(OwnedFd, OwnedFd)> {
    let dir_path = std::path::Path::new(path).parent()?.to_str()?;
    let src = sys::open(
        &c(path).ok()?,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0,
    )
    .ok()?;
    let fits =
        may_clone(src.as_raw_fd()) && sys::fstat(src.as_raw_fd()).is_ok_and(|st| st.st_ino == ino);
    if !fits {
        return None;
    }
    let dir = sys::open(
        &c(dir_path).ok()?,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .ok()?;
    let dst = sys::openat(
        dir.as_raw_fd(),
        c".",
        libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
        0o600,
    )
    .ok()?;
    let (d, src) = (dst.as_raw_fd(), src.as_raw_fd());
    let st = sys::fstat(src).ok()?;
    let cloned = sys::clone_file(d, src).is_ok()
        && sys::fchmod_fchown(d, st.st_mode & 0o777, st.st_uid, st.st_gid);
    cloned.then_some((dst, dir))
}

impl Clones {
    /// In the mount namespace the clones were taken in: name each beside its file and copy it
    /// as a detached mount, which `bind` can move into another namespace. Whether all were.
    pub fn stage(&mut self) -> bool {
        self.files.iter_mut().all(|cl| stage_one(cl).is_ok())
    }

    /// Drop the names `stage` gave the clones (their detached mounts keep them).
    fn unname(&mut self) {
        for cl in &mut self.files {
            if let (Some(dir), Some(name)) = (&cl.dir, cl.name.take()) {
                let _ = sys::unlink_at(dir.as_raw_fd(), &name);
            }
        }
    }
}

/// Name a clone beside its file (a name no one else uses: its own inode number; a warm test's
/// process id is 1, as in every warm pod) and copy it as a detached mount.
fn stage_one(cl: &mut Clone) -> Result<(), SetupError> {
    if cl.tree.is_some() {
        return Ok(());
    }
    let bad = || SetupError {
        step: "name a clone",
        err: std::io::Error::from_raw_os_error(libc::EBADF),
    };
    let file = cl.file.as_ref().ok_or_else(bad)?.as_raw_fd();
    let dir = cl.dir.as_ref().ok_or_else(bad)?.as_raw_fd();
    let name = c(&format!(
        ".invite-clone-{}",
        sys::fstat(file).step("name a clone")?.st_ino
    ))?;
    sys::name_unnamed(file, dir, &name).step("name a clone")?;
    cl.name = Some(name.clone());
    let named = c(&format!("/proc/self/fd/{dir}/{}", name.to_string_lossy()))?;
    cl.tree = Some(sys::open_tree_clone(&named).step("copy a clone as a mount")?);
    Ok(())
}

/// Once the pod's mounts are made at `root`: bind each clone over its path (staging it first if
/// `stage` was not called: then in the namespace it was taken in). The clones' names are dropped
/// whatever happens; the binds keep the clones. All or none: on a failure the binds made are
/// undone.
pub fn bind(mut clones: Clones, root: &str) -> Result<Option<Clones>, SetupError> {
    let mut bound = Vec::new();
    let mut ok = clones.stage();
    for cl in clones.files.iter().take_while(|_| ok) {
        let target = c(&format!("{root}{}", cl.path))?;
        let tree = cl.tree.as_ref().map(|t| t.as_raw_fd()).unwrap_or(-1);
        if sys::move_mount_to(tree, &target).is_err() {
            ok = false;
            break;
        }
        bound.push(target);
    }
    clones.unname();
    for cl in &mut clones.files {
        (cl.file, cl.dir, cl.tree) = (None, None, None);
    }
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

impl Drop for Clones {
    /// Clones staged and never bound leave no names behind.
    fn drop(&mut self) {
        self.unname();
    }
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

/// A warm test's clones as bound (path in the pod, state): its watcher cannot see the test's
/// mount namespace once it is gone, so the test itself says which it changed, as it ends
/// (`report_changes`). Set once, before any code of the test's.
static BOUND: std::sync::OnceLock<Vec<(CString, Option<FileState>)>> = std::sync::OnceLock::new();

/// In a warm test, once its clones are bound: remember them for `report_changes`.
pub fn remember(clones: &Clones) {
    let bound = clones
        .files
        .iter()
        .filter_map(|cl| Some((CString::new(cl.path.clone()).ok()?, cl.bound)))
        .collect();
    let _ = BOUND.set(bound);
}

/// As the test ends (its exit, its verdict, a signal that ends it): a `C` frame, a bitmap of
/// the clones (by index among the watched files that existed) whose state differs from when
/// they were bound. Async-signal-safe: `stat` calls and one `write` of a frame on the stack.
pub fn report_changes() {
    let Some(bound) = BOUND.get() else { return };
    let mut frame = [0u8; 5 + super::files::MAX_WATCHED / 8];
    frame[0] = b'C';
    let len = bound.len().div_ceil(8).min(frame.len() - 5);
    frame[1..5].copy_from_slice(&(len as u32).to_le_bytes());
    for (i, (path, then)) in bound.iter().enumerate().take(len * 8) {
        if super::files::state_of(path) != *then {
            frame[5 + i / 8] |= 1 << (i % 8);
        }
    }
    let fd = super::report_fd();
    if fd >= 0 {
        let _ = sys::write(fd, &frame[..5 + len]);
    }
}
