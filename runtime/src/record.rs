//! The record of a finished pod: where it came from (`PodInfo`), how it ended as its supervisor
//! saw it (`Ending`: wait status, verdict and setup frames, output tail), the outcome decided
//! from that, and the journal line. Shared by both supervisors: the supervisor process of a cold
//! pod (`supervise`) and the watcher thread of warm pods (`warm::watch`).

use crate::config::Keep;
pub use crate::deadlock::Origin;
use crate::journal::{self, TestRecord};
use crate::outcome::{signal_name, Outcome};
use crate::pod;
use crate::runtime::Runtime;
use crate::site::Site;
use crate::sys;
use info::function_name;
pub use info::PodInfo;

/// Output kept per pod: the tail, which is what ended it.
pub const OUTPUT_TAIL: usize = 16 * 1024;

/// Notes a pod may add to its record.
const MAX_POD_NOTES: usize = 32;

/// How the pod ended, as the supervisor saw it.
#[derive(Default)]
pub struct Ending {
    pub status: Option<i32>,
    pub cpu_ns: u64,
    pub verdict: Option<(bool, Option<String>)>,
    pub setup_error: Option<String>,
    pub timed_out: bool,
    pub host_died: bool,
    pub output: Vec<u8>,
    /// Output bytes dropped from the front to keep the tail.
    pub output_cut: u64,
    /// Status-pipe bytes read past `MAX_FRAMES` and dropped.
    pub frames_discarded: u64,
    pub notes: Vec<String>,
    /// Set when the supervisor found the test deadlocked (see `deadlock`): the message.
    pub deadlock: Option<String>,
    /// When the test began and ended, as the pod saw it (its `S` and `T` frames; monotonic ns).
    pub test_started_ns: Option<u64>,
    pub test_ended_ns: Option<u64>,
    /// When the supervisor saw the pod end, or ended it (monotonic ns).
    pub ended_ns: Option<u64>,
    /// The host's files open for writing as they were at the checkpoint, as the test's setup
    /// sent them (its first `F` frame, written before any code of the test's).
    pub watch: Option<pod::Watch>,
    /// A warm test's word on which of its clones it changed (its last `C` frame: a bitmap).
    pub clones_changed: Option<Vec<u8>>,
    /// The status a `ckpt()` test called `exit()` with (its `X` frame, sent by its first exit
    /// handler): its verdict should a later exit handler never return.
    pub exited: Option<i32>,
}

impl Ending {
    /// Whether its supervisor has ended it (deadline, deadlock, a set-up past its deadline).
    pub fn cut(&self) -> bool {
        self.timed_out || self.deadlock.is_some() || self.setup_error.is_some()
    }

    /// The clones a warm test changed, by its word (its watcher cannot look: the test's mount
    /// namespace is gone); a note instead where it could not say (killed).
    pub fn clones_changed(&mut self) -> Vec<String> {
        let Some(w) = &self.watch else {
            return Vec::new();
        };
        match w.clones_changed(self.clones_changed.as_deref()) {
            Ok(paths) => paths,
            Err(note) => {
                self.notes.push(note);
                Vec::new()
            }
        }
    }

    /// Take in the frames the pod sent on its status pipe: its verdict, how its setup or its
    /// PID 1 ended, the records of pods nested in it (`relay`). Everything else is ignored and
    /// counted in the record's `notes`.
    pub fn apply_frames(&mut self, rt: &Runtime, info: &PodInfo, frames: &[u8]) {
        let (parsed, rest) = parse_frames_rest(frames);
        let (mut relayed, mut over_cap, mut malformed, mut unknown) =
            (0usize, 0usize, 0usize, 0usize);
        for (tag, payload) in parsed {
            match tag {
                b'V' if !payload.is_empty() => {
                    let msg = (payload.len() > 1)
                        .then(|| String::from_utf8_lossy(&payload[1..]).into_owned());
                    self.verdict = Some((payload[0] != 0, msg));
                }
                b'E' => self.setup_error = Some(String::from_utf8_lossy(payload).into_owned()),
                b'F' if self.watch.is_none() => {
                    self.watch = Some(pod::Watch::decode(payload).unwrap_or_default())
                }
                b'F' => {}
                b'C' => self.clones_changed = Some(payload.to_vec()),
                // The test, as PID 1, died of a signal it reported itself: as if killed by it
                // (a wait status whose low bits are the signal number).
                b'K' if payload.len() == 4 => {
                    let sig = i32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    if (1..64).contains(&sig) {
                        self.status = Some(sig);
                    }
                }
                b'R' => match crate::relay::decode(payload, &info.path) {
                    Some(_) if relayed >= crate::relay::MAX_RELAYED => over_cap += 1,
                    Some(r) => {
                        relayed += 1;
                        write(rt, &r.record(journal::now_ns(), &rt.host, rt.pid()));
                    }
                    None => malformed += 1,
                },
                // A warm pod's description and its dirty-IPC mark, read by its watcher.
                // The pod's connect listener, taken by its supervisor (`supervise::connects`).
                b'I' | b'D' | b'L' => {}
                b'X' if payload.len() == 4 => {
                    let code = i32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    self.exited = self.exited.or(Some(code));
                }
                b'S' => self.test_started_ns = self.test_started_ns.or(stamp(payload)),
                b'T' => self.test_ended_ns = self.test_ended_ns.or(stamp(payload)),
                // A note from the pod's runtime (a refused system call), bounded in number.
                b'N' => {
                    let note = String::from_utf8_lossy(payload).into_owned();
                    if self.notes.len() < MAX_POD_NOTES && !self.notes.contains(&note) {
                        self.notes.push(note);
                    }
                }
                _ => unknown += 1,
            }
        }
        if over_cap > 0 {
            self.notes.push(format!(
                "{over_cap} records of nested pods over the cap of {} were dropped",
                crate::relay::MAX_RELAYED
            ));
        }
        if malformed > 0 {
            self.notes.push(format!(
                "status pipe: {malformed} malformed records of nested pods ignored"
            ));
        }
        if unknown > 0 {
            self.notes.push(format!(
                "status pipe: {unknown} frames of no known kind ignored"
            ));
        }
        let junk = rest as u64 + self.frames_discarded;
        if junk > 0 {
            self.notes.push(format!(
                "status pipe: {junk} bytes that were not whole frames, or past the {} KiB bound, ignored",
                MAX_FRAMES >> 10
            ));
        }
    }
}

/// Decide, account, keep the pod's files when asked and journal the record; the pod no longer
/// counts as running.
pub fn record_end(
    rt: &Runtime,
    info: &PodInfo,
    mut ending: Ending,
    changed: &[String],
    scratch: Option<&pod::Scratch>,
    keep: Option<(i32, Keep)>,
) {
    let (outcome, exit_code, signal, message) = decide(info, &ending);
    if let (Some(stuck), Some(_)) = (&ending.deadlock, &ending.verdict) {
        let note = format!("ended after its verdict, stuck while its output was flushed: {stuck}");
        ending.notes.push(note);
    } else if let (Some(stuck), Some(code), true) = (&ending.deadlock, ending.exited, info.manual) {
        ending.notes.push(format!(
            "ended after exit({code}), stuck in its exit handlers (the program's, or the \
             libraries' finalizers): {stuck}"
        ));
    }
    if ending.timed_out && outcome != Outcome::Timeout {
        ending.notes.push(format!(
            "ended on its own, its deadline ({} ms) past before its supervisor read it (a busy machine): the kill came after",
            info.timeout_ms
        ));
    }
    let unreliable = torn_files(&mut ending, outcome, info.host_pid, changed);
    let wall_ns = sys::monotonic_ns().saturating_sub(info.started_ns);
    rt.ledger().pod_ended(ending.cpu_ns, wall_ns);
    let output = tail_utf8(&ending.output, ending.output_cut);
    let (duration_us, pod_us) = durations(info, &ending, sys::monotonic_ns());
    let rec = TestRecord {
        outcome: outcome.as_str(),
        duration_us,
        pod_us,
        exit_code,
        signal: signal.as_deref(),
        message: message.as_deref(),
        output: &output,
        changed,
        notes: &ending.notes,
        unreliable,
        ..pod_record(rt, info)
    };
    // A kept pod's record also says what of it could not be kept.
    let kept_notes: Vec<String>;
    let rec = match keep.filter(|(_, mode)| *mode == Keep::All || outcome != Outcome::Pass) {
        Some((dir_fd, _)) => {
            kept_notes =
                crate::keep::keep_pod(dir_fd, &info.path, rt.pid(), &rec, changed, scratch);
            TestRecord {
                notes: &kept_notes,
                ..rec
            }
        }
        None => rec,
    };
    write(rt, &rec);
    rt.ledger().release();
}

/// A record of this pod, its outcome and what it did still to be said (an `error` with nothing
/// else until then).
pub fn pod_record<'a>(rt: &'a Runtime, info: &'a PodInfo) -> TestRecord<'a> {
    TestRecord {
        time_ns: journal::now_ns(),
        host: &rt.host,
        pid: rt.pid(),
        pod: &info.path,
        site: &info.site,
        function: &info.function,
        test: &info.test,
        phase: info.phase,
        outcome: Outcome::Error.as_str(),
        duration_us: 0,
        pod_us: 0,
        exit_code: None,
        signal: None,
        message: None,
        output: "",
        changed: &[],
        isolation: info.isolation.as_str(),
        notes: &[],
        relayed: false,
        unreliable: false,
    }
}

/// Write a finished test's record: to the journal file in the host, or to the pod's
/// supervisor when this process is itself a pod (which relays it, see `relay`). A record the
/// journal cannot take whole is counted in the summary's `lost`.
pub fn write(rt: &Runtime, rec: &TestRecord) {
    let _inside = crate::inside::Inside::enter();
    if rt.journal().is_some() {
        rt.write_line(&rec.to_line());
    } else if crate::runtime::in_pod() {
        pod::relay_record(&crate::relay::encode(rec));
    }
}

/// Where kept pods go (opened and checked at start-up, before any scratch may cover it).
pub fn keep_dir(rt: &Runtime) -> Option<(i32, Keep)> {
    let c = rt.config.as_ref()?;
    if c.keep_pods == Keep::None {
        return None;
    }
    rt.keep_fd().map(|fd| (fd, c.keep_pods))
}

/// A site whose pod could not even be forked: journaled as `error`.
pub fn journal_start_failure(site: &'static Site, owner: Option<&'static str>, message: &str) {
    let rt = crate::runtime::get();
    let rec = TestRecord {
        time_ns: journal::now_ns(),
        host: &rt.host,
        pid: rt.pid(),
        pod: "",
        site: &format!("{}:{}", site.file(), site.line),
        function: &function_name(site, owner),
        test: site.test(),
        phase: site.phase().as_str(),
        outcome: Outcome::Error.as_str(),
        duration_us: 0,
        pod_us: 0,
        exit_code: None,
        signal: None,
        message: Some(message),
        output: "",
        changed: &[],
        isolation: rt.isolation().as_str(),
        notes: &[],
        relayed: false,
        unreliable: false,
    };
    write(rt, &rec);
}

/// Name in the notes the files the host wrote after the checkpoint, which the pod may have read
/// torn (`pod::Watch`): those it had open for writing then, and those the pod copied
/// (`changed`); a failing outcome is then unreliable: it may be the files' doing, not the
/// code's.
fn torn_files(e: &mut Ending, outcome: Outcome, host_pid: i32, changed: &[String]) -> bool {
    let Some(watch) = &e.watch else {
        return false;
    };
    let root = format!("/proc/{host_pid}/root");
    let mut notes = watch.notes(&root);
    notes.extend(watch.copied_notes(changed, &root));
    let any = !notes.is_empty();
    e.notes.extend(notes);
    any && matches!(outcome, Outcome::Fail | Outcome::Crash | Outcome::Timeout)
}

/// Read what is there; true at end of file.
pub fn read_output(fd: i32, out: &mut Vec<u8>, cut: &mut u64) -> bool {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = sys::read(fd, &mut buf) {
        if n == 0 {
            return true;
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() > 2 * OUTPUT_TAIL {
            let drop = out.len() - OUTPUT_TAIL;
            *cut += drop as u64;
            out.drain(..drop);
        }
    }
    false
}

/// Status-pipe bytes kept per pod: a verdict, a setup error and `relay::MAX_RELAYED` records fit.
pub const MAX_FRAMES: usize = 1 << 20;

/// Read what is there; true at end of file. Past `MAX_FRAMES` the pipe is still drained (so the
/// pod never blocks on it) but what it carries is only counted in `discarded`.
pub fn read_frames(fd: i32, out: &mut Vec<u8>, discarded: &mut u64) -> bool {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = sys::read(fd, &mut buf) {
        if n == 0 {
            return true;
        }
        let room = MAX_FRAMES.saturating_sub(out.len()).min(n);
        out.extend_from_slice(&buf[..room]);
        *discarded += (n - room) as u64;
    }
    false
}

pub fn parse_frames(b: &[u8]) -> Vec<(u8, &[u8])> {
    parse_frames_rest(b).0
}

/// The whole frames in `b`, and how many bytes follow the last one.
fn parse_frames_rest(mut b: &[u8]) -> (Vec<(u8, &[u8])>, usize) {
    let mut v = Vec::new();
    while b.len() >= 5 {
        let len = u32::from_le_bytes([b[1], b[2], b[3], b[4]]) as usize;
        if b.len() - 5 < len {
            break;
        }
        v.push((b[0], &b[5..5 + len]));
        b = &b[5 + len..];
    }
    (v, b.len())
}

/// A frame's monotonic time stamp (8 bytes, little-endian).
fn stamp(payload: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(payload.try_into().ok()?))
}

/// When the test began, from the frames read so far: the supervisor starts looking for a
/// deadlock then.
pub fn test_started_ns(frames: &[u8]) -> Option<u64> {
    parse_frames(frames)
        .into_iter()
        .find_map(|(tag, p)| (tag == b'S').then(|| stamp(p)).flatten())
}

/// `duration_us`, the test's own time (its first instruction to its end, as the pod saw it, or
/// to when the supervisor saw it end when it could not say), and `pod_us`, the rest of the time
/// from `ckpt()` to `now`: the fork, the pod's set-up and tear-down, the supervisor's work. The
/// pod's stamps are its word: they are kept within the pod's lifetime.
pub fn durations(info: &PodInfo, e: &Ending, now: u64) -> (u64, u64) {
    let total = now.saturating_sub(info.started_ns);
    let clamp = |t: u64| t.clamp(info.started_ns, now);
    let own = e.test_started_ns.map_or(0, |start| {
        let end = e.test_ended_ns.or(e.ended_ns).unwrap_or(now);
        clamp(end).saturating_sub(clamp(start))
    });
    (own / 1000, (total - own) / 1000)
}

/// Whether a pod its supervisor killed at the deadline had ended first: its supervisor judged
/// late (starved of CPU on a busy machine, it had not yet read the pod's word). Its verdict was
/// in (what the kill cut was its exit), or it was not the kill that ended it.
fn ended_before_the_kill(e: &Ending) -> bool {
    e.verdict.is_some()
        || e.status
            .is_some_and(|s| !libc::WIFSIGNALED(s) || libc::WTERMSIG(s) != libc::SIGKILL)
}

/// Decide the outcome from how the pod ended.
pub fn decide(
    info: &PodInfo,
    e: &Ending,
) -> (Outcome, Option<i32>, Option<String>, Option<String>) {
    let manual = info.manual;
    if let Some(m) = &e.setup_error {
        return (Outcome::Error, None, None, Some(m.clone()));
    }
    if let Some(m) = &e.deadlock {
        match &e.verdict {
            // A `ckpt()` test stuck in exit handlers after `exit(code)`: its status is its verdict.
            None if manual && e.exited.is_some() => {
                return manual_exit(e.exited.unwrap_or_default())
            }
            None => return (Outcome::Error, None, None, Some(m.clone())),
            // Stuck after its verdict (the runtime's own flush): the verdict stands.
            Some((true, m)) => return (Outcome::Pass, None, None, m.clone()),
            Some((false, m)) => {
                let m = m.clone().or(Some("test failed".into()));
                return (Outcome::Fail, None, None, m);
            }
        }
    }
    if let (true, Some((pass, m))) = (e.timed_out, &e.verdict) {
        return match pass {
            true => (Outcome::Pass, None, None, m.clone()),
            false => (
                Outcome::Fail,
                None,
                None,
                m.clone().or(Some("test failed".into())),
            ),
        };
    }
    if e.timed_out && !ended_before_the_kill(e) {
        return (
            Outcome::Timeout,
            None,
            None,
            Some(format!("killed after the {} ms deadline", info.timeout_ms)),
        );
    }
    if e.host_died {
        return (
            Outcome::Error,
            None,
            None,
            Some("the host process exited while the pod ran".into()),
        );
    }
    let Some(status) = e.status else {
        return (
            Outcome::Error,
            None,
            None,
            Some("the pod ended without a status (killed from outside)".into()),
        );
    };
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let name = signal_name(sig);
        let outcome = if sig == libc::SIGABRT {
            Outcome::Fail
        } else {
            Outcome::Crash
        };
        let msg = e
            .verdict
            .as_ref()
            .and_then(|v| v.1.clone())
            .unwrap_or_else(|| format!("killed by {name}"));
        return (outcome, None, Some(name), Some(msg));
    }
    let code = libc::WEXITSTATUS(status);
    match (&e.verdict, manual) {
        (Some((true, m)), _) => (Outcome::Pass, Some(code), None, m.clone()),
        (Some((false, m)), _) => (
            Outcome::Fail,
            Some(code),
            None,
            m.clone().or(Some("test failed".into())),
        ),
        (None, true) => manual_exit(code),
        (None, false) => (
            Outcome::Error,
            Some(code),
            None,
            Some(format!("the test called exit({code}) before returning")),
        ),
    }
}

/// A `ckpt()` test's outcome by the status it exited with.
fn manual_exit(code: i32) -> (Outcome, Option<i32>, Option<String>, Option<String>) {
    match code {
        0 => (Outcome::Pass, Some(0), None, None),
        _ => (
            Outcome::Fail,
            Some(code),
            None,
            Some(format!("pod exited with status {code}")),
        ),
    }
}

fn tail_utf8(b: &[u8], already_cut: u64) -> String {
    let start = b.len().saturating_sub(OUTPUT_TAIL);
    let s = String::from_utf8_lossy(&b[start..]).into_owned();
    let cut = already_cut + start as u64;
    if cut > 0 {
        format!("[... {cut} bytes cut ...]\n{s}")
    } else {
        s
    }
}

mod info;
#[cfg(test)]
mod tests;
