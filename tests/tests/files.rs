//! Files as they were at the checkpoint (issue 20): a pod never reports a failure on a file the
//! host was writing without saying so; it copies no file it does not write; a file of any size
//! open for writing in the host stays writable in the pod, and the host's copy untouched.

use invite_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn build(name: &str, dir: &Path, libs: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let o = Command::new("gcc")
        .args([
            "-std=gnu11",
            "-O1",
            "-g",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
        ])
        .arg("-I")
        .arg(include_dir())
        .arg(fixture(&format!("c/files/{name}.c")))
        .arg(static_lib())
        .args(libs)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run gcc");
    assert!(o.status.success(), "gcc: {}", text(&o));
    out
}

fn failing(r: &Value) -> bool {
    matches!(r["outcome"].as_str(), Some("fail" | "crash" | "timeout"))
}

/// Every failing record of a pod that may have read a file in a mixed state says so; returns
/// (records, failing, unreliable).
fn check_sqlite_journal(j: &[Value]) -> (usize, usize, usize) {
    let recs = tests_of(j);
    let mut fails = 0;
    let mut unreliable = 0;
    for r in &recs {
        if r["unreliable"] == Value::Bool(true) {
            unreliable += 1;
            let notes = r["notes"].to_string();
            assert!(
                notes.contains("kv.db"),
                "unreliable without naming the file: {r}"
            );
        }
        if failing(r) {
            fails += 1;
            assert_eq!(
                r["unreliable"],
                Value::Bool(true),
                "a failure on a database the host was writing, not marked unreliable: {r}"
            );
        }
    }
    (recs.len(), fails, unreliable)
}

/// Run a SQLite host (C or Rust) cold and warm: the host's database stays intact, and no
/// failing check goes unmarked.
fn sqlite_host_never_fails_silently(bin: &Path, dir: &Path) {
    for warm in ["off", "on"] {
        for f in ["invite.jsonl", "kv.db", "kv.db-wal", "kv.db-shm"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let o = run(
            bin,
            &["kv.db", "150"],
            dir,
            &[("INVITE_WARM", warm), ("INVITE_MAX_CONCURRENT", "4")],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("host ok"), "{}", text(&o));
        let j = journal(&dir.join("invite.jsonl"));
        let (n, fails, unreliable) = check_sqlite_journal(&j);
        eprintln!(
            "{}, warm={warm}: {n} pods, {fails} failing, {unreliable} unreliable",
            bin.display()
        );
        assert!(n >= 100, "only {n} records");
    }
}

#[test]
fn sqlite_wal_checks_in_pods_of_a_c_host_never_fail_silently() {
    if !require_root("pods with overlays") {
        return;
    }
    let d = scratch();
    let bin = build("sqlite_host", d.path(), &["-lsqlite3"]);
    sqlite_host_never_fails_silently(&bin, d.path());
}

#[test]
fn sqlite_wal_checks_in_pods_of_a_rust_host_never_fail_silently() {
    if !require_root("pods with overlays") {
        return;
    }
    let d = scratch();
    // fixtures/rust/bank/src/bin/kv.rs, built by the workspace build.
    sqlite_host_never_fails_silently(&tool("kv"), d.path());
}

fn changed(r: &Value) -> Vec<String> {
    r["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Run big_host; its three pods' records.
fn big_host(bin: &Path, dir: &Path, size: &str, mode: &str, warm: &str) -> Vec<Value> {
    let _ = std::fs::remove_file(dir.join("invite.jsonl"));
    let o = run(bin, &["big.dat", size, mode], dir, &[("INVITE_WARM", warm)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("host ok"), "{}", text(&o));
    let j = journal(&dir.join("invite.jsonl"));
    let recs: Vec<Value> = tests_of(&j).into_iter().cloned().collect();
    assert_eq!(recs.len(), 3, "{j:?}");
    recs
}

#[test]
fn pods_that_touch_nothing_copy_nothing() {
    if !require_root("pods with overlays") {
        return;
    }
    let d = scratch();
    let bin = build("big_host", d.path(), &[]);
    for (size, warm) in [("16", "off"), ("16", "wait"), ("1024", "wait")] {
        for r in big_host(&bin, d.path(), size, "idle", warm) {
            assert_eq!(r["outcome"], "pass", "{r}");
            assert!(changed(&r).is_empty(), "{size} MiB, warm {warm}: {r}");
        }
    }
}

#[test]
fn a_large_file_open_for_writing_stays_writable_in_the_pod_and_untouched_in_the_host() {
    if !require_root("pods with overlays") {
        return;
    }
    let d = scratch();
    let bin = build("big_host", d.path(), &[]);
    for (size, warm) in [("8", "off"), ("1024", "off"), ("1024", "wait")] {
        for r in big_host(&bin, d.path(), size, "write", warm) {
            assert_eq!(r["outcome"], "pass", "{size} MiB, warm {warm}: {r}");
            let c = changed(&r);
            assert!(
                c.len() == 1 && c[0].ends_with("/big.dat"),
                "{size} MiB, warm {warm}: {r}"
            );
        }
    }
}
