//! Helpers of the tests of what surrounds the pod (`surround.rs`, `hostile_files.rs`): the
//! fixture that probes it, and ways to read what a run left.

use crate::{compile_c, fixture, text};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// fixtures/c/surround.c built into `dir`.
pub fn surround(dir: &Path) -> PathBuf {
    let out = dir.join("surround");
    compile_c(&[fixture("c/surround.c")], &out);
    out
}

/// The last summary record of a journal.
pub fn summary(j: &[Value]) -> &Value {
    j.iter()
        .rev()
        .find(|v| v["kind"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {j:#?}"))
}

/// A record's `notes`, joined.
pub fn notes(r: &Value) -> String {
    r["notes"]
        .as_array()
        .map(|n| {
            n.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// Run `cmd` as nobody through a shell (to plant files as another user).
pub fn as_nobody(script: &str, dir: &Path) {
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            script,
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{script}: {}", text(&o));
}
