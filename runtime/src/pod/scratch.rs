//! The scratch of a pod as its supervisor (or a warm pod's watcher) reads it: where the pod root
//! is, which upper layer belongs to which mount, and what the pod changed.

use super::clones::Clones;
use std::ffi::CString;

/// The scratch of one pod: where its root is and which upper directory belongs to which mount.
pub struct Scratch {
    /// The pod's /dev lives in the root overlay's upper layer (not a change of the test's).
    pub(super) dev_in_upper: bool,
    pub root: CString,
    /// (mount point in the pod, upper directory in the scratch)
    pub uppers: Vec<(String, String)>,
    pub(super) has_proc: bool,
    /// The watched files the pod sees as clones bound over their paths (a cold pod's, on a file
    /// system with reflinks: `clones`).
    pub(super) clones: Option<Clones>,
    /// The mounts the supervisor made for the pod (its overlays, the scratch its root is on, its
    /// /dev), by id, where its `connect` is decided by the supervisor (`unotify`): the sockets
    /// on them are the pod's own or an overlay's (no host process listens on those).
    pub own_mounts: Vec<u64>,
}

impl Scratch {
    /// How long the host was held still while the pod's clones were taken (`clones`).
    pub fn held_ns(&self) -> u64 {
        self.clones.as_ref().map_or(0, |c| c.held_ns)
    }

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
            clones: None,
            own_mounts: Vec::new(),
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

    /// Where a changed path's new contents are: in the upper layer of its mount, or its clone.
    pub fn upper_path(&self, path: &str) -> Option<std::path::PathBuf> {
        if let Some(p) = self.clones.as_ref().and_then(|c| c.contents(path)) {
            return Some(p);
        }
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
        if let Some(c) = &self.clones {
            out.extend(c.changed().map(str::to_string));
        }
        out.sort();
        out
    }
}

fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) =
        crate::sys::cstring(&dir.to_string_lossy()).and_then(|d| crate::sys::dir_entries(&d))
    else {
        return;
    };
    for (name, kind) in entries {
        let entry = dir.join(&name);
        let name = name.to_string_lossy();
        let path = if prefix == "/" {
            format!("/{name}")
        } else {
            format!("{prefix}/{name}")
        };
        let is_dir = match kind {
            libc::DT_UNKNOWN => std::fs::symlink_metadata(&entry).is_ok_and(|m| m.is_dir()),
            k => k == libc::DT_DIR,
        };
        if is_dir {
            let before = out.len();
            walk(&entry, &path, out);
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
