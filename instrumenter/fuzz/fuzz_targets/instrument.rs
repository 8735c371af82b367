//! The whole pipeline (scan, heads, plan, rewrite) never panics. The input is a
//! `.c` and a `.ic` separated by the first 0xFF byte; without one, a fixed `.ic` naming `f` and
//! `g` is used so the fuzzer explores C.
#![no_main]
use libfuzzer_sys::fuzz_target;

const IC: &[u8] = b"int f(int a) both\nvoid pre_f(int a) .5 { }\nint post_f(int a, int r) 1.0 { return r; }\nvoid g(int *p) both\nvoid g_pre(int *p) pre 1 { }\n";

fuzz_target!(|data: &[u8]| {
    let (c, ic) = match data.iter().position(|&b| b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, IC),
    };
    match invite_instrumenter::instrument("f.c", c.to_vec(), "f.ic", ic.to_vec()) {
        Ok(out) => assert!(out.len() >= c.len()),
        Err(e) => assert!(e.to_string().contains(": error: ")),
    }
});
