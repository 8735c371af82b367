//! The libraries of the corpus tests (tests/corpus.rs, tests/corpus_run.rs): where their sources
//! are in their registry package, how each is configured and compiled, and the step both tests
//! share: a skeleton for every source, instrumented into a copy of the tree.

use super::registry;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Reads `(sources, flags)` from the text of a `-sys` crate's build.rs.
pub type ReadBuildRs = fn(&str) -> (Vec<String>, Vec<String>);

/// A library: where its sources are in its package, how it is configured, what it compiles.
pub struct Library {
    pub name: &'static str,
    pub package: (&'static str, &'static str),
    /// The library's tree inside the package.
    pub tree: &'static str,
    /// A configure step run in the copied tree (jemalloc), before anything is compiled.
    pub configure: &'static [&'static str],
    /// Source files, relative to the tree (the library's documented list).
    pub sources: &'static [&'static str],
    /// Directories (relative to the tree) whose every `.c` is a source too, except names that
    /// contain one of `exclude`.
    pub dirs: &'static [&'static str],
    pub exclude: &'static [&'static str],
    /// Sources and flags read from the tree's `build.rs` (a `-sys` crate's own build), if any.
    pub from_build_rs: Option<ReadBuildRs>,
    /// The flags its build uses (warnings, defines, includes relative to the tree).
    pub flags: &'static [&'static str],
}

pub const LZ4: Library = Library {
    name: "lz4",
    package: ("lz4-sys", "1.11.1"),
    tree: "liblz4",
    configure: &[],
    dirs: &[],
    exclude: &[],
    from_build_rs: None,
    sources: &[
        "lib/lz4.c",
        "lib/lz4hc.c",
        "lib/lz4frame.c",
        "lib/xxhash.c",
        "lib/lz4file.c",
    ],
    // lib/Makefile: DEBUGFLAGS, CPPFLAGS.
    flags: &[
        "-O3",
        "-Wall",
        "-Wextra",
        "-Wcast-qual",
        "-Wcast-align",
        "-Wshadow",
        "-Wswitch-enum",
        "-Wdeclaration-after-statement",
        "-Wstrict-prototypes",
        "-Wundef",
        "-Wpointer-arith",
        "-Wstrict-aliasing=1",
        "-DXXH_NAMESPACE=LZ4_",
        "-Ilib",
    ],
};

pub const ZSTD: Library = Library {
    name: "zstd",
    package: ("zstd-sys", "2.1.3"),
    tree: "zstd/lib",
    configure: &[],
    dirs: &[],
    exclude: &[],
    from_build_rs: None,
    sources: &[
        "common/debug.c",
        "common/entropy_common.c",
        "common/error_private.c",
        "common/fse_decompress.c",
        "common/pool.c",
        "common/threading.c",
        "common/xxhash.c",
        "common/zstd_common.c",
        "compress/fse_compress.c",
        "compress/hist.c",
        "compress/huf_compress.c",
        "compress/zstd_compress.c",
        "compress/zstd_compress_literals.c",
        "compress/zstd_compress_sequences.c",
        "compress/zstd_compress_superblock.c",
        "compress/zstd_double_fast.c",
        "compress/zstd_fast.c",
        "compress/zstd_lazy.c",
        "compress/zstd_ldm.c",
        "compress/zstd_opt.c",
        "compress/zstd_preSplit.c",
        "compress/zstdmt_compress.c",
        "decompress/huf_decompress.c",
        "decompress/zstd_ddict.c",
        "decompress/zstd_decompress.c",
        "decompress/zstd_decompress_block.c",
        "dictBuilder/cover.c",
        "dictBuilder/divsufsort.c",
        "dictBuilder/fastcover.c",
        "dictBuilder/zdict.c",
    ],
    // zstd-sys's build.rs: multithreaded, hidden visibility, the lib and common includes.
    flags: &[
        "-O3",
        "-Wall",
        "-Wextra",
        "-pthread",
        "-DZSTD_MULTITHREAD",
        "-DZSTDLIB_VISIBLE=",
        "-fvisibility=hidden",
        "-I.",
        "-Icommon",
    ],
};

pub const BZIP2: Library = Library {
    name: "bzip2",
    package: ("bzip2-sys", "0.1.11"),
    tree: "bzip2-1.0.8",
    configure: &[],
    dirs: &[],
    exclude: &[],
    from_build_rs: None,
    sources: &[
        "blocksort.c",
        "huffman.c",
        "crctable.c",
        "randtable.c",
        "compress.c",
        "decompress.c",
        "bzlib.c",
        "bzip2.c",
        "bzip2recover.c",
    ],
    // Makefile: CFLAGS.
    flags: &["-Wall", "-Winline", "-O2", "-g", "-D_FILE_OFFSET_BITS=64"],
};

pub const PCRE2: Library = Library {
    name: "pcre2",
    package: ("pcre2-sys", "0.2.10"),
    tree: "upstream",
    configure: &[],
    dirs: &[],
    exclude: &[],
    from_build_rs: None,
    // pcre2-sys's build.rs: every src/*.c but the three that others #include.
    sources: &[
        "src/pcre2_auto_possess.c",
        "src/pcre2_chartables.c",
        "src/pcre2_chkdint.c",
        "src/pcre2_compile.c",
        "src/pcre2_compile_class.c",
        "src/pcre2_config.c",
        "src/pcre2_context.c",
        "src/pcre2_convert.c",
        "src/pcre2_dfa_match.c",
        "src/pcre2_error.c",
        "src/pcre2_extuni.c",
        "src/pcre2_find_bracket.c",
        "src/pcre2_jit_compile.c",
        "src/pcre2_maketables.c",
        "src/pcre2_match.c",
        "src/pcre2_match_data.c",
        "src/pcre2_newline.c",
        "src/pcre2_ord2utf.c",
        "src/pcre2_pattern_info.c",
        "src/pcre2_script_run.c",
        "src/pcre2_serialize.c",
        "src/pcre2_string_utils.c",
        "src/pcre2_study.c",
        "src/pcre2_substitute.c",
        "src/pcre2_substring.c",
        "src/pcre2_tables.c",
        "src/pcre2_ucd.c",
        "src/pcre2_valid_utf.c",
        "src/pcre2_xclass.c",
    ],
    // pcre2-sys's build.rs: its defines (JIT on x86-64) and includes.
    flags: &[
        "-O2",
        "-Wall",
        "-Wextra",
        "-DPCRE2_CODE_UNIT_WIDTH=8",
        "-DHAVE_STDLIB_H=1",
        "-DHAVE_MEMMOVE=1",
        "-DHAVE_CONFIG_H=1",
        "-DPCRE2_STATIC=1",
        "-DSTDC_HEADERS=1",
        "-DSUPPORT_PCRE2_8=1",
        "-DSUPPORT_UNICODE=1",
        "-DSUPPORT_JIT=1",
        "-Isrc",
        "-Ideps",
        "-Iinclude",
    ],
};

pub const LZMA: Library = Library {
    name: "liblzma",
    package: ("lzma-sys", "0.1.20"),
    tree: ".",
    configure: &[],
    // lzma-sys's build.rs: every .c of these directories but the small CRCs and table
    // generators, and two of tuklib.
    dirs: &[
        "xz-5.2/src/liblzma/common",
        "xz-5.2/src/liblzma/lzma",
        "xz-5.2/src/liblzma/lz",
        "xz-5.2/src/liblzma/check",
        "xz-5.2/src/liblzma/delta",
        "xz-5.2/src/liblzma/rangecoder",
        "xz-5.2/src/liblzma/simple",
    ],
    exclude: &["_small.c", "tablegen.c"],
    from_build_rs: None,
    sources: &[
        "xz-5.2/src/common/tuklib_cpucores.c",
        "xz-5.2/src/common/tuklib_physmem.c",
    ],
    // Its config.h (HAVE_CONFIG_H) and include directories.
    flags: &[
        "-O2",
        "-Wall",
        "-Wextra",
        "-DHAVE_CONFIG_H=1",
        "-Ixz-5.2/src/liblzma/api",
        "-Ixz-5.2/src/liblzma/lzma",
        "-Ixz-5.2/src/liblzma/lz",
        "-Ixz-5.2/src/liblzma/check",
        "-Ixz-5.2/src/liblzma/simple",
        "-Ixz-5.2/src/liblzma/delta",
        "-Ixz-5.2/src/liblzma/common",
        "-Ixz-5.2/src/liblzma/rangecoder",
        "-Ixz-5.2/src/common",
        "-I.",
    ],
};

pub const CURL: Library = Library {
    name: "curl",
    package: ("curl-sys", "0.4.91"),
    tree: ".",
    configure: &[],
    dirs: &[],
    exclude: &[],
    from_build_rs: Some(super::curl::from_build_rs),
    sources: &[],
    flags: &["-O2", "-Wall", "-Wextra"],
};

const JEMALLOC_SOURCES: &[&str] = &[
    "src/jemalloc.c",
    "src/arena.c",
    "src/background_thread.c",
    "src/base.c",
    "src/bin.c",
    "src/bin_info.c",
    "src/bitmap.c",
    "src/buf_writer.c",
    "src/cache_bin.c",
    "src/ckh.c",
    "src/counter.c",
    "src/ctl.c",
    "src/decay.c",
    "src/div.c",
    "src/ecache.c",
    "src/edata.c",
    "src/edata_cache.c",
    "src/ehooks.c",
    "src/emap.c",
    "src/eset.c",
    "src/exp_grow.c",
    "src/extent.c",
    "src/extent_dss.c",
    "src/extent_mmap.c",
    "src/fxp.c",
    "src/san.c",
    "src/san_bump.c",
    "src/hook.c",
    "src/hpa.c",
    "src/hpa_hooks.c",
    "src/hpdata.c",
    "src/inspect.c",
    "src/large.c",
    "src/log.c",
    "src/malloc_io.c",
    "src/mutex.c",
    "src/nstime.c",
    "src/pa.c",
    "src/pa_extra.c",
    "src/pai.c",
    "src/pac.c",
    "src/pages.c",
    "src/peak_event.c",
    "src/prof.c",
    "src/prof_data.c",
    "src/prof_log.c",
    "src/prof_recent.c",
    "src/prof_stats.c",
    "src/prof_sys.c",
    "src/psset.c",
    "src/rtree.c",
    "src/safety_check.c",
    "src/sc.c",
    "src/sec.c",
    "src/stats.c",
    "src/sz.c",
    "src/tcache.c",
    "src/test_hooks.c",
    "src/thread_event.c",
    "src/ticker.c",
    "src/tsd.c",
    "src/witness.c",
];

pub const JEMALLOC: Library = Library {
    name: "jemalloc",
    package: ("tikv-jemalloc-sys", "0.6.1"),
    tree: "jemalloc",
    // tikv-jemalloc-sys's build.rs: its configure script (copied into the tree), these options.
    configure: &[
        "sh",
        "./configure",
        "--disable-cxx",
        "--enable-doc=no",
        "--enable-shared=no",
        "--with-version=5.3.0-0-g0",
    ],
    dirs: &[],
    exclude: &[],
    from_build_rs: None,
    sources: JEMALLOC_SOURCES,
    // The Makefile configure writes (CONFIGURE_CFLAGS, CPPFLAGS; the .sym.o objects' define,
    // which needs no generated private_namespace.h).
    flags: &[
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        "-Wsign-compare",
        "-Wundef",
        "-Wno-format-zero-length",
        "-Wpointer-arith",
        "-Wno-missing-braces",
        "-Wno-missing-field-initializers",
        "-Wno-missing-attributes",
        "-fvisibility=hidden",
        "-Wimplicit-fallthrough",
        "-O3",
        "-D_GNU_SOURCE",
        "-D_REENTRANT",
        "-Iinclude",
        "-DJEMALLOC_NO_PRIVATE_NAMESPACE",
    ],
};

impl Library {
    fn build_rs(&self, tree: &Path) -> (Vec<String>, Vec<String>) {
        match self.from_build_rs {
            Some(read) => read(&std::fs::read_to_string(tree.join("build.rs")).unwrap()),
            None => Default::default(),
        }
    }

    /// `flags`, then those of the tree's build.rs.
    pub fn all_flags(&self, tree: &Path) -> Vec<String> {
        let mut out: Vec<String> = self.flags.iter().map(|s| s.to_string()).collect();
        out.extend(self.build_rs(tree).1);
        out
    }

    /// `sources`, those of the tree's build.rs, then the `.c` files of `dirs` in `tree`, sorted.
    pub fn all_sources(&self, tree: &Path) -> Vec<String> {
        let mut out: Vec<String> = self.sources.iter().map(|s| s.to_string()).collect();
        out.extend(self.build_rs(tree).0);
        let mut found = Vec::new();
        for dir in self.dirs {
            for e in std::fs::read_dir(tree.join(dir)).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                if name.ends_with(".c") && !self.exclude.iter().any(|x| name.contains(x)) {
                    found.push(format!("{dir}/{name}"));
                }
            }
        }
        found.sort();
        out.extend(found);
        out
    }
}

/// What happened to one library's definitions.
#[derive(Debug, Default)]
pub struct Counts {
    pub found: usize,
    pub instrumented: usize,
    pub variadic: usize,
    pub skipped: BTreeMap<String, usize>,
}

pub fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        // The end of a build's output says what failed; its beginning is compiler lines.
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(120)..].join("\n");
        panic!("{what} failed (the last 120 lines of its output):\n{tail}");
    }
    text
}

/// Copy the library's tree twice (plain, instrumented), configure both, write a skeleton for
/// every source, instrument it into the second tree. Returns the trees and the counts.
pub fn prepare(lib: &Library, work: &Path) -> (PathBuf, PathBuf, Counts) {
    let pkg = &registry::packages(&work.join("scratch"), &[lib.package])[lib.package.0];
    let plain = work.join("plain");
    let inst = work.join("inst");
    let ics = work.join("ic");
    registry::copy_tree(&pkg.join(lib.tree), &plain);
    if !lib.configure.is_empty() {
        // The package ships the generated configure script beside the tree.
        std::fs::copy(pkg.join("configure/configure"), plain.join("configure")).unwrap();
        run_ok(
            Command::new(lib.configure[0])
                .args(&lib.configure[1..])
                .current_dir(&plain),
            "configure",
        );
    }
    registry::copy_tree(&plain, &inst);
    let mut counts = Counts::default();
    for src in &lib.all_sources(&plain) {
        instrument_into(&plain, src, &ics, &inst, &mut counts);
    }
    (plain, inst, counts)
}

/// A skeleton `.ic` (in `ics`) for `from/src`, and `from/src` instrumented with it into `to/src`
/// (left as it is when the skeleton instruments nothing); counted in `counts`.
pub fn instrument_into(from: &Path, src: &str, ics: &Path, to: &Path, counts: &mut Counts) {
    let ic = ics.join(src).with_extension("ic");
    std::fs::create_dir_all(ic.parent().unwrap()).unwrap();
    let sk = invite_instrumenter::skeleton_of(&from.join(src)).unwrap();
    counts.found += sk.found;
    counts.instrumented += sk.instrumented;
    for (reason, n) in sk.skipped_by_reason() {
        if reason == "variadic" {
            counts.variadic += n;
        }
        *counts.skipped.entry(reason).or_default() += n;
    }
    if sk.instrumented == 0 {
        return;
    }
    std::fs::write(&ic, &sk.text).unwrap();
    // Named relative to the tree, as the library's build names them.
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_invite-precompile"))
            .arg(src)
            .arg(&ic)
            .arg("-o")
            .arg(to.join(src))
            .current_dir(from),
        &format!("invite-precompile {src}"),
    );
}
