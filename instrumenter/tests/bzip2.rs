//! A real project: bzip2 1.0.8 (from the crates.io package `bzip2-sys`, fetched with cargo at
//! test time, never committed), bzlib.c instrumented with fixtures/c/bzip2/bzlib.ic and built
//! with bzip2's own Makefile. Its own `make test` passes with INVITE_PROBABILITY=1, the
//! compressed output is byte-identical to an uninstrumented build's, and every test passes —
//! journaled by the real runtime when `libinvite.a` has been built (`cargo build -p invite-clib
//! --release`), else reported by the stub runtime of tests/support.

mod support;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

const TESTS: [&str; 8] = [
    "init_arguments",
    "init_state",
    "compress_result",
    "decompress_result",
    "write_open",
    "write_roundtrip",
    "write_ok",
    "read_result",
];

/// bzip2-1.0.8/ inside the cargo registry, fetched through a scratch crate.
fn bzip2_sources(scratch: &Path) -> PathBuf {
    let dir =
        registry::packages(scratch, &[("bzip2-sys", "0.1.11")])["bzip2-sys"].join("bzip2-1.0.8");
    assert!(
        dir.join("bzlib.c").is_file(),
        "{} has no bzlib.c",
        dir.display()
    );
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn make(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new("make")
        .arg("-s")
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .output()
        .expect("run make");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "make {args:?} failed in {}:\n{text}",
        dir.display()
    );
    text
}

#[test]
fn bzip2_make_test_runs_in_vivo_tests_and_output_is_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let src = bzip2_sources(&tmp.path().join("scratch"));
    let plain = tmp.path().join("plain");
    let orig = tmp.path().join("orig");
    let build = tmp.path().join("build");
    copy_dir(&src, &plain);
    copy_dir(&src, &build);
    std::fs::create_dir_all(&orig).unwrap();
    std::fs::copy(src.join("bzlib.c"), orig.join("bzlib.c")).unwrap();

    // Uninstrumented reference.
    make(&plain, &["bzip2"], &[]);
    for (level, n) in [("-1", 1), ("-2", 2), ("-3", 3)] {
        let input = std::fs::File::open(plain.join(format!("sample{n}.ref"))).unwrap();
        let output = std::fs::File::create(plain.join(format!("sample{n}.plain.bz2"))).unwrap();
        assert!(Command::new(plain.join("bzip2"))
            .arg(level)
            .stdin(input)
            .stdout(output)
            .status()
            .unwrap()
            .success());
    }

    // Instrument bzlib.c (named as bzip2 names it, so sites read `bzlib.c:LINE`).
    let ic = fixtures().join("bzip2/bzlib.ic");
    let o = Command::new(env!("CARGO_BIN_EXE_invite-precompile"))
        .arg("bzlib.c")
        .arg(&ic)
        .arg("-o")
        .arg(build.join("bzlib.c"))
        .current_dir(&orig)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // The instrumented bzlib.c adds no warning to those bzip2's own code has.
    std::fs::copy(src.join("bzlib.c"), plain.join("bzlib_copy.c")).unwrap();
    for cc in compilers() {
        for std in ["c99", "gnu17"] {
            let warnings = |dir: &Path, file: &str| {
                let o = Command::new(cc)
                    .args([
                        &format!("-std={std}"),
                        "-Wall",
                        "-Wextra",
                        "-c",
                        file,
                        "-o",
                        "/dev/null",
                        "-I",
                    ])
                    .arg(include_dir())
                    .current_dir(dir)
                    .output()
                    .unwrap();
                assert!(
                    o.status.success(),
                    "{cc} -std={std} {file}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                String::from_utf8_lossy(&o.stderr)
                    .matches("warning:")
                    .count()
            };
            assert_eq!(
                warnings(&build, "bzlib.c"),
                warnings(&plain, "bzlib_copy.c"),
                "{cc} -std={std}"
            );
        }
    }

    // The runtime: the real one when built, else the stub.
    let runtime = invite_instrumenter::Runtime::locate()
        .ok()
        .filter(|r| r.library.is_some());
    let libs = match &runtime {
        Some(r) => {
            eprintln!("runtime: {}", r.libs().unwrap());
            r.libs().unwrap()
        }
        None => {
            cannot_run("libinvite.a is not built (cargo build --release -p invite-clib), so bzip2 would run on the stub runtime");
            eprintln!("note: libinvite.a not built; linking the stub runtime (cargo build -p invite-clib --release for the real one)");
            let obj = tmp.path().join("stub.o");
            let st = Command::new("gcc")
                .args(["-c", "-O2", "-I"])
                .arg(include_dir())
                .arg(stub_runtime())
                .arg("-o")
                .arg(&obj)
                .status()
                .unwrap();
            assert!(st.success());
            obj.display().to_string()
        }
    };
    let cc = build.join("cc-invite");
    std::fs::write(
        &cc,
        "#!/bin/sh\n# The C compiler, plus the invite runtime when linking (after the objects).\ncase \" $* \" in\n*\" -c \"*) exec gcc \"$@\" ;;\n*) exec gcc \"$@\" $INVITE_LIBS ;;\nesac\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cflags = format!(
        "CFLAGS=-Wall -Winline -O2 -g -D_FILE_OFFSET_BITS=64 -I{}",
        include_dir().display()
    );
    let cc_arg = format!("CC={}", cc.display());
    let journal = tmp.path().join("invite.jsonl");
    let stub_log = tmp.path().join("stub.log");
    let env = [
        ("INVITE_LIBS", libs.as_str()),
        ("INVITE_PROBABILITY", "1"),
        ("INVITE_MAX_OVERHEAD", "off"),
        ("INVITE_MAX_CONCURRENT", "64"),
        ("INVITE_JOURNAL", journal.to_str().unwrap()),
        ("INVITE_STUB_LOG", stub_log.to_str().unwrap()),
    ];
    make(&build, &[&cc_arg, &cflags, "libbz2.a", "bzip2"], &env);
    // bzip2's own test: compresses and decompresses the samples and compares with its .bz2/.ref.
    make(&build, &[&cc_arg, &cflags, "test"], &env);

    for n in 1..=3 {
        let ours = std::fs::read(build.join(format!("sample{n}.rb2"))).unwrap();
        let theirs = std::fs::read(plain.join(format!("sample{n}.plain.bz2"))).unwrap();
        assert!(
            ours == theirs,
            "sample{n}: instrumented output differs from the uninstrumented build"
        );
    }

    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    if runtime.is_some() {
        let text = std::fs::read_to_string(&journal).expect("the runtime wrote a journal");
        for line in text.lines().filter(|l| l.contains("\"kind\":\"test\"")) {
            assert!(
                line.contains("\"outcome\":\"pass\""),
                "a test did not pass: {line}"
            );
            assert!(line.contains("\"site\":\"bzlib.c:"), "{line}");
            let test = line
                .split("\"test\":\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            *seen.entry(test.to_string()).or_default() += 1;
        }
    } else {
        let text = std::fs::read_to_string(&stub_log).expect("the stub ran tests");
        for line in text.lines() {
            assert!(line.ends_with(" pass"), "a test did not pass: {line}");
            *seen
                .entry(line.split(' ').nth(2).unwrap().to_string())
                .or_default() += 1;
        }
    }
    for t in TESTS {
        assert!(seen.contains_key(t), "test `{t}` never ran: {seen:?}");
    }
    eprintln!("in vivo tests passed: {seen:?}");
}
