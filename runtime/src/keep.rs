//! Kept pods (`INVITE_KEEP_PODS=failed|all`): before the scratch vanishes with its supervisor,
//! the pod's record and the files it created or changed are copied to
//! `INVITE_POD_DIR/<pid>.<pod path with '/' as '.'>/`: `record.json`, and `changes/<path>` for
//! each changed file (removed files are only listed in the record). `invite pods` reads them.

use crate::pod::Scratch;
use crate::sys;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// Open (creating it) the pod directory before the scratch is mounted, which may cover it.
pub fn open_dir(dir: &Path) -> Option<RawFd> {
    std::fs::create_dir_all(dir).ok()?;
    let c = sys::cstring(&dir.to_string_lossy()).ok()?;
    sys::open(&c, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC, 0).ok()
}

pub fn keep_pod(
    dir_fd: RawFd,
    path: &str,
    pid: i32,
    record: &str,
    changed: &[String],
    scratch: Option<&Scratch>,
) {
    let base = PathBuf::from(format!(
        "/proc/self/fd/{dir_fd}/{pid}.{}",
        path.replace('/', ".")
    ));
    if std::fs::create_dir_all(&base).is_err() {
        return;
    }
    let _ = std::fs::write(base.join("record.json"), record);
    let Some(scratch) = scratch else { return };
    for p in changed {
        let Some(src) = scratch.upper_path(p) else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(&src) else {
            continue;
        };
        let dst = base.join("changes").join(p.trim_start_matches('/'));
        if meta.is_dir() {
            let _ = std::fs::create_dir_all(&dst);
        } else if meta.is_file() {
            if let Some(parent) = dst.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let _ = std::fs::copy(&src, &dst);
        } else if meta.file_type().is_symlink() {
            if let (Ok(t), Some(parent)) = (std::fs::read_link(&src), dst.parent()) {
                let _ = std::fs::create_dir_all(parent);
                let _ = std::os::unix::fs::symlink(t, &dst);
            }
        }
    }
}
