//! Supervision: the supervisor process of one pod. It stays outside the pod, builds it, enforces
//! the deadline, captures the tail of the pod's output, lists the files the pod changed, keeps
//! the pod's files when asked, decides the outcome and writes the journal record. It also
//! watches the host: if the host dies, the pod dies with it.

use crate::config::{Isolation, Keep};
use crate::journal::{self, TestRecord};
use crate::outcome::{signal_name, Outcome};
use crate::plan::Plan;
use crate::pod::{self, Channels, PodSpec, Side};
use crate::runtime::Runtime;
use crate::site::Site;
use crate::snapshot::PodKind;
use crate::sys;
use std::sync::atomic::Ordering;

/// Output kept per pod: the tail, which is what ended it.
pub const OUTPUT_TAIL: usize = 16 * 1024;

/// What the record of a pod will say about where it came from.
pub struct PodInfo {
    pub kind: PodKind,
    pub path: String,
    pub function: String,
    pub test: String,
    pub site: String,
    pub phase: &'static str,
    pub timeout_ms: u64,
    pub isolation: Isolation,
    pub host_pid: i32,
    pub started_ns: u64,
}

impl PodInfo {
    pub fn new(
        rt: &Runtime,
        kind: PodKind,
        path: String,
        host_pid: i32,
        started_ns: u64,
    ) -> PodInfo {
        let cfg = rt.config.as_ref();
        let default_timeout = cfg.map_or(crate::config::DEFAULT_TIMEOUT_MS, |c| c.timeout_ms);
        let (function, test, site, phase, timeout_ms) = match kind {
            PodKind::Site { site, owner } => (
                function_name(site, owner),
                site.test().to_string(),
                format!("{}:{}", site.file(), site.line),
                site.phase().as_str(),
                if site.timeout_ms > 0 {
                    site.timeout_ms as u64
                } else {
                    default_timeout
                },
            ),
            PodKind::Manual {
                file,
                line,
                function,
            } => (
                function.to_string(),
                "ckpt".to_string(),
                format!("{file}:{line}"),
                "manual",
                default_timeout,
            ),
            PodKind::Branch {
                file,
                line,
                function,
            } => (
                function.to_string(),
                "branch".to_string(),
                format!("{file}:{line}"),
                "manual",
                default_timeout,
            ),
        };
        PodInfo {
            kind,
            path,
            function,
            test,
            site,
            phase,
            timeout_ms,
            isolation: rt.isolation(),
            host_pid,
            started_ns,
        }
    }
}

/// `module::Type::method` for methods.
fn function_name(site: &Site, owner: Option<&str>) -> String {
    crate::site::qualified(site.function(), owner)
}

/// How the pod ended, as the supervisor saw it.
#[derive(Default)]
struct Ending {
    status: Option<i32>,
    cpu_ns: u64,
    verdict: Option<(bool, Option<String>)>,
    setup_error: Option<String>,
    timed_out: bool,
    host_died: bool,
    output: Vec<u8>,
    /// Output bytes dropped from the front to keep the tail.
    output_cut: u64,
    notes: Vec<String>,
}

/// In the supervisor (the host's child). Returns only in the pod's test process.
pub fn supervisor(rt: &Runtime, plan: Option<&Plan>, info: PodInfo) {
    sys::background_and_yield();
    // The host's signal handlers are not the supervisor's (its SIGCHLD handler would reap our
    // test), but they are the pod's: saved here, restored in the test.
    let signals = sys::save_signal_state();
    sys::reset_signal_handlers(&signals);
    measure_cow_cost_once(rt);
    let host_pidfd = sys::pidfd_open(info.host_pid).ok();
    if sys::getppid() != info.host_pid {
        sys::exit_now(0); // the host is already gone
    }
    let mut own = plan.map(Plan::own_fds).unwrap_or_default();
    own.push(rt.journal_fd());
    own.extend(host_pidfd);
    own.push(pod::report_fd());
    own.extend(crate::reap::own_fds());
    let fds = pod::scan_fds(&own);
    let keep_dir = keep_dir(rt);
    let ch = match Channels::new() {
        Ok(ch) => ch,
        Err(e) => end(
            rt,
            &info,
            None,
            Ending {
                setup_error: Some(format!("pod setup failed at step \"create pipes\": {e}")),
                ..Ending::default()
            },
        ),
    };
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|p| std::ffi::CString::new(p.into_os_string().into_encoded_bytes()).ok());
    let isolation = if plan.is_some() {
        info.isolation
    } else {
        Isolation::Fork
    };
    let spec = PodSpec {
        isolation,
        plan,
        fds: &fds,
        cwd,
        timeout_ms: info.timeout_ms,
        signals: &signals,
    };
    match pod::build(&spec, &ch) {
        Ok(Side::Test) => rt.become_pod(&info.path),
        Ok(Side::Supervisor { child, scratch }) => {
            sys::set_name(c"invite-supervisor");
            sys::close(ch.status_w);
            sys::close(ch.out_w);
            let mut ending = watch(rt, &info, &ch, child, host_pidfd);
            ending.notes = fds.notes.clone();
            let changed = scratch.as_ref().map(|s| s.changed()).unwrap_or_default();
            finish_record(rt, &info, ending, changed, scratch.as_ref(), keep_dir)
        }
        Err(e) => end(
            rt,
            &info,
            None,
            Ending {
                setup_error: Some(e.to_string()),
                ..Ending::default()
            },
        ),
    }
}

/// The first supervisor measures what a copy-on-write fault costs, for the budget (before it
/// enters the pod's PID namespace, where it could not fork again once the pod has ended).
fn measure_cow_cost_once(rt: &Runtime) {
    let shared = rt.shared();
    if shared.cow_fault_ns.load(Ordering::Relaxed) == 0 {
        if let Some(ns) = sys::measure_cow_fault_ns() {
            shared.cow_fault_ns.store(ns, Ordering::Relaxed);
        }
    }
}

/// Poll the pod's channels, its direct child and the host until the pod is over.
fn watch(
    rt: &Runtime,
    info: &PodInfo,
    ch: &Channels,
    child: libc::pid_t,
    host: Option<i32>,
) -> Ending {
    let _ = sys::set_nonblock(ch.status_r);
    let _ = sys::set_nonblock(ch.out_r);
    let child_fd = sys::pidfd_open(child).ok();
    let deadline = info.started_ns + info.timeout_ms * 1_000_000;
    let mut e = Ending::default();
    let mut frames = Vec::new();
    let mut child_done = false;
    // A pipe at end of file polls readable for ever: it leaves the poll set (no spinning while
    // the test's exit completes).
    let (mut out_open, mut status_open) = (true, true);
    let mut fds = Vec::with_capacity(4);
    let mut rev = [0i16; 4];
    while !child_done {
        let now = sys::monotonic_ns();
        if now >= deadline && !e.timed_out {
            e.timed_out = true;
            sys::kill(child, libc::SIGKILL);
        }
        let wait_ms = if e.timed_out {
            50
        } else {
            ((deadline - now) / 1_000_000).clamp(1, 1000) as i32
        };
        fds.clear();
        fds.extend(host);
        fds.extend(child_fd);
        if out_open {
            fds.push(ch.out_r);
        }
        if status_open {
            fds.push(ch.status_r);
        }
        let _ = sys::poll_in(&fds, wait_ms, &mut rev[..fds.len()]);
        out_open &= !read_output(ch.out_r, &mut e.output, &mut e.output_cut);
        status_open &= !read_frames(ch.status_r, &mut frames);
        if host.is_some() && rev[0] != 0 && !e.host_died {
            e.host_died = true;
            sys::kill(child, libc::SIGKILL);
        }
        if let Ok((pid, status, ru)) = sys::wait4(child, libc::WNOHANG) {
            if pid == child {
                child_done = true;
                e.status = Some(status);
                e.cpu_ns = pod::tv_ns(ru.ru_utime) + pod::tv_ns(ru.ru_stime);
            }
        } else {
            child_done = true;
        }
    }
    // The pod is gone; whatever it wrote is in the pipes.
    read_output(ch.out_r, &mut e.output, &mut e.output_cut);
    read_frames(ch.status_r, &mut frames);
    for (tag, payload) in parse_frames(&frames) {
        match tag {
            b'V' if !payload.is_empty() => {
                let msg = (payload.len() > 1)
                    .then(|| String::from_utf8_lossy(&payload[1..]).into_owned());
                e.verdict = Some((payload[0] != 0, msg));
            }
            b'E' => e.setup_error = Some(String::from_utf8_lossy(payload).into_owned()),
            // The test, as PID 1, died of a signal it reported itself: as if killed by it
            // (a wait status whose low bits are the signal number).
            b'K' if payload.len() == 4 => {
                let sig = i32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]);
                if (1..64).contains(&sig) {
                    e.status = Some(sig);
                }
            }
            b'R' => relay(rt, info, payload),
            _ => {}
        }
    }
    e
}

/// A record from a pod nested in this one: passed on if it is one well-formed line that names
/// a pod below this one.
fn relay(rt: &Runtime, info: &PodInfo, line: &[u8]) {
    let Ok(s) = std::str::from_utf8(line) else {
        return;
    };
    let below = format!("\"pod\":\"{}/", info.path);
    let one_line = s.ends_with('\n') && s.matches('\n').count() == 1;
    if one_line
        && s.len() <= journal::MAX_LINE
        && s.starts_with("{\"schema\":1,\"kind\":\"test\"")
        && s.contains(&below)
    {
        rt.write_record(s);
    }
}

/// Read what is there; true at end of file.
fn read_output(fd: i32, out: &mut Vec<u8>, cut: &mut u64) -> bool {
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

/// Read what is there; true at end of file (or past 4 MiB of frames, which only a runaway
/// pod could send).
fn read_frames(fd: i32, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = sys::read(fd, &mut buf) {
        if n == 0 || out.len() > 4 << 20 {
            return true;
        }
        out.extend_from_slice(&buf[..n]);
    }
    false
}

fn parse_frames(mut b: &[u8]) -> Vec<(u8, &[u8])> {
    let mut v = Vec::new();
    while b.len() >= 5 {
        let len = u32::from_le_bytes([b[1], b[2], b[3], b[4]]) as usize;
        if b.len() < 5 + len {
            break;
        }
        v.push((b[0], &b[5..5 + len]));
        b = &b[5 + len..];
    }
    v
}

/// Decide the outcome from how the pod ended.
fn decide(info: &PodInfo, e: &Ending) -> (Outcome, Option<i32>, Option<String>, Option<String>) {
    let manual = matches!(info.kind, PodKind::Manual { .. } | PodKind::Branch { .. });
    if let Some(m) = &e.setup_error {
        return (Outcome::Error, None, None, Some(m.clone()));
    }
    if e.timed_out {
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
        (None, true) if code == 0 => (Outcome::Pass, Some(0), None, None),
        (None, true) => (
            Outcome::Fail,
            Some(code),
            None,
            Some(format!("pod exited with status {code}")),
        ),
        (None, false) => (
            Outcome::Error,
            Some(code),
            None,
            Some(format!("the test called exit({code}) before returning")),
        ),
    }
}

fn finish_record(
    rt: &Runtime,
    info: &PodInfo,
    ending: Ending,
    changed: Vec<String>,
    scratch: Option<&pod::Scratch>,
    keep: Option<(i32, Keep)>,
) -> ! {
    let (outcome, exit_code, signal, message) = decide(info, &ending);
    let shared = rt.shared();
    shared
        .overhead_ns
        .fetch_add(ending.cpu_ns, Ordering::Relaxed);
    shared
        .pod_cpu_ns
        .fetch_add(ending.cpu_ns, Ordering::Relaxed);
    shared.pods_finished.fetch_add(1, Ordering::Relaxed);
    let output = tail_utf8(&ending.output, ending.output_cut);
    let rec = TestRecord {
        time_ns: journal::now_ns(),
        host: &rt.host,
        pid: rt.pid,
        pod: &info.path,
        site: &info.site,
        function: &info.function,
        test: &info.test,
        phase: info.phase,
        outcome: outcome.as_str(),
        duration_us: (sys::monotonic_ns() - info.started_ns) / 1000,
        exit_code,
        signal: signal.as_deref(),
        message: message.as_deref(),
        output: &output,
        changed: &changed,
        isolation: info.isolation.as_str(),
        notes: &ending.notes,
    };
    let line = rec.to_line();
    if let Some((dir_fd, mode)) = keep {
        if mode == Keep::All || outcome != Outcome::Pass {
            crate::keep::keep_pod(dir_fd, &info.path, rt.pid, &line, &changed, scratch);
        }
    }
    rt.write_record(&line);
    shared.running.fetch_sub(1, Ordering::AcqRel);
    sys::exit_now(0)
}

fn end(rt: &Runtime, info: &PodInfo, scratch: Option<&pod::Scratch>, e: Ending) -> ! {
    finish_record(rt, info, e, Vec::new(), scratch, None)
}

fn keep_dir(rt: &Runtime) -> Option<(i32, Keep)> {
    let c = rt.config.as_ref()?;
    if c.keep_pods == Keep::None {
        return None;
    }
    crate::keep::open_dir(&c.pod_dir).map(|fd| (fd, c.keep_pods))
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

/// A site whose pod could not even be forked: journaled as `error`.
pub fn journal_start_failure(site: &'static Site, owner: Option<&'static str>, message: &str) {
    let rt = crate::runtime::get();
    let rec = TestRecord {
        time_ns: journal::now_ns(),
        host: &rt.host,
        pid: rt.pid,
        pod: "",
        site: &format!("{}:{}", site.file(), site.line),
        function: &function_name(site, owner),
        test: site.test(),
        phase: site.phase().as_str(),
        outcome: Outcome::Error.as_str(),
        duration_us: 0,
        exit_code: None,
        signal: None,
        message: Some(message),
        output: "",
        changed: &[],
        isolation: rt.isolation().as_str(),
        notes: &[],
    };
    rt.write_record(&rec.to_line());
}
