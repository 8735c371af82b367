//! The pod's file systems, built in the supervisor's private mount namespace: a scratch tmpfs
//! holds an overlay's upper and work directories for every writable mount, the overlays are
//! stacked at `scratch/root` in the host's layout, and pod init chroots there.
//!
//! Lower layers are named through `/proc/self/fd/N` of descriptors opened before the scratch is
//! mounted, so the scratch can sit on any directory without hiding what it overlays. An
//! overlay's lower layer does not include the mounts below it, so each is handled on its own.
//!
//! No host socket, FIFO or device node is usable through these mounts: every mount but the
//! pod's own /dev is `nodev`; read-only and network file systems are read-only overlays, not
//! binds (through an overlay a socket or FIFO is the overlay's own inode, which no host process
//! listens on or holds open; a bind, read-only or not, reaches the host's). The binds left are
//! sysfs, regular files, and, in a user namespace, trees with locked mounts below (overlayfs
//! refuses them as lower layers). Those are cut into pieces (`plan::split`: read-only overlays,
//! regular files, empty directories of the pod's own on the ways to the mounts) or, where the
//! plan could not cut one, bound whole with the sockets and FIFOs it found masked (a tree the
//! plan could not scan fully is an empty read-only tmpfs instead).

use super::dev;
use super::scratch::Scratch;
use super::{SetupError, Step};
use crate::plan::{MountAction, Plan};
use crate::sys;
use std::ffi::{CStr, CString};
use steps::steps;

mod steps;

pub(super) fn c(s: &str) -> Result<CString, SetupError> {
    sys::cstring(s).step("path with a NUL byte")
}

pub fn prepare(plan: &Plan) -> Result<Scratch, SetupError> {
    sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)
        .step("make mounts private")?;
    let steps = steps(plan)?;
    let base = plan.scratch_mountpoint.clone();
    let opts = c(&format!("size={},mode=0755", plan.scratch_bytes))?;
    sys::mount(
        Some(c"invite-scratch"),
        &c(&base)?,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(&opts),
    )
    .step("mount the scratch tmpfs")?;
    let root = root_of(plan);
    sys::mkdir(&c(&root)?, 0o755).step("create the pod root")?;
    let mut own = OwnMounts(plan.seccomp.notify.then(Vec::new));
    own.add(&c(&root)?);
    sys::mkdir(&c(&format!("{base}/u"))?, 0o700).step("create the upper directories")?;
    sys::mkdir(&c(&format!("{base}/w"))?, 0o700).step("create the work directories")?;
    mask_sources(&base)?;
    let userns = plan.userns_fd.is_some();
    if userns {
        root_links(plan, &root);
    }
    // As root, the pod's /dev is made in the root overlay's upper layer (an opaque directory of
    // device nodes) before the overlay is mounted: no mount of its own. In a user namespace
    // nodes cannot be made, so /dev is a tmpfs with the host's nodes bound in.
    let dev_in_upper = !userns && steps.iter().any(|s| s.action == MountAction::Dev);
    let mut uppers = Vec::new();
    let mut has_proc = false;
    for (i, m) in steps.iter().enumerate() {
        let target = if m.path == "/" {
            root.clone()
        } else {
            format!("{root}{}", m.path)
        };
        let ct = c(&target)?;
        // The mount point: a link is all there is of its piece; none there, no mount (e.g.
        // below a read-only bind).
        let made = match &m.action {
            _ if m.path == "/" => Ok(()),
            MountAction::Link(to) => {
                let _ = sys::symlink(&c(to)?, &ct);
                continue;
            }
            MountAction::File => sys::mknod_file(&ct),
            _ => sys::mkdir(&ct, 0o755),
        };
        if made.is_err() {
            continue;
        }
        match m.action {
            MountAction::OverlayReadOnly => {
                let Some(lower) = m.source else { continue };
                // No upper layer: a second lower one, the empty mask directory (an overlay
                // needs two), is ~50 us a mount in a user namespace against ~165 with one.
                let layers = Layers::Lower(&format!("{base}/{MASK_DIR}/d"));
                // Cannot be overlaid (an exotic file system): absent, since a bind would
                // let host sockets and FIFOs through.
                if overlay(lower, layers, userns, &ct).is_ok() {
                    own.add(&ct);
                }
            }
            MountAction::Overlay => {
                let (upper, work) = (format!("{base}/u/{i}"), format!("{base}/w/{i}"));
                sys::mkdir(&c(&upper)?, 0o755).step("create an upper directory")?;
                sys::mkdir(&c(&work)?, 0o700).step("create a work directory")?;
                let Some(lower) = m.source else { continue };
                let root_dev = m.path == "/" && dev_in_upper;
                if root_dev {
                    dev::dev_dir(&format!("{upper}/dev"), true)?;
                }
                match overlay(lower, Layers::Upper(&upper, &work), userns, &ct) {
                    Ok(()) => {
                        own.add(&ct);
                        uppers.push((m.path.clone(), upper))
                    }
                    Err(e) if m.path == "/" => {
                        return Err(SetupError {
                            step: "mount the overlay on /",
                            err: e,
                        })
                    }
                    // Cannot be overlaid (an exotic file system): absent, since a bind would
                    // let host sockets and FIFOs through.
                    Err(_) => {}
                }
                if root_dev {
                    dev::dev_mount(&format!("{target}/dev"))?;
                }
            }
            MountAction::Proc => has_proc = true,
            MountAction::Dev if dev_in_upper => {}
            MountAction::Dev => {
                dev::tmpfs_dev(&ct, &target)?;
                own.add(&ct);
            }
            MountAction::Hide => {
                let below = steps.iter().map(|s| s.path.as_str());
                hide_tree(&m.path, &target, below)?;
            }
            MountAction::File => {
                if let Some(src) = m.source {
                    bind_file_readonly(src, &ct)?;
                }
            }
            MountAction::Dir | MountAction::Link(_) => {}
            MountAction::BindReadOnly => {
                if let Some(src) = m.source {
                    bind_readonly(src, &ct)?;
                }
                if m.path == "/sys" {
                    mask(plan, &target, &plan.sys_masks)?;
                }
            }
        }
    }
    for fd in steps.iter().filter_map(|s| s.source) {
        sys::close(fd);
    }
    // Sockets and FIFOs of the host in trees bound whole: hidden (a bound socket would reach
    // its listener, a bound FIFO its reader), and the directories the scan could not list.
    // One removed since the scan is fine; one that cannot be hidden fails the pod (closed).
    for (node, is_dir) in &plan.bound_nodes {
        let path = node.trim_start_matches('/').to_string();
        match mask(plan, &root, &[(path, *is_dir)]) {
            Err(e) if e.err.kind() == std::io::ErrorKind::NotFound => {}
            r => r?,
        }
    }
    Ok(Scratch {
        dev_in_upper,
        root: c(&root)?,
        uppers,
        has_proc,
        clones: None,
        own_mounts: own.0.unwrap_or_default(),
    })
}

/// The ids of the mounts made for the pod, where they are wanted (`Scratch::own_mounts`): each
/// looked up right after it is made, before the pod exists, at its mount point. One that cannot
/// be looked up is left out (its sockets are refused: closed).
struct OwnMounts(Option<Vec<u64>>);

impl OwnMounts {
    fn add(&mut self, target: &CStr) {
        if let Some(v) = &mut self.0 {
            v.extend(sys::mount_id_at(libc::AT_FDCWD, target).ok());
        }
    }
}

/// What an overlay has above its lower layer: an upper and a work directory (writable), or
/// only a second lower layer (read-only).
enum Layers<'a> {
    Upper(&'a str, &'a str),
    Lower(&'a str),
}

/// Every overlay is `nodev`: a device node of the host's, seen through it, cannot be opened.
/// Its sockets and FIFOs are the overlay's own inodes: no host process listens on or holds
/// them (a `connect` is refused, an `open` of a FIFO meets no host reader or writer).
fn overlay(lower: i32, layers: Layers, userns: bool, target: &CStr) -> std::io::Result<()> {
    let mut flags = libc::MS_NODEV;
    let mut o = match layers {
        Layers::Upper(upper, work) => {
            format!("lowerdir=/proc/self/fd/{lower},upperdir={upper},workdir={work},volatile")
        }
        Layers::Lower(second) => {
            flags |= libc::MS_RDONLY;
            format!("lowerdir=/proc/self/fd/{lower}:{second}")
        }
    };
    if userns {
        o.push_str(",userxattr");
    }
    sys::mount(
        Some(c"invite-pod"),
        target,
        Some(c"overlay"),
        flags,
        Some(&sys::cstring(&o)?),
    )
}

/// Where the empty file and directory that hide masked paths are, in the scratch.
const MASK_DIR: &str = "mask";

/// An empty directory and an empty file on a read-only tmpfs of their own, outside the pod
/// root: a bind of either hides a path (binds inherit the read-only flag).
fn mask_sources(base: &str) -> Result<(), SetupError> {
    let dir = c(&format!("{base}/{MASK_DIR}"))?;
    sys::mkdir(&dir, 0o755).step("create the mask directory")?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let opts = Some(c"size=4k,mode=0555");
    sys::mount(Some(c"invite-mask"), &dir, Some(c"tmpfs"), flags, opts)
        .step("mount the mask tmpfs")?;
    sys::mkdir(&c(&format!("{base}/{MASK_DIR}/d"))?, 0o555).step("create the mask directory")?;
    sys::mknod_file(&c(&format!("{base}/{MASK_DIR}/f"))?).step("create the mask file")?;
    sys::mount(
        None,
        &dir,
        None,
        libc::MS_REMOUNT | libc::MS_RDONLY | flags,
        opts,
    )
    .step("make the mask tmpfs read-only")
}

/// Hide `masks` (paths below `dir`, with whether each is a directory) under the empty mask
/// directory or file.
fn mask(plan: &Plan, dir: &str, masks: &[(String, bool)]) -> Result<(), SetupError> {
    let base = &plan.scratch_mountpoint;
    let (d, f) = (
        c(&format!("{base}/{MASK_DIR}/d"))?,
        c(&format!("{base}/{MASK_DIR}/f"))?,
    );
    for (path, is_dir) in masks {
        let src = if *is_dir { &d } else { &f };
        sys::mount(
            Some(src),
            &c(&format!("{dir}/{path}"))?,
            None,
            libc::MS_BIND,
            None,
        )
        .step("mask a path")?;
    }
    Ok(())
}

/// Top-level symbolic links of the host (`/bin -> usr/bin` on merged-/usr systems), recreated
/// in a pod root that is not an overlay.
fn root_links(plan: &Plan, root: &str) {
    for e in plan.root_entries.iter().filter(|e| !e.is_dir) {
        if let (Some(t), Ok(link)) = (&e.link, c(&format!("{root}/{}", e.name))) {
            if let Ok(t) = c(t) {
                let _ = sys::symlink(&t, &link);
            }
        }
    }
}

/// Attach a tree copied by `open_tree` at `target`, read-only, `nodev`, `nosuid` throughout.
fn bind_readonly(tree_fd: i32, target: &CStr) -> Result<(), SetupError> {
    if sys::move_mount_to(tree_fd, target).is_err() {
        return Ok(()); // absent in the pod rather than writable
    }
    if sys::make_tree_readonly(target).is_err() {
        let flags = libc::MS_RDONLY | libc::MS_NODEV | libc::MS_NOSUID;
        sys::mount(
            None,
            target,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | flags,
            None,
        )
        .step("make a bind mount read-only")?;
    }
    Ok(())
}

/// Bind the regular file opened as `file` (`steps::regular_file`) at `target`, read-only.
fn bind_file_readonly(file: i32, target: &CStr) -> Result<(), SetupError> {
    let src = c(&format!("/proc/self/fd/{file}"))?;
    sys::mount(Some(&src), target, None, libc::MS_BIND, None).step("bind a file")?;
    sys::make_tree_readonly(target).step("make a bound file read-only")
}

/// A tree bound whole that the plan could not scan (`Plan::hidden`), or one to cut that grew
/// past twice the pieces since start-up (`MountAction::Hide`): an empty read-only tmpfs at
/// `target`, holding only the mount points of the steps `below` it.
fn hide_tree<'a>(
    path: &str,
    target: &str,
    below: impl Iterator<Item = &'a str>,
) -> Result<(), SetupError> {
    let t = c(target)?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let opts = Some(c"size=4k,mode=0755");
    sys::mount(Some(c"invite-hidden"), &t, Some(c"tmpfs"), flags, opts).step("hide a tree")?;
    for rest in below.filter_map(|p| p.strip_prefix(path).filter(|r| r.starts_with('/'))) {
        std::fs::create_dir_all(format!("{target}{rest}"))
            .step("create a mount point in a hidden tree")?;
    }
    let ro = libc::MS_REMOUNT | libc::MS_RDONLY | flags;
    sys::mount(None, &t, None, ro, opts).step("make a hidden tree read-only")
}

/// In the test: a fresh /proc, a bound on its process count, then chroot into the pod root at
/// the same working directory.
pub fn enter_root(plan: &Plan, s: &Scratch, cwd: Option<&CStr>) -> Result<(), SetupError> {
    enter_root_at(plan, &s.root, s.has_proc, true, cwd)
}

/// `enter_root` for a root known by path (a warm pod's, the same in every blank). `proc_steps`:
/// put the test first in line for the OOM killer (not done yet), through the host's /proc, still
/// reachable: the pod's own is read-only. The process count is bounded here (`limit_pids`).
///
/// The pod's /proc is read-only as a whole (a uid 0 without capabilities could otherwise write
/// `/proc/sys`, `/proc/sysrq-trigger`, `/proc/irq/*`: kernel-wide state), and the paths OCI
/// runtimes mask are hidden under an empty file or directory.
pub fn enter_root_at(
    plan: &Plan,
    root_c: &CStr,
    has_proc: bool,
    proc_steps: bool,
    cwd: Option<&CStr>,
) -> Result<(), SetupError> {
    let root = root_c.to_str().unwrap_or("/");
    if proc_steps {
        super::limits::oom_first();
    }
    if has_proc {
        // pid_max is written through this /proc before it is made read-only: looked up through
        // the host's /proc, the new PID namespace's entry cost 50-190 us of CPU here (more as the
        // machine had made more PID namespaces), through a fresh /proc about 10.
        let proc_dir = format!("{root}/proc");
        let dir = c(&proc_dir)?;
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        sys::mount(Some(c"proc"), &dir, Some(c"proc"), flags, None).step("mount a fresh /proc")?;
        limit_pids(&dir);
        let ro = libc::MS_REMOUNT | libc::MS_RDONLY | flags;
        sys::mount(None, &dir, None, ro, None).step("make the fresh /proc read-only")?;
        mask(plan, &proc_dir, &plan.proc_masks)?;
    } else {
        limit_pids(c"/proc");
    }
    sys::chroot(root_c).step("chroot into the pod root")?;
    let dir = cwd.unwrap_or(c"/");
    if sys::chdir(dir).is_err() {
        sys::chdir(c"/").step("enter the working directory")?;
    }
    Ok(())
}

/// Linux 6.14+: pid_max per PID namespace bounds a fork bomb to this pod. The file acts on the
/// writer's PID namespace, whichever /proc (`proc_dir`) names it. Before 6.14 it is the whole
/// machine's limit, and a pod leaves it alone.
pub fn limit_pids(proc_dir: &CStr) {
    if !PID_MAX_PER_NS.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let path = format!("{}/sys/kernel/pid_max", proc_dir.to_string_lossy());
    if let Ok(path) = CString::new(path) {
        let _ = sys::write_existing(&path, b"512");
    }
}

static PID_MAX_PER_NS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether a pod's PID namespace bounds its processes by itself (`limit_pids`).
pub fn pid_max_per_ns() -> bool {
    PID_MAX_PER_NS.load(std::sync::atomic::Ordering::Relaxed)
}

/// In the host, once, before any fork: is pid_max per PID namespace here (Linux 6.14+)?
pub fn probe_kernel() {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    PID_MAX_PER_NS.store(
        kernel_at_least(&release, (6, 14)),
        std::sync::atomic::Ordering::Relaxed,
    );
    FINE_CTIME.store(
        kernel_at_least(&release, (6, 13)),
        std::sync::atomic::Ordering::Relaxed,
    );
}

static FINE_CTIME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Linux 6.13+: a write that follows a look at a file's change time gives it a new one, however
/// soon (multigrain time stamps: XFS, btrfs, ext4, tmpfs). Before, two writes within a tick
/// may leave the same time stamp.
pub fn fine_grained_ctime() -> bool {
    FINE_CTIME.load(std::sync::atomic::Ordering::Relaxed)
}

/// `release` as `uname -r` gives it ("6.18.44-fc-v657"), compared by major and minor.
fn kernel_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut it = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (major, minor) >= want
}

/// Where a prepared scratch puts the pod root.
pub fn root_of(plan: &Plan) -> String {
    format!("{}/root", plan.scratch_mountpoint)
}

/// Does the plan give pods a fresh /proc?
pub fn has_proc(plan: &Plan) -> bool {
    plan.mounts.iter().any(|m| m.action == MountAction::Proc)
}

#[cfg(test)]
mod tests {
    use super::kernel_at_least;

    #[test]
    fn pid_max_per_namespace_from_6_14() {
        assert!(kernel_at_least("6.18.44-fc-v657\n", (6, 14)));
        assert!(kernel_at_least("6.14.0", (6, 14)));
        assert!(kernel_at_least("7.0.1", (6, 14)));
        assert!(!kernel_at_least("6.1.0-28-amd64", (6, 14)));
        assert!(!kernel_at_least("5.15.0", (6, 14)));
        assert!(!kernel_at_least("", (6, 14)));
    }
}
