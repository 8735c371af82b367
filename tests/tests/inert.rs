//! A runtime inert when off, and allocation-free up to "not this time" when on (issue 15.5):
//! a C host with its own allocator counts what instrumented calls allocate, calls an
//! instrumented function from inside `malloc` under a non-recursive lock, and makes the first
//! instrumented call under seccomp's strict mode.

use invite_tests::*;
use std::path::{Path, PathBuf};

fn host() -> (tempfile::TempDir, PathBuf) {
    let d = scratch();
    let bin = d.path().join("alloc_host");
    compile_c(&[fixture("c/alloc_host.c")], &bin);
    (d, bin)
}

/// Run under `timeout`: a hang is a failure with a message, not a stuck test run.
fn run_guarded(
    bin: &Path,
    args: &[&str],
    dir: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut a = vec!["-s", "KILL", "60"];
    let b = bin.to_str().expect("utf-8 path");
    a.push(b);
    a.extend_from_slice(args);
    run(Path::new("timeout"), &a, dir, env)
}

const OFF: &[(&str, &str)] = &[("INVITE", "off")];
/// Testing on, at a rate that never samples in these runs (the fixture's site is compiled at
/// 1e-9; the seed makes the draw fixed).
const ON: &[(&str, &str)] = &[("INVITE_SEED", "7"), ("INVITE_MAX_OVERHEAD", "off")];

#[test]
fn instrumented_calls_never_allocate_when_off() {
    let (d, bin) = host();
    for n in ["1", "1000"] {
        let o = run_guarded(&bin, &["count", n], d.path(), OFF);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("allocations: 0\n"), "{}", text(&o));
        assert!(out.contains("host ok"), "{}", text(&o));
    }
    assert!(
        !d.path().join("invite.jsonl").exists(),
        "testing off writes no journal"
    );
}

#[test]
fn the_not_sampled_path_never_allocates_first_call_included() {
    let (d, bin) = host();
    for n in ["1", "1000"] {
        let o = run_guarded(&bin, &["count", n], d.path(), ON);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("allocations: 0\n"), "{}", text(&o));
        assert!(out.contains("host ok"), "{}", text(&o));
        // The summary still counts every call of the site, though none was sampled.
        let j = journal(&d.path().join("invite.jsonl"));
        let s = j
            .iter()
            .rev()
            .find(|v| v["kind"] == "summary")
            .expect("a summary");
        let site = &s["sites"][0];
        assert_eq!(site["function"], "probe", "{s}");
        assert_eq!(site["calls"].as_u64(), Some(n.parse().unwrap()), "{s}");
        assert_eq!(site["sampled"], 0, "{s}");
        std::fs::remove_file(d.path().join("invite.jsonl")).unwrap();
    }
}

#[test]
fn an_instrumented_function_may_run_inside_malloc_under_its_init_lock() {
    let (d, bin) = host();
    for env in [OFF, ON] {
        let o = run_guarded(&bin, &["initlock", "100"], d.path(), env);
        assert!(
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("host ok"),
            "hung or failed with {env:?} (killed by the harness's timeout if it hung):\n{}",
            text(&o)
        );
    }
}

#[test]
fn the_first_call_makes_no_system_call_when_off() {
    let (d, bin) = host();
    let o = run_guarded(&bin, &["nosyscall"], d.path(), OFF);
    assert!(
        o.status.success()
            && String::from_utf8_lossy(&o.stdout).contains("first call made no system call"),
        "a system call under seccomp strict mode kills the process:\n{}",
        text(&o)
    );
}

/// Valgrind does not emulate what a pod needs (`pidfd_open`, namespaces, seccomp): every pod
/// would end in a setup error. Under it, testing is off and one line on stderr says why; the same
/// program without valgrind runs its pod.
#[test]
fn testing_is_off_under_valgrind_and_says_so() {
    let d = scratch();
    let bin = invite_tests::surround::surround(d.path());
    let journal_at = d.path().join("j.jsonl");
    let env = [
        ("INVITE_PROBABILITY", "1"),
        ("INVITE_MAX_OVERHEAD", "off"),
        ("INVITE_JOURNAL", journal_at.to_str().expect("utf-8 path")),
    ];
    let o = run_guarded(&bin, &["plain"], d.path(), &env);
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&journal_at);
    assert_eq!(
        tests_of(&j).len(),
        1,
        "without valgrind the pod runs: {j:#?}"
    );
    assert_eq!(tests_of(&j)[0]["outcome"], "pass", "{j:#?}");
    std::fs::remove_file(&journal_at).unwrap();

    let b = bin.to_str().expect("utf-8 path");
    let o = run_guarded(Path::new("valgrind"), &["-q", b, "plain"], d.path(), &env);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("invite: running under valgrind") && err.contains("testing is off"),
        "{}",
        text(&o)
    );
    assert!(
        !journal_at.exists(),
        "under valgrind no journal is written: {:#?}",
        journal(&journal_at)
    );
}
