//! The in vivo tests of `shapes`. Each one that should pass fails with a message saying what it saw
//! when an argument or return value is not the one the scenario passed, so a wrong expansion shows
//! up in the journal as `fail` with the evidence.

// The signatures are the contract's (`Box<Self>` by value, `&R` for `R = String`), not a choice.
#![allow(clippy::boxed_local, clippy::ptr_arg)]

use crate::shapes::{Counter, Square};
use std::fmt::Debug;

fn seen<T: Debug + PartialEq>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: saw {got:?}, expected {want:?}"))
    }
}

fn one_of<T: Debug + PartialEq>(what: &str, got: T, want: &[T]) -> Result<(), String> {
    if want.contains(&got) {
        Ok(())
    } else {
        Err(format!("{what}: saw {got:?}, expected one of {want:?}"))
    }
}

pub fn add_pre(a: u32, b: u32) -> Result<(), String> {
    seen("args", (a, b), (2, 3))
}

pub fn add_post(r: &u32) -> Result<(), String> {
    seen("return", *r, 5)
}

pub fn largest_pre<T: Debug>(xs: &[T]) -> Result<(), String> {
    seen("xs", format!("{xs:?}"), "[3, 9, 4]".to_string())
}

pub fn largest_post<T: Debug>(r: &T) -> Result<(), String> {
    seen("return", format!("{r:?}"), "9".to_string())
}

pub fn longest_post(r: &&str) -> Result<(), String> {
    seen("return", *r, "banana")
}

pub fn evens_pre(limit: impl Into<u32>) -> Result<(), String> {
    seen("limit", limit.into(), 10)
}

pub fn evens_post<I: Iterator<Item = u32> + Clone>(it: &I) -> Result<(), String> {
    seen("items", it.clone().collect::<Vec<_>>(), vec![0, 2, 4, 6, 8])
}

pub fn swap_pre(pair: (u8, u8), ignored: String) -> Result<(), String> {
    seen("args", (pair, ignored.as_str()), ((1, 2), "kept"))
}

pub fn swap_post(r: &(u8, u8)) -> Result<(), String> {
    seen("return", *r, (2, 1))
}

pub fn get_post(c: &Counter, r: &u32) -> Result<(), String> {
    seen("(self.n, return)", (c.n, *r), (3, 3))
}

/// Mutates its receiver: the pod's copy, never the host's (the scenario checks the host's).
pub fn bump_pre(c: &mut Counter, by: u32) -> Result<(), String> {
    let r = seen("(self.n, by)", (c.n, by), (1, 2));
    c.n = 1000;
    r
}

pub fn bump_post(c: &mut Counter, r: &u32) -> Result<(), String> {
    seen("(self.n, return)", (c.n, *r), (3, 3))
}

pub fn name_post(c: &Counter, r: &&str) -> Result<(), String> {
    seen(
        "(self.name, return)",
        (c.name.as_str(), *r),
        ("hits", "hits"),
    )
}

pub fn slot_pre(c: &mut Counter) -> Result<(), String> {
    seen("self.n", c.n, 3)
}

pub fn doubled_pre(c: Counter) -> Result<(), String> {
    seen("self.n", c.n, 3)
}

pub fn doubled_post(r: &u32) -> Result<(), String> {
    seen("return", *r, 6)
}

pub fn unbox_pre(c: Box<Counter>) -> Result<(), String> {
    seen("self.name", c.name.as_str(), "boxed")
}

pub fn area_pre(s: &Square) -> Result<(), String> {
    seen("side", s.side, 3.0)
}

pub fn area_post(s: &Square, r: &f64) -> Result<(), String> {
    seen("(side, return)", (s.side, *r), (3.0, 9.0))
}

pub fn describe_post<T: ?Sized>(_: &T, r: &String) -> Result<(), String> {
    seen("return", r.as_str(), "a square")
}

pub fn read_pre(p: *const u32) -> Result<(), String> {
    // SAFETY: the scenario passes a pointer to a live local; the pod has its own copy of it.
    seen("*p", unsafe { *p }, 42)
}

pub fn read_post(r: &u32) -> Result<(), String> {
    seen("return", *r, 42)
}

pub fn twice_pre(x: i32) -> Result<(), String> {
    seen("x", x, -4)
}

pub fn twice_post(r: &i32) -> Result<(), String> {
    seen("return", *r, -8)
}

/// The scenario calls `fetch(7)`, then `fetch(0)` (the body's early return).
pub fn fetch_pre(c: &Counter, key: u32) -> Result<(), String> {
    one_of("(self.n, key)", (c.n, key), &[(3, 7), (3, 0)])
}

pub fn fetch_post(c: &Counter, r: &Result<u32, String>) -> Result<(), String> {
    one_of(
        "(self.n, return)",
        (c.n, r.clone()),
        &[(3, Ok(10)), (3, Err("no key".to_string()))],
    )
}

pub fn fact_pre(n: u64) -> Result<(), String> {
    if n <= 5 {
        Ok(())
    } else {
        Err(format!("n: saw {n}, expected at most 5"))
    }
}

pub fn fact_post(r: &u64) -> Result<(), String> {
    if [1, 2, 6, 24, 120].contains(r) {
        Ok(())
    } else {
        Err(format!("return: saw {r}, not a factorial up to 5!"))
    }
}

/// The scenario calls `parse_sum` three times: a labelled break, an early return, a `?`.
pub fn parse_pre(s: &str) -> Result<(), String> {
    one_of("s", s, &["4 5 x 6", "", "4 y"])
}

pub fn parse_post(r: &Result<u32, std::num::ParseIntError>) -> Result<(), String> {
    let err = "Err(ParseIntError { kind: InvalidDigit })";
    one_of(
        "return",
        format!("{r:?}").as_str(),
        &["Ok(9)", "Ok(0)", err],
    )
}

/// A plain `()` test: passes unless it panics.
pub fn unit_pre(label: &str) {
    assert_eq!(label, "twice", "label");
}

/// A `bool` test.
pub fn unit_post(r: &()) -> bool {
    let () = *r;
    true
}

// The tests below fail on purpose, one per way of failing.

pub fn half_is_exact(r: &u32) -> bool {
    r * 2 == 7
}

pub fn half_is_err(r: &u32) -> Result<(), String> {
    Err(format!("half of 7 came out {r}"))
}

pub fn half_panics(r: &u32) {
    panic!("half of 7 is not {r}");
}
