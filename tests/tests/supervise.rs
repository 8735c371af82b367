//! Supervision and the journal (issue 3): rogue tests get the right outcome and leave the host
//! unharmed; a host with its own child handling loses nothing; concurrent pods from several
//! processes never tear a line. How a host's end meets its pods: tests/tests/host_end.rs.

use invite_tests::*;
use serde_json::Value;
use std::process::Command;

/// Run one rogue mode in a cold pod and in a warm one; both must end the same way (outcome,
/// signal, exit code, message, changed files). Returns the warm pod's record.
fn rogue_record(mode: &str, env: &[(&str, &str)]) -> Value {
    let cold = rogue_record_in(mode, env, "off");
    let warm = rogue_record_in(mode, env, "wait");
    for k in ["outcome", "signal", "exit_code", "message"] {
        assert_eq!(
            cold[k], warm[k],
            "{mode}: {k} differs:\ncold {cold}\nwarm {warm}"
        );
    }
    assert_eq!(
        changed_names(&cold),
        changed_names(&warm),
        "{mode}:\ncold {cold}\nwarm {warm}"
    );
    warm
}

/// The changed paths' file names (each run has its own scratch directory).
fn changed_names(r: &Value) -> Vec<String> {
    let mut v: Vec<String> = r["changed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str()?.rsplit('/').next().map(String::from))
        .collect();
    v.sort();
    v
}

fn rogue_record_in(mode: &str, env: &[(&str, &str)], warm: &str) -> Value {
    let d = scratch();
    let bin = rogue_host(d.path());
    let mut all = vec![
        ("INVITE_DRAIN_MS", "20000"),
        ("INVITE_MAX_OVERHEAD", "off"),
        ("INVITE_WARM", warm),
    ];
    all.extend_from_slice(env);
    let o = run(&bin, &[mode], d.path(), &all);
    assert!(o.status.success(), "{mode}: {}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "host ok\n",
        "{mode}: the host was harmed"
    );
    assert!(!d.path().join("fill.bin").exists());
    let j = journal(&d.path().join("invite.jsonl"));
    let t = tests_of(&j);
    assert_eq!(t.len(), 1, "{mode}: {j:#?}");
    let r = t[0].clone();
    assert_eq!(r["function"], "work");
    assert_eq!(r["test"], "rogue_test");
    assert_eq!(r["phase"], "pre");
    assert_eq!(r["site"], "rogue.c:28");
    r
}

#[test]
fn outcomes_of_well_behaved_and_failing_tests() {
    if !require_root("pods as root") {
        return;
    }
    assert_eq!(rogue_record("pass", &[])["outcome"], "pass");
    let r = rogue_record("fail", &[]);
    assert_eq!(r["outcome"], "fail");
    let r = rogue_record("message", &[]);
    assert_eq!(
        (r["outcome"].as_str(), r["message"].as_str()),
        (Some("fail"), Some("balance is -5, expected 0"))
    );
    let r = rogue_record("abort", &[]);
    assert_eq!(
        (r["outcome"].as_str(), r["signal"].as_str()),
        (Some("fail"), Some("SIGABRT"))
    );
    let r = rogue_record("segv", &[]);
    assert_eq!(
        (r["outcome"].as_str(), r["signal"].as_str()),
        (Some("crash"), Some("SIGSEGV"))
    );
    // The pod keeps the host's signal handlers; a default-action signal still ends the test even
    // though the test is PID 1 of its namespace.
    assert_eq!(rogue_record("handler", &[])["outcome"], "pass");
    let r = rogue_record("term", &[]);
    assert_eq!(
        (r["outcome"].as_str(), r["signal"].as_str()),
        (Some("crash"), Some("SIGTERM")),
        "{r}"
    );
    let r = rogue_record("exit0", &[]);
    assert_eq!(r["outcome"], "error");
    assert!(r["message"].as_str().unwrap().contains("exit(0)"), "{r}");
}

#[test]
fn finished_supervisors_are_reaped_while_the_host_runs() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    let bin = rogue_host(d.path());
    let env = [
        ("INVITE_MAX_OVERHEAD", "off"),
        ("INVITE_MAX_CONCURRENT", "16"),
        ("ROGUE_COUNT_ZOMBIES", "1500"),
    ];
    let o = run(&bin, &["pass", "10"], d.path(), &env);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("zombies: 0\n"),
        "{}",
        text(&o)
    );
    assert_eq!(tests_of(&journal(&d.path().join("invite.jsonl"))).len(), 10);
}

#[test]
fn an_endless_loop_times_out() {
    if !require_root("pods as root") {
        return;
    }
    let r = rogue_record("loop", &[("INVITE_TIMEOUT_MS", "300")]);
    assert_eq!(r["outcome"], "timeout", "{r}");
    assert!(r["duration_us"].as_u64().unwrap() >= 300_000);
}

#[test]
fn a_fork_bomb_is_contained() {
    if !require_root("pods as root") {
        return;
    }
    let r = rogue_record("forkbomb", &[("INVITE_TIMEOUT_MS", "1000")]);
    assert_eq!(r["outcome"], "timeout", "{r}");
}

#[test]
fn unbounded_allocation_hits_the_address_space_limit() {
    if !require_root("pods as root") {
        return;
    }
    let r = rogue_record("alloc", &[("INVITE_TIMEOUT_MS", "20000")]);
    // malloc fails at the limit and the test aborts: fail, not a host OOM.
    assert_eq!(
        (r["outcome"].as_str(), r["signal"].as_str()),
        (Some("fail"), Some("SIGABRT")),
        "{r}"
    );
}

#[test]
fn filling_the_disk_fills_only_the_scratch() {
    if !require_root("pods as root") {
        return;
    }
    let r = rogue_record("filldisk", &[]);
    assert_eq!(r["outcome"], "pass", "{r}");
    assert!(r["changed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c.as_str().unwrap().ends_with("/fill.bin")));
}

#[test]
fn a_file_made_in_dev_shm_stays_in_the_pod() {
    if !require_root("pods as root") {
        return;
    }
    // With or without files in the host's /dev/shm (an overlay, or the pod's own directory).
    let r = rogue_record("shm", &[]);
    assert_eq!(r["outcome"], "pass", "{r}");
    assert!(
        r["changed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "/dev/shm/invite-rogue-shm"),
        "{r}"
    );
}

#[test]
fn printing_a_gigabyte_keeps_only_the_tail() {
    if !require_root("pods as root") {
        return;
    }
    let r = rogue_record("print", &[("INVITE_TIMEOUT_MS", "60000")]);
    assert_eq!(r["outcome"], "pass", "{r}");
    let out = r["output"].as_str().unwrap();
    assert!(
        out.ends_with("THE END\n"),
        "{}",
        &out[out.len().saturating_sub(100)..]
    );
    assert!(out.len() < 20 * 1024, "{}", out.len());
    assert!(out.starts_with("[... "), "the cut is marked");
}

#[test]
fn a_host_with_its_own_sigchld_handler_and_workers_loses_nothing() {
    if !require_root("pods as root") {
        return;
    }
    // Cold pods (the host's children are supervisors) and warm ones (the tests themselves).
    for warm in ["off", "wait"] {
        sigchld_host(warm);
    }
}

fn sigchld_host(warm: &str) {
    let d = scratch();
    let bin = d.path().join("sigchld_host");
    compile_c(&[fixture("c/sigchld_host.c")], &bin);
    let o = run(
        &bin,
        &[],
        d.path(),
        &[
            ("INVITE_MAX_OVERHEAD", "off"),
            ("INVITE_MAX_CONCURRENT", "32"),
            ("INVITE_WARM", warm),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("workers ok"),
        "{}",
        text(&o)
    );
    let j = journal(&d.path().join("invite.jsonl"));
    let summary = j.iter().find(|v| v["kind"] == "summary").expect("summary");
    let started = summary["sites"][0]["started"].as_u64().unwrap();
    let tests = tests_of(&j);
    assert!(started > 0);
    assert_eq!(
        tests.len() as u64,
        started,
        "every started pod is journaled"
    );
    assert!(tests.iter().all(|t| t["outcome"] == "pass"), "{tests:#?}");
}

#[test]
fn concurrent_pods_from_several_processes_never_tear_the_journal() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    let bin = rogue_host(d.path());
    let journal_path = d.path().join("shared.jsonl");
    let children: Vec<_> = (0..4)
        .map(|i| {
            let dir = d.path().join(format!("p{i}"));
            std::fs::create_dir(&dir).unwrap();
            Command::new(&bin)
                .args(["print-small", "40"])
                .current_dir(&dir)
                .env("INVITE_JOURNAL", &journal_path)
                .env("INVITE_MAX_OVERHEAD", "off")
                .env("INVITE_MAX_CONCURRENT", "8")
                .env("INVITE_DRAIN_MS", "20000")
                .env("INVITE_WARM", if i % 2 == 0 { "off" } else { "wait" })
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let j = journal(&journal_path); // panics on any torn or interleaved line
    let summaries: Vec<&Value> = j.iter().filter(|v| v["kind"] == "summary").collect();
    assert_eq!(summaries.len(), 4);
    let started: u64 = summaries
        .iter()
        .map(|s| s["sites"][0]["started"].as_u64().unwrap())
        .sum();
    assert_eq!(tests_of(&j).len() as u64, started);
    assert!(started >= 4);
}
