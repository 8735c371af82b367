//! Helpers for the integration tests: find the built runtime and tools, compile C fixtures with
//! the project's own flags, run them, read journals.
//!
//! The tests use what `cargo build --workspace` produced (the README's test command builds first).
//! Tests that need root say so loudly instead of passing silently.

pub mod surround;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The target profile directory this test binary was built into (target/release or debug).
pub fn profile_dir() -> PathBuf {
    // tests/…/target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("profile dir")
        .to_path_buf()
}

pub fn fixture(rel: &str) -> PathBuf {
    workspace().join("fixtures").join(rel)
}

pub fn include_dir() -> PathBuf {
    workspace().join("runtime/include")
}

pub fn static_lib() -> PathBuf {
    built(
        profile_dir().join("libinvite.a"),
        &["runtime/src", "runtime/c_library.rs", "vocab/src"],
    )
}

/// A built binary of the workspace (invite, invite-precompile).
pub fn tool(name: &str) -> PathBuf {
    let sources: &[&str] = match name {
        "invite" => &["cli/src", "vocab/src"],
        "invite-precompile" => &["instrumenter/src", "vocab/src"],
        "invite-cc" => &["cc/src"],
        _ => &[],
    };
    built(profile_dir().join(name), sources)
}

/// `artifact`, which `cargo test` does not rebuild (a test binary depends on the runtime's rlib,
/// not on `libinvite.a` or the workspace's binaries): it must exist and be newer than every
/// file of `sources` (files or trees, below the workspace), or the tests would run the code of
/// an earlier build and say nothing.
fn built(artifact: PathBuf, sources: &[&str]) -> PathBuf {
    let again = "build the workspace first (cargo build --release --workspace)";
    let made = std::fs::metadata(&artifact)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{} is missing ({e}): {again}", artifact.display()));
    for source in sources {
        if let Some((src, t)) = newest(&workspace().join(source)) {
            assert!(
                t <= made,
                "{} is older than {}: {again}",
                artifact.display(),
                src.display()
            );
        }
    }
    artifact
}

/// The most recently modified file at or below `path`, and when.
fn newest(path: &Path) -> Option<(PathBuf, std::time::SystemTime)> {
    let md = std::fs::metadata(path).ok()?;
    if !md.is_dir() {
        return Some((path.to_path_buf(), md.modified().ok()?));
    }
    let mut best: Option<(PathBuf, std::time::SystemTime)> = None;
    for e in std::fs::read_dir(path).ok()?.flatten() {
        let p = e.path();
        let found = if e.file_type().is_ok_and(|t| t.is_dir()) {
            newest(&p)
        } else {
            e.metadata().and_then(|m| m.modified()).ok().map(|t| (p, t))
        };
        if let Some((p, t)) = found.filter(|(_, t)| best.as_ref().is_none_or(|(_, b)| t > b)) {
            best = Some((p, t));
        }
    }
    best
}

/// `fixtures/c/rogue.c` (a host whose in vivo tests misbehave on request) built into `dir`.
pub fn rogue_host(dir: &Path) -> PathBuf {
    let out = dir.join("rogue");
    compile_c(&[fixture("c/rogue.c")], &out);
    out
}

pub const NATIVE_LIBS: &[&str] = &["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl"];

/// Compile C sources against the runtime into `out`, with -Wall -Wextra -Werror.
pub fn compile_c(sources: &[PathBuf], out: &Path) {
    let mut cmd = Command::new("gcc");
    cmd.args(["-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(include_dir());
    cmd.args(sources)
        .arg(static_lib())
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(out);
    let o = cmd.output().expect("run gcc");
    assert!(
        o.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A scratch directory anyone may enter (tests also run fixtures as an unprivileged user).
pub fn scratch() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("invite-test-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let _ = std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    );
    d
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Tests that need root fail loudly without it, unless INVITE_TESTS_ALLOW_SKIP=1 says to skip.
pub fn require_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("INVITE_TESTS_ALLOW_SKIP").as_deref() == Ok("1") {
        eprintln!("SKIPPED (needs root): {what}");
        return false;
    }
    panic!(
        "this test needs root ({what}); run as root or set INVITE_TESTS_ALLOW_SKIP=1 to skip it"
    );
}

/// Run `bin` in `dir` with a clean invite environment plus `env`.
pub fn run(bin: &Path, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("INVITE") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run fixture")
}

/// Like `run`, as uid/gid 65534 (nobody), through setpriv.
pub fn run_as_nobody(bin: &Path, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin)
        .args(args)
        .current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("INVITE") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run setpriv")
}

pub fn text(o: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every line of a journal, parsed; panics on a line that is not one JSON object.
pub fn journal(path: &Path) -> Vec<Value> {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    s.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {l}", path.display(), i + 1))
        })
        .collect()
}

pub fn tests_of(j: &[Value]) -> Vec<&Value> {
    j.iter().filter(|v| v["kind"] == "test").collect()
}

pub fn record_for<'a>(j: &'a [Value], pod: &str) -> &'a Value {
    j.iter()
        .find(|v| v["kind"] == "test" && v["pod"] == pod)
        .unwrap_or_else(|| panic!("no record for pod {pod} in {j:#?}"))
}

/// The lines of this process's mount table made by a pod: every mount a pod makes has a source
/// named `invite-*` (other tests' loop mounts under /tmp/invite-test-* are not pods').
pub fn pod_mounts_in_this_namespace() -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("/proc/self/mountinfo");
    mounts
        .lines()
        .filter(|l| {
            l.split_once(" - ")
                .and_then(|(_, tail)| tail.split(' ').nth(1))
                .is_some_and(|source| source.starts_with("invite-"))
        })
        .map(String::from)
        .collect()
}
