//! The pods' own cgroup: where the host may make cgroups (root on cgroup v1; a delegated subtree
//! on v2), its pods run in one of their own, `invite-<host pid>`, whose limits hold them all
//! together: `pids.max` where a pod's PID namespace does not bound it (before Linux 6.14; uid 0
//! is exempt from RLIMIT_NPROC), and, when the host's cgroups limit its memory, a memory limit
//! below the room they leave (so the pods' group, not the host, meets the OOM killer; on v2
//! `memory.oom.group` kills the group as one). Where neither is needed, no group is made.
//!
//! - v1: a child of the host's cgroup in the `memory` and `pids` hierarchies.
//! - v2: a sibling of the host's cgroup (a cgroup with processes may not have children with
//!   controllers), made only where the parent enables `memory` and `pids` for its children and
//!   lets this user make cgroups in it (delegation).
//!
//! Made once, in the host, before the first pod; each pod's test joins it during its setup
//! (one `write` per hierarchy to a descriptor the host opened, about 10 µs each); removed at
//! exit, or by the next host that makes one there if this one was killed. Where it cannot be
//! made, pods run in the host's cgroup, bounded by their own limits and by admission
//! (`headroom`).

use crate::headroom;
use crate::sys;
use std::ffi::CString;
use std::os::fd::IntoRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, Once};

/// Memory left to the host below the pods' group limit.
pub const HOST_MEMORY: u64 = 64 << 20;

/// `cgroup.procs` of the pods' group, one per hierarchy (-1: none).
static PROCS: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];
static MADE: Once = Once::new();
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// In the host, before a pod is forked: make the pods' group once.
pub fn ensure(max_concurrent: u32, want_pids: bool) {
    MADE.call_once(|| {
        let pids = headroom::POD_PIDS * max_concurrent as u64;
        let room = headroom::memory_room_recent();
        let memory =
            (room != u64::MAX).then(|| room.saturating_sub(HOST_MEMORY).max(headroom::POD_MEMORY));
        // Only what bounds something: the process count where a PID namespace does not bound
        // a pod by itself (before Linux 6.14), memory where the host's cgroups limit it. Each
        // group joined is a cgroup migration on every pod's way in.
        let name = format!("invite-{}", sys::getpid());
        let mut slot = 0;
        let mut v2_done: Option<PathBuf> = None;
        for own in headroom::own() {
            let wanted = if own.controller == "pids" {
                want_pids
            } else {
                memory.is_some()
            };
            if slot >= PROCS.len() || !wanted {
                continue;
            }
            let dir = if own.v2 {
                if v2_done.is_some() {
                    continue; // one hierarchy: both controllers in one group
                }
                match delegated(&own.dir) {
                    Some(parent) => parent.join(&name),
                    None => continue,
                }
            } else {
                own.dir.join(&name)
            };
            if let Some(parent) = dir.parent() {
                remove_stale(parent);
            }
            if let Some(fd) = make(&dir, own, pids, memory) {
                PROCS[slot].store(crate::ownfd::own(fd), Ordering::Relaxed);
                slot += 1;
                if own.v2 {
                    v2_done = Some(dir.clone());
                }
                DIRS.lock().unwrap_or_else(|e| e.into_inner()).push(dir);
            }
        }
    });
}

/// Groups left by hosts that were killed (no exit handler ran): `invite-<pid>` of a process that
/// is gone. Removing one that still holds a pod fails, and it stays.
fn remove_stale(parent: &Path) {
    // Not `std::fs::read_dir`: its `opendir` calls the program's `malloc` (`sys::heap`).
    let Ok(rd) = sys::dir_entries_of(parent) else {
        return;
    };
    for (name, _) in rd {
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("invite-")) else {
            continue;
        };
        let gone =
            pid.bytes().all(|b| b.is_ascii_digit()) && !Path::new("/proc").join(pid).exists();
        if gone {
            let _ = std::fs::remove_dir(parent.join(&name));
        }
    }
}

/// v2: the parent of the host's cgroup, when it enables both controllers for its children and
/// this user may make cgroups in it.
fn delegated(host_dir: &Path) -> Option<PathBuf> {
    let parent = host_dir.parent()?;
    let sub = std::fs::read_to_string(parent.join("cgroup.subtree_control")).ok()?;
    let on = |c: &str| sub.split_whitespace().any(|s| s == c);
    (on("memory") && on("pids")).then(|| parent.to_path_buf())
}

/// Make the group and set its limits; the descriptor its members join through.
fn make(dir: &Path, own: &headroom::Own, pids: u64, memory: Option<u64>) -> Option<i32> {
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    match sys::mkdirat(libc::AT_FDCWD, &c, 0o755) {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return None,
        _ => {}
    }
    let set = |file: &str, v: &str| std::fs::write(dir.join(file), v).is_ok();
    let ok = match (own.v2, own.controller) {
        (true, _) => {
            set("pids.max", &pids.to_string())
                && memory.is_none_or(|m| set("memory.max", &m.to_string()))
                && set("memory.oom.group", "1")
        }
        (false, "pids") => set("pids.max", &pids.to_string()),
        (false, _) => memory.is_none_or(|m| set("memory.limit_in_bytes", &m.to_string())),
    };
    let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).ok()?;
    match ok.then(|| sys::open(&procs, libc::O_WRONLY | libc::O_CLOEXEC, 0).ok()) {
        Some(Some(fd)) => Some(fd.into_raw_fd()),
        _ => {
            let _ = std::fs::remove_dir(dir);
            None
        }
    }
}

/// In a pod's test, during its setup (still privileged): join the pods' group. No allocation.
pub fn join() {
    for p in &PROCS {
        let fd = p.load(Ordering::Relaxed);
        if fd >= 0 {
            let _ = sys::write(fd, b"0");
        }
    }
}

/// In a fresh fork that is not a pod's test (a live checkpoint, a pod's own nested pods): the
/// group's descriptors are the host's.
pub fn disown() {
    for p in &PROCS {
        p.store(-1, Ordering::Relaxed);
    }
}

/// At exit, once the pods are drained: remove the group (left if a pod still runs in it).
pub fn remove() {
    for dir in DIRS.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        let _ = std::fs::remove_dir(dir);
    }
}

/// The directories made (for tests and diagnostics).
#[cfg(test)]
fn made() -> Vec<PathBuf> {
    DIRS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_groups_are_made_only_where_delegated() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("svc/main");
        std::fs::create_dir_all(&host).unwrap();
        assert_eq!(delegated(&host), None);
        std::fs::write(t.path().join("svc/cgroup.subtree_control"), "cpu pids\n").unwrap();
        assert_eq!(delegated(&host), None);
        std::fs::write(t.path().join("svc/cgroup.subtree_control"), "memory pids\n").unwrap();
        assert_eq!(delegated(&host), Some(t.path().join("svc")));
        assert!(made().is_empty());
    }

    #[test]
    fn limits_are_written_per_version() {
        let t = tempfile::tempdir().unwrap();
        let own = headroom::Own {
            controller: "memory",
            dir: t.path().to_path_buf(),
            v2: true,
        };
        let dir = t.path().join("invite-1");
        // Plain files stand in for the kernel's: the group is made and its limits written.
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("cgroup.procs"), "").unwrap();
        let fd = make(&dir, &own, 2048, Some(1 << 30)).expect("made");
        sys::close(fd);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        assert_eq!(read("pids.max"), "2048");
        assert_eq!(read("memory.max"), "1073741824");
        assert_eq!(read("memory.oom.group"), "1");
        let v1 = headroom::Own {
            controller: "memory",
            dir: t.path().to_path_buf(),
            v2: false,
        };
        let fd = make(&dir, &v1, 2048, None).expect("made");
        sys::close(fd);
        assert!(
            !dir.join("memory.limit_in_bytes").exists(),
            "no limit to hold"
        );
    }
}
