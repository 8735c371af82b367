//! What the precompiler writes and what it accepts, against careless and hostile input: it never
//! writes over its inputs or over anything but a regular file (`/dev/null` is written to, never
//! replaced), refuses an input it produced itself, refuses `.ic` names that collide with the C
//! file's or generated ones, survives any nesting depth, and says what `--dir` skipped.

mod support;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::*;

const C: &str = "int count;\n\nint foo(int a)\n{\n    return a + count;\n}\n";
const IC: &str = "int foo(int a) pre\nvoid t(int a) .5 { }\n";

fn files(c: &str, ic: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("m.c");
    let icp = dir.path().join("m.ic");
    std::fs::write(&cp, c).unwrap();
    std::fs::write(&icp, ic).unwrap();
    (dir, cp, icp)
}

fn bin(args: &[&Path]) -> Output {
    precompile(args)
}

fn refused(o: &Output, words: &str) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains(words), "expected `{words}` in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn output_onto_an_input_is_refused() {
    let (dir, c, ic) = files(C, IC);
    for target in [&c, &ic] {
        refused(
            &bin(&[&c, &ic, "-o".as_ref(), target]),
            "refusing to write the output",
        );
    }
    let link = dir.path().join("link.c");
    std::os::unix::fs::symlink(&c, &link).unwrap();
    refused(&bin(&[&c, &ic, "-o".as_ref(), &link]), "it is the input");
    assert_eq!(std::fs::read_to_string(&c).unwrap(), C);
    assert_eq!(std::fs::read_to_string(&ic).unwrap(), IC);
    // --dir X --out X: every output would be its input.
    let o = Command::new(env!("CARGO_BIN_EXE_invite-precompile"))
        .arg("--dir")
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("."))
        .output()
        .unwrap();
    refused(&o, "every output would overwrite its input");
    assert_eq!(std::fs::read_to_string(&c).unwrap(), C);
    // --skeleton never replaces a file (it may be a .ic someone wrote).
    refused(
        &bin(&["--skeleton".as_ref(), &c, "-o".as_ref(), &ic]),
        "refusing to write the skeleton",
    );
    assert_eq!(std::fs::read_to_string(&ic).unwrap(), IC);
}

#[test]
fn an_instrumented_file_is_not_instrumented_again() {
    let (dir, c, ic) = files(C, IC);
    let out = dir.path().join("out.c");
    assert!(bin(&[&c, &ic, "-o".as_ref(), &out]).status.success());
    let o = bin(&[&out, &ic]);
    refused(&o, "already instrumented");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.starts_with(&format!("{}:", out.display())),
        "located in the input: {stderr}"
    );
}

fn is_char_device(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

fn mknod(path: &Path, like: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(like).unwrap().rdev();
    let (major, minor) = ((rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & !0xff));
    Command::new("mknod")
        .arg(path)
        .args(["c", &major.to_string(), &minor.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn only_regular_files_are_written_and_dev_null_is_written_to() {
    let (dir, c, ic) = files(C, IC);
    // A FIFO (never opened: that would hang) and a directory are refused and left as they are.
    let fifo = dir.path().join("fifo.c");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    refused(&bin(&[&c, &ic, "-o".as_ref(), &fifo]), "it is a FIFO");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    refused(&bin(&[&c, &ic, "-o".as_ref(), &sub]), "it is a directory");
    assert!(sub.is_dir());
    // Devices need root to make; the real /dev/null is only tried once its copy passed.
    let zero = dir.path().join("zero");
    let null = dir.path().join("null");
    if !(mknod(&zero, "/dev/zero") && mknod(&null, "/dev/null")) {
        cannot_run("mknod failed (not root?), so device outputs are not checked");
        return;
    }
    refused(
        &bin(&[&c, &ic, "-o".as_ref(), &zero]),
        "it is a character device",
    );
    assert!(is_char_device(&zero), "a device is never replaced");
    // `-o /dev/null`, the "just check it" idiom: success, and still the device.
    let o = bin(&[&c, &ic, "-o".as_ref(), &null]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(is_char_device(&null), "/dev/null stays a character device");
    let o = bin(&["--skeleton".as_ref(), &c, "-o".as_ref(), &null]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(is_char_device(&null));
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 6, "no temporary files left");
    let real = Path::new("/dev/null");
    assert!(bin(&[&c, &ic, "-o".as_ref(), real]).status.success());
    assert!(is_char_device(real), "/dev/null stays a character device");
}

#[test]
fn ic_names_that_collide_are_refused_at_the_ic_line() {
    for (ic, at, words) in [
        // a test named like the C file's global
        (
            "int foo(int a) pre\nvoid count(int a) 1 { }\n",
            (2, 6),
            "`count` is already a name in",
        ),
        // a helper variable named like it
        (
            "static int count = 1;\nint foo(int a) pre\nvoid t(int a) 1 { }\n",
            (1, 12),
            "`count` is already a name in",
        ),
        (
            "int foo(int a) pre\nvoid main(int a) 1 { }\n",
            (2, 6),
            "entry point",
        ),
        (
            "int foo(int a) pre\nvoid printf(int a) 1 { }\n",
            (2, 6),
            "C library function",
        ),
        (
            "int foo(int a) pre\nvoid invite_site_0(int a) 1 { }\n",
            (2, 6),
            "reserved",
        ),
        (
            "int foo(int a) pre\nvoid _foo(int a) 1 { }\n",
            (2, 6),
            "the name the original `foo` gets",
        ),
        // a helper function named like a generated identifier
        (
            "int foo(int a) pre\nstatic int invite_ret(void) { return 0; }\nvoid t(int a) 1 { }\n",
            (2, 12),
            "reserved",
        ),
    ] {
        let (_dir, c, icp) = files(C, ic);
        let o = bin(&[&c, &icp]);
        refused(&o, words);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let place = format!("{}:{}:{}: error: ", icp.display(), at.0, at.1);
        assert!(stderr.starts_with(&place), "expected {place}: {stderr}");
    }
    // Declarations of the C file's names are not collisions.
    let ic = "extern int count;\nint foo(int a);\nint foo(int a) pre\nvoid t(int a) 1 { }\n";
    let (_dir, c, icp) = files(C, ic);
    let o = bin(&[&c, &icp]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The exit status of a run: 0 or 1, never a signal (a stack overflow is SIGSEGV/SIGABRT).
fn exits(o: &Output) -> i32 {
    let stderr = String::from_utf8_lossy(&o.stderr);
    let code = o
        .status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {:?}; {stderr}", o.status));
    assert!(code == 0 || code == 1, "{code}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    code
}

#[test]
fn deep_nesting_never_overflows_the_stack() {
    const N: usize = 100_000;
    let deep_body = format!(
        "int foo(int a)\n{{\n{} a +; {}\n}}\n",
        "{".repeat(N),
        "}".repeat(N)
    );
    let deep_head = format!(
        "int foo{}int a{}\n{{ return a; }}\n",
        "(".repeat(N),
        ")".repeat(N)
    );
    let deep_proto = format!(
        "int foo{}int a{} pre\nvoid t(int a) 1 {{ }}\n",
        "(".repeat(N),
        ")".repeat(N)
    );
    let deep_test = format!(
        "int foo(int a) pre\nvoid t(int a) 1 {{ {} }}\n",
        "{}".repeat(N)
    );
    let deep_test_nested = format!(
        "int foo(int a) pre\nvoid t(int a) 1 {{ {}{} }}\n",
        "{".repeat(N),
        "}".repeat(N)
    );
    // A body is never parsed: instrumented as written (the compiler reports its error).
    let (_d, c, ic) = files(&deep_body, IC);
    assert_eq!(exits(&bin(&[&c, &ic])), 0);
    assert_eq!(exits(&bin(&["--skeleton".as_ref(), &c])), 0);
    // A head nested past the limit: a located error.
    let (_d, c, ic) = files(&deep_head, IC);
    let o = bin(&[&c, &ic]);
    assert_eq!(exits(&o), 1);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.starts_with(&format!("{}:1:", c.display())) && stderr.contains("deeper than"),
        "{stderr}"
    );
    assert!(exits(&bin(&["--skeleton".as_ref(), &c])) <= 1);
    let (_d, c, ic) = files(C, &deep_proto);
    let o = bin(&[&c, &ic]);
    assert_eq!(exits(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("deeper than"));
    for test in [&deep_test, &deep_test_nested] {
        let (_d, c, ic) = files(C, test);
        assert_eq!(exits(&bin(&[&c, &ic])), 0);
    }
}

#[test]
fn dir_mode_says_what_it_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("x.c"), C).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("x.c"), src.join("x.c")).unwrap();
    std::fs::write(src.join("x.ic"), IC).unwrap();
    std::fs::write(src.join("lonely.ic"), IC).unwrap();
    std::fs::write(src.join("m.c"), C).unwrap();
    std::fs::write(src.join("m.ic"), IC).unwrap();
    let dst = tmp.path().join("dst");
    let o = Command::new(env!("CARGO_BIN_EXE_invite-precompile"))
        .arg("--dir")
        .arg(&src)
        .arg("--out")
        .arg(&dst)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(dst.join("m.c").is_file());
    assert!(!dst.join("x.c").exists());
    for (file, why) in [
        ("x.c", "skipped: a symbolic link"),
        ("lonely.ic", "skipped: no .c file beside it"),
    ] {
        let line = format!("{}: note: {why}", src.join(file).display());
        assert!(stderr.contains(&line), "expected `{line}` in: {stderr}");
    }
}
