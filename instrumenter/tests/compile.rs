//! The output compiles with gcc and clang from -std=c99 to -std=gnu17 under -Wall -Wextra
//! -Werror, runs like the original, and runs the tests the `.ic` names in the right phase.

mod support;
use support::*;

#[test]
fn torture_compiles_everywhere_and_behaves_like_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let (_, expected, _) = instrument_and_build_everywhere(dir.path(), "torture/torture.c", &STDS);
    let (own, invite) = split(&run(&dir.path().join("torture-gcc-c99")));
    assert_eq!(
        own, expected,
        "the instrumented program prints what the original prints"
    );
    for test in [
        "add add_pre pre pass",
        "add add_post post pass",
        "twice twice_even post pass",
        "exported exported_pre pre pass",
        "wrapped wrapped_post post pass",
        "paren paren_neg post pass",
        "make_point make_point_pre pre pass",
        "make_point make_point_post post pass",
        "pick pick_post post pass",
        "pick2 pick2_post post pass",
        "reset reset_pre pre pass",
        "reset reset_post post pass",
        "inl inl_pre pre pass",
        "ext ext_pre pre pass",
        "fact fact_post post pass",
        "kr kr_pre pre pass",
        "platform platform_post post pass",
        "name_of name_of_post post pass",
    ] {
        assert!(
            invite.iter().any(|l| l == test),
            "missing `{test}` in {invite:#?}"
        );
    }
    assert!(invite.iter().all(|l| l.ends_with(" pass")), "{invite:#?}");
    assert!(
        !invite.iter().any(|l| l.starts_with("never")),
        "a definition in #if 0 has no wrapper"
    );
    // Recursion goes through the wrapper: fact(5) runs its post test 5 times.
    assert_eq!(invite.iter().filter(|l| l.starts_with("fact ")).count(), 5);
}

#[test]
fn the_other_if_branch_is_wrapped_too() {
    let dir = tempfile::tempdir().unwrap();
    let c = fixtures().join("torture/torture.c");
    let out = dir.path().join("torture.invite.c");
    assert!(precompile(&[&c, "-o".as_ref(), &out]).status.success());
    let exe = dir.path().join("alt");
    build(
        "gcc",
        "gnu17",
        &[&out, &stub_runtime()],
        &exe,
        &["-DTORTURE_ALT"],
    )
    .unwrap();
    let (own, invite) = split(&run(&exe));
    assert!(own.contains("120 4 3 one 2"), "{own}");
    assert!(invite
        .iter()
        .any(|l| l == "platform platform_post post pass"));
}

#[test]
fn legacy_format_example_finds_the_overdraft() {
    let dir = tempfile::tempdir().unwrap();
    let c = fixtures().join("legacy/bank.c");
    let out = dir.path().join("bank.invite.c");
    let p = precompile(&[&c, "-o".as_ref(), &out]);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    for cc in compilers() {
        let exe = dir.path().join(format!("bank-{cc}"));
        build(cc, "c99", &[&out, &stub_runtime()], &exe, &[]).unwrap_or_else(|e| panic!("{e}"));
        let (_, invite) = split(&run(&exe));
        assert!(
            invite
                .iter()
                .any(|l| l == "account_withdraw check_funds pre pass"),
            "{invite:#?}"
        );
        // The bank lets a withdrawal overdraw the account: the post test sees it and fails.
        assert!(
            invite
                .iter()
                .any(|l| l == "account_withdraw check_after post fail"),
            "{invite:#?}"
        );
    }
}

#[test]
fn seed_demo_builds_and_runs_its_tests() {
    let dir = tempfile::tempdir().unwrap();
    let c = fixtures().join("seed/testinviteckpt.c");
    let out = dir.path().join("ckpt_output.c");
    let p = precompile(&[&c, "-o".as_ref(), &out]);
    assert!(p.status.success(), "{}", String::from_utf8_lossy(&p.stderr));
    for cc in compilers() {
        let exe = dir.path().join(format!("seed-{cc}"));
        build(cc, "gnu99", &[&out, &stub_runtime()], &exe, &[]).unwrap_or_else(|e| panic!("{e}"));
        let (_, invite) = split(&run(&exe));
        assert!(!invite.is_empty());
        assert!(invite.iter().all(|l| l.ends_with(" pass")), "{invite:#?}");
    }
}

/// `#line`: the compiler's diagnostics point into the `.c` and the `.ic`.
#[test]
fn diagnostics_point_at_the_original_lines() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("m.c");
    let ic = dir.path().join("m.ic");
    std::fs::write(
        &c,
        "#include <stdlib.h>\n\nlong half(long v)\n{\n    int unused;\n    return v / 2;\n}\n",
    )
    .unwrap();
    // The .ic says `int`, the definition says `long`: a prototype mismatch.
    std::fs::write(
        &ic,
        "int half(int v) pre\n\nvoid t(int v) 1.0\n{\n    int also_unused;\n}\n",
    )
    .unwrap();
    let out = dir.path().join("m.invite.c");
    assert!(precompile(&[&c, "-o".as_ref(), &out]).status.success());
    for cc in compilers() {
        let err = build(
            cc,
            "c99",
            &[&out, &stub_runtime()],
            &dir.path().join("m"),
            &[],
        )
        .unwrap_err();
        let ic_name = ic.display().to_string();
        let c_name = c.display().to_string();
        assert!(
            err.contains(&format!("{ic_name}:1:")),
            "{cc}: mismatch should point into the .ic:\n{err}"
        );
        assert!(err.contains("conflicting types"), "{cc}:\n{err}");
        assert!(
            err.contains(&format!("{c_name}:5:")),
            "{cc}: unused variable in the .c body:\n{err}"
        );
        assert!(
            err.contains(&format!("{ic_name}:5:")),
            "{cc}: unused variable in the .ic test:\n{err}"
        );
    }
}
