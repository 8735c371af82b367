//! Kept pods on disk: finding them, naming them, and reading the files they changed.
//!
//! The runtime keeps a pod (with `INVITE_KEEP_PODS`) as a directory
//! `<DIR>/<pid>.<pod path with '/' as '.'>/` holding `record.json`, the pod's journal record, and
//! `changes/<absolute path without the leading '/'>` for every file the pod created or changed.
//! A removed file is in the record's `changed` array but not under `changes/`. This module reads
//! that layout; printing is the `pods` command's.
//!
//! The pod directory may be shared, and its contents planted by someone else: everything below
//! `--dir` is opened through [`crate::beneath`] — never through a symbolic link, never a FIFO or
//! device, never more than a bound into memory.

use std::cmp::Ordering;
use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::beneath::{self, Refusal};
use crate::error::Error;
use crate::journal::{self, Record, TestRecord};

/// The largest `record.json` read: a journal line is at most 64 KiB.
pub const MAX_RECORD: u64 = 1 << 20;

/// The directory kept pods are in: `--dir`, else `INVITE_POD_DIR`, else `invite-pods`.
pub fn pod_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("INVITE_POD_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("invite-pods"))
}

/// One kept pod.
pub struct KeptPod {
    /// The directory name, `<pid>.<pod>`: what `invite pods` shows and accepts.
    pub id: String,
    pub pid: Option<u64>,
    /// The pod path as in the journal (`"3"`, `"2/1"`).
    pub path: String,
    pub root: PathBuf,
    /// The pod's directory, opened without following a link.
    dir: OwnedFd,
    /// The record, or why `record.json` could not be read.
    pub record: Result<TestRecord, String>,
}

/// A file a pod changed.
pub struct Change {
    /// Absolute, as the pod saw it.
    pub path: String,
    /// Listed in the record but not kept under `changes/`.
    pub removed: bool,
}

impl KeptPod {
    fn open(root: PathBuf, dir: OwnedFd, id: String) -> KeptPod {
        let (pid, path) = match id.split_once('.') {
            Some((pid, rest)) if pid.bytes().all(|b| b.is_ascii_digit()) && !pid.is_empty() => {
                (pid.parse().ok(), rest.replace('.', "/"))
            }
            _ => (None, id.replace('.', "/")),
        };
        let record = read_record(&dir);
        KeptPod {
            id,
            pid,
            path,
            root,
            dir,
            record,
        }
    }

    pub fn record_path(&self) -> PathBuf {
        self.root.join("record.json")
    }

    /// `record.json` as the runtime wrote it (bounded, never through a link).
    pub fn record_bytes(&self) -> Result<Vec<u8>, Error> {
        beneath::read_beneath(&self.dir, "record.json", MAX_RECORD).map_err(|why| {
            Error::BadRecord {
                pod: self.id.clone(),
                why: why.to_string(),
            }
        })
    }

    /// The files the record lists, each marked kept or removed.
    pub fn changes(&self) -> Vec<Change> {
        let Ok(record) = &self.record else {
            return Vec::new();
        };
        record
            .changed
            .iter()
            .map(|path| Change {
                path: path.clone(),
                removed: normalize(path)
                    .map(|rel| {
                        !matches!(
                            beneath::stat_beneath(&self.dir, &format!("changes/{rel}")),
                            Ok(Some(_)) | Err(Refusal::Link { .. })
                        )
                    })
                    .unwrap_or(true),
            })
            .collect()
    }

    /// One changed file, opened as the pod left it: a regular file inside the pod's `changes`.
    pub fn cat(&self, path: &str) -> Result<File, Error> {
        let rel = normalize(path).ok_or_else(|| Error::BadPath { path: path.into() })?;
        let shown = format!("/{rel}");
        let changes = beneath::dir_beneath(&self.dir, "changes", "").map_err(|why| match why {
            Refusal::Link { target, .. } => Error::Symlink {
                pod: self.id.clone(),
                path: "the pod's changes directory".into(),
                target,
            },
            Refusal::Io(e) if e.kind() == io::ErrorKind::NotFound => self.not_there(&rel, &shown),
            why => Error::BadRecord {
                pod: self.id.clone(),
                why: format!("changes: {why}"),
            },
        })?;
        beneath::file_beneath(&changes, &rel, "/").map_err(|why| match why {
            Refusal::Link { component, target } => Error::Symlink {
                pod: self.id.clone(),
                path: component,
                target,
            },
            Refusal::NotRegular {
                kind: "a directory",
            } => Error::Directory {
                pod: self.id.clone(),
                path: shown.clone(),
            },
            Refusal::NotRegular { kind } => Error::NotRegular {
                path: PathBuf::from(format!("{shown} in pod {}", self.id)),
                kind,
            },
            Refusal::Io(e) if e.kind() == io::ErrorKind::NotFound => self.not_there(&rel, &shown),
            Refusal::Io(source) => Error::Read {
                path: self.root.join("changes").join(&rel),
                source,
            },
            Refusal::TooLong { .. } => unreachable!("file_beneath does not read"),
        })
    }

    fn not_there(&self, rel: &str, shown: &str) -> Error {
        let changed: Vec<String> = self.changes().into_iter().map(|c| c.path).collect();
        if changed.iter().any(|c| normalize(c).as_deref() == Some(rel)) {
            Error::Removed {
                pod: self.id.clone(),
                path: shown.into(),
            }
        } else {
            Error::NotChanged {
                pod: self.id.clone(),
                path: shown.into(),
                changed,
            }
        }
    }
}

/// A pod's path relative to `/`, without `.` and empty components; `None` if it has `..` or is
/// empty.
fn normalize(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            part => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn read_record(dir: &OwnedFd) -> Result<TestRecord, String> {
    let bytes = beneath::read_beneath(dir, "record.json", MAX_RECORD).map_err(|e| e.to_string())?;
    let value = serde_json::from_slice(&bytes).map_err(|e| format!("invalid JSON: {e}"))?;
    match journal::parse_value(value)? {
        Record::Test(record) => Ok(*record),
        Record::Summary(_) => Err("a summary, not a test record".into()),
    }
}

/// All kept pods in `dir`, by pid and then pod path.
pub fn list(dir: &Path) -> Result<Vec<KeptPod>, Error> {
    let entries = fs::read_dir(dir).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            Error::NoPodDir { dir: dir.into() }
        } else {
            Error::Read {
                path: dir.into(),
                source,
            }
        }
    })?;
    let dir_fd = beneath::open_dir(dir).map_err(|source| Error::Read {
        path: dir.into(),
        source,
    })?;
    let mut pods = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.into(),
            source,
        })?;
        let Ok(id) = entry.file_name().into_string() else {
            continue;
        };
        // A pod is a real directory: a link planted in its place is not one.
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let Ok(pod_fd) = rustix::fs::openat(&dir_fd, id.as_str(), flags, Mode::empty()) else {
            continue;
        };
        let has = |name: &str| {
            rustix::fs::statat(&pod_fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .map(|st| FileType::from_raw_mode(st.st_mode))
                .ok()
        };
        let is_pod = has("record.json").is_some() || has("changes").is_some();
        if !is_pod {
            continue;
        }
        pods.push(KeptPod::open(entry.path(), pod_fd, id));
    }
    pods.sort_by(|a, b| {
        a.pid
            .cmp(&b.pid)
            .then_with(|| by_pod_path(&a.path, &b.path))
    });
    Ok(pods)
}

/// Orders pod paths by their numbers: `2/1` before `10`.
fn by_pod_path(a: &str, b: &str) -> Ordering {
    let key = |p: &str| -> Vec<(u64, String)> {
        p.split('/')
            .map(|s| (s.parse().unwrap_or(u64::MAX), s.to_string()))
            .collect()
    };
    key(a).cmp(&key(b))
}

/// Finds the pod a user named: `<pid>.<pod>` exactly, or just the pod path (`3`, `2/1` or `2.1`)
/// when only one process kept a pod by that path.
pub fn resolve<'a>(pods: &'a [KeptPod], dir: &Path, name: &str) -> Result<&'a KeptPod, Error> {
    let dotted = name.trim_end_matches('/').replace('/', ".");
    if let Some(pod) = pods.iter().find(|p| p.id == dotted) {
        return Ok(pod);
    }
    let by_path = name.replace('.', "/");
    let matches: Vec<&KeptPod> = pods.iter().filter(|p| p.path == by_path).collect();
    match matches.as_slice() {
        [pod] => Ok(pod),
        [] => Err(Error::NoSuchPod {
            pod: name.into(),
            dir: dir.into(),
            kept: pods.iter().map(|p| p.id.clone()).collect(),
        }),
        many => Err(Error::AmbiguousPod {
            pod: name.into(),
            candidates: many.iter().map(|p| p.id.clone()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_and_dotdot_refused() {
        assert_eq!(normalize("/etc/app.conf").as_deref(), Some("etc/app.conf"));
        assert_eq!(
            normalize("etc//./app.conf").as_deref(),
            Some("etc/app.conf")
        );
        assert_eq!(normalize("/etc/../shadow"), None);
        assert_eq!(normalize("/"), None);
    }

    #[test]
    fn pod_paths_sort_by_number() {
        let mut paths = vec!["10", "2/1", "2", "1"];
        paths.sort_by(|a, b| by_pod_path(a, b));
        assert_eq!(paths, ["1", "2", "2/1", "10"]);
    }
}
