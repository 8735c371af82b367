//! The pod's own /dev: the harmless character devices (null, zero, full, random, urandom,
//! tty), the usual links, and mount points for shm, pts and mqueue. As root it is made in the
//! root overlay's upper layer and owned by nobody, with a mount of its own where devices work
//! (every other mount of the pod is `nodev`); in a user namespace it is a small tmpfs with the
//! host's nodes bound in.

use super::mounts::c;
use super::{SetupError, Step};
use crate::sys;
use std::ffi::CStr;

/// The pod's devices: name, major, minor (the kernel's fixed numbers for these).
const DEV_NODES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// The root overlay is `nodev`; its /dev (the pod's own nodes, made in the upper layer) gets a
/// mount of its own where devices work.
pub(super) fn dev_mount(dev: &str) -> Result<(), SetupError> {
    let d = c(dev)?;
    sys::mount(Some(&d), &d, None, libc::MS_BIND, None).step("bind the pod's /dev")?;
    let flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID | libc::MS_NOEXEC;
    sys::mount(None, &d, None, flags, None).step("allow devices in the pod's /dev")
}

/// A minimal /dev on a tmpfs of its own (user namespaces).
pub(super) fn tmpfs_dev(ct: &CStr, target: &str) -> Result<(), SetupError> {
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
pub(super) fn dev_dir(dir: &str, mknod: bool) -> Result<(), SetupError> {
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
        for (name, _) in sys::dir_entries(&c(dir)?).step("list the pod's /dev")? {
            std::os::unix::fs::lchown(
                std::path::Path::new(dir).join(name),
                Some(NOBODY),
                Some(NOBODY),
            )
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
