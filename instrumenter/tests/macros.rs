//! Real C's macros around function heads and inside bodies (lz4, jemalloc, zlib, bzip2 shapes in
//! fixtures/c/macros): every definition is instrumented, the output compiles with gcc and clang
//! and behaves like the original, and every test runs. The shapes that were once rewritten wrongly
//! (a dropped return type, a void function returning a value, a doubled `static`, an attribute
//! macro after a parameter taken for the name, a name `#define`d to another after its
//! definition) are here.

mod support;
use support::*;

#[test]
fn macro_decorated_heads_and_bodies_instrument_compile_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let (out, expected, exes) =
        instrument_and_build_everywhere(dir.path(), "macros/macros.c", &["c99", "gnu17"]);
    for (cc, std, exe) in exes {
        let (own, invite) = split(&run(&exe));
        assert_eq!(
            own, expected,
            "{cc} -std={std}: same output as the original"
        );
        for test in [
            "je_malloc malloc_pre pre pass",
            "je_malloc malloc_post post pass",
            "je_mallctl mallctl_post post pass",
            "je_malloc_stats_print stats_pre pre pass",
            "je_malloc_stats_print stats_post post pass",
            "isalloc isalloc_post post pass",
            "adler adler_post post pass",
            "BZ2_bzCompressInit init_post post pass",
            "LZ4_compress_fast_continue lz4_post post pass",
            "lzip_get_check lzip_post post pass",
            "FSEv06_isError fse_post post pass",
        ] {
            assert!(
                invite.iter().any(|l| l == test),
                "{cc} -std={std}: missing `{test}` in {invite:#?}"
            );
        }
        assert!(invite.iter().all(|l| l.ends_with(" pass")), "{invite:#?}");
    }
    // The heads are kept as written: the renamed definitions keep their decorations.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("int JEMALLOC_NOTHROW INVITE_ORIGINAL_je_mallctl(const char *name, int v)")
    );
    assert!(text.contains("JEMALLOC_ALWAYS_INLINE size_t INVITE_ORIGINAL_isalloc("));
    assert!(text.contains(
        "int BZ_API(INVITE_ORIGINAL_BZ2_bzCompressInit)(int blockSize100k, int verbosity)"
    ));
}
