//! The plan: everything about a pod that can be worked out once, in the host, before any fork.
//! It is also the start-up probe: if a piece of isolation is missing on this host, building the
//! plan fails with a message naming it, and `ckpt()` fails closed.
//!
//! - which mounts the pod overlays copy-on-write, which it binds read-only, which it replaces
//!   (a fresh /proc, a minimal /dev) and which it leaves out;
//! - one empty network namespace for all pods of this process (`setns` is ~5 µs, a fresh one
//!   ~350 µs), and when not root the user namespace that owns it.

use crate::sys;
use scan::{sockets_and_fifos, warn_hidden, warn_whole};
pub use split::{cut, Piece};

mod scan;
mod split;
use std::os::fd::RawFd;

/// What the pod does with one mount of the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountAction {
    /// A writable file system: overlaid, writes go to the pod's scratch.
    Overlay,
    /// A fresh proc for the pod's PID namespace.
    Proc,
    /// A tmpfs with null, zero, full, random, urandom, tty bound in.
    Dev,
    /// An overlay mounted read-only (read-only and network file systems): the pod reads the
    /// host's files, but sockets, FIFOs and device nodes below are the overlay's own inodes,
    /// which no host process listens on or holds open.
    OverlayReadOnly,
    /// Read-only bind of the whole tree below, `nodev`: sysfs (no sockets, FIFOs or device
    /// nodes in it) and single regular files bound onto a path.
    BindReadOnly,
    /// A piece of a cut tree (`split`): an empty directory of the pod's own.
    Dir,
    /// A piece of a cut tree: a regular file, bound read-only once checked to be one.
    File,
    /// A piece of a cut tree: a symbolic link to this target, recreated.
    Link(String),
    /// A tree to cut that had grown past twice `Plan::max_pieces` when the pod was made: an empty
    /// read-only tmpfs holding only the mount points below it.
    Hide,
}

#[derive(Clone, Debug)]
pub struct PodMount {
    pub path: String,
    pub action: MountAction,
}

/// A top-level entry of the host's `/` (used when the pod root cannot be one overlay).
#[derive(Clone, Debug)]
pub struct RootEntry {
    pub name: String,
    pub is_dir: bool,
    pub link: Option<String>,
}

pub struct Plan {
    pub mounts: Vec<PodMount>,
    pub root_entries: Vec<RootEntry>,
    pub netns_fd: RawFd,
    /// Set when not root: the user namespace that owns `netns_fd`, joined first.
    pub userns_fd: Option<RawFd>,
    /// Where the supervisor mounts its scratch tmpfs (inside its private mount namespace).
    pub scratch_mountpoint: String,
    pub scratch_bytes: u64,
    /// The system call filter the test installs last (see `pod::seccomp`).
    pub seccomp: sys::Filter,
    /// Paths below /proc and /sys hidden under an empty read-only file or directory:
    /// (path below the mount, is a directory).
    pub proc_masks: Vec<(String, bool)>,
    pub sys_masks: Vec<(String, bool)>,
    /// In a user namespace: trees bound read-only whole, since mounts below them are locked
    /// and an overlay cannot take them as a lower layer (see `bound_whole`).
    pub bound: Vec<String>,
    /// What the start-up scan found in those trees, hidden under an empty file or directory
    /// (path, is a directory): sockets and FIFOs, and directories it may search but not list.
    pub bound_nodes: Vec<(String, bool)>,
    /// Trees of `bound` the start-up scan could not walk fully (too many entries): hidden
    /// under an empty read-only tmpfs instead, since a socket or FIFO the scan missed would
    /// reach the host's (fail closed).
    pub hidden: Vec<String>,
    /// Trees of `bound` cut into pieces instead (see `split`): neither bound whole nor scanned.
    pub split: Vec<String>,
    /// Every path a mount sits on, in the host or made for the pod: where the cuts go.
    pub points: Vec<String>,
    /// Pieces a tree of `split` was allowed at start-up (`INVITE_MAX_PIECES`); a pod allows
    /// twice as many.
    pub max_pieces: usize,
}

/// Bytes of scratch for the overlays' upper layers: a test that fills the disk fills only this.
pub const SCRATCH_BYTES: u64 = 256 << 20;

impl Plan {
    /// Probe the host and plan the pods' isolation. `make_namespaces` makes the network (and,
    /// not as root, user) namespaces pods will join; `seccomp` is the pods' filter (both are
    /// `pod`'s, which carries the plan out).
    pub fn build(
        make_namespaces: impl FnOnce() -> Result<(RawFd, Option<RawFd>), String>,
        seccomp: impl FnOnce(bool) -> sys::Filter,
        max_pieces: usize,
    ) -> Result<Plan, String> {
        Plan::probe(seccomp, max_pieces)?.with_namespaces(make_namespaces)
    }

    /// The plan but the namespaces pods join (`with_namespaces`): what can be worked out at
    /// start-up, holding no descriptor. `seccomp` is told whether the pods see a host's tree
    /// bound whole (their `connect` then goes to their supervisor: `pod::unotify`). Not as
    /// root, a tree with a mount below is cut into at most `max_pieces` (`split`).
    pub fn probe(
        seccomp: impl FnOnce(bool) -> sys::Filter,
        max_pieces: usize,
    ) -> Result<Plan, String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("isolation unavailable: cannot read /proc/self/mountinfo: {e}"))?;
        let mut mounts = classify(&info);
        single_files(&mut mounts);
        if !is_root() {
            own_trees(&mut mounts);
        }
        if !std::path::Path::new("/sys/module/overlay").exists() {
            // The module may still load on demand; the first mount will tell. Only a hint here.
            let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
            if !fs.contains("overlay") {
                let _ = std::process::Command::new("modprobe")
                    .arg("overlay")
                    .status();
            }
        }
        let scratch_mountpoint = ["/tmp", "/mnt", "/var/tmp", "/run"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_dir())
            .unwrap_or("/")
            .to_string();
        let root_entries = if is_root() {
            Vec::new()
        } else {
            root_entries()
        };
        let bound = if is_root() {
            Vec::new()
        } else {
            bound_whole(&info, &mounts, &root_entries)
        };
        let points = mount_points(&info, &mounts);
        let (split, whole): (Vec<String>, Vec<String>) = bound.iter().cloned().partition(|t| {
            cut(t, &points, max_pieces)
                .map_err(|why| warn_whole(t, &why))
                .is_ok()
        });
        let (mut bound_nodes, mut hidden) = (Vec::new(), Vec::new());
        for tree in &whole {
            match sockets_and_fifos(tree) {
                Ok(nodes) => bound_nodes.extend(nodes),
                Err(why) => {
                    warn_hidden(tree, &why);
                    hidden.push(tree.clone());
                }
            }
        }
        Ok(Plan {
            mounts,
            root_entries,
            netns_fd: -1,
            userns_fd: None,
            scratch_mountpoint,
            scratch_bytes: SCRATCH_BYTES,
            seccomp: seccomp(whole.iter().any(|t| !hidden.contains(t))),
            proc_masks: present("/proc", PROC_MASKS),
            sys_masks: present("/sys", SYS_MASKS),
            bound,
            bound_nodes,
            hidden,
            split,
            points,
            max_pieces,
        })
    }

    /// Add the namespaces pods join (`make_namespaces`, see `build`).
    pub fn with_namespaces(
        mut self,
        make_namespaces: impl FnOnce() -> Result<(RawFd, Option<RawFd>), String>,
    ) -> Result<Plan, String> {
        let (netns_fd, userns_fd) = make_namespaces()?;
        crate::ownfd::mark(netns_fd);
        userns_fd.into_iter().for_each(crate::ownfd::mark);
        self.netns_fd = netns_fd;
        self.userns_fd = userns_fd;
        Ok(self)
    }

    /// Descriptors of the runtime that pods must not inherit.
    pub fn own_fds(&self) -> Vec<RawFd> {
        let mut v = vec![self.netns_fd];
        v.extend(self.userns_fd);
        v
    }
}

const OVERLAY_FS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "overlay", "f2fs", "reiserfs", "jfs", "zfs",
    "bcachefs", "ramfs",
];

/// Turn `/proc/self/mountinfo` into the pod's mount actions, parents before children; the top
/// mount wins where several are stacked on one path.
pub fn classify(mountinfo: &str) -> Vec<PodMount> {
    let mut out: Vec<PodMount> = Vec::new();
    let mut covered: Vec<String> = Vec::new(); // trees handled as a whole (bind -r, /proc, /dev)
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 6 || r.is_empty() {
            continue;
        }
        let path = unescape(l[4]);
        let opts = l[5];
        let fstype = r[0];
        if path != "/dev/shm" && covered.iter().any(|c| is_under(&path, c)) {
            continue;
        }
        let readonly = opts.split(',').any(|o| o == "ro");
        let action = if path == "/" {
            Some(MountAction::Overlay)
        } else if path == "/proc" && fstype == "proc" {
            Some(MountAction::Proc)
        } else if path == "/dev" {
            Some(MountAction::Dev)
        } else if path == "/dev/shm" {
            Some(MountAction::Overlay)
        } else if path.starts_with("/dev/") || path.starts_with("/proc/") {
            None
        } else if fstype == "sysfs" {
            Some(MountAction::BindReadOnly)
        } else if readonly {
            Some(MountAction::OverlayReadOnly)
        } else if OVERLAY_FS.contains(&fstype) {
            Some(MountAction::Overlay)
        } else if fstype.starts_with("fuse")
            || ["nfs", "nfs4", "cifs", "smb3", "9p", "virtiofs"].contains(&fstype)
        {
            Some(MountAction::OverlayReadOnly)
        } else {
            None // cgroup, bpf, tracefs, debugfs, securityfs, autofs, ...: absent in the pod
        };
        out.retain(|m| m.path != path && !is_under(&m.path, &path));
        if let Some(action) = action {
            if matches!(
                action,
                MountAction::Proc | MountAction::Dev | MountAction::BindReadOnly
            ) {
                covered.push(path.clone());
            }
            out.push(PodMount { path, action });
        }
    }
    // Parents before children, so mounting in order works.
    out.sort_by_key(|m| {
        if m.path == "/" {
            0
        } else {
            m.path.matches('/').count()
        }
    });
    out
}

fn is_under(path: &str, dir: &str) -> bool {
    dir != "/"
        && path.len() > dir.len()
        && path.starts_with(dir)
        && path.as_bytes()[dir.len()] == b'/'
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mounts of a single file (a socket bound onto a path, as `docker.sock` is; `resolv.conf` in
/// some containers) cannot be overlays: a regular file is bound read-only, anything else (a
/// socket, FIFO or device node) is left out, and the pod sees what lies below it.
fn single_files(mounts: &mut Vec<PodMount>) {
    mounts.retain_mut(|m| {
        if matches!(m.action, MountAction::Proc | MountAction::Dev) {
            return true;
        }
        match std::fs::metadata(&m.path) {
            Ok(md) if md.is_dir() => true,
            Ok(md) if md.is_file() => {
                m.action = MountAction::BindReadOnly;
                true
            }
            _ => false,
        }
    });
}

/// What OCI runtimes mask in /proc (runc, crun, Docker's defaults) for what a read-only /proc
/// leaves: what it tells of the host (timers and keys of every process), those present on this
/// host. Their other masks need no mount of ours: `acpi`, `asound`, `scsi` are only written
/// to (read-only now), `kcore` opens only with CAP_SYS_RAWIO. Each one is a mount per warm
/// pod, on the path to its first line.
const PROC_MASKS: &[&str] = &[
    "keys",
    "timer_list",
    "timer_stats",
    "sched_debug",
    "latency_stats",
];

/// ... and in /sys.
const SYS_MASKS: &[&str] = &["firmware", "devices/virtual/powercap"];

fn present(dir: &str, names: &[&str]) -> Vec<(String, bool)> {
    names
        .iter()
        .filter_map(|n| {
            let md = std::fs::symlink_metadata(format!("{dir}/{n}")).ok()?;
            Some((n.to_string(), md.is_dir()))
        })
        .collect()
}

/// In a user namespace, the mounts copied from the host's are locked, and overlayfs refuses a
/// lower layer with a locked mount below it ("failed to clone lowerpath"). Such trees (a
/// top-level directory or a mount, with any mount below) are bound read-only whole, `nodev`;
/// the mounts below them still get steps of their own on top.
fn bound_whole(info: &str, mounts: &[PodMount], entries: &[RootEntry]) -> Vec<String> {
    let points = mount_points(info, &[]);
    let has_below = |p: &str| points.iter().any(|m| is_under(m, p));
    let tops = entries
        .iter()
        .filter(|e| e.is_dir)
        .map(|e| format!("/{}", e.name))
        .filter(|p| !mounts.iter().any(|m| &m.path == p));
    let overlays = mounts
        .iter()
        .filter(|m| {
            matches!(
                m.action,
                MountAction::Overlay | MountAction::OverlayReadOnly
            )
        })
        .filter(|m| m.path != "/")
        .map(|m| m.path.clone());
    tops.chain(overlays).filter(|p| has_below(p)).collect()
}

/// Every path a mount sits on: the host's (`info`), and the pod's (`mounts`, which adds the
/// trees the user owns: `own_trees`).
fn mount_points(info: &str, mounts: &[PodMount]) -> Vec<String> {
    let host = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape));
    let mut points: Vec<String> = host.chain(mounts.iter().map(|m| m.path.clone())).collect();
    points.sort();
    points.dedup();
    points
}

/// In a user namespace, overlay copy-up cannot recreate directories owned by unmapped users
/// (root), so a write below a root-owned directory would fail. The trees the user owns around
/// the working directory and home get overlays of their own, rooted at the topmost directory
/// the user owns, so copy-up never needs a foreign owner.
fn own_trees(mounts: &mut Vec<PodMount>) {
    use std::os::unix::fs::MetadataExt;
    let uid = sys::geteuid();
    let mut starts: Vec<std::path::PathBuf> = Vec::new();
    starts.extend(std::env::current_dir().ok());
    starts.extend(std::env::var_os("HOME").map(std::path::PathBuf::from));
    for start in starts {
        let owned = |p: &std::path::Path| {
            std::fs::metadata(p)
                .map(|m| m.uid() == uid && m.is_dir())
                .unwrap_or(false)
        };
        if !owned(&start) {
            continue;
        }
        let mut top = start.clone();
        while let Some(parent) = top.parent() {
            if parent == std::path::Path::new("/") || !owned(parent) {
                break;
            }
            top = parent.to_path_buf();
        }
        let path = top.to_string_lossy().into_owned();
        if path != "/" && !mounts.iter().any(|m| m.path == path) {
            mounts.push(PodMount {
                path,
                action: MountAction::Overlay,
            });
        }
    }
    mounts.sort_by_key(|m| {
        if m.path == "/" {
            0
        } else {
            m.path.matches('/').count()
        }
    });
}

fn root_entries() -> Vec<RootEntry> {
    let Ok(rd) = std::fs::read_dir("/") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let ft = e.file_type().ok()?;
            let link = ft
                .is_symlink()
                .then(|| std::fs::read_link(e.path()).ok())
                .flatten();
            let link = link.map(|l| l.to_string_lossy().into_owned());
            Some(RootEntry {
                name,
                is_dir: ft.is_dir(),
                link,
            })
        })
        .collect()
}

/// True when the process may build pods as root (no user namespace needed).
pub fn is_root() -> bool {
    sys::geteuid() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
28 27 0:25 / /mnt/ro ro,nosuid - tmpfs x ro
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw
40 27 0:40 / /home rw - ext4 /dev/vdb rw
41 27 0:41 / /my\\040data rw - xfs /dev/vdc rw
42 27 0:42 / /sys2 rw - cgroup2 cgroup2 rw
";

    #[test]
    fn classifies_a_real_mount_table() {
        let m = classify(INFO);
        let find = |p: &str| m.iter().find(|x| x.path == p).map(|x| x.action.clone());
        assert_eq!(find("/"), Some(MountAction::Overlay));
        assert_eq!(find("/proc"), Some(MountAction::Proc));
        assert_eq!(find("/dev"), Some(MountAction::Dev));
        assert_eq!(find("/sys"), Some(MountAction::BindReadOnly));
        assert_eq!(find("/sys/fs/cgroup"), None);
        assert_eq!(find("/mnt/ro"), Some(MountAction::OverlayReadOnly));
        assert_eq!(find("/home"), Some(MountAction::Overlay));
        assert_eq!(find("/my data"), Some(MountAction::Overlay));
        assert_eq!(find("/sys2"), None);
        assert_eq!(find("/dev/pts"), None);
        assert_eq!(m.iter().filter(|x| x.path == "/dev/shm").count(), 1);
        // Parents come before children, so mounting in order works.
        let root = m.iter().position(|x| x.path == "/").unwrap();
        let home = m.iter().position(|x| x.path == "/home").unwrap();
        assert!(root < home);
    }

    #[test]
    fn unprivileged_pods_bind_whole_the_trees_with_mounts_below() {
        let m = classify(INFO);
        let entry = |name: &str| RootEntry {
            name: name.into(),
            is_dir: true,
            link: None,
        };
        let entries = [entry("mnt"), entry("usr"), entry("home"), entry("sys")];
        // /mnt has /mnt/ro below it; /usr has nothing; /home and /sys are mounts themselves,
        // and nothing is mounted below /home.
        assert_eq!(bound_whole(INFO, &m, &entries), vec!["/mnt".to_string()]);
    }
}
