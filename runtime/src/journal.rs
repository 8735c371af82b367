//! The journal: JSON Lines, one object per line, each line one `write` on an `O_APPEND`
//! descriptor and at most 64 KiB (longer records lose output first, then changed paths, and say
//! `"truncated": true`). Written only outside pods: by supervisors and the host itself.

use crate::sys;
use invite_vocab::{field, kind, SCHEMA};
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

pub const MAX_LINE: usize = 64 * 1024;

/// Open the journal: created `0600` if missing, appended to, never through a symbolic link, and
/// only if it is a regular file owned by the effective user (a FIFO or socket planted at the path
/// would block or divert the host; another user's file would receive this user's records). The
/// error says what the path is instead, in words.
///
/// The path is a C string already (`c_path`): nothing is allocated unless it fails (the
/// runtime's thread opens it while every fork of the process waits, and a fork may come from a
/// sampled call that holds the program's allocator's lock).
pub fn open_c(c: &std::ffi::CStr) -> Result<OwnedFd, String> {
    let flags = libc::O_WRONLY
        | libc::O_APPEND
        | libc::O_CREAT
        | libc::O_CLOEXEC
        | libc::O_NOFOLLOW
        | libc::O_NONBLOCK;
    match sys::open(c, flags, 0o600) {
        Ok(fd) => sys::fstat(fd.as_raw_fd())
            .map_err(|e| e.to_string())
            .and_then(|st| usable(&st))
            .map(|()| fd),
        // Say what is there rather than what open() met (ENXIO for a FIFO without a reader,
        // ELOOP for a link, EACCES for a protected file in a sticky directory).
        Err(e) => match sys::fstatat_nofollow(libc::AT_FDCWD, c) {
            Ok(st) => Err(usable(&st).err().unwrap_or_else(|| e.to_string())),
            Err(_) => Err(e.to_string()),
        },
    }
}

/// What `open` would say of the journal at `path`, without opening or creating anything: the file
/// there is one `open` takes, or there is none and its directory lets this user create it. The
/// host's first `ckpt()` checks this much, so that a journal it cannot use turns testing off
/// before any pod starts, and leaves the creation (tens of microseconds on some file systems) to
/// whoever writes first, off its pause (`Runtime::journal`).
pub fn check(path: &Path) -> Result<(), String> {
    let c = c_path(path)?;
    match sys::fstatat_nofollow(libc::AT_FDCWD, &c) {
        Ok(st) => usable(&st),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            sys::may_create_in(&c_path(dir)?).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

pub fn c_path(path: &Path) -> Result<std::ffi::CString, String> {
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| "the path holds a NUL byte".to_string())
}

/// A journal must be a regular file of the effective user.
fn usable(st: &libc::stat) -> Result<(), String> {
    let euid = sys::geteuid();
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        Err(format!("not a regular file ({})", file_kind(st.st_mode)))
    } else if st.st_uid != euid {
        Err(format!("owned by uid {}, not by uid {euid}", st.st_uid))
    } else {
        Ok(())
    }
}

fn file_kind(mode: libc::mode_t) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFLNK => "a symbolic link",
        libc::S_IFDIR => "a directory",
        libc::S_IFCHR | libc::S_IFBLK => "a device",
        _ => "not a file",
    }
}

/// One finished test.
pub struct TestRecord<'a> {
    pub time_ns: u128,
    pub host: &'a str,
    pub pid: i32,
    pub pod: &'a str,
    pub site: &'a str,
    pub function: &'a str,
    pub test: &'a str,
    pub phase: &'a str,
    pub outcome: &'a str,
    /// The test's own time (see `record::durations`).
    pub duration_us: u64,
    /// The rest of the pod's time: the fork, its set-up and tear-down.
    pub pod_us: u64,
    pub exit_code: Option<i32>,
    pub signal: Option<&'a str>,
    pub message: Option<&'a str>,
    pub output: &'a str,
    pub changed: &'a [String],
    pub isolation: &'a str,
    /// What the pod could not carry over faithfully (files read-only or cut), what its status
    /// pipe carried that was not a verdict, what was not kept; omitted if empty.
    pub notes: &'a [String],
    /// A record of a nested pod, relayed by the supervisor of the pod it ran in (see `relay`).
    pub relayed: bool,
    /// A failing outcome that may be due to files the host wrote after the checkpoint (named in
    /// `notes`), not to the code under test; omitted when false.
    pub unreliable: bool,
}

impl TestRecord<'_> {
    /// The record as one line (with its newline), cut to fit `MAX_LINE`.
    pub fn to_line(&self) -> String {
        let mut output = self.output;
        let mut changed = self.changed;
        let mut truncated = false;
        loop {
            let line = self.render(output, changed, truncated);
            if line.len() <= MAX_LINE {
                return line;
            }
            truncated = true;
            let excess = line.len() - MAX_LINE + 64;
            if !output.is_empty() {
                // Keep the tail: it is what ended the test.
                let mut cut = excess.min(output.len());
                while !output.is_char_boundary(cut) {
                    cut += 1;
                }
                output = &output[cut..];
            } else if !changed.is_empty() {
                changed = &changed[..changed.len() / 2];
            } else {
                // Only the message can still be long: render without it.
                return TestRecord {
                    message: Some("(message cut)"),
                    ..*self
                }
                .render("", &[], true);
            }
        }
    }

    fn render(&self, output: &str, changed: &[String], truncated: bool) -> String {
        let mut s = String::with_capacity(256 + output.len());
        head(&mut s, kind::TEST, self.time_ns, self.host, self.pid);
        field_str(&mut s, field::POD, self.pod);
        field_str(&mut s, field::SITE, self.site);
        field_str(&mut s, field::FUNCTION, self.function);
        field_str(&mut s, field::TEST, self.test);
        field_str(&mut s, field::PHASE, self.phase);
        field_str(&mut s, field::OUTCOME, self.outcome);
        let _ = write!(s, ",\"{}\":{}", field::DURATION_US, self.duration_us);
        let _ = write!(s, ",\"{}\":{}", field::POD_US, self.pod_us);
        match self.exit_code {
            Some(c) => {
                let _ = write!(s, ",\"{}\":{c}", field::EXIT_CODE);
            }
            None => {
                let _ = write!(s, ",\"{}\":null", field::EXIT_CODE);
            }
        }
        field_opt(&mut s, field::SIGNAL, self.signal);
        field_opt(&mut s, field::MESSAGE, self.message);
        field_str(&mut s, field::OUTPUT, output);
        let _ = write!(s, ",\"{}\":[", field::CHANGED);
        for (i, c) in changed.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            string(&mut s, c);
        }
        s.push(']');
        field_str(&mut s, field::ISOLATION, self.isolation);
        if !self.notes.is_empty() {
            let _ = write!(s, ",\"{}\":[", field::NOTES);
            for (i, n) in self.notes.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                string(&mut s, n);
            }
            s.push(']');
        }
        if self.relayed {
            let _ = write!(s, ",\"{}\":true", field::RELAYED);
        }
        if self.unreliable {
            let _ = write!(s, ",\"{}\":true", field::UNRELIABLE);
        }
        if truncated {
            let _ = write!(s, ",\"{}\":true", field::TRUNCATED);
        }
        s.push_str("}\n");
        s
    }
}

/// Per-site counters for the summary record.
pub struct SiteSummary {
    pub site: String,
    pub function: String,
    pub test: String,
    pub calls: u64,
    pub sampled: u64,
    pub started: u64,
    pub skipped_concurrency: u64,
    pub skipped_budget: u64,
    pub skipped_in_pod: u64,
    pub skipped_cgroup: u64,
    pub skipped_pod_cpu: u64,
    pub skipped_queue: u64,
    pub queued: u64,
}

/// The summary's `budget` and `queue`: what testing cost, and the wait queue.
pub struct Admission {
    pub elapsed_ns: u64,
    pub host_ns: u64,
    pub drain_ns: u64,
    pub pod_cpu_ns: u64,
    pub cpus: f64,
    pub queue_max: u32,
    pub queued: u64,
    pub displaced: u64,
    pub waiting: u32,
}

/// The version of the runtime that writes the records (`runtime_version` in each).
pub const RUNTIME_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `settings`: the variables behind the skip reasons, as in force (`INVITE_MAX_OVERHEAD` and
/// `INVITE_MAX_CONCURRENT`), so a report can say which one to change.
/// The process's own counts in a summary.
#[derive(Clone, Copy)]
pub struct Totals {
    /// Records that could not be written (a full disk, an I/O error).
    pub lost: u64,
    /// Threads other than the writer's that had counted calls and were still running: their
    /// calls after the summary are not in it (`calls_exact` is false when there are any; see
    /// docs/journal.md).
    pub threads_running: u64,
}

pub fn summary_line(
    time_ns: u128,
    host: &str,
    pid: i32,
    Totals {
        lost,
        threads_running,
    }: Totals,
    settings: &[(&str, String)],
    admission: &Admission,
    sites: &[SiteSummary],
) -> String {
    let mut s = String::new();
    head(&mut s, kind::SUMMARY, time_ns, host, pid);
    let _ = write!(
        s,
        ",\"{}\":{lost},\"{}\":{},\"{}\":{threads_running},\"{}\":{{",
        field::LOST,
        field::CALLS_EXACT,
        threads_running == 0,
        field::THREADS_RUNNING,
        field::SETTINGS
    );
    for (i, (name, value)) in settings.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        string(&mut s, name);
        s.push(':');
        string(&mut s, value);
    }
    let a = admission;
    let [elapsed, host, drain, pod_cpu, cpus] = field::BUDGET_FIELDS;
    let _ = write!(
        s,
        "}},\"{}\":{{\"{elapsed}\":{},\"{host}\":{},\"{drain}\":{},\"{pod_cpu}\":{},\"{cpus}\":{:.2}}}",
        field::BUDGET,
        a.elapsed_ns / 1000,
        a.host_ns / 1000,
        a.drain_ns / 1000,
        a.pod_cpu_ns / 1000,
        a.cpus
    );
    let [max, queued, displaced, waiting] = field::QUEUE_FIELDS;
    let _ = write!(
        s,
        ",\"{}\":{{\"{max}\":{},\"{queued}\":{},\"{displaced}\":{},\"{waiting}\":{}}}",
        field::QUEUE,
        a.queue_max,
        a.queued,
        a.displaced,
        a.waiting
    );
    let _ = write!(s, ",\"{}\":[", field::SITES);
    for (i, t) in sites.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{{\"{}\":", field::SITE);
        string(&mut s, &t.site);
        field_str(&mut s, field::FUNCTION, &t.function);
        field_str(&mut s, field::TEST, &t.test);
        let _ = write!(
            s,
            ",\"{}\":{},\"{}\":{},\"{}\":{},\"{}\":{},\"{}\":{{",
            field::CALLS,
            t.calls,
            field::SAMPLED,
            t.sampled,
            field::STARTED,
            t.started,
            field::QUEUED,
            t.queued,
            field::SKIPPED
        );
        let skipped = [
            t.skipped_concurrency,
            t.skipped_budget,
            t.skipped_in_pod,
            t.skipped_cgroup,
            t.skipped_pod_cpu,
            t.skipped_queue,
        ];
        for (j, (reason, n)) in field::SKIPPED_REASONS.iter().zip(skipped).enumerate() {
            let comma = if j > 0 { "," } else { "" };
            let _ = write!(s, "{comma}\"{reason}\":{n}");
        }
        s.push_str("}}");
    }
    s.push_str("]}\n");
    s
}

/// Append one line with a single `write`. A write that is cut short (a full disk) is undone, so
/// that no fragment joins the next record: the file is truncated back to its size before the
/// write. Writers take the journal's record lock around the write, so the size read under the
/// lock is where the `O_APPEND` write lands and the truncation removes only this writer's
/// fragment (supervisors of many pods, and other programs, append to the same file).
pub fn append(fd: RawFd, line: &str) -> std::io::Result<()> {
    let _guard = Locked::take(fd);
    let before = sys::fstat(fd)?.st_size as u64;
    match sys::write(fd, line.as_bytes()) {
        Ok(n) if n == line.len() => Ok(()),
        Ok(n) => {
            if n > 0 {
                sys::ftruncate(fd, before)?;
            }
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        }
        Err(e) => Err(e),
    }
}

/// The journal's lock, held by one thread of one process at a time: a record lock (between
/// processes) behind an in-process flag (record locks do not exclude the threads of one
/// process). The flag holds its owner's pid, so a process forked while another thread held it
/// (a supervisor) takes it over instead of waiting for a thread that does not exist there.
struct Locked(RawFd);

static LOCK_OWNER: AtomicI32 = AtomicI32::new(0);

impl Locked {
    fn take(fd: RawFd) -> Locked {
        let me = sys::getpid();
        loop {
            match LOCK_OWNER.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break,
                Err(owner) if owner != me => {
                    if LOCK_OWNER
                        .compare_exchange(owner, me, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        break;
                    }
                }
                Err(_) => std::thread::yield_now(),
            }
        }
        // Without the record lock (a file system without locks) the write still goes out whole
        // or is undone; only a concurrent writer's truncation could then meet it.
        let _ = sys::lock_whole_file(fd, true);
        Locked(fd)
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        let _ = sys::lock_whole_file(self.0, false);
        LOCK_OWNER.store(0, Ordering::Release);
    }
}

/// The fields every record starts with: schema, kind, time, host, pid, runtime version.
fn head(s: &mut String, kind: &str, time_ns: u128, host: &str, pid: i32) {
    let _ = write!(
        s,
        "{{\"{}\":{SCHEMA},\"{}\":\"{kind}\",\"{}\":",
        field::SCHEMA,
        field::KIND,
        field::TIME
    );
    string(s, &rfc3339(time_ns));
    field_str(s, field::HOST, host);
    let _ = write!(s, ",\"{}\":{pid}", field::PID);
    field_str(s, field::RUNTIME_VERSION, RUNTIME_VERSION);
}

fn field_str(s: &mut String, name: &str, v: &str) {
    let _ = write!(s, ",\"{name}\":");
    string(s, v);
}

fn field_opt(s: &mut String, name: &str, v: Option<&str>) {
    match v {
        Some(v) => field_str(s, name, v),
        None => {
            let _ = write!(s, ",\"{name}\":null");
        }
    }
}

/// A JSON string literal.
pub fn string(s: &mut String, v: &str) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` from nanoseconds since the epoch.
pub fn rfc3339(ns: u128) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let micros = (ns / 1_000 % 1_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
