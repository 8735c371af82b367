//! The supervisor's deadline, judged on the pod's latest word: a pod that ended before its
//! supervisor looked (a supervisor starved of CPU on a busy machine) is not a timeout; one that
//! overruns is.

use super::*;
use crate::config::Isolation;
use crate::sys::Forked;

/// A pod whose deadline (1 s, its clock started 10 s ago) is long past when its supervisor
/// first looks.
fn late_info() -> PodInfo {
    PodInfo {
        manual: false,
        path: "1".into(),
        function: "f".into(),
        test: "t".into(),
        site: "s.c:1".into(),
        phase: "pre",
        timeout_ms: 1000,
        isolation: Isolation::Pod,
        host_pid: sys::getpid(),
        caller_tid: sys::gettid(),
        started_ns: sys::monotonic_ns().saturating_sub(10_000_000_000),
    }
}

/// Fork a pod stand-in that runs `pod` then exits 0; the supervisor's side of its channels.
fn fork_pod(pod: fn(&Channels)) -> (Channels, libc::pid_t) {
    let ch = Channels::new().unwrap();
    // SAFETY: the child only writes to a pipe, sleeps or exits (async-signal-safe calls, no
    // allocation, no lock).
    match unsafe { sys::fork() }.unwrap() {
        Forked::Child => {
            pod(&ch);
            sys::exit_now(0)
        }
        Forked::Parent(pid) => {
            sys::close(ch.status_w);
            sys::close(ch.out_w);
            (ch, pid)
        }
    }
}

/// Its verdict: passed.
fn verdict_pass(ch: &Channels) {
    let _ = sys::write(ch.status_w, &[b'V', 1, 0, 0, 0, 1]);
}

#[test]
fn a_pod_that_ended_before_its_supervisor_looked_is_not_a_timeout() {
    let (ch, pid) = fork_pod(verdict_pass);
    // Over, not yet reaped, before the supervisor's first look.
    let pidfd = sys::pidfd_open(pid).unwrap();
    let _ = sys::poll_in(&[std::os::fd::AsRawFd::as_raw_fd(&pidfd)], -1, &mut [0]);
    let info = late_info();
    let (mut e, frames) = watch_pod(&info, &ch, pid, host_alive(), None);
    assert!(!e.timed_out, "killed as overdue after it had ended");
    assert_eq!(e.status.map(|s| libc::WEXITSTATUS(s)), Some(0));
    e.verdict = Some((true, None));
    assert_eq!(
        crate::record::decide(&info, &e).0,
        crate::outcome::Outcome::Pass
    );
    assert_eq!(frames, [b'V', 1, 0, 0, 0, 1]);
}

#[test]
fn a_pod_past_its_deadline_that_has_not_ended_is_killed() {
    // Its test started 5 s ago (a stamp the supervisor takes as no earlier than the pod's
    // start), and sleeps on.
    let (ch, pid) = fork_pod(|ch| {
        let start = sys::monotonic_ns() - 5_000_000_000;
        let mut frame = [b'S', 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        frame[5..].copy_from_slice(&start.to_le_bytes());
        let _ = sys::write(ch.status_w, &frame);
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    });
    let info = late_info();
    let (e, _) = watch_pod(&info, &ch, pid, host_alive(), None);
    assert!(e.timed_out);
    assert_eq!(e.status.map(|s| libc::WTERMSIG(s)), Some(libc::SIGKILL));
    assert_eq!(
        crate::record::decide(&info, &e).0,
        crate::outcome::Outcome::Timeout
    );
}

/// A pod that started now, with a minute to run.
fn fresh_info() -> PodInfo {
    PodInfo {
        timeout_ms: 60_000,
        started_ns: sys::monotonic_ns(),
        ..late_info()
    }
}

/// A host that lives on (no pidfd to watch, never seen gone).
fn host_alive() -> HostEnd<'static> {
    HostEnd {
        pidfd: None,
        gone_until: None,
        grace: &|| u64::MAX,
    }
}

/// A host already gone, whose pods may run for `ms` more.
fn host_gone_for(ms: u64) -> HostEnd<'static> {
    HostEnd {
        pidfd: None,
        gone_until: Some(sys::monotonic_ns() + ms * 1_000_000),
        grace: &|| u64::MAX,
    }
}

#[test]
fn a_pod_whose_host_is_gone_ends_within_the_grace_with_its_own_outcome() {
    let (ch, pid) = fork_pod(|ch| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        verdict_pass(ch);
    });
    let info = fresh_info();
    let (mut e, _) = watch_pod(&info, &ch, pid, host_gone_for(60_000), None);
    assert!(!e.host_died);
    e.verdict = Some((true, None));
    assert_eq!(
        crate::record::decide(&info, &e).0,
        crate::outcome::Outcome::Pass
    );
}

#[test]
fn a_pod_whose_host_is_gone_is_killed_past_the_grace() {
    let (ch, pid) = fork_pod(|_| loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    });
    let info = fresh_info();
    let (e, _) = watch_pod(&info, &ch, pid, host_gone_for(50), None);
    assert!(e.host_died);
    assert_eq!(e.status.map(|s| libc::WTERMSIG(s)), Some(libc::SIGKILL));
    assert_eq!(
        crate::record::decide(&info, &e).3.as_deref(),
        Some("the host process exited while the pod ran")
    );
}
