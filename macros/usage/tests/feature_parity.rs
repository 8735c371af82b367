//! The `enabled` feature off compiles every `#[in_vivo]` to the plain function, but type-checks
//! its tests the same way: a crate builds with the feature off exactly when it builds with it on.
//! Checked on real crates with `cargo check`, async tests included (the feature-off build used to
//! accept an `async fn` test that the feature-on build rejected).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Written as users write: one-line bodies, every warning an error (the generated code once gave
/// rustc's `unused_braces` on them).
const GOOD: &str = r#"
#![deny(warnings)]
use invite::in_vivo;
async fn positive(amount: u64) -> Result<(), String> {
    std::future::ready(()).await;
    if amount > 0 { Ok(()) } else { Err(format!("{amount}")) }
}
async fn stored(value: &u64) -> bool { *value > 0 }
#[in_vivo(pre = positive, post = stored)]
fn deposit(amount: u64) -> u64 { amount }
fn main() { deposit(1); }
"#;

const BAD: &str = r#"
use invite::in_vivo;
use std::rc::Rc;
async fn returns_a_number(amount: u64) -> u64 { amount }
async fn shares_an_rc(amount: u64) -> bool {
    let shared = Rc::new(amount);
    std::future::ready(()).await;
    *shared == amount
}
#[in_vivo(pre = returns_a_number, pre = shares_an_rc)]
fn deposit(amount: u64) -> u64 { amount }
fn main() { deposit(1); }
"#;

/// `cargo check` a one-file crate against the runtime; (success, stderr).
fn check(dir: &Path, name: &str, source: &str, enabled: bool) -> (bool, String) {
    let krate = dir.join(format!("{name}-{}", if enabled { "on" } else { "off" }));
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let runtime = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime");
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
             [workspace]\n[dependencies]\n\
             invite-rt = {{ path = {runtime:?}, default-features = {enabled} }}\n"
        ),
    )
    .unwrap();
    std::fs::write(krate.join("src/main.rs"), source).unwrap();
    let out = Command::new(env!("CARGO"))
        .args(["check", "--quiet", "--message-format=short"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn feature_off_accepts_and_rejects_the_tests_feature_on_does() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("feature-parity");
    for enabled in [true, false] {
        let (ok, stderr) = check(&dir, "good", GOOD, enabled);
        assert!(ok, "enabled {enabled}: async tests rejected:\n{stderr}");
        let (ok, stderr) = check(&dir, "bad", BAD, enabled);
        assert!(!ok, "enabled {enabled}: bad tests accepted");
        for (what, message) in [
            (
                "u64 result",
                "src/main.rs:10:17: error[E0277]: `u64` is not a test result",
            ),
            (
                "non-Send future",
                "src/main.rs:10:41: error: future cannot be sent between threads safely",
            ),
        ] {
            assert!(
                stderr.contains(message),
                "enabled {enabled}: no error for the {what}:\n{stderr}"
            );
        }
    }
}
