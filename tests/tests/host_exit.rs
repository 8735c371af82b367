//! A host that ends without the exit drain (`_exit`: a forked worker, a program that skips its
//! exit handlers) while its pod's test still runs: the pod keeps its real outcome if its test
//! ends within `INVITE_DRAIN_MS` of the host's end, is `error` past it, and never holds a
//! worker's end up. A warm pod, whose watcher dies with the host, is journaled `error` by the
//! builder of blanks.

use invite_tests::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Run fixtures/c/exit_now.c with `args` and `env`; what it printed and its pod's record, waited
/// for (the host is gone before its pod is journaled).
fn run_exit_now(args: &[&str], env: &[(&str, &str)]) -> (String, Value) {
    let d = scratch();
    let bin = d.path().join("exit_now");
    compile_c(&[fixture("c/exit_now.c")], &bin);
    let o = run(&bin, args, d.path(), env);
    assert!(o.status.success(), "{}", text(&o));
    let path = d.path().join("invite.jsonl");
    let t0 = Instant::now();
    loop {
        let j = journal(&path);
        if let Some(r) = tests_of(&j).first() {
            assert_eq!(tests_of(&j).len(), 1, "{j:#?}");
            return (String::from_utf8_lossy(&o.stdout).into(), (*r).clone());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no record of the pod: {j:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_host_exited(r: &Value) {
    assert_eq!(r["outcome"], "error", "{r}");
    assert_eq!(
        r["message"], "the host process exited while the pod ran",
        "{r}"
    );
}

#[test]
fn a_cold_pod_outlives_a_host_that_exits_without_its_drain() {
    if !require_root("pods as root") {
        return;
    }
    // The test sleeps 200 ms after the host's `_exit`; the grace (the exit drain's) is long
    // enough for a loaded machine.
    let env = [("INVITE_WARM", "off"), ("INVITE_DRAIN_MS", "60000")];
    let (_, r) = run_exit_now(&["host", "200"], &env);
    assert_eq!(r["outcome"], "pass", "{r}");
    assert!(r["output"].as_str().unwrap().contains("slept"), "{r}");
}

#[test]
fn a_cold_pod_past_the_grace_of_a_host_gone_is_an_error() {
    if !require_root("pods as root") {
        return;
    }
    let env = [
        ("INVITE_WARM", "off"),
        ("INVITE_DRAIN_MS", "200"),
        ("INVITE_TIMEOUT_MS", "60000"),
    ];
    let (_, r) = run_exit_now(&["host", "30000"], &env);
    assert_host_exited(&r);
}

#[test]
fn a_forked_worker_that_exits_without_its_drain_keeps_its_pod_and_is_reaped_at_once() {
    if !require_root("pods as root") {
        return;
    }
    // The worker's pod waits for the file its parent makes once `waitpid` returned the worker:
    // had the pod held the worker's end up, it would never see it.
    let (out, r) = run_exit_now(&["worker"], &[("INVITE_DRAIN_MS", "60000")]);
    assert_eq!(out, "host ok\n");
    assert_eq!(r["outcome"], "pass", "{r}");
    let output = r["output"].as_str().unwrap();
    assert!(output.contains("saw its worker reaped"), "{r}");
}

#[test]
fn a_warm_pod_killed_with_a_host_that_exits_without_its_drain_is_journaled_as_an_error() {
    if !require_root("warm pods need root") {
        return;
    }
    // The warm test dies with its host (its watcher is a thread of the host): the builder of
    // blanks, which outlives the host, journals it. The host `_exit`s once its pod's test
    // sleeps, so that the watcher has it.
    let env = [("INVITE_WARM", "wait"), ("INVITE_TIMEOUT_MS", "60000")];
    let (_, r) = run_exit_now(&["host", "30000", "wait"], &env);
    assert_host_exited(&r);
    assert_eq!(r["function"], "pod_then_exit_now", "{r}");
}

/// A `ckpt()` test that ends with `exit()` in a host where another thread loads and unloads a
/// library all along (fixtures/c/exit_beside_dlopen.c), under the direct fork, which does not
/// reset the dynamic linker's lock in the child: the pod's `exit()` waits for ever in the
/// libraries' finalizers after its test said its verdict (its exit status). The verdict stands,
/// and its output is there; the record says where it was stuck. (A pod forked while that thread
/// held the C library's exit-handler lock, in `dlclose`'s finalization, waits in `exit()` before
/// any handler runs: named deadlocked, `error`, as nothing said its status.)
#[test]
fn a_ckpt_test_stuck_in_exit_on_the_linkers_lock_keeps_its_exit_status() {
    if !require_root("pods with namespaces") {
        return;
    }
    let d = scratch();
    let bin = d.path().join("exit_beside_dlopen");
    compile_c(&[fixture("c/exit_beside_dlopen.c")], &bin);
    let env = [
        ("INVITE_FORK", "direct"),
        ("INVITE_MAX_OVERHEAD", "off"),
        ("INVITE_MAX_POD_CPU", "off"),
        ("INVITE_DRAIN_MS", "60000"),
    ];
    let o = run(&bin, &["8"], d.path(), &env);
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&d.path().join("invite.jsonl"));
    let recs = tests_of(&j);
    assert!(!recs.is_empty(), "{j:#?}");
    let mut stuck = 0;
    for r in &recs {
        let message = r["message"].as_str().unwrap_or("");
        if r["outcome"] == "error" && message.starts_with("deadlocked") {
            continue; // in exit() before any handler
        }
        let pod: u32 = r["pod"].as_str().and_then(|p| p.parse().ok()).unwrap();
        let (outcome, code) = if pod % 2 == 1 {
            ("pass", 0)
        } else {
            ("fail", 3)
        };
        assert_eq!(r["outcome"], outcome, "{r}");
        assert_eq!(r["exit_code"], code, "{r}");
        assert!(
            r["output"]
                .as_str()
                .unwrap()
                .contains(&format!("pod {pod}")),
            "{r}"
        );
        let notes = r["notes"].as_array().cloned().unwrap_or_default();
        stuck += notes
            .iter()
            .any(|n| n.as_str().unwrap_or("").contains("stuck in its exit"))
            as usize;
    }
    // The thread holds the linker's lock most of the time: some pods inherit it held, and keep
    // their verdict (before, every one of them was `error`).
    assert!(stuck > 0, "no pod was stuck in exit: {recs:#?}");
}
