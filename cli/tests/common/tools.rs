//! Tools the format tests need, installed by the test's own set-up when missing: Chromium from
//! Debian (as root), Python packages from PyPI. A tool that cannot be had fails the test loudly,
//! unless INVITE_TESTS_ALLOW_SKIP=1 says to skip it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// Serializes installs between the tests of one binary.
static INSTALL: Mutex<()> = Mutex::new(());

fn skip_or_fail(what: &str) -> bool {
    if std::env::var("INVITE_TESTS_ALLOW_SKIP").as_deref() == Ok("1") {
        eprintln!("\n*** SKIPPED: {what} (INVITE_TESTS_ALLOW_SKIP=1) ***\n");
        return false;
    }
    panic!("{what}; run the tests as root with network access to Debian and PyPI, or set INVITE_TESTS_ALLOW_SKIP=1 to skip");
}

fn found(program: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

/// Debian's `chromium`, installed with apt-get when missing; `None` when skipped.
pub fn chromium() -> Option<PathBuf> {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = found("chromium") {
        return Some(path);
    }
    let root = rustix::process::geteuid().is_root();
    if root {
        let ok = Command::new("sh")
            .args([
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            if let Some(path) = found("chromium") {
                return Some(path);
            }
        }
    }
    skip_or_fail("chromium is not installed and could not be installed with apt-get");
    None
}

/// `python3` that can import `module`: Debian's python3 and pip installed with apt-get when
/// missing (as root), then `pip install PACKAGES` when the module is still missing; false when
/// skipped.
pub fn python_with(module: &str, packages: &[&str]) -> bool {
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let succeeds = |args: &[&str]| {
        Command::new("python3")
            .args(args)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let import = format!("import {module}");
    let has = || succeeds(&["-c", &import]);
    if has() {
        return true;
    }
    let needs_apt = !succeeds(&["--version"])
        || (!packages.is_empty() && !succeeds(&["-m", "pip", "--version"]));
    if needs_apt && rustix::process::geteuid().is_root() {
        let _ = Command::new("sh")
            .args([
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip",
            ])
            .status();
    }
    if !packages.is_empty() && !has() {
        let mut pip = Command::new("python3");
        pip.args(["-m", "pip", "install", "-q"]).args(packages);
        let _ = pip.status();
        if !has() {
            // Debian's own python3 refuses a plain pip install (PEP 668).
            let mut pip = Command::new("python3");
            pip.args(["-m", "pip", "install", "-q", "--break-system-packages"])
                .args(packages);
            let _ = pip.status();
        }
    }
    if has() {
        return true;
    }
    skip_or_fail(&format!(
        "python3 cannot import {module} (packages tried: {})",
        packages.join(" ")
    ));
    false
}
