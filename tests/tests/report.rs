//! The CLI on a real journal (issue 6): a C program with in vivo tests runs, then `invite report`
//! summarizes it and `--fail-on` gates on it.

use invite_tests::*;
use std::process::Command;

#[test]
fn report_and_gate_on_a_real_journal() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    let bin = d.path().join("rogue");
    compile_c(&[fixture("c/rogue.c")], &bin);
    let env = [
        ("INVITE_MAX_OVERHEAD", "off"),
        ("INVITE_JOURNAL", "both.jsonl"),
    ];
    assert!(run(&bin, &["pass", "3"], d.path(), &env).status.success());
    let journal = d.path().join("both.jsonl");
    let report = |args: &[&str]| {
        Command::new(tool("invite"))
            .arg("report")
            .args(args)
            .arg(&journal)
            .output()
            .unwrap()
    };
    let o = report(&["--fail-on", "fail,crash,timeout"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let row = out
        .lines()
        .find(|l| l.starts_with("work"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("rogue_test"), "{row}");
    // One failing run makes the gate close, and says why.
    assert!(run(&bin, &["message", "1"], d.path(), &env)
        .status
        .success());
    let o = report(&["--fail-on", "fail,crash,timeout"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("balance is -5, expected 0"),
        "{}",
        text(&o)
    );
    let o = report(&["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.to_string().contains("\"fail\":1"), "{v}");
}
