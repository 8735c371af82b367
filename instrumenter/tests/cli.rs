//! The command line: stdout by default, the sibling `.ic`, `--dir`, `--cflags`, `--libs`,
//! `--pkg-config`; and the library API a build script uses.

mod support;
use std::path::Path;
use std::process::Command;
use support::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_invite-precompile"))
}

#[test]
fn writes_to_stdout_with_the_sibling_ic() {
    let c = fixtures().join("legacy/bank.c");
    let o = precompile(&[&c]);
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("_account_withdraw"));
    assert!(out.contains(&format!(
        "#line 8 \"{}\"",
        fixtures().join("legacy/bank.ic").display()
    )));
    // The library gives the same bytes.
    let lib = invite_instrumenter::instrument_to_vec(&c, None).unwrap();
    assert_eq!(lib, out.as_bytes());
}

#[test]
fn dir_mode_mirrors_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("bank")).unwrap();
    std::fs::create_dir_all(src.join("other")).unwrap();
    std::fs::copy(fixtures().join("legacy/bank.c"), src.join("bank/bank.c")).unwrap();
    std::fs::copy(fixtures().join("legacy/bank.ic"), src.join("bank/bank.ic")).unwrap();
    std::fs::write(src.join("other/plain.c"), "int main(void) { return 0; }\n").unwrap();
    let dst = tmp.path().join("dst");
    let instrument_tree = || {
        bin()
            .arg("--dir")
            .arg(&src)
            .arg("--out")
            .arg(&dst)
            .output()
            .unwrap()
    };
    let o = instrument_tree();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(dst.join("bank/bank.c").is_file());
    assert!(
        !dst.join("other/plain.c").exists(),
        "files without a .ic are not copied"
    );
    let exe = tmp.path().join("bank");
    build(
        "gcc",
        "c99",
        &[&dst.join("bank/bank.c"), &stub_runtime()],
        &exe,
        &[],
    )
    .unwrap();
    // An error in one file: reported as file:line:col, the good files are still written.
    std::fs::write(
        src.join("other/plain.ic"),
        "int nothere(void) pre\nvoid t(void) 1 { }\n",
    )
    .unwrap();
    let o = instrument_tree();
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("plain.ic:1:5: error: `nothere` is not defined"),
        "{stderr}"
    );
    assert!(!dst.join("other/plain.c").exists());
}

#[test]
fn cflags_libs_and_pkg_config() {
    let o = bin().arg("--cflags").output().unwrap();
    assert!(o.status.success());
    let cflags = String::from_utf8(o.stdout).unwrap();
    let inc = cflags.trim().strip_prefix("-I").expect("-I<dir>");
    assert!(Path::new(inc).join("invite.h").is_file(), "{cflags}");
    let o = bin().arg("--libs").output().unwrap();
    let stdout = String::from_utf8(o.stdout).unwrap();
    if o.status.success() {
        let lib = stdout.split_whitespace().next().unwrap();
        assert!(
            lib.ends_with("libinvite.a") && Path::new(lib).is_file(),
            "{stdout}"
        );
        assert!(
            stdout.contains("-lpthread") && stdout.contains("-ldl"),
            "{stdout}"
        );
        let pc = bin().arg("--pkg-config").output().unwrap();
        let pc = String::from_utf8(pc.stdout).unwrap();
        assert!(
            pc.contains("Name: invite")
                && pc.contains("Cflags: -I${includedir}")
                && pc.contains(lib),
            "{pc}"
        );
    } else {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("libinvite.a not found") && stderr.contains("cargo build -p invite"),
            "{stderr}"
        );
    }
}

#[test]
fn build_script_api_writes_the_header() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bank.c");
    invite_instrumenter::instrument_file(&fixtures().join("legacy/bank.c"), None, &out).unwrap();
    let header = invite_instrumenter::write_header(tmp.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(header).unwrap(),
        std::fs::read_to_string(include_dir().join("invite.h")).unwrap()
    );
    let o = Command::new("gcc")
        .args(["-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(tmp.path())
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn usage_errors() {
    let o = bin().output().unwrap();
    assert_eq!(o.status.code(), Some(2), "clap usage error");
    let o = bin().arg("--dir").arg("/tmp").output().unwrap();
    assert_eq!(o.status.code(), Some(2), "--dir needs --out");
}
