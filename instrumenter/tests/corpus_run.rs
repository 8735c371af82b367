//! Real libraries built with every function instrumented and run: bzip2's own `make test` and
//! lz4's command-line program, built by their own Makefiles (same flags as the uninstrumented
//! build, the compiler wrapped only to add the runtime), against the real runtime at a low
//! probability. Their output is byte-identical to the uninstrumented build's and every test that
//! ran passed (the journal says so).
//!
//! Minutes of compiling and pods, so `#[ignore]`d in the default run; run them with
//! `cargo test --release -p invite-instrumenter --test corpus_run -- --ignored`
//! (needs `cargo build --release -p invite-clib` for libinvite.a, and root or user namespaces).

mod support;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::corpus::*;
use support::instrumented::*;

/// A library built twice by its own Makefile (in `dir` of its tree, target `target`): as it is,
/// and with every function instrumented.
struct Built {
    work: tempfile::TempDir,
    plain: PathBuf,
    inst: PathBuf,
    counts: Counts,
    journal: PathBuf,
    cc_arg: String,
}

impl Built {
    fn new(lib: &Library, dir: &str, target: &str) -> Option<Built> {
        let work = tempfile::tempdir().unwrap();
        let (plain, inst, counts) = prepare(lib, work.path());
        let (cc, _) = compiler_wrapper(work.path())?;
        let built = Built {
            journal: work.path().join("invite.jsonl"),
            cc_arg: format!("CC={}", cc.display()),
            work,
            plain,
            inst,
            counts,
        };
        make(&built.plain.join(dir), &[target], &[]);
        make(
            &built.inst.join(dir),
            &[&built.cc_arg, target],
            &built.env(),
        );
        Some(built)
    }

    /// The environment the instrumented programs run in.
    fn env(&self) -> Vec<(&'static str, String)> {
        testing_env(&self.journal)
    }

    /// `tree/program ARGS`, in the invite environment; it must succeed.
    fn run(
        &self,
        tree: &Path,
        program: &str,
        args: &[&std::ffi::OsStr],
        stdio: Option<(&Path, &Path)>,
    ) {
        let mut cmd = Command::new(tree.join(program));
        cmd.args(args).envs(self.env());
        if let Some((input, output)) = stdio {
            cmd.stdin(std::fs::File::open(input).unwrap())
                .stdout(std::fs::File::create(output).unwrap());
        }
        assert!(
            cmd.status().unwrap().success(),
            "{program} {args:?} in {}",
            tree.display()
        );
    }

    /// Every test that ran passed; at least one ran.
    fn report(&self, name: &str) {
        let ran = all_passed(&self.journal);
        eprintln!(
            "{name}: {} of {} definitions instrumented; {ran} in vivo tests ran and passed",
            self.counts.instrumented, self.counts.found
        );
        assert!(ran > 0, "no in vivo test ran at p = {PROBABILITY}");
    }
}

#[test]
#[ignore = "minutes: builds bzip2 twice and runs its tests with every function instrumented"]
fn bzip2_make_test_with_every_function_instrumented() {
    let Some(b) = Built::new(&BZIP2, ".", "bzip2") else {
        return;
    };
    // bzip2's own test: compresses and decompresses its samples and compares with the references.
    make(&b.inst, &[&b.cc_arg, "test"], &b.env());
    for n in 1..=3 {
        for tree in [&b.plain, &b.inst] {
            let (input, output) = (
                tree.join(format!("sample{n}.ref")),
                tree.join(format!("sample{n}.out")),
            );
            b.run(tree, "bzip2", &["-1".as_ref()], Some((&input, &output)));
        }
        assert!(
            std::fs::read(b.plain.join(format!("sample{n}.out"))).unwrap()
                == std::fs::read(b.inst.join(format!("sample{n}.out"))).unwrap(),
            "sample{n}: the instrumented bzip2 compresses differently"
        );
    }
    b.report("bzip2");
}

#[test]
#[ignore = "minutes: builds the lz4 program twice and round-trips files with every function instrumented"]
fn lz4_program_with_every_function_instrumented() {
    let Some(b) = Built::new(&LZ4, "programs", "lz4") else {
        return;
    };
    // Inputs: lz4's own source, and a megabyte of mixed text.
    let data = b.work.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut mixed = Vec::new();
    for i in 0..60_000u32 {
        mixed.extend_from_slice(
            format!("{i} {} lz4 ", i.wrapping_mul(2_654_435_761) % 977).as_bytes(),
        );
    }
    std::fs::write(data.join("mixed"), &mixed).unwrap();
    std::fs::copy(b.plain.join("lib/lz4.c"), data.join("lz4.c")).unwrap();
    let (out, back) = (b.work.path().join("out.lz4"), b.work.path().join("back"));
    for file in ["mixed", "lz4.c"] {
        let input = data.join(file);
        for level in ["-1", "-9", "--fast=3"] {
            let mut outputs = Vec::new();
            for tree in [&b.plain, &b.inst] {
                let args = [
                    level.as_ref(),
                    "-f".as_ref(),
                    "-q".as_ref(),
                    input.as_os_str(),
                    out.as_os_str(),
                ];
                b.run(tree, "programs/lz4", &args, None);
                let args = [
                    "-d".as_ref(),
                    "-f".as_ref(),
                    "-q".as_ref(),
                    out.as_os_str(),
                    back.as_os_str(),
                ];
                b.run(tree, "programs/lz4", &args, None);
                assert!(
                    std::fs::read(&back).unwrap() == std::fs::read(&input).unwrap(),
                    "{file} {level}: the round trip changed it"
                );
                outputs.push(std::fs::read(&out).unwrap());
            }
            assert!(
                outputs[0] == outputs[1],
                "{file} {level}: the instrumented lz4 compresses differently"
            );
        }
    }
    b.report("lz4");
}
