//! Packaging (issue 19): the `.deb` that `scripts/deb.sh` builds installs into a clean root
//! (`dpkg --root` into an empty directory with a dpkg database of its own) and a C program builds
//! against what it installed, runs its in vivo tests and journals them; its man pages and
//! completions are there; every tool says the version the packages carry.

use invite_tests::*;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

fn sh(cmd: &mut Command) -> Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed:\n{}", text(&o));
    o
}

fn stdout(o: Output) -> String {
    String::from_utf8(o.stdout).expect("UTF-8 output")
}

/// Build the `.deb` into `out` from what the workspace build made; returns its path.
fn build_deb(out: &Path) -> std::path::PathBuf {
    let o = sh(Command::new(workspace().join("scripts/deb.sh"))
        .args(["--no-build", "-o"])
        .arg(out)
        .env("CARGO_TARGET_DIR", profile_dir().parent().unwrap()));
    let deb = stdout(o).trim().to_string();
    assert!(deb.ends_with(".deb"), "deb.sh printed {deb:?}");
    deb.into()
}

/// `dpkg --root` into an empty directory: the package's files land below it, its database too.
fn install_into_clean_root(deb: &Path, root: &Path) {
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/lib/dpkg/triggers",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    // The clean root has no libc6 package to satisfy Depends; the host's libc runs the tools.
    sh(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-depends", "--force-not-root", "-i"])
        .arg(deb));
    let o = sh(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f", "${Status} ${Version}", "invite"]));
    assert_eq!(
        stdout(o),
        format!("install ok installed {}", env!("CARGO_PKG_VERSION"))
    );
}

/// fixtures/c/project instrumented by `precompile` and built in `work` with `flags` (its
/// `--cflags --libs`); run as root, it prints what the plain build prints and journals two passes.
/// Returns the journal, or `None` where pods cannot run.
fn build_and_run_the_project(
    precompile: impl Fn() -> Command,
    flags: &str,
    work: &Path,
) -> Option<Vec<serde_json::Value>> {
    let src = fixture("c/project");
    std::fs::create_dir(work).unwrap();
    sh(precompile()
        .arg(src.join("calc.c"))
        .arg(src.join("calc.ic"))
        .arg("-o")
        .arg(work.join("calc.invite.c")));
    let exe = work.join("calc");
    let (cflags, libs) = flags.split_once(' ').expect("--cflags --libs");
    sh(Command::new("cc")
        .current_dir(work)
        .arg(format!("-I{}", src.display()))
        .arg(cflags)
        .arg(src.join("main.c"))
        .arg("calc.invite.c")
        .arg("-o")
        .arg(&exe)
        .args(libs.split_whitespace()));
    if !require_root("pods") {
        return None;
    }
    let o = run(&exe, &[], work, &[("INVITE_MAX_OVERHEAD", "off")]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "5\n10\ntotal 15\n");
    let j = journal(&work.join("invite.jsonl"));
    let outcomes: Vec<_> = tests_of(&j).iter().map(|t| t["outcome"].clone()).collect();
    assert_eq!(outcomes, ["pass", "pass"], "{j:#?}");
    Some(j)
}

#[test]
fn deb_installs_into_a_clean_root_and_builds_a_program() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        panic!("dpkg-deb is missing (a Debian machine has it; apt-get install dpkg)");
    }
    let d = scratch();
    let deb = build_deb(&d.path().join("out"));
    assert!(
        deb.file_name().unwrap().to_string_lossy()
            == format!("invite_{}_amd64.deb", env!("CARGO_PKG_VERSION"))
            || !cfg!(target_arch = "x86_64")
    );
    let root = d.path().join("root");
    install_into_clean_root(&deb, &root);
    let usr = root.join("usr");

    // Versions in one place: the workspace's, which every tool reports.
    for tool in ["invite", "invite-precompile"] {
        let v = stdout(sh(Command::new(usr.join("bin").join(tool)).arg("--version")));
        assert_eq!(v.trim(), format!("{tool} {}", env!("CARGO_PKG_VERSION")));
    }
    // Man pages (from clap) and completions.
    for tool in ["invite", "invite-precompile", "invite-cc"] {
        let gz = usr.join(format!("share/man/man1/{tool}.1.gz"));
        let mut page = String::new();
        let o = sh(Command::new("gzip").arg("-dc").arg(&gz));
        o.stdout.as_slice().read_to_string(&mut page).unwrap();
        assert!(page.contains(&format!(".TH {tool} 1")), "{gz:?}:\n{page}");
    }
    for f in [
        "share/bash-completion/completions/invite",
        "share/zsh/vendor-completions/_invite-precompile",
        "share/fish/vendor_completions.d/invite.fish",
        "lib/pkgconfig/invite.pc",
        "lib/cmake/invite/inviteConfig.cmake",
        "include/invite.h",
        "lib/libinvite.so.0",
    ] {
        assert!(usr.join(f).exists(), "{f} is not in the package");
    }

    // A C program built with the installed tools only: they find the header and the library
    // beside themselves (the paths adjusted to the clean root).
    let flags = stdout(sh(
        Command::new(usr.join("bin/invite-precompile")).args(["--cflags", "--libs"])
    ));
    assert!(
        flags.starts_with(&format!("-I{} ", usr.join("include").display())),
        "{flags}"
    );
    let precompile = || Command::new(usr.join("bin/invite-precompile"));
    let Some(j) = build_and_run_the_project(precompile, &flags, &d.path().join("work")) else {
        return;
    };
    // The records name the runtime that wrote them: the package's version.
    assert!(j
        .iter()
        .all(|r| r["runtime_version"] == env!("CARGO_PKG_VERSION")));
}

/// `cargo install` of the precompiler and the CLI: working tools. The precompiler installed alone
/// has no library beside it, so `--libs` builds `libinvite.a` once into the cache (from the
/// runtime package it was built with) and a C program links against it and runs its tests.
#[test]
fn cargo_install_gives_working_tools() {
    let d = scratch();
    let root = d.path().join("cargo-root");
    for package in ["instrumenter", "cli"] {
        // The workspace's target directory: the install reuses what the suite built.
        sh(
            Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
                .args(["install", "--locked", "--quiet", "--path"])
                .arg(workspace().join(package))
                .arg("--root")
                .arg(&root)
                .env("CARGO_TARGET_DIR", profile_dir().parent().unwrap()),
        );
    }
    let bin = root.join("bin");
    let v = stdout(sh(Command::new(bin.join("invite")).arg("--version")));
    assert_eq!(v.trim(), format!("invite {}", env!("CARGO_PKG_VERSION")));

    let cache = d.path().join("cache");
    let precompile = || {
        let mut c = Command::new(bin.join("invite-precompile"));
        c.env("XDG_CACHE_HOME", &cache)
            .env_remove("INVITE_LIB_DIR")
            .env_remove("INVITE_INCLUDE_DIR");
        c
    };
    let o = sh(precompile().args(["--cflags", "--libs"]));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("first use"),
        "{}",
        text(&o)
    );
    let lib = cache.join(format!(
        "invite/{}/target/release/libinvite.a",
        env!("CARGO_PKG_VERSION")
    ));
    let flags = stdout(o);
    assert!(flags.contains(&lib.display().to_string()), "{flags}");
    // Built once: the second call finds it.
    let o = sh(precompile().arg("--libs"));
    assert!(o.stderr.is_empty(), "{}", text(&o));

    build_and_run_the_project(precompile, &flags, &d.path().join("work"));
}

/// `cargo add invite-rt` (here from the workspace's path, as it is not published from here): the
/// dependency is written under the package's name and the code reads `invite::`.
#[test]
fn cargo_add_invite_rt_and_use_it_as_invite() {
    let d = scratch();
    let app = d.path().join("app");
    let cargo = || {
        let mut c = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
        c.current_dir(&app)
            .env("CARGO_TARGET_DIR", profile_dir().parent().unwrap());
        c
    };
    sh(
        Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
            .args(["new", "--quiet", "--vcs", "none", "app"])
            .current_dir(d.path()),
    );
    sh(cargo()
        .args(["add", "--quiet", "--offline", "--path"])
        .arg(workspace().join("runtime")));
    let manifest = std::fs::read_to_string(app.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("invite-rt = {"), "{manifest}");
    std::fs::write(
        app.join("src/main.rs"),
        r#"#[invite::in_vivo(test = positive, probability = 1.0)]
fn double(x: i64) -> i64 {
    x * 2
}

fn positive(x: i64) -> bool {
    x > 0
}

fn main() {
    println!("{}", double(21));
}
"#,
    )
    .unwrap();
    sh(cargo().args(["build", "--quiet", "--offline", "--release"]));
    let exe = profile_dir().join("app");
    if !require_root("pods") {
        return;
    }
    let o = run(&exe, &[], &app, &[("INVITE_MAX_OVERHEAD", "off")]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "42\n");
    let j = journal(&app.join("invite.jsonl"));
    let t = tests_of(&j);
    assert_eq!(t.len(), 1, "{j:#?}");
    assert_eq!(t[0]["function"], "app::double");
    assert_eq!(t[0]["outcome"], "pass");
    assert_eq!(t[0]["runtime_version"], env!("CARGO_PKG_VERSION"));
}
