//! Reading a journal in tests: wait for the test records, tally them, compare with a table.
//! Shared by the macros' run-pass tests and the bank fixture (`#[path]`-included by both).

#![allow(dead_code)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// (function, test, phase, outcome, message, how many), names relative to the table's prefixes.
pub type Expected = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    usize,
);

/// (function, test, phase, outcome, message): what identifies a test record here.
pub type Key = (String, String, String, String, Option<String>);

/// The journal's records of one kind.
pub fn records(journal: &Path, kind: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["kind"] == kind)
        .collect()
}

/// The test records once there are `n` (after a generous wait, whatever is there: the comparison
/// then says what is missing).
pub fn wait_for(journal: &Path, n: usize) -> Vec<Value> {
    for _ in 0..600 {
        let found = records(journal, "test");
        if found.len() >= n {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    records(journal, "test")
}

/// Settings so that every sampled test runs: everything sampled, no CPU budget (a test program
/// spends little CPU of its own), room for the pods one call starts at once.
pub fn every_test(cmd: &mut Command, journal: &Path) {
    cmd.env("INVITE_PROBABILITY", "1")
        .env("INVITE_JOURNAL", journal)
        .env("INVITE_MAX_OVERHEAD", "off")
        .env("INVITE_MAX_CONCURRENT", "16")
        .env_remove("INVITE")
        .env_remove("INVITE_RATES")
        .env_remove("INVITE_SHARD");
}

/// Run this test binary's `child_scenario` test again in a child process (marked by the
/// environment variable `child`) with every test sampled, in `dir`; its journal's path once the
/// child has passed.
pub fn run_child_scenario(child: &str, dir: &Path) -> std::path::PathBuf {
    let journal = dir.join("invite.jsonl");
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    every_test(&mut cmd, &journal);
    let out = cmd
        .args([
            "--exact",
            "child_scenario",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(child, "1")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the scenario failed in the child:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    journal
}

/// The table as keys, with `function_prefix` and `test_prefix` put before the names.
pub fn expected(
    table: &[Expected],
    function_prefix: &str,
    test_prefix: &str,
) -> BTreeMap<Key, usize> {
    let mut want = BTreeMap::new();
    for &(function, test, phase, outcome, message, n) in table {
        let key = (
            format!("{function_prefix}{function}"),
            format!("{test_prefix}{test}"),
            phase.to_string(),
            outcome.to_string(),
            message.map(str::to_string),
        );
        *want.entry(key).or_default() += n;
    }
    want
}

/// Waits for as many test records as `want` counts and checks they are exactly those: each ran
/// in a pod, at a site in `site_file`.
pub fn assert_records(journal: &Path, want: &BTreeMap<Key, usize>, site_file: &str) {
    let mut got: BTreeMap<Key, usize> = BTreeMap::new();
    for r in wait_for(journal, want.values().sum()) {
        let text = |k: &str| r[k].as_str().unwrap_or("<missing>").to_string();
        assert!(!text("pod").is_empty(), "a test ran outside a pod: {r}");
        assert!(text("site").contains(&format!("{site_file}:")), "site: {r}");
        let key = (
            text("function"),
            text("test"),
            text("phase"),
            text("outcome"),
            r["message"].as_str().map(str::to_string),
        );
        *got.entry(key).or_default() += 1;
    }
    assert_eq!(
        &got,
        want,
        "journal records (left) differ from the expected ones (right); summary: {:?}",
        records(journal, "summary")
    );
}

/// The two tests of a binary whose scenario also runs in a child (`run_child_scenario`): the
/// scenario unchanged in the parent, and `child_scenario`, which runs it only in the child.
#[allow(unused_macros)]
macro_rules! scenario_tests {
    ($child:expr, $scenario:path) => {
        #[test]
        fn the_scenario_runs_unchanged() {
            if std::env::var_os($child).is_none() {
                $scenario();
            }
        }

        #[test]
        fn child_scenario() {
            if std::env::var_os($child).is_some() {
                $scenario();
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use scenario_tests;
