//! The pod's file systems, built in the supervisor's private mount namespace: a scratch tmpfs
//! holds an overlay's upper and work directories for every writable mount, the overlays are
//! stacked at `scratch/root` in the host's layout, and pod init chroots there.
//!
//! Lower layers are named through `/proc/self/fd/N` of descriptors opened before the scratch is
//! mounted, so the scratch can sit on any directory without hiding what it overlays. An
//! overlay's lower layer does not include the mounts below it, so each is handled on its own.

use super::{SetupError, Step};
use crate::plan::{MountAction, Plan};
use crate::sys;
use std::ffi::{CStr, CString};

/// The scratch of one pod: where its root is and which upper directory belongs to which mount.
pub struct Scratch {
    pub root: CString,
    /// (mount point in the pod, upper directory in the scratch)
    pub uppers: Vec<(String, String)>,
    has_proc: bool,
}

const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

fn c(s: &str) -> Result<CString, SetupError> {
    sys::cstring(s).step("path with a NUL byte")
}

pub fn prepare(plan: &Plan) -> Result<Scratch, SetupError> {
    sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None).step("make mounts private")?;
    // Lower layers, opened before the scratch can cover anything.
    let mut lowers = Vec::new();
    for m in plan.mounts.iter().filter(|m| m.action == MountAction::Overlay) {
        let fd = sys::open(&c(&m.path)?, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC, 0)
            .step("open an overlay's lower layer")?;
        lowers.push(fd);
    }
    let base = plan.scratch_mountpoint.clone();
    let opts = c(&format!("size={},mode=0700", plan.scratch_bytes))?;
    sys::mount(Some(c"invite-scratch"), &c(&base)?, Some(c"tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some(&opts))
        .step("mount the scratch tmpfs")?;
    let root = format!("{base}/root");
    sys::mkdir(&c(&root)?, 0o755).step("create the pod root")?;
    sys::mkdir(&c(&format!("{base}/u"))?, 0o700).step("create the upper directories")?;
    sys::mkdir(&c(&format!("{base}/w"))?, 0o700).step("create the work directories")?;
    let userns = plan.userns_fd.is_some();
    let mut uppers = Vec::new();
    let mut has_proc = false;
    let mut li = 0;
    for (i, m) in plan.mounts.iter().enumerate() {
        let target = if m.path == "/" { root.clone() } else { format!("{root}{}", m.path) };
        let ct = c(&target)?;
        match m.action {
            MountAction::Overlay => {
                let (upper, work) = (format!("{base}/u/{i}"), format!("{base}/w/{i}"));
                sys::mkdir(&c(&upper)?, 0o755).step("create an upper directory")?;
                sys::mkdir(&c(&work)?, 0o700).step("create a work directory")?;
                let mut o = format!("lowerdir=/proc/self/fd/{},upperdir={upper},workdir={work},volatile", lowers[li]);
                if userns {
                    o.push_str(",userxattr");
                }
                li += 1;
                if let Err(e) = sys::mount(Some(c"invite-pod"), &ct, Some(c"overlay"), 0, Some(&c(&o)?)) {
                    if m.path == "/" {
                        return Err(SetupError { step: "mount the overlay on /", err: e });
                    }
                    // A mount point the root overlay cannot show (e.g. made after the fact):
                    // leave it out rather than fail the pod.
                    continue;
                }
                uppers.push((m.path.clone(), upper));
            }
            MountAction::Proc => has_proc = true,
            MountAction::Dev => dev(&ct, &target)?,
            MountAction::BindReadOnly => {
                let src = c(&m.path)?;
                if sys::mount(Some(&src), &ct, None, libc::MS_BIND | libc::MS_REC, None).is_ok()
                    && sys::make_tree_readonly(&ct).is_err()
                {
                    sys::mount(None, &ct, None, libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY, None)
                        .step("make a bind mount read-only")?;
                }
            }
        }
    }
    for fd in lowers {
        sys::close(fd);
    }
    Ok(Scratch { root: c(&root)?, uppers, has_proc })
}

/// A minimal /dev: a small tmpfs with the harmless character devices bound in.
fn dev(ct: &CStr, target: &str) -> Result<(), SetupError> {
    sys::mount(Some(c"invite-dev"), ct, Some(c"tmpfs"), libc::MS_NOSUID | libc::MS_NOEXEC, Some(c"size=64k,mode=0755"))
        .step("mount the pod's /dev")?;
    for n in DEV_NODES {
        let node = c(&format!("{target}/{n}"))?;
        sys::mknod_file(&node).step("create a /dev node")?;
        let host = c(&format!("/dev/{n}"))?;
        if let Err(e) = sys::mount(Some(&host), &node, None, libc::MS_BIND, None) {
            if *n != "tty" {
                return Err(SetupError { step: "bind a /dev node", err: e });
            }
        }
    }
    for (name, to) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
        let _ = sys::symlink(&c(to)?, &c(&format!("{target}/{name}"))?);
    }
    for d in ["shm", "pts", "mqueue"] {
        sys::mkdir(&c(&format!("{target}/{d}"))?, 0o1777).step("create a /dev directory")?;
    }
    Ok(())
}

/// In pod init: a fresh /proc for the pod's PID namespace, a bound on its process count, then
/// chroot into the pod root at the same working directory.
pub fn enter_root(s: &Scratch, cwd: Option<&CStr>) -> Result<(), SetupError> {
    let root = s.root.to_str().unwrap_or("/");
    if s.has_proc {
        let proc_dir = c(&format!("{root}/proc"))?;
        sys::mount(Some(c"proc"), &proc_dir, Some(c"proc"), libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, None)
            .step("mount a fresh /proc")?;
        // Linux 6.14+: pid_max per PID namespace bounds a fork bomb to this pod.
        let _ = std::fs::write(format!("{root}/proc/sys/kernel/pid_max"), "512");
    }
    sys::chroot(&s.root).step("chroot into the pod root")?;
    let dir = cwd.unwrap_or(c"/");
    if sys::chdir(dir).is_err() {
        sys::chdir(c"/").step("enter the working directory")?;
    }
    Ok(())
}

impl Scratch {
    /// Where a changed path's new contents are, in the upper layer of its mount.
    pub fn upper_path(&self, path: &str) -> Option<std::path::PathBuf> {
        self.uppers
            .iter()
            .filter(|(m, _)| m == "/" || path == m || path.starts_with(&format!("{m}/")))
            .max_by_key(|(m, _)| m.len())
            .map(|(m, upper)| std::path::Path::new(upper).join(path[if m == "/" { 0 } else { m.len() }..].trim_start_matches('/')))
    }

    /// The paths the pod created, changed or removed, from the overlays' upper layers.
    pub fn changed(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (mount, upper) in &self.uppers {
            walk(std::path::Path::new(upper), mount, &mut out);
        }
        out.sort();
        out
    }
}

fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let path = if prefix == "/" { format!("/{name}") } else { format!("{prefix}/{name}") };
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            let before = out.len();
            walk(&e.path(), &path, out);
            // An upper directory is copied up only for a change below it, so an empty one was
            // made, chmod-ed or emptied by the pod itself.
            if out.len() == before {
                out.push(path);
            }
        } else {
            out.push(path);
        }
    }
}

