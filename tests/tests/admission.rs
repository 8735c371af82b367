//! Admission that serves real programs (issue 14): a short program runs every test, a hot site
//! cannot starve a cold one, an idle server tests at its sampled rate with default settings, and
//! rogue tests in a host that sleeps between calls all run and get their outcome.

use invite_tests::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn build(name: &str) -> (tempfile::TempDir, PathBuf) {
    let d = scratch();
    let bin = d.path().join(name);
    compile_c(&[fixture(&format!("c/{name}.c"))], &bin);
    (d, bin)
}

/// Run `bin` in a fresh directory; the host must end well. Returns the journal.
fn run_host(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<Value> {
    let d = scratch();
    let o = run(bin, args, d.path(), env);
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("host ok"),
        "the host was harmed: {}",
        text(&o)
    );
    journal(&d.path().join("invite.jsonl"))
}

/// Build the admission fixture and run it in a fresh directory (kept, with its journal).
fn run_admission(args: &[&str], env: &[(&str, &str)]) -> (tempfile::TempDir, std::process::Output) {
    let (_b, bin) = build("admission");
    let d = scratch();
    let o = run(&bin, args, d.path(), env);
    (d, o)
}

/// The summary's row of each test, by test name.
fn summary_rows(j: &[Value]) -> BTreeMap<String, Value> {
    let s = j
        .iter()
        .rfind(|v| v["kind"] == "summary")
        .expect("a summary record");
    s["sites"]
        .as_array()
        .expect("sites")
        .iter()
        .map(|r| (r["test"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

/// Records of each test, by test name.
fn records(j: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut by_test: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for r in tests_of(j) {
        by_test
            .entry(r["test"].as_str().unwrap().to_string())
            .or_default()
            .push(r);
    }
    by_test
}

#[test]
fn a_short_program_runs_every_test_at_least_once() {
    if !require_root("pods as root") {
        return;
    }
    let (_d, bin) = build("admission");
    let j = run_host(
        &bin,
        &["short"],
        &[("INVITE_PROBABILITY", "1"), ("INVITE_MAX_OVERHEAD", "off")],
    );
    let ran = records(&j);
    let missing: Vec<String> = (0..24)
        .map(|i| format!("t{i}"))
        .filter(|t| !ran.contains_key(t))
        .collect();
    assert!(
        missing.is_empty(),
        "never ran: {missing:?}; summary: {:?}",
        summary_rows(&j)
    );
    for (test, rs) in &ran {
        assert!(rs.iter().all(|r| r["outcome"] == "pass"), "{test}: {rs:?}");
    }
}

#[test]
fn a_hot_site_cannot_starve_a_site_called_once() {
    if !require_root("pods as root") {
        return;
    }
    let (_d, bin) = build("admission");
    let j = run_host(&bin, &["hotcold", "2000000"], &[]);
    let rows = summary_rows(&j);
    assert_eq!(rows["hot_test"]["calls"], 2_000_000, "{rows:?}");
    assert_eq!(rows["cold_test"]["sampled"], 1, "{rows:?}");
    let ran = records(&j);
    let cold = ran
        .get("cold_test")
        .unwrap_or_else(|| panic!("the cold site's test never ran: {:?}", rows["cold_test"]));
    assert_eq!(cold.len(), 1);
    assert_eq!(cold[0]["outcome"], "pass", "{}", cold[0]);
}

#[test]
fn an_idle_server_with_default_settings_tests_most_sampled_calls() {
    if !require_root("pods as root") {
        return;
    }
    let (_d, bin) = build("admission");
    // 40 requests, each after 50 ms of waiting: the host is idle ~all the time.
    let j = run_host(&bin, &["idle", "40", "50"], &[]);
    let row = &summary_rows(&j)["handle_test"];
    let sampled = row["sampled"].as_u64().unwrap();
    let started = row["started"].as_u64().unwrap();
    assert_eq!(sampled, 40, "{row}");
    assert!(
        started * 100 >= sampled * 80,
        "only {started} of {sampled} sampled calls started a pod: {row}; {}",
        j.iter().rfind(|v| v["kind"] == "summary").unwrap()["budget"]
    );
    assert_eq!(
        tests_of(&j).len() as u64,
        started,
        "every started pod is journaled: {row}"
    );
}

#[test]
fn rogue_tests_in_a_sleeping_host_all_run_with_the_default_budget() {
    if !require_root("pods as root") {
        return;
    }
    let (_d, bin) = build("rogue");
    let modes = [
        "loop", "forkbomb", "alloc", "print", "filldisk", "exit0", "abort", "segv",
    ];
    // The default budget; a short deadline and a drain long enough for every pod to end.
    let j = run_host(
        &bin,
        &[&modes.join(","), "100"],
        &[("INVITE_TIMEOUT_MS", "2000"), ("INVITE_DRAIN_MS", "60000")],
    );
    let ran = records(&j);
    let rows = summary_rows(&j);
    for m in modes {
        let rs = ran
            .get(m)
            .unwrap_or_else(|| panic!("{m} never ran: {:?}", rows.get(m)));
        assert_eq!(rs.len(), 1, "{m}: {rs:?}");
        let outcome = rs[0]["outcome"].as_str().unwrap();
        let expected: &[&str] = match m {
            "loop" | "forkbomb" => &["timeout"],
            "abort" => &["fail"], // abort() is a failed assertion's way out
            "segv" => &["crash"],
            "exit0" => &["error"],
            "filldisk" => &["pass"],
            // Killed by its memory bound, its own abort() when malloc fails at the pod's
            // address-space bound, or still allocating at the deadline.
            "alloc" => &["crash", "fail", "timeout"],
            // A gibibyte of output: all of it, or the deadline first.
            _ => &["pass", "timeout"],
        };
        assert!(expected.contains(&outcome), "{m}: {}", rs[0]);
    }
}

#[test]
fn the_report_says_which_tests_were_starved_and_the_setting_to_change() {
    if !require_root("pods as root") {
        return;
    }
    // One slot, no queue: the hot site's first test holds the slot (it sleeps 200 ms) while the
    // cold site is called, so the cold test is turned away.
    let env = [
        ("INVITE_MAX_CONCURRENT", "1"),
        ("INVITE_MAX_QUEUE", "0"),
        ("INVITE_MAX_OVERHEAD", "off"),
    ];
    let (d, o) = run_admission(&["hotcold", "1000"], &env);
    assert!(o.status.success(), "{}", text(&o));
    let o = std::process::Command::new(tool("invite"))
        .arg("report")
        .arg(d.path().join("invite.jsonl"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let cold = out
        .lines()
        .find(|l| l.starts_with("cold"))
        .unwrap_or_else(|| panic!("no row for the cold site:\n{out}"));
    assert!(
        cold.contains("never ran: concurrency 1 (INVITE_MAX_CONCURRENT=1)"),
        "{out}"
    );
    let hot = out.lines().find(|l| l.starts_with("hot")).unwrap();
    assert!(
        hot.contains("concurrency 999 (INVITE_MAX_CONCURRENT=1)"),
        "{out}"
    );
}

/// Rogue's `sleep` test holding the one slot for 200 ms while the `handler` call waits for it
/// (with `env` besides): the journal, once both passed and the second was queued.
fn sleep_then_a_waiting_handler(env: &[(&str, &str)]) -> Vec<Value> {
    let (_d, bin) = build("rogue");
    let mut all = vec![
        ("INVITE_MAX_CONCURRENT", "1"),
        ("INVITE_MAX_OVERHEAD", "off"),
    ];
    all.extend_from_slice(env);
    let j = run_host(&bin, &["sleep,handler", "0"], &all);
    let rows = summary_rows(&j);
    assert_eq!(rows["handler"]["queued"], 1, "{rows:?}");
    let ran = records(&j);
    assert_eq!(ran["sleep"][0]["outcome"], "pass", "{ran:?}");
    assert_eq!(
        ran.get("handler").map(|r| r[0]["outcome"].clone()),
        Some("pass".into()),
        "{ran:?}"
    );
    j
}

#[test]
fn a_pod_that_waited_for_its_slot_runs_as_the_host_was_at_the_call() {
    if !require_root("pods as root") {
        return;
    }
    // The waiting call's test still finds the host's SIGUSR1 handler (the waiting copy had
    // every signal blocked, its handlers left as they were).
    let j = sleep_then_a_waiting_handler(&[]);
    let s = j.iter().rfind(|v| v["kind"] == "summary").unwrap();
    assert_eq!(s["queue"]["queued"], 1, "{s}");
    assert_eq!(s["queue"]["waiting"], 0, "{s}");
    assert!(s["budget"]["drain_us"].as_u64().unwrap() > 0, "{s}");
}

#[test]
fn a_signal_the_host_handles_sent_to_its_group_while_a_call_waits_costs_no_test() {
    if !require_root("pods as root") {
        return;
    }
    // The host sends its process group a SIGUSR1, which it handles, while the second call
    // waits: the waiting copy neither dies of it nor runs the host's handler (its test sees the
    // handler had not run, then runs it). Warm pods only (`wait`): the first pods of a process
    // are otherwise cold, and a cold pod's supervisor, in the host's group with default
    // handlers, ends on such a signal.
    sleep_then_a_waiting_handler(&[("ROGUE_SIGNAL_GROUP", "1"), ("INVITE_WARM", "wait")]);
}

#[test]
fn a_pod_that_waited_longer_than_its_deadline_still_runs_its_test() {
    if !require_root("pods as root") {
        return;
    }
    let (_d, bin) = build("admission");
    // One slot, held 1.5 s by a sleeping test; the next call's test (a 300 ms deadline) waits
    // for it in the queue. Its deadline bounds its pod, from its slot on, not its wait: it
    // passes, with warm waiters (a borrowed blank) and cold ones.
    for warm in ["on", "off"] {
        let j = run_host(
            &bin,
            &["outwait"],
            &[
                ("INVITE_MAX_CONCURRENT", "1"),
                ("INVITE_MAX_OVERHEAD", "off"),
                ("INVITE_WARM", warm),
            ],
        );
        let ran = records(&j);
        assert_eq!(
            summary_rows(&j)["brief_test"]["queued"],
            1,
            "warm {warm}: {j:?}"
        );
        assert_eq!(
            ran["slow_test"][0]["outcome"], "pass",
            "warm {warm}: {ran:?}"
        );
        assert_eq!(
            ran["brief_test"][0]["outcome"], "pass",
            "warm {warm}: {ran:?}"
        );
    }
}

#[test]
fn a_never_run_test_takes_the_place_of_a_waiting_repeat_in_a_full_queue() {
    if !require_root("pods as root") {
        return;
    }
    let (_d, bin) = build("admission");
    // One slot (the hot site's first test holds it 200 ms), two places in the queue (two hot
    // repeats take them); the cold site, called half-way, displaces the newest repeat.
    let j = run_host(
        &bin,
        &["hotcold", "1000"],
        &[
            ("INVITE_MAX_CONCURRENT", "1"),
            ("INVITE_MAX_QUEUE", "2"),
            ("INVITE_MAX_OVERHEAD", "off"),
            ("INVITE_MAX_POD_CPU", "off"),
            ("INVITE_DRAIN_MS", "60000"),
        ],
    );
    let s = j.iter().rfind(|v| v["kind"] == "summary").unwrap();
    assert_eq!(s["queue"]["displaced"], 1, "{s}");
    let rows = summary_rows(&j);
    assert_eq!(rows["cold_test"]["started"], 1, "{rows:?}");
    assert_eq!(rows["cold_test"]["queued"], 1, "{rows:?}");
    let hot = &rows["hot_test"];
    assert_eq!(
        hot["started"], 2,
        "the first and the repeat left waiting: {hot}"
    );
    assert_eq!(hot["skipped"]["queue"], 998, "{hot}");
    let ran = records(&j);
    assert_eq!(
        ran["hot_test"].len(),
        2,
        "no record for the displaced repeat"
    );
    assert_eq!(ran["cold_test"][0]["outcome"], "pass");
}

/// `direct N` with `env`: the host's line "direct started=S eagain=E", its whole output, and
/// the journal.
fn direct(n: &str, env: &[(&str, &str)]) -> (String, String, Vec<Value>) {
    let (_d, bin) = build("admission");
    let d = scratch();
    let o = run(&bin, &["direct", n], d.path(), env);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success() && out.contains("host ok"),
        "the host was harmed: {}",
        text(&o)
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("direct "))
        .unwrap_or_else(|| panic!("no count: {out}"))
        .to_string();
    (line, out, journal(&d.path().join("invite.jsonl")))
}

#[test]
fn a_direct_ckpt_past_the_cap_fails_with_eagain_and_does_not_wait_in_the_queue() {
    if !require_root("pods as root") {
        return;
    }
    // One slot (each pod holds it 200 ms), a queue sampled calls could wait in: of three ckpt()
    // in a row, the first runs, the others are refused at once with a message that says why.
    let env = [("INVITE_MAX_CONCURRENT", "1"), ("INVITE_MAX_QUEUE", "1")];
    let (line, out, j) = direct("3", &env);
    assert_eq!(line, "direct started=1 eagain=2", "{j:?}");
    assert!(
        out.contains("refused: no pod is started: every slot is taken (INVITE_MAX_CONCURRENT=1)"),
        "{out}"
    );
    let pods = tests_of(&j);
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["outcome"], "pass", "{pods:?}");
    let s = j.iter().rfind(|v| v["kind"] == "summary").unwrap();
    assert_eq!(s["queue"]["waiting"], 0, "{s}");
}

#[test]
fn a_direct_ckpt_is_refused_past_the_cap_without_a_queue() {
    if !require_root("pods as root") {
        return;
    }
    let env = [("INVITE_MAX_CONCURRENT", "2"), ("INVITE_MAX_QUEUE", "0")];
    let (line, out, j) = direct("5", &env);
    assert_eq!(line, "direct started=2 eagain=3", "{j:?}");
    assert!(out.contains("(INVITE_MAX_CONCURRENT=2)"), "{out}");
    assert_eq!(tests_of(&j).len(), 2);
}

#[test]
fn a_call_that_waits_for_its_slot_waits_as_a_warm_pod_in_its_own_pid_namespace() {
    if !require_root("pods as root") {
        return;
    }
    // One slot, held 200 ms by the hot site's first test: its second call waits. Its waiting
    // copy is forked as a warm test is (PID 1 of a PID namespace of its own, later entering a
    // blank), not as a cold pod's supervisor in the host's namespace.
    // (INVITE_WARM=wait: the first pod waits for a blank rather than going cold, so no child
    // of the host is a cold supervisor.)
    let env = [
        ("INVITE_MAX_CONCURRENT", "1"),
        ("INVITE_MAX_OVERHEAD", "off"),
        ("INVITE_WARM", "wait"),
    ];
    let (d, o) = run_admission(&["waitns"], &env);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("host ok"),
        "{}",
        text(&o)
    );
    assert!(
        out.contains("children in the host's PID namespace: 0"),
        "{}",
        text(&o)
    );
    let j = journal(&d.path().join("invite.jsonl"));
    let hot = records(&j).remove("hot_test").unwrap_or_default();
    assert_eq!(hot.len(), 2, "{j:?}");
    assert!(hot.iter().all(|r| r["outcome"] == "pass"), "{hot:?}");
    assert_eq!(summary_rows(&j)["hot_test"]["queued"], 1, "{j:?}");
}
