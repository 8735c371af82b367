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

#[test]
fn sqlite_wal_checks_in_pods_never_fail_silently() {
    if !require_root("pods with overlays") {
        return;
    }
    let d = scratch();
    let bin = build("sqlite_host", d.path(), &["-lsqlite3"]);
    for warm in ["off", "on"] {
        for f in ["invite.jsonl", "kv.db", "kv.db-wal", "kv.db-shm"] {
            let _ = std::fs::remove_file(d.path().join(f));
        }
        let o = run(
            &bin,
            &["kv.db", "150"],
            d.path(),
            &[("INVITE_WARM", warm), ("INVITE_MAX_CONCURRENT", "4")],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("host ok"), "{}", text(&o));
        let j = journal(&d.path().join("invite.jsonl"));
        let (n, fails, unreliable) = check_sqlite_journal(&j);
        eprintln!("warm={warm}: {n} pods, {fails} failing, {unreliable} unreliable");
        assert!(n >= 100, "only {n} records");
    }
}

fn changed(r: &Value) -> Vec<String> {
    r["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pods_that_touch_nothing_copy_nothing() {
    if !require_root("pods with overlays") {
        return;
    }
    let d = scratch();
    let bin = build("big_host", d.path(), &[]);
    for (size, warm) in [("16", "off"), ("16", "wait"), ("1024", "wait")] {
        let _ = std::fs::remove_file(d.path().join("invite.jsonl"));
        let o = run(
            &bin,
            &["big.dat", size, "idle"],
            d.path(),
            &[("INVITE_WARM", warm)],
        );
        assert!(o.status.success(), "{}", text(&o));
        let j = journal(&d.path().join("invite.jsonl"));
        let recs = tests_of(&j);
        assert_eq!(recs.len(), 3, "{j:?}");
        for r in recs {
            assert_eq!(r["outcome"], "pass", "{r}");
            assert!(changed(r).is_empty(), "{size} MiB, warm {warm}: {r}");
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
        let _ = std::fs::remove_file(d.path().join("invite.jsonl"));
        let o = run(
            &bin,
            &["big.dat", size, "write"],
            d.path(),
            &[("INVITE_WARM", warm)],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("host ok"), "{}", text(&o));
        let j = journal(&d.path().join("invite.jsonl"));
        let recs = tests_of(&j);
        assert_eq!(recs.len(), 3, "{j:?}");
        for r in recs {
            assert_eq!(r["outcome"], "pass", "{size} MiB, warm {warm}: {r}");
            let c = changed(r);
            assert!(
                c.len() == 1 && c[0].ends_with("/big.dat"),
                "{size} MiB, warm {warm}: {r}"
            );
        }
    }
}
