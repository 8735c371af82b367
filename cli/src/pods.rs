//! Kept pods on disk: finding them, naming them, and reading the files they changed.
//!
//! The runtime keeps a pod (with `INVITE_KEEP_PODS`) as a directory
//! `<DIR>/<pid>.<pod path with '/' as '.'>/` holding `record.json`, the pod's journal record, and
//! `changes/<absolute path without the leading '/'>` for every file the pod created or changed.
//! A removed file is in the record's `changed` array but not under `changes/`. This module reads
//! that layout; printing is the `pods` command's.

use std::cmp::Ordering;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::journal::{self, Record, TestRecord};

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
    fn open(root: PathBuf, id: String) -> KeptPod {
        let (pid, path) = match id.split_once('.') {
            Some((pid, rest)) if pid.bytes().all(|b| b.is_ascii_digit()) && !pid.is_empty() => {
                (pid.parse().ok(), rest.replace('.', "/"))
            }
            _ => (None, id.replace('.', "/")),
        };
        let record = read_record(&root.join("record.json"));
        KeptPod {
            id,
            pid,
            path,
            root,
            record,
        }
    }

    pub fn record_path(&self) -> PathBuf {
        self.root.join("record.json")
    }

    fn changes_dir(&self) -> PathBuf {
        self.root.join("changes")
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
                    .map(|rel| fs::symlink_metadata(self.changes_dir().join(rel)).is_err())
                    .unwrap_or(true),
            })
            .collect()
    }

    /// The contents of one changed file, as the pod left it.
    pub fn cat(&self, path: &str) -> Result<Vec<u8>, Error> {
        let rel = normalize(path).ok_or_else(|| Error::BadPath { path: path.into() })?;
        let shown = format!("/{rel}");
        let file = self.changes_dir().join(&rel);
        match fs::symlink_metadata(&file) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&file)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "?".into());
                Err(Error::Symlink {
                    pod: self.id.clone(),
                    path: shown,
                    target,
                })
            }
            Ok(meta) if meta.is_dir() => Err(Error::Directory {
                pod: self.id.clone(),
                path: shown,
            }),
            Ok(_) => {
                // A symbolic link in a parent directory would lead out of the pod's changes.
                let inside = fs::canonicalize(&file)
                    .and_then(|f| Ok(f.starts_with(fs::canonicalize(self.changes_dir())?)))
                    .unwrap_or(false);
                if !inside {
                    return Err(Error::Symlink {
                        pod: self.id.clone(),
                        path: shown,
                        target: "a path outside the pod".into(),
                    });
                }
                fs::read(&file).map_err(|source| Error::Read { path: file, source })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let changed: Vec<String> = self.changes().into_iter().map(|c| c.path).collect();
                if changed
                    .iter()
                    .any(|c| normalize(c).as_deref() == Some(rel.as_str()))
                {
                    Err(Error::Removed {
                        pod: self.id.clone(),
                        path: shown,
                    })
                } else {
                    Err(Error::NotChanged {
                        pod: self.id.clone(),
                        path: shown,
                        changed,
                    })
                }
            }
            Err(source) => Err(Error::Read { path: file, source }),
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

fn read_record(path: &Path) -> Result<TestRecord, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
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
    let mut pods = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Read {
            path: dir.into(),
            source,
        })?;
        let root = entry.path();
        let is_pod = root.join("record.json").exists() || root.join("changes").is_dir();
        if !is_pod {
            continue;
        }
        let Ok(id) = entry.file_name().into_string() else {
            continue;
        };
        pods.push(KeptPod::open(root, id));
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
