//! A host that ends without the exit drain (`_exit`: a forked worker, a program that skips its
//! exit handlers) while its pod's test still runs: the pod keeps its real outcome if its test
//! ends within `INVITE_DRAIN_MS` of the host's end, is `error` past it, and never holds a
//! worker's end up.

use invite_tests::*;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

fn exit_now(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("exit_now");
    compile_c(&[fixture("c/exit_now.c")], &bin);
    bin
}

/// The journal's one test record, waited for: the host is gone before its pod is journaled.
fn the_record(dir: &Path) -> Value {
    let path = dir.join("invite.jsonl");
    let t0 = Instant::now();
    loop {
        let j = journal(&path);
        if let Some(r) = tests_of(&j).first() {
            assert_eq!(tests_of(&j).len(), 1, "{j:#?}");
            return (*r).clone();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no record of the pod: {j:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_cold_pod_outlives_a_host_that_exits_without_its_drain() {
    if !require_root("pods as root") {
        return;
    }
    // The test sleeps 200 ms after the host's `_exit`; the grace (the exit drain's) is long
    // enough for a loaded machine.
    let d = scratch();
    let bin = exit_now(d.path());
    let env = [("INVITE_WARM", "off"), ("INVITE_DRAIN_MS", "60000")];
    let o = run(&bin, &["host", "200"], d.path(), &env);
    assert!(o.status.success(), "{}", text(&o));
    let r = the_record(d.path());
    assert_eq!(r["outcome"], "pass", "{r}");
    assert!(r["output"].as_str().unwrap().contains("slept"), "{r}");
}

#[test]
fn a_cold_pod_past_the_grace_of_a_host_gone_is_an_error() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    let bin = exit_now(d.path());
    let env = [
        ("INVITE_WARM", "off"),
        ("INVITE_DRAIN_MS", "200"),
        ("INVITE_TIMEOUT_MS", "60000"),
    ];
    let o = run(&bin, &["host", "30000"], d.path(), &env);
    assert!(o.status.success(), "{}", text(&o));
    let r = the_record(d.path());
    assert_eq!(r["outcome"], "error", "{r}");
    assert_eq!(
        r["message"], "the host process exited while the pod ran",
        "{r}"
    );
}

#[test]
fn a_forked_worker_that_exits_without_its_drain_keeps_its_pod_and_is_reaped_at_once() {
    if !require_root("pods as root") {
        return;
    }
    // The worker's pod waits for the file its parent makes once `waitpid` returned the worker:
    // had the pod held the worker's end up, it would never see it.
    let d = scratch();
    let bin = exit_now(d.path());
    let env = [("INVITE_DRAIN_MS", "60000")];
    let o = run(&bin, &["worker"], d.path(), &env);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "host ok\n",
        "{}",
        text(&o)
    );
    let r = the_record(d.path());
    assert_eq!(r["outcome"], "pass", "{r}");
    assert!(
        r["output"]
            .as_str()
            .unwrap()
            .contains("saw its worker reaped"),
        "{r}"
    );
}
