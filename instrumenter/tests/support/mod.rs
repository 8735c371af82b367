//! Shared helpers for the instrumenter's tests: run the real binary, compile with the real
//! compilers, run the program.
#![allow(dead_code)]

pub mod corpus;
pub mod curl;
pub mod debian;
pub mod instrumented;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const STDS: [&str; 6] = ["c99", "gnu99", "c11", "gnu11", "c17", "gnu17"];

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn fixtures() -> PathBuf {
    workspace().join("fixtures/c")
}

pub fn include_dir() -> PathBuf {
    workspace().join("runtime/include")
}

pub fn stub_runtime() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/stub_runtime.c")
}

pub fn precompile(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_invite-precompile"))
        .args(args)
        .output()
        .expect("run invite-precompile")
}

/// A check that cannot run here fails loudly, unless INVITE_TESTS_ALLOW_SKIP=1 says to skip it
/// (then it says so on stderr). A test never passes silently for want of a tool.
pub fn cannot_run(what: &str) {
    if std::env::var("INVITE_TESTS_ALLOW_SKIP").as_deref() == Ok("1") {
        eprintln!("SKIPPED: {what}");
        return;
    }
    panic!("{what}; install it (.ci/run does) or set INVITE_TESTS_ALLOW_SKIP=1 to skip");
}

/// Compilers to check with: gcc and clang (both required; see `cannot_run`).
pub fn compilers() -> Vec<&'static str> {
    let mut out = vec!["gcc"];
    if Command::new("clang")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        out.push("clang");
    } else {
        cannot_run("clang is not installed, so the output is not checked with clang");
    }
    out
}

/// Compile and link `sources` into `exe` with the stub runtime; Err(compiler output).
pub fn build(
    cc: &str,
    std: &str,
    sources: &[&Path],
    exe: &Path,
    extra: &[&str],
) -> Result<(), String> {
    let out = Command::new(cc)
        .arg(format!("-std={std}"))
        .args(["-Wall", "-Wextra", "-Werror", "-g"])
        .arg("-I")
        .arg(include_dir())
        .args(extra)
        .args(sources)
        .arg("-o")
        .arg(exe)
        .output()
        .expect("run the C compiler");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

pub fn run(exe: &Path) -> String {
    let out = Command::new(exe).output().expect("run the program");
    assert!(
        out.status.success(),
        "{} failed: {}",
        exe.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The program's own output (without the stub's `[invite]` lines) and the `[invite]` lines.
pub fn split(stdout: &str) -> (String, Vec<String>) {
    let mut own = String::new();
    let mut invite = Vec::new();
    for line in stdout.lines() {
        match line.strip_prefix("[invite] ") {
            Some(rest) => invite.push(rest.to_string()),
            None => {
                own.push_str(line);
                own.push('\n');
            }
        }
    }
    (own, invite)
}

/// A fixture's `.c` (its `.ic` beside it) instrumented into `dir`, and that output built with
/// every compiler at each of `stds` against the stub runtime (a compiler that rejects it fails
/// the test). Returns the instrumented file, what the original prints, and the executables
/// `(compiler, std, path)`.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub fn instrument_and_build_everywhere(
    dir: &Path,
    fixture: &str,
    stds: &[&'static str],
) -> (PathBuf, String, Vec<(&'static str, &'static str, PathBuf)>) {
    let c = fixtures().join(fixture);
    let stem = c.file_stem().unwrap().to_string_lossy().into_owned();
    let out = dir.join(format!("{stem}.invite.c"));
    let p = precompile(&[&c, "-o".as_ref(), &out]);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let original = dir.join("original");
    build("gcc", "c99", &[&c], &original, &[]).expect("the fixture itself compiles");
    let expected = run(&original);
    let mut exes = Vec::new();
    for cc in compilers() {
        for &std in stds {
            let exe = dir.join(format!("{stem}-{cc}-{std}"));
            if let Err(e) = build(cc, std, &[&out, &stub_runtime()], &exe, &[]) {
                panic!("{cc} -std={std} rejected the output:\n{e}");
            }
            exes.push((cc, std, exe));
        }
    }
    (out, expected, exes)
}
