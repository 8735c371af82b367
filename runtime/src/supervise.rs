//! Supervision: the supervisor process of one pod. It stays outside the pod, builds it, enforces
//! the deadline, captures the tail of the pod's output, lists the files the pod changed, keeps
//! the pod's files when asked, decides the outcome and writes the journal record. It also
//! watches the host: if the host dies, the pod has the exit drain's grace to end, then dies
//! (`HostEnd`).

use crate::config::{Isolation, Keep};
use crate::deadline::{Deadline, Due};
use crate::deadlock;
use crate::plan::Plan;
use crate::pod::{self, Channels, PodSpec, Side};
use crate::record::{self, keep_dir, read_frames, read_output, Ending, PodInfo};
use crate::runtime::Runtime;
use crate::sys;
use std::os::fd::{AsRawFd, IntoRawFd};

/// The host a supervisor works for: its parent (a cold pod's supervisor, forked by the host),
/// or, for a warm test that builds its pod cold instead (`warm`: PID 1 of a PID namespace of its
/// own, where the host's pid means nothing), the host's pidfd it inherited.
#[derive(Clone, Copy)]
pub enum Host {
    Parent,
    Pidfd(std::os::fd::RawFd),
}

/// In the supervisor (the host's child). Returns only in the pod's test process.
pub fn supervisor(rt: &Runtime, plan: Option<&Plan>, info: PodInfo, host: Host) {
    sys::background_and_yield();
    // The host's signal handlers are not the supervisor's (its SIGCHLD handler would reap our
    // test), but they are the pod's: saved here, restored in the test.
    let signals = sys::save_signal_state();
    sys::reset_signal_handlers(&signals);
    // What the pod pins while its supervisor lives (the scratch) must go before the host does.
    pod::oom_first();
    rt.ledger().measure_cow_fault_once();
    // The supervisor's own descriptors (this one, `host_ipc`, the test's pidfd) live until it
    // exits; the test closes them with the rest of what it inherited.
    let (host_pidfd, host_gone) = match host {
        Host::Parent => {
            let fd = sys::pidfd_open(info.host_pid).ok();
            // Its parent gone already, the host's pid may name another process by now.
            let gone = sys::getppid() != info.host_pid;
            (fd.filter(|_| !gone).map(IntoRawFd::into_raw_fd), gone)
        }
        Host::Pidfd(fd) => (Some(fd), sys::poll_in(&[fd], 0, &mut [0]).unwrap_or(0) > 0),
    };
    // A host already gone (`_exit` right after its call) still gets its pod, within the grace.
    let grace = || rt.host_gone_until();
    let host_end = HostEnd {
        pidfd: host_pidfd,
        gone_until: host_gone.then(grace),
        grace: &grace,
    };
    // The host's calls take the plan made at load for theirs without looking: this process,
    // which sees what the host sees, looks (`Runtime::plan_in_fork`).
    let plan = match plan.map(|_| rt.plan_in_fork()) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => end(rt, &info, None, setup_failed("probe the host", e)),
    };
    // The journal, if the host has not created it yet (`Runtime::journal`): by its path, while
    // the supervisor still sees the host's files; the test closes it with the rest.
    let _ = rt.journal();
    let mut own = plan.map(Plan::own_fds).unwrap_or_default();
    own.push(rt.journal_fd());
    own.extend(host_pidfd);
    own.push(pod::report_fd());
    own.extend(crate::reap::own_fds());
    let mut fds = pod::scan_fds(&own, info.started_ns);
    if rt.config.as_ref().is_some_and(|c| !c.hold_host) {
        fds.watch.unheld();
    }
    let keep_dir = keep_dir(rt);
    let ch = match Channels::new() {
        Ok(ch) => ch,
        Err(e) => end(rt, &info, None, setup_failed("create pipes", e)),
    };
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|p| std::ffi::CString::new(p.into_os_string().into_encoded_bytes()).ok());
    let isolation = if plan.is_some() {
        info.isolation
    } else {
        Isolation::Fork
    };
    // The pod's IPC namespace is the supervisor's too: left once the test has ended, so that
    // the SysV objects the pod made are freed then, not after the record.
    let host_ipc = plan
        .and_then(|_| sys::open(c"/proc/self/ns/ipc", libc::O_RDONLY | libc::O_CLOEXEC, 0).ok())
        .map(IntoRawFd::into_raw_fd);
    let spec = PodSpec {
        isolation,
        plan,
        fds: &fds,
        cwd,
        timeout_ms: info.timeout_ms,
        signals: Some(&signals),
        own_page: rt.ledger() as *const _ as usize,
    };
    match pod::build(&spec, &ch) {
        Ok(Side::Test) => crate::afterfork::pod_test(rt, &info.path),
        Ok(Side::Supervisor { child, scratch }) => {
            sys::set_name(c"invite-supervisor");
            // The host held still while its files were cloned: a cost of testing, as its pauses.
            rt.ledger()
                .charge(scratch.as_ref().map_or(0, |s| s.held_ns()));
            // (In a pod, its report descriptor carries the records of the pods nested in it.)
            let mut own = vec![rt.journal_fd(), ch.status_r, ch.out_r, pod::report_fd()];
            own.extend(rt.keep_fd());
            own.extend(host_pidfd);
            own.extend(host_ipc);
            drop_host_fds(&own);
            let notify = plan.is_some_and(|p| p.seccomp.notify);
            let mut connects = connects::Connects::new(notify, scratch.as_ref());
            let mut ending = await_end(rt, &info, &ch, child, host_end, connects.as_mut());
            if let Some(fd) = host_ipc {
                // Unprivileged, the host's namespace is out of reach: the objects go with the
                // supervisor.
                let _ = sys::setns(fd, libc::CLONE_NEWIPC);
            }
            ending.notes.splice(0..0, fds.notes.iter().cloned());
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

/// Once the test is forked, the supervisor lets go of every descriptor it inherited from the
/// host but its own: a host that closes a socket or a locked file while the pod runs must be
/// seen to close it at once (a peer's EOF, a `flock` another process waits for). stdin and
/// stdout become /dev/null; stderr stays, for the runtime's own diagnostics.
fn drop_host_fds(own: &[i32]) {
    // SAFETY: the supervisor is a single-threaded fork of the host; what it inherited is its own
    // to close, and what it keeps is in `own`. Its stdin and stdout are then /dev/null.
    unsafe {
        sys::close_all_except(3, own);
        if let Ok(null) = sys::open(c"/dev/null", libc::O_RDWR | libc::O_CLOEXEC, 0) {
            let _ = sys::dup2(null.as_raw_fd(), 0);
            let _ = sys::dup2(null.as_raw_fd(), 1);
        }
    }
}

/// The host as its pod's supervisor watches it: its pidfd (none where it could not be opened,
/// or not for sure: then a host alive is never seen gone), and once it is gone, until when its
/// pod may still run.
///
/// A host that ends without its exit drain (`_exit`, a forked worker's usual end, or a signal)
/// leaves its pods the grace the drain would have given them (`Runtime::host_gone_until`): a
/// test that ends within it keeps its outcome, and one still running then is killed and is
/// `error` ("the host process exited while the pod ran"). The host is not held up by it: the
/// supervisor is not its parent's child, and nothing of the host waits for it.
struct HostEnd<'a> {
    pidfd: Option<i32>,
    gone_until: Option<u64>,
    /// Once the host is seen gone: until when (`Runtime::host_gone_until`).
    grace: &'a dyn Fn() -> u64,
}

/// Watch the pod until it is over (`watch_pod`), then read what it said.
fn await_end(
    rt: &Runtime,
    info: &PodInfo,
    ch: &Channels,
    child: libc::pid_t,
    host: HostEnd,
    connects: Option<&mut connects::Connects>,
) -> Ending {
    let (mut e, frames) = watch_pod(info, ch, child, host, connects);
    e.apply_frames(rt, info, &frames);
    e
}

/// Poll the pod's channels, its direct child and the host until the pod is over; its frames.
/// Once the test has started, it is looked at for a deadlock every `deadlock::PERIOD_NS`.
/// `connects`: the pod's `connect` calls, answered here (`connects`).
fn watch_pod(
    info: &PodInfo,
    ch: &Channels,
    child: libc::pid_t,
    mut host: HostEnd,
    mut connects: Option<&mut connects::Connects>,
) -> (Ending, Vec<u8>) {
    let _ = sys::set_nonblock(ch.status_r);
    let _ = sys::set_nonblock(ch.out_r);
    let child_fd = sys::pidfd_open(child).ok().map(IntoRawFd::into_raw_fd);
    // The deadline bounds the test's own time once it has started (its `S` stamp, which the pod
    // cannot move past the moment it is read), and the pod's set-up until then.
    let mut deadline = Deadline::new(info.started_ns, info.timeout_ms);
    let mut due = deadline.plain();
    let mut e = Ending::default();
    let mut frames = Vec::new();
    let mut watch: Option<deadlock::Watch> = None;
    // A pipe at end of file polls readable for ever: it leaves the poll set (no spinning while
    // the test's exit completes).
    let (mut out_open, mut status_open) = (true, true);
    let mut fds = Vec::with_capacity(5);
    let mut rev = [0i16; 5];
    loop {
        let now = sys::monotonic_ns();
        let wait_ms = if e.cut() {
            50
        } else {
            let next = watch.as_ref().map_or(due, |w| w.due_ns().min(due));
            let next = host.gone_until.map_or(next, |t| t.min(next));
            (next.saturating_sub(now) / 1_000_000).clamp(1, 1000) as i32
        };
        let wait_ms = connects.as_ref().map_or(wait_ms, |c| c.wait_ms(wait_ms));
        // Once gone, the host's pidfd polls readable for ever: it leaves the poll set.
        let polled_host = host.pidfd.filter(|_| host.gone_until.is_none());
        fds.clear();
        fds.extend(polled_host);
        fds.extend(child_fd);
        if out_open {
            fds.push(ch.out_r);
        }
        if status_open {
            fds.push(ch.status_r);
        }
        fds.extend(connects.as_ref().and_then(|c| c.fd()));
        let _ = sys::poll_in(&fds, wait_ms, &mut rev[..fds.len()]);
        out_open &= !read_output(ch.out_r, &mut e.output, &mut e.output_cut);
        status_open &= !read_frames(ch.status_r, &mut frames, &mut e.frames_discarded);
        if let Some(c) = connects.as_deref_mut() {
            if let Err(m) = c.take(&frames, child_fd) {
                e.setup_error.get_or_insert(m);
                sys::kill(child, libc::SIGKILL);
            }
            c.serve();
        }
        if let (None, Some(t)) = (&watch, record::test_started_ns(&frames)) {
            let start = t.clamp(info.started_ns, sys::monotonic_ns());
            deadline.test_started(start);
            due = deadline.plain();
            watch = Some(deadlock::Watch::new(start));
        }
        if polled_host.is_some() && rev[0] != 0 {
            host.gone_until = Some((host.grace)());
        }
        let past_grace = host.gone_until.is_some_and(|t| sys::monotonic_ns() >= t);
        if past_grace && !e.host_died && !e.cut() {
            e.host_died = true;
            sys::kill(child, libc::SIGKILL);
        }
        match sys::wait4(child, libc::WNOHANG) {
            Ok((pid, status, ru)) if pid == child => {
                e.status = Some(status);
                e.cpu_ns = pod::tv_ns(ru.ru_utime) + pod::tv_ns(ru.ru_stime);
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
        // Judged after reading the pod's latest word and reaping it if it is over: a supervisor
        // starved of CPU on a busy machine may wake long after the pod started, or ended, its
        // test.
        let now = sys::monotonic_ns();
        let ending = e.cut() || e.host_died;
        match deadline.look(now, child) {
            _ if ending => {}
            Due::At(t) => due = t,
            Due::Over { waited_ns } => {
                sys::kill(child, libc::SIGKILL);
                e.ended_ns = Some(now);
                if deadline.test {
                    e.timed_out = true;
                    e.notes.extend(crate::deadline::note(waited_ns));
                } else {
                    e.setup_error = Some(crate::deadline::setup_error(info.timeout_ms));
                }
            }
        }
        if let Some(w) = watch.as_mut().filter(|_| !ending) {
            if let Some(m) = w.look(child, now, info.origin()) {
                e.deadlock = Some(m);
                e.ended_ns = Some(now);
                sys::kill(child, libc::SIGKILL);
            }
        }
    }
    e.ended_ns.get_or_insert_with(sys::monotonic_ns);
    if let Some(c) = connects {
        e.notes.append(&mut c.notes);
    }
    // The pod is gone; whatever it wrote is in the pipes.
    read_output(ch.out_r, &mut e.output, &mut e.output_cut);
    read_frames(ch.status_r, &mut frames, &mut e.frames_discarded);
    (e, frames)
}

fn finish_record(
    rt: &Runtime,
    info: &PodInfo,
    ending: Ending,
    changed: Vec<String>,
    scratch: Option<&pod::Scratch>,
    keep: Option<(i32, Keep)>,
) -> ! {
    record::record_end(rt, info, ending, &changed, scratch, keep);
    sys::exit_now(0)
}

fn end(rt: &Runtime, info: &PodInfo, scratch: Option<&pod::Scratch>, e: Ending) -> ! {
    finish_record(rt, info, e, Vec::new(), scratch, None)
}

mod connects;
#[cfg(test)]
mod tests;

/// The ending of a pod whose supervisor failed at `step` before the test started.
fn setup_failed(step: &str, e: impl std::fmt::Display) -> Ending {
    Ending {
        setup_error: Some(format!("pod setup failed at step \"{step}\": {e}")),
        ..Ending::default()
    }
}
