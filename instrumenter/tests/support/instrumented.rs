//! Building a library's own programs against the real runtime, and reading what its in vivo
//! tests did (tests/corpus_run.rs, tests/suites.rs).

use super::cannot_run;
use super::corpus::run_ok;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The probability every skeleton test runs with.
pub const PROBABILITY: &str = "0.0005";

/// The environment of a run with testing on, journaling to `journal`. Pods run at idle
/// priority: on a loaded machine even an empty test can wait seconds for a CPU, so the deadline
/// and the exit drain are generous (they are not what these tests check).
pub fn testing_env(journal: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("INVITE_PROBABILITY", PROBABILITY.to_string()),
        ("INVITE_JOURNAL", journal.display().to_string()),
        ("INVITE_SEED", "7".to_string()),
        ("INVITE_TIMEOUT_MS", "300000".to_string()),
        ("INVITE_DRAIN_MS", "300000".to_string()),
    ]
}

/// A `cc` that adds the runtime's header and, when linking, the runtime itself.
pub fn compiler_wrapper(dir: &Path) -> Option<(PathBuf, String)> {
    // (The runtime's flags: `--cflags` to compile, `--libs` after the objects to link.)
    let runtime = invite_instrumenter::Runtime::locate()
        .ok()
        .filter(|r| r.library.is_some());
    let Some(rt) = runtime else {
        cannot_run("libinvite.a is not built (cargo build --release -p invite-clib)");
        return None;
    };
    let cc = dir.join("cc-invite");
    std::fs::write(
        &cc,
        format!(
            "#!/bin/sh\n# gcc with invite.h, and the invite runtime when linking (after the objects, and after -x none: a -x c before them must not make gcc read the archive as C).\ncase \" $* \" in\n*\" -c \"*|*\" -E \"*|*\" -M\"*) exec gcc {inc} \"$@\" ;;\n*) exec gcc {inc} \"$@\" -x none {libs} ;;\nesac\n",
            inc = rt.cflags(),
            libs = rt.libs().unwrap()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cc, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some((cc, rt.libs().unwrap()))
}

pub fn make(dir: &Path, args: &[&str], envs: &[(&str, String)]) -> String {
    run_ok(
        Command::new("make")
            .arg("-s")
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .current_dir(dir),
        &format!("make {args:?} in {}", dir.display()),
    )
}

/// Every journal record is a pass; returns how many tests ran.
pub fn all_passed(journal: &Path) -> usize {
    let text = std::fs::read_to_string(journal).unwrap_or_default();
    let mut ran = 0;
    for line in text.lines().filter(|l| l.contains("\"kind\":\"test\"")) {
        assert!(
            line.contains("\"outcome\":\"pass\""),
            "a test did not pass: {line}"
        );
        ran += 1;
    }
    ran
}
