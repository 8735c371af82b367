//! The files the host was writing at the checkpoint, and whether the pod may have seen them
//! torn.
//!
//! A pod's file systems are overlays whose lower layer is the live file system: a file the host
//! writes after the fork shows through until the pod copies it up (on its first write), and a
//! copy made while the host writes may mix states from before and after the checkpoint. So,
//! right after the fork (in the cold pod's supervisor, in the warm test before it joins its
//! blank), the state of each file the host has open for writing is taken, with its companions
//! (SQLite's `-wal`, `-shm`, `-journal`): inode, size, modification and change times. The test
//! sends that list to its supervisor before any user code runs (frame `F`); when the pod is
//! over, the supervisor looks at the host's files again. A file whose state differs, or whose
//! change time was within `TICK_NS` of the checkpoint (time stamps come from a coarse clock:
//! a write just after the fork may carry a time just before it), may have been seen by the pod
//! in a state the checkpoint never had: the record's `notes` name it, and a failing outcome is
//! marked `unreliable`.
//!
//! What this does not see: files the host opens, writes and closes while the pod runs without
//! having them open at the checkpoint, and writes that change neither size nor times (through a
//! shared mapping of a page already dirty).

use std::os::unix::fs::MetadataExt;

/// Companions of a file open for writing whose state goes with it (SQLite's write-ahead log,
/// its index and its rollback journal).
const COMPANIONS: &[&str] = &["-wal", "-shm", "-journal"];

/// The granularity a file's time stamps may lag the clock by (a kernel tick: 10 ms at HZ=100,
/// the coarsest Linux uses).
const TICK_NS: i128 = 10_000_000;

/// At most this many files are watched per pod (the frame stays small); the record says how many
/// more were not.
const MAX_WATCHED: usize = 256;

/// What of a file says it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileState {
    dev: u64,
    pub(super) ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileState {
    pub(super) fn same_file(&self, other: &FileState) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }
}

/// The state of the file at `path` (followed), if there is one.
pub(super) fn state(path: &str) -> Option<FileState> {
    let m = std::fs::metadata(path).ok()?;
    Some(FileState {
        dev: m.dev(),
        ino: m.ino(),
        size: m.size(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        ctime_ns: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
    })
}

/// The watched files and their state at the checkpoint.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Watch {
    /// Wall-clock time of the checkpoint, in nanoseconds since the epoch.
    ckpt_ns: i128,
    /// (path, state at the checkpoint; `None`: it did not exist)
    files: Vec<(String, Option<FileState>)>,
    /// Files past `MAX_WATCHED`, not watched.
    left_out: usize,
    /// The files that existed are the pod's clones of their state at the checkpoint (`clones`):
    /// what the host wrote since does not reach the pod.
    frozen: bool,
    /// The files that existed are the pod's clones (of the checkpoint's state or a little later),
    /// bound over their paths: not the inodes the host has open.
    cloned: bool,
}

impl Watch {
    /// The state, now, of `writable` (the host's files open for writing) and their companions;
    /// `ckpt_mono_ns` is the monotonic time taken just before the fork.
    pub fn take(writable: &[String], ckpt_mono_ns: u64) -> Watch {
        let now_mono = crate::sys::monotonic_ns();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let mut w = Watch {
            ckpt_ns: now - now_mono.saturating_sub(ckpt_mono_ns) as i128,
            files: Vec::new(),
            left_out: 0,
            frozen: false,
            cloned: false,
        };
        for path in writable {
            let with = std::iter::once(path.clone())
                .chain(COMPANIONS.iter().map(|c| format!("{path}{c}")));
            for p in with {
                if w.files.iter().any(|(q, _)| *q == p) {
                    continue;
                }
                if w.files.len() == MAX_WATCHED {
                    w.left_out += 1;
                    continue;
                }
                // A companion that does not exist is still watched: the host may make one.
                let st = state(&p);
                w.files.push((p, st));
            }
        }
        w
    }

    /// The watched files the host changed since the checkpoint, or so close to it that the pod
    /// may have seen the change: as the host's files are now (in the supervisor, after the pod),
    /// seen below `root`: `/proc/<host pid>/root`, the host's own view (the supervisor's mounts
    /// may cover the path: the scratch sits on `/tmp`). A file that cannot be seen counts as
    /// changed.
    pub fn changed_by_host(&self, root: &str) -> Vec<&str> {
        self.files
            .iter()
            .filter(|(_, then)| !(self.frozen && then.is_some()))
            .filter(|(path, then)| {
                state(&format!("{root}{path}")) != *then || self.near_checkpoint(then)
            })
            .map(|(p, _)| p.as_str())
            .collect()
    }

    /// How many files the host had open for writing (or their companions) were not watched.
    pub fn left_out(&self) -> usize {
        self.left_out
    }

    /// Changed within a tick before the checkpoint: its time stamp cannot tell before from after.
    fn near_checkpoint(&self, st: &Option<FileState>) -> bool {
        st.is_some_and(|t| t.ctime_ns >= self.ckpt_ns - TICK_NS)
    }

    /// The files that existed at the checkpoint, with their state then.
    pub(super) fn existing(&self) -> impl Iterator<Item = (&str, FileState)> {
        self.files
            .iter()
            .filter_map(|(p, st)| st.map(|st| (p.as_str(), st)))
    }

    /// Whether `now` (the state of each of `existing`, in order) is the checkpoint's, with no
    /// write near it.
    pub(super) fn unchanged_since_checkpoint(&self, now: &[Option<FileState>]) -> bool {
        let then: Vec<Option<FileState>> = self.existing().map(|(_, st)| Some(st)).collect();
        then == now && !then.iter().any(|st| self.near_checkpoint(st))
    }

    /// The pod sees clones of the existing files, as they were at the checkpoint if `exact`.
    pub(super) fn cloned(&self, exact: bool) -> Watch {
        Watch {
            frozen: exact,
            cloned: true,
            ..self.clone()
        }
    }

    /// Whether the pod sees `path` as a clone bound over it (its inode is not the host's).
    pub(super) fn is_clone(&self, path: &str) -> bool {
        self.cloned && self.existing().any(|(p, _)| p == path)
    }

    /// As the payload of the pod's `F` frame: the checkpoint's time, then a line per file.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = format!("{} {} {}\n", self.ckpt_ns, self.frozen as u8, self.left_out);
        for (path, st) in &self.files {
            match st {
                Some(t) => s.push_str(&format!(
                    "{} {} {} {} {} {path}\n",
                    t.dev, t.ino, t.size, t.mtime_ns, t.ctime_ns
                )),
                None => s.push_str(&format!("- {path}\n")),
            }
        }
        s.into_bytes()
    }

    pub fn decode(b: &[u8]) -> Option<Watch> {
        let s = std::str::from_utf8(b).ok()?;
        let mut lines = s.lines();
        let mut head = lines.next()?.split(' ');
        let ckpt_ns = head.next()?.parse().ok()?;
        let frozen = head.next()? == "1";
        let left_out = head.next()?.parse().ok()?;
        let mut files = Vec::new();
        for l in lines {
            if let Some(path) = l.strip_prefix("- ") {
                files.push((path.to_string(), None));
                continue;
            }
            let mut it = l.splitn(6, ' ');
            let mut num = || it.next()?.parse::<i128>().ok();
            let (dev, ino, size, mtime_ns, ctime_ns) = (num()?, num()?, num()?, num()?, num()?);
            let path = it.next()?.to_string();
            let st = FileState {
                dev: dev as u64,
                ino: ino as u64,
                size: size as u64,
                mtime_ns,
                ctime_ns,
            };
            files.push((path, Some(st)));
        }
        Some(Watch {
            ckpt_ns,
            files,
            left_out,
            frozen,
            cloned: false,
        })
    }
}

/// The record's word on the files not watched: any of them may have been read torn.
pub fn left_out_note(n: usize) -> String {
    format!(
        "{n} more files the host had open for writing (or their companions) were not watched; \
         the pod may have read them torn"
    )
}

/// The record's word on a watched file the host changed.
pub fn torn_note(path: &str) -> String {
    format!(
        "{path}: the host wrote it after the checkpoint; the pod may have read it mixed with \
         earlier states (torn)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_crosses_the_status_pipe_whole() {
        let d = tempfile_dir();
        let f = format!("{d}/a.db");
        std::fs::write(&f, b"x").unwrap();
        let w = Watch::take(&[f.clone(), format!("{d}/with space")], 0);
        assert_eq!(w.files.len(), 8);
        assert_eq!(Watch::decode(&w.encode()), Some(w));
    }

    #[test]
    fn a_file_written_after_or_just_before_the_checkpoint_is_named_one_left_alone_is_not() {
        let d = tempfile_dir();
        let (old, new) = (format!("{d}/old"), format!("{d}/new.db"));
        std::fs::write(&old, b"x").unwrap();
        // Well past a tick before the checkpoint.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let w = Watch::take(std::slice::from_ref(&old), crate::sys::monotonic_ns());
        assert!(w.changed_by_host("").is_empty(), "{w:?}");
        // Written just before the checkpoint: its time stamp cannot tell before from after.
        std::fs::write(&new, b"x").unwrap();
        let w = Watch::take(std::slice::from_ref(&new), crate::sys::monotonic_ns());
        assert_eq!(w.changed_by_host(""), [new.as_str()]);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let w = Watch::take(std::slice::from_ref(&new), crate::sys::monotonic_ns());
        assert!(w.changed_by_host("").is_empty(), "{w:?}");
        std::fs::write(&new, b"xy").unwrap();
        std::fs::write(format!("{new}-shm"), b"s").unwrap();
        let c = w.changed_by_host("");
        assert_eq!(c, [new.clone(), format!("{new}-shm")], "{w:?}");
    }

    fn tempfile_dir() -> String {
        let d = std::env::temp_dir().join(format!(
            "invite-files-{}-{}",
            std::process::id(),
            crate::sys::monotonic_ns()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d.to_string_lossy().into_owned()
    }
}
