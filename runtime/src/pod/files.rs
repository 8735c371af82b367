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
//! Where the file system has reflinks the pod sees clones instead (`clones`): the record then
//! says how they relate to the checkpoint (`Seen`). A file the pod copied (`changed`) that was
//! not watched is named if the host changed it after the checkpoint (`copied_notes`).
//!
//! What this does not see: files the host did not have open for writing at the checkpoint and
//! writes while the test only reads them, and writes that change neither size nor times (through
//! a shared mapping of a page already dirty).

/// Companions of a file open for writing whose state goes with it (SQLite's write-ahead log,
/// its index and its rollback journal), watched beside a file that may be a SQLite database
/// (`may_have_companions`).
const COMPANIONS: &[&str] = &["-wal", "-shm", "-journal"];

/// SQLite's header: the first 16 bytes of every database that is not empty.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether the host's `fd` (a regular file open for writing with `flags`, `st` its state) may be
/// a SQLite database, whose companions are then watched with it: open for reading and writing
/// (SQLite's way: a file open write-only, a log, is not one) and empty or starting with SQLite's
/// header (one `pread`, ~1 us, where a companion's look up costs 2-5 us in a freshly forked pod
/// and again at its end; a write-ahead log and its index, which the host has open too, have
/// other headers and are watched without companions of their own). An encrypted database
/// (SQLCipher) has no header: its log and index are watched as the files the host has open.
pub(super) fn may_have_companions(fd: std::os::fd::RawFd, flags: i32, st: &libc::stat) -> bool {
    if flags & libc::O_ACCMODE != libc::O_RDWR {
        return false;
    }
    let mut head = [0u8; 16];
    st.st_size == 0
        || crate::sys::read_at(fd, &mut head, 0).is_ok_and(|n| n == 16 && head == *SQLITE_HEADER)
}

/// The granularity a file's time stamps may lag the clock by (a kernel tick: 10 ms at HZ=100,
/// the coarsest Linux uses).
const TICK_NS: i128 = 10_000_000;

/// A file changed this recently is one the host is writing now (its clones hold the host still,
/// `freeze`).
pub(super) const LATELY_NS: i128 = 1_000_000_000;

/// At most this many files are watched per pod (the frame stays small); the record says how many
/// more were not.
pub(super) const MAX_WATCHED: usize = 256;

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
    /// The state `stat` (or `fstat`) gave.
    pub(super) fn of(st: &libc::stat) -> FileState {
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        FileState {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime_ns: ns(st.st_mtime, st.st_mtime_nsec),
            ctime_ns: ns(st.st_ctime, st.st_ctime_nsec),
        }
    }

    pub(super) fn same_file(&self, other: &FileState) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }
}

/// The state of the file at `path` (followed), if there is one.
pub(super) fn state(path: &str) -> Option<FileState> {
    state_of(&std::ffi::CString::new(path).ok()?)
}

/// `state`, async-signal-safe (no allocation): `stat` of a C string.
pub(super) fn state_of(path: &std::ffi::CStr) -> Option<FileState> {
    crate::sys::stat_path(path)
        .ok()
        .map(|st| FileState::of(&st))
}

/// What the pod sees of the watched files that existed at the checkpoint.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// The live files, which the host may write while the pod reads them.
    #[default]
    Live,
    /// Clones of one instant, the checkpoint's (`clones`): what the host wrote since does not
    /// reach the pod.
    Exact,
    /// Clones of one instant a little after the checkpoint: the files the host wrote in
    /// between (`late`) are newer than the pod's memory.
    Late,
    /// Clones the host wrote while they were taken: they may mix states.
    Mixed,
}

/// Whether a write that follows `states` (taken at wall-clock time `wall_ns`) is sure to change
/// them: always where change times are fine-grained after a look (`fine_grained_ctime`), else
/// only where each was last changed over a tick before (a write within the same tick could
/// leave the same time stamp).
pub(super) fn writes_show(states: &[Option<FileState>], wall_ns: i128) -> bool {
    super::mounts::fine_grained_ctime()
        || states
            .iter()
            .flatten()
            .all(|s| s.ctime_ns < wall_ns - TICK_NS)
}

/// Wall-clock time now, in nanoseconds since the epoch.
pub(super) fn wall_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
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
    seen: Seen,
    /// With `Seen::Late`: the indices (in `files`) of those the host wrote before the clones.
    late: Vec<usize>,
    /// Some file is on a file system with reflinks (`clones::may_clone`): worth trying to clone.
    pub(super) may_clone: bool,
    /// The host process, where the watch was taken by its child in its PID namespace (a cold
    /// pod's supervisor): what `freeze` holds still while the files are cloned.
    pub(super) host: Option<libc::pid_t>,
}

impl Watch {
    /// The files are cloned without holding the host still (`INVITE_HOLD_HOST=off`): a set may
    /// come out mixed, and then says so.
    pub fn unheld(&mut self) {
        self.host = None;
    }

    /// The state, now, of `writable` (the host's files open for writing, each with its state as
    /// `fstat` of the host's descriptor gave it a moment ago: in a freshly forked test a look up
    /// of its path costs ~10 us, and whether it `may_have_companions`) and the companions of
    /// those that may, looked up by path; `ckpt_mono_ns` is the monotonic time taken just
    /// before the fork.
    pub(super) fn take(writable: &[(String, FileState, bool)], ckpt_mono_ns: u64) -> Watch {
        let now_mono = crate::sys::monotonic_ns();
        let now = wall_ns();
        let mut w = Watch {
            ckpt_ns: now - now_mono.saturating_sub(ckpt_mono_ns) as i128,
            files: Vec::new(),
            left_out: 0,
            seen: Seen::Live,
            late: Vec::new(),
            may_clone: false,
            host: Some(crate::sys::getppid()).filter(|&p| p > 1),
        };
        for (path, known, companions) in writable {
            let companions = if *companions { COMPANIONS } else { &[] };
            let with = std::iter::once((path.clone(), Some(*known))).chain(
                companions
                    .iter()
                    .map(|c| (format!("{path}{c}"), None::<FileState>)),
            );
            for (p, known) in with {
                if w.files.iter().any(|(q, _)| *q == p) {
                    continue;
                }
                if w.files.len() == MAX_WATCHED {
                    w.left_out += 1;
                    continue;
                }
                // A companion that does not exist is still watched: the host may make one.
                let st = known.or_else(|| state(&p));
                w.files.push((p, st));
            }
        }
        w
    }

    /// What the record says of the watched files (as the host's files are now, in the
    /// supervisor after the pod, seen below `root`: `/proc/<host pid>/root`, the host's own view,
    /// since the supervisor's mounts may cover the path: the scratch sits on `/tmp`): each file
    /// the pod may have seen in a state the checkpoint never had. A live file the host changed
    /// since the checkpoint, or so close to it that the pod may have seen the change (one that
    /// cannot be seen counts as changed); a clone taken after the host wrote it; clones the host
    /// wrote while they were taken. Files the host made after the checkpoint are live in every
    /// case.
    pub fn notes(&self, root: &str) -> Vec<String> {
        let mut notes = Vec::new();
        for (i, (path, then)) in self.files.iter().enumerate() {
            let note = match (self.seen, then.is_some()) {
                (Seen::Exact, true) => None,
                (Seen::Late, true) => self.late.contains(&i).then(|| late_note(path)),
                (Seen::Mixed, true) => Some(mixed_note(path)),
                _ => (state(&format!("{root}{path}")) != *then || self.near_checkpoint(then))
                    .then(|| torn_note(path)),
            };
            notes.extend(note);
        }
        if self.left_out > 0 {
            notes.push(left_out_note(self.left_out));
        }
        notes
    }

    /// What the record says of the files the pod copied (`changed`: opened for writing, written,
    /// removed) that were not watched (the host did not have them open for writing at the
    /// checkpoint): each one the host changed after the checkpoint, or so close to it that its
    /// time stamp cannot tell (its change time, seen below `root` as for `notes`). The pod
    /// copied it whenever the test first wrote or opened it for writing: maybe a later state,
    /// maybe one mixed with the host's write under way. A file the host did not change since
    /// the checkpoint was copied as it was then.
    pub fn copied_notes(&self, changed: &[String], root: &str) -> Vec<String> {
        changed
            .iter()
            .filter(|p| !self.files.iter().any(|(q, _)| q == *p))
            .filter(|p| {
                let now = state(&format!("{root}{p}"));
                now.is_some_and(|st| st.ctime_ns >= self.ckpt_ns - TICK_NS)
            })
            .map(|p| copied_note(p))
            .collect()
    }

    /// Some file that existed was changed within `LATELY_NS` before the checkpoint: the host
    /// is writing it now.
    pub(super) fn written_lately(&self) -> bool {
        self.existing()
            .any(|(_, st)| st.ctime_ns >= self.ckpt_ns - LATELY_NS)
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

    /// Which of `existing` (by index in it) differ in `now` (their state, in order) from the
    /// checkpoint's, or were written so near it that their time stamp cannot tell.
    pub(super) fn changed_since_checkpoint(&self, now: &[Option<FileState>]) -> Vec<usize> {
        self.existing()
            .zip(now)
            .enumerate()
            .filter(|(_, ((_, then), now))| {
                **now != Some(*then) || self.near_checkpoint(&Some(*then))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// The pod sees clones of the existing files: consistent or not, and of those, which the
    /// host wrote before they were taken (`changed_since_checkpoint`).
    pub(super) fn cloned(&self, consistent: bool, late: &[usize]) -> Watch {
        // Indices among the existing files, to indices among all.
        let existing: Vec<usize> = (0..self.files.len())
            .filter(|&i| self.files[i].1.is_some())
            .collect();
        let late: Vec<usize> = late
            .iter()
            .filter_map(|&i| existing.get(i).copied())
            .collect();
        let seen = match (consistent, late.is_empty()) {
            (false, _) => Seen::Mixed,
            (true, true) => Seen::Exact,
            (true, false) => Seen::Late,
        };
        Watch {
            seen,
            late,
            ..self.clone()
        }
    }

    /// Whether the pod sees `path` as a clone bound over it (its inode is not the host's).
    pub(super) fn is_clone(&self, path: &str) -> bool {
        self.seen != Seen::Live && self.existing().any(|(p, _)| p == path)
    }

    /// The paths of the clones a warm test changed, from its `C` frame (`clones::report_changes`,
    /// a bitmap by index among the files that existed); the record's note where the test sent
    /// none (it was killed).
    pub fn clones_changed(&self, bitmap: Option<&[u8]>) -> Result<Vec<String>, String> {
        if self.seen == Seen::Live {
            return Ok(Vec::new());
        }
        let Some(bits) = bitmap else {
            let paths: Vec<&str> = self.existing().map(|(p, _)| p).collect();
            return Err(format!(
                "the pod ended without saying whether it changed its clones of {}: they are \
                 not in `changed`",
                paths.join(", ")
            ));
        };
        Ok(self
            .existing()
            .enumerate()
            .filter(|(i, _)| bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
            .map(|(_, (p, _))| p.to_string())
            .collect())
    }

    /// As the payload of the pod's `F` frame, in binary (the test sends it before its first
    /// line, where formatting numbers as text cost ~10 us of cold code): the checkpoint's time,
    /// what the pod sees, how many were left out, the late ones; then each file's state (or
    /// none) and path.
    pub fn encode(&self) -> Vec<u8> {
        let paths: usize = self.files.iter().map(|(p, _)| p.len() + 61).sum();
        let mut b = Vec::with_capacity(29 + 4 * self.late.len() + paths);
        b.extend_from_slice(&self.ckpt_ns.to_le_bytes());
        b.push(self.seen as u8);
        b.extend_from_slice(&(self.left_out as u32).to_le_bytes());
        b.extend_from_slice(&(self.late.len() as u32).to_le_bytes());
        for &i in &self.late {
            b.extend_from_slice(&(i as u32).to_le_bytes());
        }
        for (path, st) in &self.files {
            match st {
                Some(t) => {
                    b.push(1);
                    for n in [t.dev, t.ino, t.size] {
                        b.extend_from_slice(&n.to_le_bytes());
                    }
                    b.extend_from_slice(&t.mtime_ns.to_le_bytes());
                    b.extend_from_slice(&t.ctime_ns.to_le_bytes());
                }
                None => b.push(0),
            }
            b.extend_from_slice(&(path.len() as u32).to_le_bytes());
            b.extend_from_slice(path.as_bytes());
        }
        b
    }

    pub fn decode(mut b: &[u8]) -> Option<Watch> {
        let b = &mut b;
        let ckpt_ns = i128::from_le_bytes(take(b)?);
        let seen = match take::<1>(b)?[0] {
            0 => Seen::Live,
            1 => Seen::Exact,
            2 => Seen::Late,
            3 => Seen::Mixed,
            _ => return None,
        };
        let left_out = u32::from_le_bytes(take(b)?) as usize;
        let late_n = u32::from_le_bytes(take(b)?) as usize;
        let late = (0..late_n)
            .map(|_| Some(u32::from_le_bytes(take(b)?) as usize))
            .collect::<Option<Vec<usize>>>()?;
        let mut files = Vec::new();
        while !b.is_empty() {
            let st = match take::<1>(b)?[0] {
                0 => None,
                1 => Some(FileState {
                    dev: u64::from_le_bytes(take(b)?),
                    ino: u64::from_le_bytes(take(b)?),
                    size: u64::from_le_bytes(take(b)?),
                    mtime_ns: i128::from_le_bytes(take(b)?),
                    ctime_ns: i128::from_le_bytes(take(b)?),
                }),
                _ => return None,
            };
            let n = u32::from_le_bytes(take(b)?) as usize;
            let path = b.get(..n)?;
            *b = &b[n..];
            files.push((String::from_utf8(path.to_vec()).ok()?, st));
        }
        Some(Watch {
            ckpt_ns,
            files,
            left_out,
            seen,
            late,
            may_clone: false,
            host: None,
        })
    }
}

/// The next `N` bytes of `b`, taken off it.
fn take<const N: usize>(b: &mut &[u8]) -> Option<[u8; N]> {
    let head = b.get(..N)?.try_into().ok()?;
    *b = &b[N..];
    Some(head)
}

/// The record's word on the files not watched: any of them may have been read torn.
fn left_out_note(n: usize) -> String {
    format!(
        "{n} more files the host had open for writing (or their companions) were not watched; \
         the pod may have read them torn"
    )
}

/// The record's word on a watched file the host changed.
fn torn_note(path: &str) -> String {
    format!(
        "{path}: the host wrote it after the checkpoint; the pod may have read it mixed with \
         earlier states (torn)"
    )
}

/// The record's word on a file the pod copied that the host wrote after the checkpoint.
fn copied_note(path: &str) -> String {
    format!(
        "{path}: the host wrote it after the checkpoint (it did not have it open for writing \
         then); the pod's copy, made when the test first wrote it, may hold a later state or \
         one mixed with the host's write (torn)"
    )
}

/// The record's word on a clone taken after the host wrote the file.
fn late_note(path: &str) -> String {
    format!(
        "{path}: cloned after the host wrote it: the pod saw it consistent with its companions, \
         a little after the checkpoint (newer than the pod's memory)"
    )
}

/// The record's word on clones the host wrote while they were taken.
fn mixed_note(path: &str) -> String {
    format!(
        "{path}: the host wrote it while the pod's clones were taken; the pod may have read it \
         mixed with its companions' other states (torn)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Watch::take` of files looked up by path, each with its companions (a file that does not
    /// exist: left out).
    fn take(paths: &[String], ckpt_mono_ns: u64) -> Watch {
        let known: Vec<(String, FileState, bool)> = paths
            .iter()
            .filter_map(|p| Some((p.clone(), state(p)?, true)))
            .collect();
        Watch::take(&known, ckpt_mono_ns)
    }

    #[test]
    fn only_what_may_be_a_sqlite_database_is_watched_with_companions() {
        use std::os::fd::AsRawFd;
        let d = tempfile_dir();
        let may = |name: &str, bytes: &[u8], write_only: bool| {
            let p = format!("{d}/{name}");
            std::fs::write(&p, bytes).unwrap();
            let f = std::fs::OpenOptions::new()
                .read(!write_only)
                .write(true)
                .open(&p)
                .unwrap();
            let st = crate::sys::fstat(f.as_raw_fd()).unwrap();
            let flags = crate::sys::get_fl(f.as_raw_fd()).unwrap();
            let m = may_have_companions(f.as_raw_fd(), flags, &st);
            let w = Watch::take(&[(p.clone(), FileState::of(&st), m)], 0);
            (m, w.files.len())
        };
        let mut db = SQLITE_HEADER.to_vec();
        db.extend_from_slice(&[0x10, 0, 1, 1]);
        assert_eq!(may("a.db", &db, false), (true, 4));
        assert_eq!(may("new.db", b"", false), (true, 4));
        assert_eq!(may("data.bin", b"not a database at all", false), (false, 1));
        assert_eq!(may("short", b"SQLite", false), (false, 1));
        // A log, open write-only, is never a database.
        assert_eq!(may("app.log", &db, true), (false, 1));
        assert_eq!(may("empty.log", b"", true), (false, 1));
    }

    #[test]
    fn a_watch_crosses_the_status_pipe_whole() {
        let d = tempfile_dir();
        let f = format!("{d}/a.db");
        std::fs::write(&f, b"x").unwrap();
        std::fs::write(format!("{d}/with space"), b"y").unwrap();
        let w = take(&[f.clone(), format!("{d}/with space")], 0);
        assert_eq!(w.files.len(), 8);
        // The host's process id stays on the side that took the watch.
        let here = Watch {
            host: None,
            ..w.clone()
        };
        assert_eq!(Watch::decode(&w.encode()), Some(here));
        // A pod's frame is not to be trusted: cut anywhere, it decodes to nothing whole.
        let e = w.encode();
        for n in 0..e.len() {
            let cut = Watch::decode(&e[..n]);
            assert!(cut.is_none_or(|c| c.files.len() < w.files.len()), "{n}");
        }
    }

    #[test]
    fn a_file_written_after_or_just_before_the_checkpoint_is_named_one_left_alone_is_not() {
        let d = tempfile_dir();
        let (old, new) = (format!("{d}/old"), format!("{d}/new.db"));
        std::fs::write(&old, b"x").unwrap();
        // Well past a tick before the checkpoint.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let w = take(std::slice::from_ref(&old), crate::sys::monotonic_ns());
        assert!(w.notes("").is_empty(), "{w:?}");
        // Written just before the checkpoint: its time stamp cannot tell before from after.
        std::fs::write(&new, b"x").unwrap();
        let w = take(std::slice::from_ref(&new), crate::sys::monotonic_ns());
        assert_eq!(w.notes(""), [torn_note(&new)]);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let w = take(std::slice::from_ref(&new), crate::sys::monotonic_ns());
        assert!(w.notes("").is_empty(), "{w:?}");
        std::fs::write(&new, b"xy").unwrap();
        std::fs::write(format!("{new}-shm"), b"s").unwrap();
        let c = w.notes("");
        assert_eq!(
            c,
            [torn_note(&new), torn_note(&format!("{new}-shm"))],
            "{w:?}"
        );
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
