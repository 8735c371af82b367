//! Build integration from an installed prefix (issue 17): `scripts/install.sh` into a temporary
//! prefix, then the small project in fixtures/c/project built, from there, by CMake
//! (`find_package(invite)` + `invite_instrument`), by its own Makefile (its own `%.o` rule, a
//! `*.c` wildcard) with `CC=invite-cc`, as a shared library with `invite-cc -shared`, and with
//! pkg-config. Each program prints what the uninstrumented build prints and journals its tests.

use invite_tests::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The prefix every test builds from, installed once per run of this file.
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let dir = profile_dir().join("build-integration-prefix");
        let _ = std::fs::remove_dir_all(&dir);
        let o = Command::new(workspace().join("scripts/install.sh"))
            .arg("--no-build")
            .arg("--prefix")
            .arg(&dir)
            .env("CARGO_TARGET_DIR", profile_dir().parent().unwrap())
            .output()
            .expect("run scripts/install.sh");
        assert!(o.status.success(), "install.sh failed:\n{}", text(&o));
        dir
    })
}

fn sh(cmd: &mut Command) -> Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed:\n{}", text(&o));
    o
}

/// A private copy of fixtures/c/project.
fn project() -> tempfile::TempDir {
    let d = scratch();
    for e in std::fs::read_dir(fixture("c/project")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), d.path().join(e.file_name())).unwrap();
    }
    d
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The `.c` files a Makefile's `*.c` wildcard sees.
fn c_files(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| f.ends_with(".c"))
        .collect()
}

/// What the program prints built without invite.
fn plain_output() -> String {
    let d = project();
    let exe = d.path().join("plain");
    sh(Command::new("cc")
        .args(["main.c", "calc.c", "-o"])
        .arg(&exe)
        .current_dir(d.path()));
    String::from_utf8(sh(&mut Command::new(&exe)).stdout).unwrap()
}

/// Run an instrumented build of the program: it prints what the plain build prints; returns the
/// outcomes its journal records for `clamp_add`'s test (two calls, each sampled).
fn outcomes(exe: &Path, dir: &Path) -> Vec<String> {
    let journal = dir.join("invite.jsonl");
    let _ = std::fs::remove_file(&journal);
    let o = run(exe, &[], dir, &[("INVITE_MAX_OVERHEAD", "off")]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        plain_output(),
        "{}",
        text(&o)
    );
    let j = journal_of(&journal);
    let tests = tests_of(&j);
    assert!(
        tests
            .iter()
            .all(|t| t["function"] == "clamp_add" && t["test"] == "within_bound"),
        "{j:#?}"
    );
    assert_eq!(tests.len(), 2, "{j:#?}");
    tests
        .iter()
        .map(|t| t["outcome"].as_str().unwrap().to_string())
        .collect()
}

fn journal_of(p: &Path) -> Vec<serde_json::Value> {
    assert!(p.exists(), "no journal at {}", p.display());
    journal(p)
}

fn passes() -> Vec<String> {
    vec!["pass".into(), "pass".into()]
}

/// Make the test fail on the same program: only the `.ic` changes.
fn break_the_test(dir: &Path) {
    let ic = dir.join("calc.ic");
    let s = std::fs::read_to_string(&ic).unwrap();
    let broken = s.replace("return retVal <= hi", "return retVal > hi");
    assert_ne!(s, broken);
    std::fs::write(&ic, broken).unwrap();
}

#[test]
fn installed_tools_point_into_the_prefix() {
    let p = prefix();
    for f in [
        "bin/invite-precompile",
        "bin/invite",
        "bin/invite-cc",
        "lib/libinvite.a",
        "include/invite.h",
        "lib/pkgconfig/invite.pc",
        "lib/cmake/invite/inviteConfig.cmake",
        "lib/cmake/invite/inviteConfigVersion.cmake",
    ] {
        assert!(p.join(f).is_file(), "{f} is not installed");
    }
    let so = p.join("lib/libinvite.so");
    assert_eq!(
        std::fs::read_link(&so).unwrap(),
        Path::new("libinvite.so.0")
    );
    let o = sh(Command::new("readelf").arg("-d").arg(&so));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Library soname: [libinvite.so.0]"),
        "{}",
        text(&o)
    );
    let o = sh(Command::new(p.join("bin/invite-precompile")).args(["--cflags", "--libs"]));
    let flags = String::from_utf8(o.stdout).unwrap();
    assert!(
        flags.starts_with(&format!(
            "-I{} {}",
            p.join("include").display(),
            p.join("lib/libinvite.a").display()
        )),
        "{flags}"
    );
}

/// Configure and build `dir` with CMake (`define`: how it finds invite); the program passes its
/// tests, nothing is written beside the sources, and after editing only the `.ic` a rebuild
/// gives a program that fails them.
fn cmake_builds_and_rebuilds(dir: &Path, define: &str) {
    let before = files(dir);
    let build = dir.join("build");
    sh(Command::new("cmake")
        .arg("-S")
        .arg(dir)
        .arg("-B")
        .arg(&build)
        .arg(define));
    sh(Command::new("cmake").arg("--build").arg(&build));
    assert_eq!(outcomes(&build.join("calc"), dir), passes());
    let mut after = files(dir);
    after.remove("build");
    after.remove("invite.jsonl");
    assert_eq!(after, before, "the build wrote beside the sources");
    break_the_test(dir);
    sh(Command::new("cmake").arg("--build").arg(&build));
    assert_eq!(outcomes(&build.join("calc"), dir), vec!["fail", "fail"]);
}

#[test]
fn cmake_with_invite_cc_as_the_compiler() {
    if !require_root("pods") {
        return;
    }
    let d = project();
    // A CMake project that knows nothing about invite.
    let lists = std::fs::read_to_string(d.path().join("CMakeLists.txt")).unwrap();
    let plain: String = lists
        .lines()
        .filter(|l| !l.contains("invite"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(d.path().join("CMakeLists.txt"), plain).unwrap();
    let cc = prefix().join("bin/invite-cc");
    cmake_builds_and_rebuilds(d.path(), &format!("-DCMAKE_C_COMPILER={}", cc.display()));
}

#[test]
fn cmake_find_package_and_invite_instrument() {
    if !require_root("pods") {
        return;
    }
    let d = project();
    cmake_builds_and_rebuilds(
        d.path(),
        &format!("-DCMAKE_PREFIX_PATH={}", prefix().display()),
    );
    // A version request is checked against the installed version.
    std::fs::write(
        d.path().join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.13)\nproject(v C)\nfind_package(invite 99 CONFIG REQUIRED)\n",
    )
    .unwrap();
    let o = Command::new("cmake")
        .arg("-S")
        .arg(d.path())
        .arg("-B")
        .arg(d.path().join("b2"))
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix().display()))
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
}

fn make(dir: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new("make");
    cmd.arg(format!("CC={}", prefix().join("bin/invite-cc").display()))
        .args(extra)
        .current_dir(dir);
    cmd.output().unwrap()
}

#[test]
fn makefile_with_its_own_rule_and_a_wildcard_via_invite_cc() {
    if !require_root("pods") {
        return;
    }
    let d = project();
    let o = make(d.path(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(outcomes(&d.path().join("calc"), d.path()), passes());
    // Nothing generated beside the sources: the *.c wildcard sees the project's own files only.
    assert_eq!(c_files(d.path()), ["calc.c", "main.c"]);
    let deps = std::fs::read_to_string(d.path().join("calc.d")).unwrap();
    assert!(deps.starts_with("calc.o: calc.c calc.ic "), "{deps}");
    // Editing only the .ic rebuilds calc.o through the dependency file.
    break_the_test(d.path());
    let o = make(d.path(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let log = String::from_utf8_lossy(&o.stdout);
    assert!(
        log.contains("-c calc.c -o calc.o") && !log.contains("main.c"),
        "{log}"
    );
    assert_eq!(
        outcomes(&d.path().join("calc"), d.path()),
        vec!["fail", "fail"]
    );
    // A bad .ic is the compiler's error, at its place, and fails the build.
    std::fs::write(
        d.path().join("calc.ic"),
        "int nothere(void) pre\nvoid t(void) 1 { }\n",
    )
    .unwrap();
    let o = make(d.path(), &[]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("calc.ic:1:5: error: `nothere` is not defined"),
        "{err}"
    );
}

#[test]
fn other_commands_pass_through_and_plain_links_do_not_change() {
    let d = project();
    let cc = prefix().join("bin/invite-cc");
    let out = |cmd: &mut Command| sh(cmd.current_dir(d.path())).stdout;
    assert_eq!(
        out(Command::new(&cc).arg("--version")),
        out(Command::new("cc").arg("--version"))
    );
    // -E of an instrumented source is the plain preprocessor output.
    assert_eq!(
        out(Command::new(&cc).args(["-E", "calc.c"])),
        out(Command::new("cc").args(["-E", "calc.c"]))
    );
    // A program none of whose objects uses the runtime links exactly as without the wrapper,
    // even one that needs compiler builtins the Rust runtime also carries (__muldc3).
    std::fs::write(
        d.path().join("cplx.c"),
        "#include <complex.h>\n#include <stdio.h>\nint main(int c, char **v) { (void)v;\n\
         double complex z = c + 2.0 * I; z = z * (z + c * I); printf(\"%f\\n\", creal(z)); return 0; }\n",
    )
    .unwrap();
    sh(Command::new("cc")
        .args(["cplx.c", "-o", "a"])
        .current_dir(d.path()));
    sh(Command::new(&cc)
        .args(["cplx.c", "-o", "b"])
        .current_dir(d.path()));
    let a = std::fs::read(d.path().join("a")).unwrap();
    let b = std::fs::read(d.path().join("b")).unwrap();
    assert!(
        a == b,
        "invite-cc changed a link that does not use the runtime"
    );
}

/// The dynamic symbols a shared object defines.
fn exported(so: &Path) -> BTreeSet<String> {
    let o = sh(Command::new("nm").args(["-D", "--defined-only"]).arg(so));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(String::from))
        .collect()
}

#[test]
fn shared_library_exports_only_its_own_symbols_and_the_api() {
    if !require_root("pods") {
        return;
    }
    let d = project();
    let cc = prefix().join("bin/invite-cc");
    sh(Command::new(&cc)
        .args(["-shared", "-fPIC", "-O1", "calc.c", "-o", "libcalc.so"])
        .current_dir(d.path()));
    let api = exported(&prefix().join("lib/libinvite.so"));
    assert!(
        api.contains("ckpt") && api.contains("invite_pod_enter"),
        "{api:?}"
    );
    let mut want: BTreeSet<String> = ["clamp_add", "calc_total"].map(String::from).into();
    want.extend(api);
    assert_eq!(exported(&d.path().join("libcalc.so")), want);
    // A program links the library with the plain compiler: the runtime is inside it.
    sh(Command::new("cc")
        .args(["main.c", "-L.", "-lcalc", "-o", "calc"])
        .arg(format!("-Wl,-rpath,{}", d.path().display()))
        .current_dir(d.path()));
    assert_eq!(outcomes(&d.path().join("calc"), d.path()), passes());
}

#[test]
fn pkg_config_build() {
    if !require_root("pods") {
        return;
    }
    let d = project();
    let pc = |what: &str| {
        let o = sh(Command::new("pkg-config")
            .args([what, "invite"])
            .env("PKG_CONFIG_PATH", prefix().join("lib/pkgconfig")));
        String::from_utf8(o.stdout)
            .unwrap()
            .split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let (cflags, libs) = (pc("--cflags"), pc("--libs"));
    assert_eq!(
        cflags,
        [format!("-I{}", prefix().join("include").display())]
    );
    assert_eq!(
        libs[0],
        prefix().join("lib/libinvite.a").display().to_string()
    );
    let gen = d.path().join("gen");
    std::fs::create_dir(&gen).unwrap();
    sh(Command::new(prefix().join("bin/invite-precompile"))
        .args(["calc.c", "calc.ic", "-o", "gen/calc.c"])
        .current_dir(d.path()));
    sh(Command::new("cc")
        .args(&cflags)
        .args([
            "-iquote",
            ".",
            "-Wall",
            "-Wextra",
            "-Werror",
            "main.c",
            "gen/calc.c",
            "-o",
            "calc",
        ])
        .args(&libs)
        .current_dir(d.path()));
    assert_eq!(outcomes(&d.path().join("calc"), d.path()), passes());
}

/// The README's make recipe for projects that do not use the wrapper, as written there.
fn readme_make_recipe() -> String {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    readme
        .split("```make\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("INVITE_OBJS"))
        .expect("README.md has a make block with INVITE_OBJS")
        .replace("bank.o", "calc.o")
}

#[test]
fn readme_make_recipe_pasted_into_a_makefile_with_its_own_rule() {
    if !require_root("pods") {
        return;
    }
    let d = project();
    let mut makefile = std::fs::read_to_string(d.path().join("Makefile")).unwrap();
    makefile.push_str(&readme_make_recipe());
    std::fs::write(d.path().join("Makefile"), makefile).unwrap();
    let path = format!(
        "{}:{}",
        prefix().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let make = || {
        let o = Command::new("make")
            .env("PATH", &path)
            .current_dir(d.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    make();
    assert_eq!(outcomes(&d.path().join("calc"), d.path()), passes());
    assert_eq!(c_files(d.path()), ["calc.c", "main.c"]);
    break_the_test(d.path());
    let log = make();
    assert!(log.contains("invite-precompile calc.c calc.ic"), "{log}");
    assert_eq!(
        outcomes(&d.path().join("calc"), d.path()),
        vec!["fail", "fail"]
    );
}
