//! Runs the built `invite` binary in a directory of its own, as a user would.

#![allow(dead_code)] // each test file uses its own part of this

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `invite ARGS` in `dir`, with none of the user's INVITE_* settings.
pub fn invite(dir: &Path, args: &[&str]) -> Run {
    invite_with(dir, args, &[])
}

pub fn invite_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_invite"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("INVITE_JOURNAL")
        .env_remove("INVITE_POD_DIR")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("run invite");
    Run {
        code: output.status.code().expect("invite exited, not killed"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A test record with every field of the contract; change what a test cares about.
pub fn record(function: &str, test: &str, outcome: &str, duration_us: u64) -> Value {
    json!({
        "schema": 1, "kind": "test", "time": "2026-05-01T12:00:00Z", "host": "web1", "pid": 4242,
        "pod": "1", "site": "app.c:10", "function": function, "test": test, "phase": "pre",
        "outcome": outcome, "duration_us": duration_us,
        "exit_code": if outcome == "pass" { json!(0) } else { json!(1) },
        "signal": null, "message": null, "output": "", "changed": [], "isolation": "pod"
    })
}

/// A summary record, as the runtime writes it, with one site entry per
/// `(function, test, [concurrency, budget, in_pod])`.
pub fn summary(time: &str, pid: u64, sites: &[(&str, &str, [u64; 3])]) -> Value {
    let sites: Vec<Value> = sites
        .iter()
        .map(|(function, test, [concurrency, budget, in_pod])| {
            json!({
                "site": "app.c:10", "function": function, "test": test, "calls": 1000,
                "sampled": 10, "started": 10 - concurrency - budget - in_pod,
                "skipped": {"concurrency": concurrency, "budget": budget, "in_pod": in_pod}
            })
        })
        .collect();
    json!({"schema": 1, "kind": "summary", "time": time, "host": "web1", "pid": pid, "sites": sites})
}

/// JSON Lines text: one line per value.
pub fn lines(values: &[Value]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

/// The cells of the table row for (function, test): columns are two or more spaces apart.
pub fn row(stdout: &str, function: &str, test: &str) -> Vec<String> {
    stdout
        .lines()
        .map(cells)
        .find(|c| c.len() > 2 && c[0] == function && c[1] == test)
        .unwrap_or_else(|| panic!("no row for {function} / {test} in:\n{stdout}"))
}

pub fn cells(line: &str) -> Vec<String> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// Fails with the whole text when `needle` is not in it.
#[track_caller]
pub fn assert_has(text: &str, needle: &str) {
    assert!(text.contains(needle), "{needle:?} not in:\n{text}");
}

/// Fails with the whole text when it does not start with `prefix`.
#[track_caller]
pub fn assert_starts(text: &str, prefix: &str) {
    assert!(
        text.starts_with(prefix),
        "does not start with {prefix:?}:\n{text}"
    );
}

/// `invite ARGS` in `dir`, killed and failed if it has not ended after two minutes: a guard
/// against a hang, not a timing assertion.
pub fn guarded(dir: &Path, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_invite"))
        .args(args)
        .current_dir(dir)
        .env_remove("INVITE_JOURNAL")
        .env_remove("INVITE_POD_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run invite");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("invite {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("collect output");
    Run {
        code: output.status.code().expect("invite exited, not killed"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub mod fleet;
pub mod tools;
