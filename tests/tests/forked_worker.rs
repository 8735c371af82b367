//! A worker the host forks itself (a pre-fork server's) is a process of its own to the runtime
//! (issue 21): it writes its own summaries, periodic and at exit, with its pid and the calls it
//! made (counted from zero at the fork), and its pods' records carry its pid; the host's
//! summary counts only the host's calls.

use invite_tests::*;
use serde_json::Value;

#[test]
fn a_forked_worker_writes_its_own_summaries_with_its_own_counts() {
    let d = scratch();
    let bin = d.path().join("fork_worker");
    compile_c(&[fixture("c/fork_worker.c")], &bin);
    let journal_path = d.path().join("invite.jsonl");
    let o = run(
        &bin,
        &["3", "5", "2", journal_path.to_str().unwrap()],
        d.path(),
        &[
            ("INVITE_MAX_OVERHEAD", "off"),
            ("INVITE_MAX_CONCURRENT", "64"),
            ("INVITE_SUMMARY_S", "1"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let worker: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("worker ok "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no worker pid: {}", text(&o)));
    let j = journal(&journal_path);
    let summaries = |pid: i64| -> Vec<&Value> {
        j.iter()
            .filter(|v| v["kind"] == "summary" && v["pid"] == pid)
            .collect()
    };
    let of_worker = summaries(worker);
    assert!(
        of_worker.len() >= 2,
        "the worker writes a periodic summary and one at exit: {of_worker:?}"
    );
    let last = of_worker.last().unwrap();
    assert_eq!(last["sites"][0]["calls"], 5, "{last}");
    assert_eq!(last["sites"][0]["sampled"], 5, "{last}");
    assert_eq!(last["calls_exact"], true, "{last}");
    let host = j
        .iter()
        .rfind(|v| v["kind"] == "summary" && v["pid"] != worker)
        .expect("the host's summary");
    assert_eq!(
        host["sites"][0]["calls"], 5,
        "3 before the fork, 2 after: {host}"
    );
    assert_eq!(host["sites"][0]["sampled"], 5, "{host}");
    let tests = tests_of(&j);
    let by = |pid: i64| tests.iter().filter(|t| t["pid"] == pid).count();
    assert_eq!(by(worker), 5, "the worker's pods: {tests:?}");
    assert_eq!(
        by(host["pid"].as_i64().unwrap()),
        5,
        "the host's pods: {tests:?}"
    );
    assert!(tests.iter().all(|t| t["outcome"] == "pass"), "{tests:?}");
}

/// The worker's pods count on a ledger of its own: the host's running pod does not take the
/// worker's slot (`INVITE_MAX_CONCURRENT=1`), and the worker's exit drains only its own pods,
/// not the host's (both shared the host's page before; found by the pre-fork server shape).
#[test]
fn a_forked_worker_has_its_own_slots_and_drain() {
    if !require_root("pods here are cold pods of root") {
        return;
    }
    let d = scratch();
    let bin = d.path().join("fork_ledger");
    compile_c(&[fixture("c/fork_ledger.c")], &bin);
    let journal_path = d.path().join("invite.jsonl");
    let o = run(
        &bin,
        &[journal_path.to_str().unwrap()],
        d.path(),
        &[
            ("INVITE_MAX_OVERHEAD", "off"),
            ("INVITE_MAX_CONCURRENT", "1"),
            ("INVITE_DRAIN_MS", "20000"),
            ("INVITE_TIMEOUT_MS", "20000"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("worker ok").count(), 2, "{}", text(&o));
    assert!(out.contains("host ok"), "{}", text(&o));
    let j = journal(&journal_path);
    let passed = j
        .iter()
        .filter(|v| v["kind"] == "test" && v["outcome"] == "pass")
        .count();
    assert_eq!(passed, 2, "the host's pod and the worker's: {j:?}");
}

#[test]
fn a_forked_workers_first_pod_and_its_runtimes_thread_never_call_the_programs_allocator() {
    // The worker's first pod starts the runtime's thread: `pthread_create` allocates a new
    // thread's TLS with the program's `calloc`, but in a fork it reuses the stack (and TLS) of
    // the parent's runtime thread, which glibc keeps for the child's next thread.
    let d = scratch();
    let bin = d.path().join("worker_alloc");
    compile_c(&[fixture("c/worker_alloc.c")], &bin);
    let journal_path = d.path().join("invite.jsonl");
    let o = run(
        &bin,
        &[journal_path.to_str().unwrap()],
        d.path(),
        &[("INVITE_MAX_OVERHEAD", "off")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "worker: 0 in its first ckpt, 0 by other threads\n",
        "{}",
        text(&o)
    );
}
