//! The runtime's one thread in the host (issue 13): started at load when testing is on, it sleeps
//! until there is work, and never takes a signal meant for the host's own threads.

use invite_tests::*;
use serde_json::Value;
use std::process::Output;

#[test]
fn the_runtimes_thread_sleeps_while_the_host_is_idle() {
    if !require_root("pods as root") {
        return;
    }
    // Cold pods (a supervisor each, reaped by the thread) and warm ones (watched by it).
    for warm in ["off", "on"] {
        let d = scratch();
        let bin = rogue_host(d.path());
        let env = [
            ("INVITE_MAX_OVERHEAD", "off"),
            ("INVITE_WARM", warm),
            ("ROGUE_REAPER_WAKEUPS", "1000"),
        ];
        let o = run(&bin, &["pass", "3"], d.path(), &env);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        let wakeups: u64 = out
            .lines()
            .find_map(|l| l.strip_prefix("reaper wakeups: "))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count of the thread's wake-ups: {}", text(&o)));
        // Polling every 20 ms woke it ~50 times a second; with nothing to do it sleeps (the
        // summary's period is a minute). A few wake-ups are left to the last pods' ends.
        assert!(
            wakeups <= 10,
            "INVITE_WARM={warm}: {wakeups} wake-ups in an idle second"
        );
    }
}

#[test]
fn a_signal_the_host_blocks_after_its_first_pod_waits_for_the_host() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    let bin = rogue_host(d.path());
    let env = [("INVITE_MAX_OVERHEAD", "off"), ("ROGUE_BLOCK_LATE", "1")];
    let o = run(&bin, &["pass", "1"], d.path(), &env);
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("SIGUSR2 pending"),
        "the runtime's thread took the host's signal: {}",
        text(&o)
    );
}

/// Runs rogue ARGS with warm pods (waiting for the stock) and `extra` settings, as root; its
/// output and its test records (`None` when not root).
fn warm_run(args: &[&str], extra: &[(&str, &str)]) -> Option<(Output, Vec<Value>)> {
    if !require_root("warm pods need root") {
        return None;
    }
    let d = scratch();
    let bin = rogue_host(d.path());
    let mut env = vec![("INVITE_MAX_OVERHEAD", "off"), ("INVITE_WARM", "wait")];
    env.extend_from_slice(extra);
    let o = run(&bin, args, d.path(), &env);
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&d.path().join("invite.jsonl"));
    let t = tests_of(&j).into_iter().cloned().collect();
    Some((o, t))
}

#[test]
fn a_warm_pod_registered_after_its_test_rang_is_still_watched() {
    // The host sleeps 300 ms between its fork and the pod's registration: the test is isolated
    // and rings long before, and the thread must not sleep through it.
    let extra = [("INVITE_FAULT_STEP", "register the warm pod")];
    let Some((_, t)) = warm_run(&["pass", "2"], &extra) else {
        return;
    };
    assert_eq!(t.len(), 2, "{t:#?}");
    assert!(t.iter().all(|r| r["outcome"] == "pass"), "{t:#?}");
}

#[test]
fn a_warm_test_that_fails_before_it_is_isolated_is_still_journaled() {
    let step = "join the pod's mount namespace";
    // Each call after 500 ms of quiet: the stock is full, nothing else wakes the thread.
    let Some((_, t)) = warm_run(&["pass,pass", "500"], &[("INVITE_FAULT_STEP", step)]) else {
        return;
    };
    assert_eq!(t.len(), 2, "{t:#?}");
    for r in t {
        assert_eq!(r["outcome"], "error", "{r}");
        assert!(r["message"].as_str().unwrap().contains(step), "{r}");
    }
}

#[test]
fn a_warm_test_that_dies_silently_in_its_setup_is_journaled_while_the_host_runs() {
    let extra = [
        // The test ends at this step without a word and without ringing the watcher (as one the
        // OOM killer takes): nothing wakes the thread for it, yet its pod must be seen to end.
        ("INVITE_FAULT_STEP", "die at join the pod's mount namespace"),
        ("ROGUE_AWAIT_RECORDS", "1"),
    ];
    // Each call after 500 ms of quiet: the stock is full, nothing else wakes the thread.
    let Some((o, t)) = warm_run(&["pass,pass", "500"], &extra) else {
        return;
    };
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("journaled while running: 2\n"),
        "{}",
        text(&o)
    );
    assert_eq!(t.len(), 2, "{t:#?}");
    assert!(t.iter().all(|r| r["outcome"] == "error"), "{t:#?}");
}
