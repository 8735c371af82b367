//! Every bad input gives `file:line:col: error: ...`, a non-zero exit, no panic, and no output
//! file (an existing output file is left as it was).

mod support;
use std::path::Path;
use support::precompile;

const GOOD_C: &str = "int foo(int a)\n{\n    return a + 1;\n}\n";
const GOOD_IC: &str = "int foo(int a) pre\nvoid t(int a) .5 { }\n";

/// Run on (c, ic); expect an error at `file:line:col` (file `c` or `ic`) containing `words`.
fn refuse(c: &[u8], ic: &[u8], at: (&str, usize, usize), words: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cp = dir.path().join("m.c");
    let icp = dir.path().join("m.ic");
    std::fs::write(&cp, c).unwrap();
    std::fs::write(&icp, ic).unwrap();
    let out = dir.path().join("out.c");
    let o = precompile(&[&cp, "-o".as_ref(), &out]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {stderr}");
    let file = if at.0 == "c" { &cp } else { &icp };
    let prefix = format!("{}:{}:{}: error: ", file.display(), at.1, at.2);
    assert!(
        stderr.starts_with(&prefix),
        "expected `{prefix}...{words}`, got: {stderr}"
    );
    assert!(stderr.contains(words), "expected `{words}` in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "no output file after an error");
    // An existing output is left alone.
    std::fs::write(&out, "previous").unwrap();
    assert_eq!(
        precompile(&[&cp, "-o".as_ref(), &out]).status.code(),
        Some(1)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 3, "no temporary files left: {leftovers:?}");
}

#[test]
fn malformed_c_in_the_body_is_the_compilers_to_report() {
    // Bodies are never parsed (real code puts macros there that no parser reads without them):
    // a mistake in one is copied as written, and the compiler reports it at its `.c` line.
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("m.c");
    std::fs::write(&c, "int foo(int a)\n{\n    return a +;\n}\n").unwrap();
    std::fs::write(dir.path().join("m.ic"), GOOD_IC).unwrap();
    let out = dir.path().join("out.c");
    let o = precompile(&[&c, "-o".as_ref(), &out]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let gcc = std::process::Command::new("gcc")
        .args(["-fsyntax-only", "-I"])
        .arg(support::include_dir())
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&gcc.stderr);
    assert!(
        stderr.contains(&format!("{}:3:", c.display())),
        "gcc points at the .c line: {stderr}"
    );
}

#[test]
fn malformed_c_right_before_the_target() {
    refuse(
        b"struct s { int a; } ]\nint foo(int a)\n{\n    return a;\n}\n",
        GOOD_IC.as_bytes(),
        ("c", 1, 21),
        "`foo`",
    );
}

#[test]
fn unbalanced_braces_before_the_target() {
    refuse(
        b"int bar(void) {\n  if (1) {\n    return 0;\n}\nint foo(int a) { return a; }\n",
        GOOD_IC.as_bytes(),
        ("c", 1, 15),
        "never closed",
    );
}

#[test]
fn unknown_function() {
    refuse(
        GOOD_C.as_bytes(),
        b"int bar(int a) pre\nvoid t(int a) .5 { }\n",
        ("ic", 1, 5),
        "`bar` is not defined in",
    );
}

#[test]
fn prototype_with_another_parameter_count() {
    refuse(
        GOOD_C.as_bytes(),
        b"int foo(int a, int b) pre\nvoid t(int a, int b) .5 { }\n",
        ("ic", 1, 5),
        "takes 1 parameter(s)",
    );
}

#[test]
fn duplicate_tests() {
    let ic = "int foo(int a) pre\nvoid t(int a) .5 { }\nvoid t(int a) .5 { }\n";
    refuse(
        GOOD_C.as_bytes(),
        ic.as_bytes(),
        ("ic", 3, 6),
        "duplicate test `t`",
    );
}

#[test]
fn malformed_probabilities() {
    for (p, words) in [
        ("1.2.3", "malformed probability `1.2.3`"),
        ("abc", "malformed probability `abc`"),
        ("2.0", "not between 0 and 1"),
        ("-1", "malformed probability `-`"),
        ("0x1", "malformed probability"),
    ] {
        let ic = format!("int foo(int a) pre\nvoid t(int a) {p} {{ }}\n");
        refuse(GOOD_C.as_bytes(), ic.as_bytes(), ("ic", 2, 15), words);
    }
}

#[test]
fn missing_probability() {
    refuse(
        GOOD_C.as_bytes(),
        b"int foo(int a) pre\nvoid t(int a) { }\n",
        ("ic", 2, 6),
        "has no probability",
    );
}

#[test]
fn malformed_timeout() {
    refuse(
        GOOD_C.as_bytes(),
        b"int foo(int a) pre\nvoid t(int a) .5 timeout=soon { }\n",
        ("ic", 2, 26),
        "malformed timeout",
    );
}

#[test]
fn empty_and_binary_files() {
    refuse(b"", GOOD_IC.as_bytes(), ("c", 1, 1), "C file is empty");
    refuse(
        b"  \n\n",
        GOOD_IC.as_bytes(),
        ("c", 1, 1),
        "C file is empty",
    );
    refuse(GOOD_C.as_bytes(), b"", ("ic", 1, 1), ".ic file is empty");
    refuse(
        b"\x7fELF\x02\x01\x01\x00\x00\x00",
        GOOD_IC.as_bytes(),
        ("c", 1, 8),
        "binary",
    );
    refuse(
        GOOD_C.as_bytes(),
        b"int foo(int a) pre\n\x00\x01",
        ("ic", 2, 1),
        "binary",
    );
}

#[test]
fn ic_without_blocks() {
    refuse(
        GOOD_C.as_bytes(),
        b"/* nothing here */\nstatic int x;\n",
        ("ic", 1, 1),
        "no block",
    );
}

#[test]
fn variadic_functions() {
    refuse(
        b"int foo(int a, ...)\n{\n    return a;\n}\n",
        b"int foo(int a) pre\nvoid t(int a) .5 { }\n",
        ("c", 1, 5),
        "variadic",
    );
    refuse(
        b"int foo(int a, ...)\n{\n    return a;\n}\n",
        b"int foo(int a, ...) pre\nvoid t(int a) .5 { }\n",
        ("ic", 1, 5),
        "variadic",
    );
}

#[test]
fn void_function_in_both_block_needs_a_marker() {
    let c = b"void foo(int *a)\n{\n    *a = 0;\n}\n";
    refuse(
        c,
        b"int x;\nvoid foo(int *a) both\nvoid t(int *a) .5 { }\n",
        ("ic", 3, 6),
        "needs an explicit phase",
    );
}

#[test]
fn wrong_test_arity_and_phase() {
    refuse(
        GOOD_C.as_bytes(),
        b"int foo(int a) post\nvoid t(int a) .5 { }\n",
        ("ic", 2, 6),
        "post test `t` takes 1 parameter(s); expected 2",
    );
    refuse(
        GOOD_C.as_bytes(),
        b"int foo(int a) pre\nvoid t(int a) post .5 { }\n",
        ("ic", 2, 15),
        "does not allow",
    );
    refuse(
        GOOD_C.as_bytes(),
        b"int foo(int a) pre\nlong t(int a) .5 { }\n",
        ("ic", 2, 1),
        "must return `void` or `int`",
    );
}

#[test]
fn test_before_any_block() {
    refuse(
        GOOD_C.as_bytes(),
        b"void t(int a) .5 { }\nint foo(int a) pre\n",
        ("ic", 1, 1),
        "before any block header",
    );
}

#[test]
fn unterminated_ic() {
    refuse(
        GOOD_C.as_bytes(),
        b"int foo(int a) pre\nvoid t(int a) .5 {\n",
        ("ic", 2, 18),
        "never closed",
    );
    refuse(
        GOOD_C.as_bytes(),
        b"int foo(int a) pre\n/* open",
        ("ic", 2, 1),
        "unterminated comment",
    );
}

#[test]
fn unnamed_parameter() {
    refuse(
        b"int foo(int)\n{\n    return 0;\n}\n",
        GOOD_IC.as_bytes(),
        ("c", 1, 9),
        "has no name",
    );
}

#[test]
fn missing_input_file() {
    let o = precompile(&[Path::new("/nonexistent/x.c")]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.starts_with("/nonexistent/x.c: error: cannot read"),
        "{stderr}"
    );
}

#[test]
fn conditional_inside_the_parameter_list() {
    refuse(
        b"static int foo(\n  int a,\n#ifdef X\n  int b\n#else\n  long b\n#endif\n){ return a + (int)b; }\n",
        b"int foo(int a, int b) pre\nvoid t(int a, int b) .5 { }\n",
        ("c", 3, 1),
        "#if inside its head",
    );
}
