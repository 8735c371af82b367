//! No input makes the precompiler panic: every prefix of the fixtures, and byte-level damage to
//! them, gives either output or a well-formed `file:line:col: error:` (the fuzz targets in
//! instrumenter/fuzz/ explore further; this is the part that runs in CI).

mod support;
use invite_instrumenter::instrument;
use support::fixtures;

fn check(c: &[u8], ic: &[u8]) {
    match instrument("t.c", c.to_vec(), "t.ic", ic.to_vec()) {
        Ok(out) => assert!(out.len() >= c.len()),
        Err(e) => {
            let msg = e.to_string();
            let first = msg.lines().next().unwrap();
            let (place, _) = first
                .split_once(": error: ")
                .unwrap_or_else(|| panic!("not a diagnostic: {msg}"));
            let mut parts = place.rsplitn(3, ':');
            let col: usize = parts.next().unwrap().parse().unwrap();
            let line: usize = parts.next().unwrap().parse().unwrap();
            assert!(col >= 1 && line >= 1, "{msg}");
        }
    }
}

#[test]
fn every_prefix_of_the_ic_and_the_c() {
    let c = std::fs::read(fixtures().join("torture/torture.c")).unwrap();
    let ic = std::fs::read(fixtures().join("torture/torture.ic")).unwrap();
    for n in 0..=ic.len() {
        check(&c, &ic[..n]);
    }
    for n in (0..=c.len()).step_by(3) {
        check(&c[..n], &ic);
    }
}

#[test]
fn damaged_bytes() {
    let c = std::fs::read(fixtures().join("seed/testinviteckpt.c")).unwrap();
    let ic = std::fs::read(fixtures().join("seed/testinviteckpt.ic")).unwrap();
    for damage in [
        b'{', b'}', b'(', b')', b'"', b'\'', b'#', b'/', b'*', b';', b'\n', 0xff,
    ] {
        for at in (0..c.len()).step_by(5) {
            let mut bad = c.clone();
            bad[at] = damage;
            check(&bad, &ic);
        }
        for at in 0..ic.len() {
            let mut bad = ic.clone();
            bad[at] = damage;
            check(&c, &bad);
        }
    }
}
