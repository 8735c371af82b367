//! End to end with the real runtime (`libinvite.a`, linked with `--cflags`/`--libs`): the legacy
//! bank example's post test catches the overdraft, and the journal says so. Skipped, with a
//! note, while `libinvite.a` has not been built (`cargo build -p invite --release`).

mod support;
use std::process::Command;
use support::*;

#[test]
fn bank_overdraft_is_journaled_as_a_failure() {
    let Some(rt) = invite_instrumenter::Runtime::locate()
        .ok()
        .filter(|r| r.library.is_some())
    else {
        eprintln!("note: skipped: libinvite.a not built (cargo build -p invite --release)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bank.c");
    let o = Command::new(env!("CARGO_BIN_EXE_invite-precompile"))
        .args(["bank.c", "-o"])
        .arg(&out)
        .current_dir(fixtures().join("legacy"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let exe = tmp.path().join("bank");
    let libs = rt.libs().unwrap();
    let mut cmd = Command::new("gcc");
    cmd.args(["-std=c99", "-Wall", "-Wextra", "-Werror"])
        .arg(rt.cflags())
        .arg(&out)
        .arg("-o")
        .arg(&exe);
    cmd.args(libs.split_whitespace());
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let journal = tmp.path().join("invite.jsonl");
    let o = Command::new(&exe)
        .env("INVITE_PROBABILITY", "1")
        .env("INVITE_MAX_OVERHEAD", "off")
        .env("INVITE_MAX_CONCURRENT", "16")
        .env("INVITE_JOURNAL", &journal)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "ada: balance -1 after 3 transactions\n"
    );
    let text = std::fs::read_to_string(&journal).unwrap();
    let tests: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"test\""))
        .collect();
    let has = |test: &str, outcome: &str| {
        tests.iter().any(|l| {
            l.contains(&format!("\"test\":\"{test}\""))
                && l.contains(&format!("\"outcome\":\"{outcome}\""))
        })
    };
    assert!(has("check_after", "fail"), "{text}");
    assert!(has("check_funds", "pass"), "{text}");
    assert!(has("deposit_sane", "pass"), "{text}");
    assert!(
        tests.iter().all(|l| l.contains("\"site\":\"bank.c:")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("\"kind\":\"summary\"")),
        "{text}"
    );
}
