//! Real libraries from the cargo registry (lz4, zstd, bzip2, pcre2, liblzma, curl, jemalloc): every source file of the
//! library's own source list gets a `--skeleton` `.ic`, is instrumented with it, and compiles
//! with the library's own flags and configuration (`gcc -fsyntax-only`), with no warning the
//! uninstrumented file does not have. At least 99 % of the non-variadic definitions are
//! instrumented; the counts are printed per library (found, instrumented, skipped by reason).
//!
//! Building and running the libraries' own programs with every function instrumented is in
//! tests/corpus_run.rs (`#[ignore]`d: minutes of compiling).

mod support;
use std::path::Path;
use std::process::Command;
use support::corpus::*;
use support::*;

/// `gcc FLAGS -fsyntax-only SRC` in `tree`: the warnings it prints.
fn syntax_check(lib: &Library, tree: &Path, src: &str) -> usize {
    let text = run_ok(
        Command::new("gcc")
            .args(lib.all_flags(tree))
            .arg("-fsyntax-only")
            .arg("-I")
            .arg(include_dir())
            .arg(src)
            .current_dir(tree),
        &format!("gcc -fsyntax-only {src} in {}", tree.display()),
    );
    text.matches("warning:").count()
}

fn check_library(lib: &Library) {
    let work = tempfile::tempdir().unwrap();
    let (plain, inst, c) = prepare(lib, work.path());
    for src in &lib.all_sources(&plain) {
        assert_eq!(
            syntax_check(lib, &inst, src),
            syntax_check(lib, &plain, src),
            "{}: {src}: the instrumented file has warnings the original has not",
            lib.name
        );
    }
    let eligible = c.found - c.variadic;
    eprintln!(
        "corpus {}: {} definitions found, {} instrumented ({:.1} % of {} non-variadic), skipped: {:?}",
        lib.name,
        c.found,
        c.instrumented,
        100.0 * c.instrumented as f64 / eligible.max(1) as f64,
        eligible,
        c.skipped
    );
    assert!(c.found > 0, "{}: no definitions found", lib.name);
    assert!(
        c.instrumented * 100 >= eligible * 99,
        "{}: fewer than 99 % of the non-variadic definitions instrumented: {c:?}",
        lib.name
    );
}

#[test]
fn lz4_every_function_instrumented_compiles() {
    check_library(&LZ4);
}

#[test]
fn zstd_every_function_instrumented_compiles() {
    check_library(&ZSTD);
}

#[test]
fn bzip2_every_function_instrumented_compiles() {
    check_library(&BZIP2);
}

#[test]
fn pcre2_every_function_instrumented_compiles() {
    check_library(&PCRE2);
}

#[test]
fn lzma_every_function_instrumented_compiles() {
    check_library(&LZMA);
}

#[test]
fn curl_every_function_instrumented_compiles() {
    check_library(&CURL);
}

#[test]
fn jemalloc_every_function_instrumented_compiles() {
    check_library(&JEMALLOC);
}
