//! How a pod's end becomes an outcome, and the codecs of what a pod sends its supervisor: pure
//! functions, tested without root, without the runtime and without files.

use super::*;
use crate::config::Isolation;
use std::os::fd::AsRawFd;

fn info(manual: bool) -> PodInfo {
    PodInfo {
        manual,
        path: "2/7".into(),
        function: "bank::Account::deposit".into(),
        test: "keeps_balance".into(),
        site: "src/bank.rs:41".into(),
        phase: "post",
        timeout_ms: 1500,
        isolation: Isolation::Pod,
        host_pid: 1234,
        caller_tid: 1240,
        started_ns: 99,
    }
}

/// A wait status as `waitpid` gives it.
fn exited(code: i32) -> Option<i32> {
    Some((code & 0xff) << 8)
}

fn killed(sig: i32) -> Option<i32> {
    Some(sig)
}

fn ending(status: Option<i32>, verdict: Option<(bool, Option<&str>)>) -> Ending {
    Ending {
        status,
        verdict: verdict.map(|(p, m)| (p, m.map(str::to_string))),
        ..Ending::default()
    }
}

#[test]
fn a_test_s_verdict_decides_pass_or_fail() {
    let pass = decide(&info(false), &ending(exited(0), Some((true, None))));
    assert_eq!(pass, (Outcome::Pass, Some(0), None, None));
    let fail = decide(
        &info(false),
        &ending(exited(0), Some((false, Some("2 != 3")))),
    );
    assert_eq!(fail, (Outcome::Fail, Some(0), None, Some("2 != 3".into())));
    let unsaid = decide(&info(false), &ending(exited(1), Some((false, None))));
    assert_eq!(unsaid.0, Outcome::Fail);
    assert_eq!(unsaid.3.as_deref(), Some("test failed"));
}

#[test]
fn a_site_test_that_exits_before_its_verdict_is_an_error() {
    let (outcome, code, _, msg) = decide(&info(false), &ending(exited(3), None));
    assert_eq!((outcome, code), (Outcome::Error, Some(3)));
    assert_eq!(
        msg.as_deref(),
        Some("the test called exit(3) before returning")
    );
}

#[test]
fn a_manual_pod_passes_by_exiting_zero() {
    let ok = decide(&info(true), &ending(exited(0), None));
    assert_eq!(ok, (Outcome::Pass, Some(0), None, None));
    let (outcome, code, _, msg) = decide(&info(true), &ending(exited(4), None));
    assert_eq!((outcome, code), (Outcome::Fail, Some(4)));
    assert_eq!(msg.as_deref(), Some("pod exited with status 4"));
}

#[test]
fn a_signal_is_a_crash_but_abort_is_a_failed_assertion() {
    let (outcome, code, sig, msg) = decide(&info(false), &ending(killed(libc::SIGSEGV), None));
    assert_eq!((outcome, code), (Outcome::Crash, None));
    assert_eq!(sig.as_deref(), Some("SIGSEGV"));
    assert_eq!(msg.as_deref(), Some("killed by SIGSEGV"));
    let abort = ending(
        killed(libc::SIGABRT),
        Some((false, Some("assertion `x` failed"))),
    );
    let (outcome, _, sig, msg) = decide(&info(false), &abort);
    assert_eq!(outcome, Outcome::Fail);
    assert_eq!(sig.as_deref(), Some("SIGABRT"));
    assert_eq!(
        msg.as_deref(),
        Some("assertion `x` failed"),
        "the verdict's words win"
    );
}

#[test]
fn setup_timeout_and_host_death_come_before_the_status() {
    let mut e = ending(killed(libc::SIGKILL), None);
    e.host_died = true;
    assert_eq!(decide(&info(false), &e).0, Outcome::Error);
    e.timed_out = true;
    let (outcome, _, _, msg) = decide(&info(false), &e);
    assert_eq!(outcome, Outcome::Timeout);
    assert_eq!(msg.as_deref(), Some("killed after the 1500 ms deadline"));
    e.setup_error = Some("pod setup failed at step \"mount /proc\"".into());
    let (outcome, _, _, msg) = decide(&info(false), &e);
    assert_eq!(outcome, Outcome::Error);
    assert!(msg.unwrap().contains("mount /proc"));
}

#[test]
fn a_pod_that_ended_before_its_deadline_kill_landed_keeps_its_own_outcome() {
    // Its supervisor, starved of CPU, judged it overdue before reading its verdict: what the kill
    // cut was its exit.
    let mut e = ending(killed(libc::SIGKILL), Some((true, None)));
    e.timed_out = true;
    assert_eq!(decide(&info(false), &e).0, Outcome::Pass);
    let mut e = ending(None, Some((false, Some("2 != 3"))));
    e.timed_out = true;
    let (outcome, _, _, msg) = decide(&info(false), &e);
    assert_eq!((outcome, msg.as_deref()), (Outcome::Fail, Some("2 != 3")));
    // It had exited on its own (a kill of a zombie changes nothing).
    let mut e = ending(exited(0), None);
    e.timed_out = true;
    assert_eq!(decide(&info(true), &e).0, Outcome::Pass);
    let mut e = ending(killed(libc::SIGSEGV), None);
    e.timed_out = true;
    assert_eq!(decide(&info(false), &e).0, Outcome::Crash);
}

#[test]
fn a_pod_killed_from_outside_has_no_status_and_is_an_error() {
    let (outcome, code, sig, msg) = decide(&info(true), &ending(None, None));
    assert_eq!((outcome, code, sig), (Outcome::Error, None, None));
    assert!(msg.unwrap().contains("without a status"));
}

#[test]
fn a_pod_s_description_survives_its_frame() {
    let sent = info(false);
    let got = PodInfo::decode(&sent.encode(), Isolation::Pod, 1234, 7).expect("decoded");
    assert_eq!(
        (&got.path, &got.function, &got.test, &got.site, got.phase),
        (
            &sent.path,
            &sent.function,
            &sent.test,
            &sent.site,
            sent.phase
        )
    );
    assert_eq!(
        (got.timeout_ms, got.manual, got.started_ns, got.caller_tid),
        (1500, false, 7, 1240)
    );
    assert!(PodInfo::decode(b"too\x1ffew", Isolation::Pod, 1, 1).is_none());
    assert!(PodInfo::decode(
        b"a\x1fb\x1fc\x1fd\x1fpre\x1fnot-a-number\x1f0\x1f9",
        Isolation::Pod,
        1,
        1
    )
    .is_none());
    let odd = PodInfo::decode(
        b"a\x1fb\x1fc\x1fd\x1fsideways\x1f5\x1f1\x1f9",
        Isolation::Pod,
        1,
        1,
    );
    assert_eq!(odd.map(|i| (i.phase, i.manual)), Some(("manual", true)));
}

#[test]
fn frames_written_by_a_pod_are_read_back_whole_and_a_torn_one_is_left() {
    let (r, w) = sys::pipe().expect("pipe");
    for (tag, payload) in [
        (b'V', &b"\x01all good"[..]),
        (b'N', b""),
        (b'R', &[0xff; 300]),
    ] {
        pod::report_frame_on(w.as_raw_fd(), tag, payload);
    }
    drop(w);
    let mut bytes = Vec::new();
    let mut discarded = 0;
    while !read_frames(r.as_raw_fd(), &mut bytes, &mut discarded) {}
    assert_eq!(discarded, 0);
    let frames = parse_frames(&bytes);
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0], (b'V', &b"\x01all good"[..]));
    assert_eq!(frames[1], (b'N', &b""[..]));
    assert_eq!((frames[2].0, frames[2].1.len()), (b'R', 300));
    // A frame cut short (the pod died mid-write) is not taken, and its bytes are counted.
    let torn = &bytes[..bytes.len() - 1];
    let (whole, rest) = parse_frames_rest(torn);
    assert_eq!(whole.len(), 2);
    assert_eq!(rest, 5 + 299);
}

#[test]
fn only_the_tail_of_the_output_is_kept_and_the_cut_is_said() {
    assert_eq!(tail_utf8(b"short", 0), "short");
    assert_eq!(tail_utf8(b"short", 10), "[... 10 bytes cut ...]\nshort");
    let long = vec![b'x'; OUTPUT_TAIL + 3];
    let kept = tail_utf8(&long, 0);
    assert!(kept.starts_with("[... 3 bytes cut ...]\n"));
    assert_eq!(kept.len() - "[... 3 bytes cut ...]\n".len(), OUTPUT_TAIL);
}

#[test]
fn a_deadlock_is_an_error_unless_the_verdict_came_first() {
    let stuck = Ending {
        deadlock: Some("deadlocked on a lock".into()),
        ..ending(killed(libc::SIGKILL), None)
    };
    let (outcome, _, _, m) = decide(&info(false), &stuck);
    assert_eq!(
        (outcome, m.as_deref()),
        (Outcome::Error, Some("deadlocked on a lock"))
    );
    let after = Ending {
        deadlock: Some("deadlocked on a lock".into()),
        ..ending(killed(libc::SIGKILL), Some((true, None)))
    };
    assert_eq!(decide(&info(false), &after).0, Outcome::Pass);
}

#[test]
fn a_ckpt_test_stuck_after_exit_keeps_its_status_and_only_a_ckpt_test() {
    let stuck_after = |code: Option<i32>| Ending {
        deadlock: Some("deadlocked on a lock".into()),
        exited: code,
        ..ending(killed(libc::SIGKILL), None)
    };
    let d = |manual: bool, code: Option<i32>| {
        let (o, c, _, m) = decide(&info(manual), &stuck_after(code));
        (o, c, m)
    };
    assert_eq!(d(true, Some(0)), (Outcome::Pass, Some(0), None));
    assert_eq!(
        d(true, Some(3)),
        (
            Outcome::Fail,
            Some(3),
            Some("pod exited with status 3".into())
        )
    );
    // Nothing said its status: stuck before the runtime's handler.
    let error = Some("deadlocked on a lock".into());
    assert_eq!(d(true, None), (Outcome::Error, None, error.clone()));
    // A test of an instrumented function that calls exit() is an error however it ends.
    assert_eq!(d(false, Some(0)), (Outcome::Error, None, error));
}

#[test]
fn the_tests_own_time_is_between_its_stamps_and_the_rest_is_the_pods() {
    let i = info(false); // started_ns 99
    let mut e = Ending {
        test_started_ns: Some(1_000_099),
        test_ended_ns: Some(3_000_099),
        ended_ns: Some(4_000_099),
        ..Ending::default()
    };
    assert_eq!(durations(&i, &e, 5_000_099), (2_000, 3_000));
    // No end stamp (a crash, an exit()): to where the supervisor saw it end.
    e.test_ended_ns = None;
    assert_eq!(durations(&i, &e, 5_000_099), (3_000, 2_000));
    // Never started (a setup error): all of it is the pod's.
    assert_eq!(durations(&i, &Ending::default(), 5_000_099), (0, 5_000));
    // Stamps outside the pod's life are clamped to it.
    let forged = Ending {
        test_started_ns: Some(0),
        test_ended_ns: Some(u64::MAX),
        ..Ending::default()
    };
    assert_eq!(durations(&i, &forged, 5_000_099), (5_000, 0));
}
