//! Truthful outcomes (issues 15 and 21): a pod that deadlocks on a lock held at the checkpoint is
//! named at once, pods that only wait are not; `duration_us` is the test's own time; a pod's
//! output is only what it wrote; the runtime takes no lock of the host's other threads in a pod.
//! Real C programs built with gcc, and a Rust fixture of the workspace.

use invite_tests::*;
use serde_json::Value;
use std::path::Path;

fn build(name: &str, src: &str, dir: &Path) -> std::path::PathBuf {
    let out = dir.join(name);
    compile_c(&[fixture(src)], &out);
    out
}

/// A deadline far above what detection takes, so a deadlock left to it shows as `timeout`; every
/// sampled test runs (no budget).
const ENV: [(&str, &str); 3] = [
    ("INVITE_TIMEOUT_MS", "4000"),
    ("INVITE_DRAIN_MS", "20000"),
    ("INVITE_MAX_OVERHEAD", "off"),
];

/// Both ways a pod starts as root: cold, then warm (as another user, only cold).
fn modes() -> Vec<&'static str> {
    if is_root() {
        vec!["off", "wait"]
    } else {
        vec!["off"]
    }
}

/// `modes()`, and as root also a cold pod of an unprivileged user (`locks` only).
fn lock_modes() -> Vec<&'static str> {
    let mut m = modes();
    if is_root() {
        m.push("nobody");
    }
    m
}

/// Run `locks MODE` and return pod 1's record (`warm` "nobody": cold, as uid 65534).
fn locks(mode: &str, warm: &str, isolation: &str) -> Value {
    let d = scratch();
    let bin = build("locks", "c/outcomes/locks.c", d.path());
    let work = d.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut env = ENV.to_vec();
    env.push(("INVITE_ISOLATION", isolation));
    let o = if warm == "nobody" {
        std::os::unix::fs::chown(&work, Some(65534), Some(65534)).unwrap();
        run_as_nobody(&bin, &[mode], &work, &env)
    } else {
        env.push(("INVITE_WARM", warm));
        run(&bin, &[mode], &work, &env)
    };
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("host ok"));
    let j = journal(&work.join("invite.jsonl"));
    record_for(&j, "1").clone()
}

fn message(r: &Value) -> &str {
    r["message"].as_str().unwrap_or("")
}

#[test]
fn a_lock_another_thread_held_at_the_checkpoint_is_a_deadlock_named_at_once() {
    for isolation in ["pod", "fork"] {
        for warm in lock_modes() {
            let r = locks("other", warm, isolation);
            assert_eq!(r["outcome"], "error", "{isolation}/{warm}: {r}");
            let m = message(&r);
            assert!(m.contains("deadlock"), "{m}");
            assert!(m.contains("held when the checkpoint was taken"), "{m}");
            assert!(m.contains("g_lock"), "the lock is named: {m}");
            assert!(m.contains("0x"), "the wait's address: {m}");
            assert!(m.contains("another thread"), "{m}");
            assert!(!m.contains("re-entrant"), "{m}");
            // Ended by the detector, long before the deadline.
            assert!(r["duration_us"].as_u64().unwrap() < 3_000_000, "{r}");
        }
    }
}

#[test]
fn a_recursive_lock_the_caller_held_is_a_re_entrant_deadlock() {
    for warm in lock_modes() {
        let r = locks("recursive", warm, "pod");
        assert_eq!(r["outcome"], "error", "{warm}: {r}");
        let m = message(&r);
        assert!(m.contains("deadlock"), "{m}");
        assert!(m.contains("g_rec"), "{m}");
        assert!(m.contains("re-entrant"), "{m}");
        assert!(m.contains("outermost"), "the site option is suggested: {m}");
    }
}

#[test]
fn pods_that_sleep_wait_for_a_child_or_a_timed_lock_are_not_deadlocked() {
    for mode in ["sleep", "child", "timed", "selfish"] {
        for warm in modes() {
            let r = locks(mode, warm, "pod");
            assert_eq!(r["outcome"], "pass", "{mode}/{warm}: {r}");
            assert!(r["duration_us"].as_u64().unwrap() >= 300_000, "{mode}: {r}");
        }
    }
}

#[test]
fn duration_is_the_tests_own_time_and_pod_us_the_rest() {
    for warm in modes() {
        let d = scratch();
        let bin = build("durations", "c/outcomes/durations.c", d.path());
        let mut env = ENV.to_vec();
        env.push(("INVITE_WARM", warm));
        let o = run(&bin, &[], d.path(), &env);
        assert!(o.status.success(), "{}", text(&o));
        let j = journal(&d.path().join("invite.jsonl"));
        for (pod, low, high) in [("1", 0, 50_000), ("2", 50_000, 2_000_000)] {
            let r = record_for(&j, pod);
            assert_eq!(r["outcome"], "pass", "{r}");
            let us = r["duration_us"].as_u64().unwrap();
            assert!((low..high).contains(&us), "{warm}: pod {pod}: {r}");
            assert!(r["pod_us"].as_u64().is_some(), "pod_us is written: {r}");
        }
    }
}

#[test]
fn a_pods_output_is_only_what_it_wrote() {
    for warm in modes() {
        let d = scratch();
        let bin = build("stdio", "c/outcomes/stdio.c", d.path());
        let mut env = ENV.to_vec();
        env.push(("INVITE_WARM", warm));
        let o = run(&bin, &[], d.path(), &env);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "host pending\nhost done\n",
            "{warm}"
        );
        let j = journal(&d.path().join("invite.jsonl"));
        let r = record_for(&j, "1");
        assert_eq!(r["outcome"], "pass", "{r}");
        assert_eq!(r["output"], "pod line\n", "{warm}: {r}");
    }
}

fn rust_record<'a>(j: &'a [Value], test: &str) -> &'a Value {
    j.iter()
        .find(|v| v["kind"] == "test" && v["test"] == test)
        .unwrap_or_else(|| panic!("no record of {test} in {j:#?}"))
}

#[test]
fn rust_pods_take_no_lock_the_hosts_other_threads_hold() {
    let bin = tool("held_stdio");
    for warm in modes() {
        let d = scratch();
        let mut env = ENV.to_vec();
        env.push(("INVITE_WARM", warm));
        let o = run(&bin, &["locked"], d.path(), &env);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(
            std::fs::read_to_string(d.path().join("host_result")).unwrap(),
            "2\n"
        );
        let j = journal(&d.path().join("invite.jsonl"));
        let passes = rust_record(&j, "passes");
        assert_eq!(passes["outcome"], "pass", "{warm}: {passes}");
        let panics = rust_record(&j, "panics");
        assert_eq!(panics["outcome"], "fail", "{warm}: {panics}");
        assert!(message(panics).contains("boom in the pod"), "{panics}");
        // The test itself takes the stdout lock a dead thread holds: a deadlock, named.
        let prints = rust_record(&j, "prints");
        assert_eq!(prints["outcome"], "error", "{warm}: {prints}");
        assert!(message(prints).contains("deadlock"), "{prints}");
        assert!(
            message(prints).contains("std::io::stdio::STDOUT"),
            "{prints}"
        );
        for r in [passes, panics] {
            let notes = r["notes"].to_string();
            assert!(
                notes.contains("stdout"),
                "the record says stdout was left: {r}"
            );
        }
    }
}

#[test]
fn a_rust_pods_output_is_only_what_it_wrote() {
    let bin = tool("held_stdio");
    for warm in modes() {
        let d = scratch();
        let mut env = ENV.to_vec();
        env.push(("INVITE_WARM", warm));
        let o = run(&bin, &["partial"], d.path(), &env);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "host partial and host 4\n"
        );
        let j = journal(&d.path().join("invite.jsonl"));
        let r = rust_record(&j, "writes_a_line");
        assert_eq!(r["outcome"], "pass", "{r}");
        assert_eq!(r["output"], "test line 2\n", "{warm}: {r}");
    }
}
