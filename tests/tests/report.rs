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
    let bin = rogue_host(d.path());
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

/// `fixtures/c/uncalled/tri.c` through the precompiler, as `dir/tri.c`.
fn precompile_tri(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("tri.c");
    let o = Command::new(tool("invite-precompile"))
        .args(["tri.c", "-o"])
        .arg(&src)
        .current_dir(fixture("c/uncalled"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    src
}

/// The last summary record of a journal (`what` ran).
fn last_summary(path: &std::path::Path, what: &str) -> serde_json::Value {
    let j = journal(path);
    j.iter()
        .rfind(|r| r["kind"] == "summary")
        .cloned()
        .unwrap_or_else(|| panic!("{what}: no summary: {j:?}"))
}

/// Issue 14 item 4: a function that is instrumented but never called still has its row: the
/// summary lists every compiled-in site (calls 0) and `invite report` says the test never ran
/// and why. With both compilers, the runtime linked statically.
#[test]
fn a_test_whose_function_is_never_called_is_reported_as_never_run() {
    if !require_root("pods as root") {
        return;
    }
    for cc in ["gcc", "clang"] {
        let d = scratch();
        let src = precompile_tri(d.path());
        let bin = d.path().join("tri");
        let o = Command::new(cc)
            .args(["-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(include_dir())
            .arg(&src)
            .arg(static_lib())
            .args(NATIVE_LIBS)
            .arg("-o")
            .arg(&bin)
            .output()
            .unwrap();
        assert!(o.status.success(), "{cc}: {}", text(&o));
        let env = [
            ("INVITE_PROBABILITY", "1"),
            ("INVITE_MAX_OVERHEAD", "off"),
            ("INVITE_JOURNAL", "tri.jsonl"),
        ];
        let o = run(&bin, &[], d.path(), &env);
        assert!(o.status.success(), "{cc}: {}", text(&o));
        let summary = last_summary(&d.path().join("tri.jsonl"), cc);
        let sites = summary["sites"].as_array().unwrap();
        let site = |f: &str| {
            sites
                .iter()
                .find(|s| s["function"] == f)
                .unwrap_or_else(|| panic!("{cc}: no row for {f}: {summary}"))
        };
        assert_eq!(sites.len(), 3, "{cc}: {summary}");
        assert_eq!(site("negate")["test"], "negate_sane", "{cc}: {summary}");
        assert_eq!(site("negate")["calls"], 0, "{cc}: {summary}");
        assert_eq!(site("negate")["sampled"], 0, "{cc}: {summary}");
        assert_eq!(site("twice")["calls"], 1, "{cc}: {summary}");
        assert_eq!(site("square")["started"], 1, "{cc}: {summary}");
        let o = Command::new(tool("invite"))
            .arg("report")
            .arg(d.path().join("tri.jsonl"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{cc}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        let row = out
            .lines()
            .find(|l| l.contains("negate_sane"))
            .unwrap_or_else(|| panic!("{cc}: no row for negate_sane:\n{out}"));
        assert!(row.contains("never called"), "{cc}: {row}\n{out}");
    }
}

/// Issue 14: with the runtime as a shared library (`libinvite.so`), every compiled-in site is
/// listed too, whichever object it is in: the program itself, or a shared library of its own
/// with sites. (Before, only the object that links the runtime statically was read, so these
/// listed only the called sites.)
#[test]
fn sites_in_the_program_and_in_shared_libraries_are_listed_when_the_runtime_is_libinvite_so() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    precompile_tri(d.path());
    // The runtime under its soname, as installed.
    let lib = d.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    std::os::unix::fs::symlink(
        profile_dir().join("libinvite.so"),
        lib.join("libinvite.so.0"),
    )
    .unwrap();
    std::os::unix::fs::symlink(profile_dir().join("libinvite.so"), lib.join("libinvite.so"))
        .unwrap();
    let cc = |args: &[&str]| {
        let o = Command::new("gcc")
            .args(["-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(include_dir())
            .args(args)
            .arg(format!("-L{}", lib.display()))
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-linvite")
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    };
    // The sites in the program.
    cc(&["tri.c", "-o", "tri_exe"]);
    // The sites in a shared library of the program's.
    cc(&[
        "-fPIC",
        "-shared",
        "-Dmain=tri_main",
        "tri.c",
        "-o",
        "lib/libtri.so",
    ]);
    std::fs::write(
        d.path().join("main.c"),
        "int tri_main(int, char **);\nint main(int c, char **v) { return tri_main(c, v); }\n",
    )
    .unwrap();
    cc(&["main.c", "-ltri", "-o", "tri_so"]);
    for bin in ["tri_exe", "tri_so"] {
        let env = [
            ("INVITE_PROBABILITY", "1"),
            ("INVITE_MAX_OVERHEAD", "off"),
            ("INVITE_JOURNAL", "tri.jsonl"),
        ];
        let _ = std::fs::remove_file(d.path().join("tri.jsonl"));
        let o = run(&d.path().join(bin), &[], d.path(), &env);
        assert!(o.status.success(), "{bin}: {}", text(&o));
        let summary = last_summary(&d.path().join("tri.jsonl"), bin);
        let sites = summary["sites"].as_array().unwrap();
        let mut functions: Vec<&str> = sites
            .iter()
            .map(|s| s["function"].as_str().unwrap())
            .collect();
        functions.sort_unstable();
        assert_eq!(functions, ["negate", "square", "twice"], "{bin}: {summary}");
        let negate = sites.iter().find(|s| s["function"] == "negate").unwrap();
        assert_eq!(negate["calls"], 0, "{bin}: {summary}");
        assert_eq!(negate["test"], "negate_sane", "{bin}: {summary}");
    }
}
