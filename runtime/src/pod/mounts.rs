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
    /// The pod's /dev lives in the root overlay's upper layer (not a change of the test's).
    dev_in_upper: bool,
    pub root: CString,
    /// (mount point in the pod, upper directory in the scratch)
    pub uppers: Vec<(String, String)>,
    has_proc: bool,
}

/// The pod's devices: name, major, minor (the kernel's fixed numbers for these).
const DEV_NODES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn c(s: &str) -> Result<CString, SetupError> {
    sys::cstring(s).step("path with a NUL byte")
}

/// One mount of the pod, in order, parents first.
struct PodStep {
    path: String,
    action: MountAction,
    /// Descriptor of an overlay's lower layer or a bind's source, opened before the scratch is
    /// mounted (which may cover its path).
    source: Option<i32>,
}

/// The mounts to make. As root, `/` is one overlay. In a user namespace the host's `/` has
/// locked submounts and cannot be an overlay's lower layer, so the pod root is the scratch
/// itself, with each top-level directory of the host overlaid (or bound read-only when it has
/// mounts below it), and top-level links recreated.
fn steps(plan: &Plan) -> Result<Vec<PodStep>, SetupError> {
    let mut out = Vec::new();
    let per_entry = plan.userns_fd.is_some();
    for m in &plan.mounts {
        if per_entry && m.path == "/" {
            for e in &plan.root_entries {
                let path = format!("/{}", e.name);
                if plan.mounts.iter().any(|p| p.path == path) {
                    continue;
                }
                let action = if e.is_dir {
                    let has_mounts_below = plan
                        .mounts
                        .iter()
                        .any(|p| p.host_mount && p.path.starts_with(&format!("{path}/")));
                    if has_mounts_below {
                        MountAction::BindReadOnly
                    } else {
                        MountAction::Overlay
                    }
                } else {
                    continue; // links and files: see `root_links`
                };
                out.push(PodStep {
                    path,
                    action,
                    source: None,
                });
            }
            continue;
        }
        // As root, an empty /dev/shm needs no overlay: the pod gets an empty directory in its
        // /dev (made in the root overlay's upper layer), whose files are the pod's own anyway.
        if !per_entry && m.path == "/dev/shm" && dir_is_empty(&m.path) {
            continue;
        }
        out.push(PodStep {
            path: m.path.clone(),
            action: m.action.clone(),
            source: None,
        });
    }
    out.sort_by_key(|s| {
        if s.path == "/" {
            0
        } else {
            s.path.matches('/').count()
        }
    });
    for s in out
        .iter_mut()
        .filter(|s| matches!(s.action, MountAction::Overlay | MountAction::BindReadOnly))
    {
        // A path that cannot be opened is left out of the pod below.
        s.source = sys::open(&c(&s.path)?, libc::O_PATH | libc::O_CLOEXEC, 0).ok();
    }
    Ok(out)
}

fn dir_is_empty(path: &str) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
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
    sys::mkdir(&c(&format!("{base}/u"))?, 0o700).step("create the upper directories")?;
    sys::mkdir(&c(&format!("{base}/w"))?, 0o700).step("create the work directories")?;
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
        if m.path != "/" && sys::mkdir(&ct, 0o755).is_err() {
            continue; // no mount point in the pod's tree (e.g. below a read-only bind)
        }
        match m.action {
            MountAction::Overlay => {
                let (upper, work) = (format!("{base}/u/{i}"), format!("{base}/w/{i}"));
                sys::mkdir(&c(&upper)?, 0o755).step("create an upper directory")?;
                sys::mkdir(&c(&work)?, 0o700).step("create a work directory")?;
                let Some(lower) = m.source else { continue };
                if m.path == "/" && dev_in_upper {
                    dev_dir(&format!("{upper}/dev"), true)?;
                }
                let mut o = format!(
                    "lowerdir=/proc/self/fd/{lower},upperdir={upper},workdir={work},volatile"
                );
                if userns {
                    o.push_str(",userxattr");
                }
                match sys::mount(Some(c"invite-pod"), &ct, Some(c"overlay"), 0, Some(&c(&o)?)) {
                    Ok(()) => uppers.push((m.path.clone(), upper)),
                    Err(e) if m.path == "/" => {
                        return Err(SetupError {
                            step: "mount the overlay on /",
                            err: e,
                        })
                    }
                    // Cannot be overlaid (locked mounts below it, an exotic file system):
                    // read-only is the safe fallback.
                    Err(_) => bind_readonly(lower, &ct)?,
                }
            }
            MountAction::Proc => has_proc = true,
            MountAction::Dev if dev_in_upper => {}
            MountAction::Dev => dev(&ct, &target)?,
            MountAction::BindReadOnly => {
                if let Some(src) = m.source {
                    bind_readonly(src, &ct)?;
                }
            }
        }
    }
    for fd in steps.iter().filter_map(|s| s.source) {
        sys::close(fd);
    }
    Ok(Scratch {
        dev_in_upper,
        root: c(&root)?,
        uppers,
        has_proc,
    })
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

fn bind_readonly(src_fd: i32, target: &CStr) -> Result<(), SetupError> {
    let src = c(&format!("/proc/self/fd/{src_fd}"))?;
    if sys::mount(Some(&src), target, None, libc::MS_BIND | libc::MS_REC, None).is_err() {
        return Ok(()); // absent in the pod rather than writable
    }
    if sys::make_tree_readonly(target).is_err() {
        sys::mount(
            None,
            target,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
            None,
        )
        .step("make a bind mount read-only")?;
    }
    Ok(())
}

/// A minimal /dev on a tmpfs of its own (user namespaces).
fn dev(ct: &CStr, target: &str) -> Result<(), SetupError> {
    sys::mount(
        Some(c"invite-dev"),
        ct,
        Some(c"tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some(c"size=64k,mode=0755"),
    )
    .step("mount the pod's /dev")?;
    dev_dir(target, false)
}

/// Fill a /dev directory: the harmless character devices (made with mknod when `mknod`, else
/// the host's bound onto empty files), the usual links, and mount points for shm, pts, mqueue.
fn dev_dir(dir: &str, mknod: bool) -> Result<(), SetupError> {
    let cdir = c(dir)?;
    sys::mkdir(&cdir, 0o755).step("create the pod's /dev")?;
    if mknod {
        // Nothing of the host's /dev directory below shows through.
        sys::set_opaque(&cdir).step("make the pod's /dev opaque")?;
    }
    for (n, major, minor) in DEV_NODES {
        let node = c(&format!("{dir}/{n}"))?;
        if mknod {
            sys::mknod_char(&node, 0o666, *major, *minor).step("create a /dev node")?;
            continue;
        }
        sys::mknod_file(&node).step("create a /dev node")?;
        let host = c(&format!("/dev/{n}"))?;
        if let Err(e) = sys::mount(Some(&host), &node, None, libc::MS_BIND, None) {
            if *n != "tty" {
                return Err(SetupError {
                    step: "bind a /dev node",
                    err: e,
                });
            }
        }
    }
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let _ = sys::symlink(&c(to)?, &c(&format!("{dir}/{name}"))?);
    }
    for d in ["shm", "pts", "mqueue"] {
        let p = format!("{dir}/{d}");
        sys::mkdir(&c(&p)?, 0o1777).step("create a /dev directory")?;
        set_mode(&p, 0o1777).step("create a /dev directory")?;
    }
    if mknod {
        // Owned by nobody: a test (uid 0 without capabilities) can use the nodes and fill
        // /dev/shm but cannot change, add or remove anything else, so a warm pod's blank can
        // tell it was left as it was from its free space alone (`warm::stock`).
        for e in std::fs::read_dir(dir)
            .step("list the pod's /dev")?
            .flatten()
        {
            std::os::unix::fs::lchown(e.path(), Some(NOBODY), Some(NOBODY))
                .step("give the pod's /dev to nobody")?;
        }
        std::os::unix::fs::lchown(dir, Some(NOBODY), Some(NOBODY))
            .step("give the pod's /dev to nobody")?;
    }
    Ok(())
}

/// The owner of a root pod's /dev (see `dev_dir`).
const NOBODY: u32 = 65534;

fn set_mode(path: &str, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// In pod init: a fresh /proc for the pod's PID namespace, a bound on its process count, then
/// chroot into the pod root at the same working directory.
pub fn enter_root(s: &Scratch, cwd: Option<&CStr>) -> Result<(), SetupError> {
    enter_root_at(&s.root, s.has_proc, true, cwd)
}

/// `enter_root` for a root known by path (a warm pod's, the same in every blank); `pid_max`:
/// bound the process count through the new /proc (not done yet through another).
pub fn enter_root_at(
    root_c: &CStr,
    has_proc: bool,
    pid_max: bool,
    cwd: Option<&CStr>,
) -> Result<(), SetupError> {
    let root = root_c.to_str().unwrap_or("/");
    if has_proc {
        let proc_dir = c(&format!("{root}/proc"))?;
        sys::mount(
            Some(c"proc"),
            &proc_dir,
            Some(c"proc"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
        )
        .step("mount a fresh /proc")?;
        if pid_max {
            limit_pids(&proc_dir);
        }
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
    let _ = std::fs::write(path, "512");
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

impl Scratch {
    /// The scratch in a message: flags, root, then a line per upper layer.
    pub fn encode(&self) -> String {
        let mut s = format!(
            "{} {}\n{}\n",
            self.dev_in_upper as u8,
            self.has_proc as u8,
            self.root.to_string_lossy()
        );
        for (mount, upper) in &self.uppers {
            s.push_str(&format!("{mount}\t{upper}\n"));
        }
        s
    }

    pub fn decode(s: &str) -> Option<Scratch> {
        let mut lines = s.lines();
        let (dev, proc) = lines.next()?.split_once(' ')?;
        let root = CString::new(lines.next()?).ok()?;
        let uppers = lines
            .map(|l| {
                l.split_once('\t')
                    .map(|(m, u)| (m.to_string(), u.to_string()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Scratch {
            dev_in_upper: dev == "1",
            root,
            uppers,
            has_proc: proc == "1",
        })
    }

    /// Name the upper layers through `base` (a descriptor's `/proc/self/fd/N`) instead of
    /// `mountpoint`, where the scratch was mounted in a mount namespace the reader is not in.
    pub fn rebase(&mut self, mountpoint: &str, base: &str) {
        for (_, upper) in &mut self.uppers {
            if let Some(rest) = upper.strip_prefix(mountpoint) {
                *upper = format!("{base}{rest}");
            }
        }
    }

    /// Where a changed path's new contents are, in the upper layer of its mount.
    pub fn upper_path(&self, path: &str) -> Option<std::path::PathBuf> {
        self.uppers
            .iter()
            .filter(|(m, _)| m == "/" || path == m || path.starts_with(&format!("{m}/")))
            .max_by_key(|(m, _)| m.len())
            .map(|(m, upper)| {
                std::path::Path::new(upper)
                    .join(path[if m == "/" { 0 } else { m.len() }..].trim_start_matches('/'))
            })
    }

    /// The paths the pod created, changed or removed, from the overlays' upper layers.
    pub fn changed(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (mount, upper) in &self.uppers {
            walk(std::path::Path::new(upper), mount, &mut out);
        }
        if self.dev_in_upper {
            out.retain(|p| p != "/dev" && !p.starts_with("/dev/") || p.starts_with("/dev/shm/"));
        }
        out.sort();
        out
    }
}

fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let path = if prefix == "/" {
            format!("/{name}")
        } else {
            format!("{prefix}/{name}")
        };
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
