//! Every error a user of `#[in_vivo]` can meet, with its message and where it points
//! (`tests/ui/*.stderr`). Regenerate after a deliberate change with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
