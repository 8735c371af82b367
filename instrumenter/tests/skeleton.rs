//! `--skeleton`: the starter `.ic` instruments every function it lists, the result compiles with
//! gcc and clang and runs like the original, every skeleton test runs and passes; the functions
//! it cannot instrument are named in comments with the reason.

mod support;
use std::path::Path;
use support::*;

/// `skipped`: named in comments; `not_compiled`: listed, but inside `#if 0`.
fn skeleton_round_trip(c: &Path, std: &str, skipped: &[&str], not_compiled: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let ic = dir.path().join("s.ic");
    let o = precompile(&["--skeleton".as_ref(), c, "-o".as_ref(), &ic]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("definitions,"), "a summary: {stderr}");
    let text = std::fs::read_to_string(&ic).unwrap();
    for s in skipped {
        assert!(
            text.contains(&format!("/* skipped {s} (line ")),
            "{s} in:\n{text}"
        );
    }
    let listed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("_skeleton("))
        .filter_map(|l| l.strip_prefix("void ")?.split("_skeleton(").next())
        .collect();
    assert!(!listed.is_empty());
    let out = dir.path().join("s.c");
    let p = precompile(&[c, &ic, "-o".as_ref(), &out]);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    let original = dir.path().join("original");
    build("gcc", std, &[c], &original, &[]).unwrap();
    let expected = run(&original);
    for cc in compilers() {
        let exe = dir.path().join(format!("s-{cc}"));
        if let Err(e) = build(cc, std, &[&out, &stub_runtime()], &exe, &[]) {
            panic!("{cc} rejected the skeleton's output:\n{e}");
        }
        let (own, invite) = split(&run(&exe));
        assert_eq!(own, expected, "{cc}: same output as the original");
        assert!(invite.iter().all(|l| l.ends_with(" pass")), "{invite:#?}");
        for f in &listed {
            if not_compiled.contains(f) {
                continue;
            }
            assert!(
                invite
                    .iter()
                    .any(|l| l.starts_with(&format!("{f} {f}_skeleton pre"))),
                "{cc}: the test of `{f}` never ran: {invite:#?}"
            );
        }
    }
}

#[test]
fn skeleton_of_the_macro_shapes() {
    skeleton_round_trip(&fixtures().join("macros/macros.c"), "gnu17", &[], &[]);
}

#[test]
fn skeleton_of_the_torture_file() {
    // `kr` is an old-style definition; `never` is in `#if 0` (listed, never compiled).
    skeleton_round_trip(
        &fixtures().join("torture/torture.c"),
        "c99",
        &["kr"],
        &["never"],
    );
}

/// `--skeleton` of a file holding `code`, to stdout: (the .ic text, the summary on stderr).
fn skeleton_of(code: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("s.c");
    std::fs::write(&c, code).unwrap();
    let o = precompile(&["--skeleton".as_ref(), &c]);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    (String::from_utf8(o.stdout).unwrap(), stderr)
}

#[test]
fn skeleton_lists_what_it_skips() {
    let (text, summary) = skeleton_of(
        "#include <stdarg.h>\nint sum(int n, ...)\n{\n    va_list ap;\n    int s = 0;\n    va_start(ap, n);\n    while (n--) s += va_arg(ap, int);\n    va_end(ap);\n    return s;\n}\n\nint twice(int a) { return 2 * a; }\n",
    );
    assert!(
        text.contains("/* skipped sum (line 2): variadic: "),
        "{text}"
    );
    assert!(
        text.contains("int twice(int a) pre\nvoid twice_skeleton(int a) 1 { }"),
        "{text}"
    );
    assert!(summary.contains("2 definitions, 1 instrumented, 1 skipped (variadic: 1)"));
}

/// A head that cannot be read (a macro `#undef`'d before the wrapper, `#if` inside the head) is
/// still named in its comment, at the line of its name, not `?`.
#[test]
fn skeleton_names_the_heads_it_cannot_read() {
    let (text, _) = skeleton_of(
        "#define T int\nstatic T\nlater(T a)\n{\n    return a;\n}\n#undef T\n\n\
         int pick(\n#ifdef WIDE\n    long a\n#else\n    int a\n#endif\n)\n{\n    return (int)a;\n}\n",
    );
    assert!(
        text.contains("/* skipped later (line 3): a macro #undef'd later in its head: `T`"),
        "{text}"
    );
    assert!(
        text.contains("/* skipped pick (line 9): #if inside its head"),
        "{text}"
    );
    assert!(!text.contains("skipped ?"), "{text}");
}
