//! `#[in_vivo(outermost)]` (issue 15.2) and post tests that take the function's reference
//! parameters (issue 15.6), through the real runtime: a child process runs the scenario with
//! `INVITE_PROBABILITY=1` and a private journal, then the journal is read. Each test passes only
//! when it saw the values the scenario passed, so a nested call that was sampled, or arguments
//! passed in the wrong order, show up as `fail` with the evidence.

#![allow(clippy::ptr_arg)]

#[path = "../common/journal.rs"]
mod journal;

use invite::in_vivo;
use journal::Expected;

const CHILD: &str = "INVITE_MACROS_OUTERMOST_CHILD";

fn seen<T: std::fmt::Debug + PartialEq>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: saw {got:?}, expected {want:?}"))
    }
}

// --- outermost: a recursion, tested only at its outermost call ---

fn fact_outer_pre(n: u64) -> Result<(), String> {
    seen("n", n, 5)
}

fn fact_outer_post(r: &u64) -> Result<(), String> {
    seen("return", *r, 120)
}

#[in_vivo(outermost, pre = fact_outer_pre, post = fact_outer_post, probability = 0)]
fn fact(n: u64) -> u64 {
    if n <= 1 {
        return 1;
    }
    n * fact(n - 1)
}

fn every_call_pre(n: u64) -> bool {
    (1..=5).contains(&n)
}

/// The same recursion without the option: every call is tested.
#[in_vivo(pre = every_call_pre, probability = 0)]
fn fact_all(n: u64) -> u64 {
    if n <= 1 {
        return 1;
    }
    n * fact_all(n - 1)
}

struct Tree(Vec<Tree>);

fn size_outer_post(t: &Tree, r: &usize) -> Result<(), String> {
    seen("size", (t.0.len(), *r), (2, 4))
}

impl Tree {
    /// A method recursing through other values: still one outermost call per thread.
    #[in_vivo(outermost, post = size_outer_post, probability = 0)]
    fn size(&self) -> usize {
        1 + self.0.iter().map(Tree::size).sum::<usize>()
    }
}

// --- post tests with the function's reference parameters ---

fn longest_with_args(a: &str, b: &str, r: &&str) -> Result<(), String> {
    seen("args and return", (a, b, *r), ("apple", "banana", "banana"))
}

fn longest_return_only(r: &&str) -> Result<(), String> {
    seen("return", *r, "banana")
}

#[in_vivo(post = longest_with_args, post = longest_return_only, probability = 0)]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

struct Scale(u32);

fn scaled_with_args(s: &Scale, xs: &[u32], label: &String, r: &Vec<u32>) -> Result<(), String> {
    seen(
        "receiver, args and return",
        (s.0, xs, label.as_str(), r.as_slice()),
        (3, &[1, 2][..], "x", &[3, 6][..]),
    )
}

fn scaled_receiver_only(s: &Scale, r: &Vec<u32>) -> Result<(), String> {
    seen("return", (s.0, r.len()), (3, 2))
}

impl Scale {
    /// `by` is taken by value: only the reference parameters go to post tests.
    #[in_vivo(post = scaled_with_args, post = scaled_receiver_only, probability = 0)]
    fn scaled(&self, xs: &[u32], by: u32, label: &String) -> Vec<u32> {
        let _ = label;
        xs.iter().map(|x| x * self.0 * by).collect()
    }
}

fn scenario() {
    assert_eq!(fact(5), 120);
    assert_eq!(fact_all(5), 120);
    let t = Tree(vec![Tree(vec![]), Tree(vec![Tree(vec![])])]);
    assert_eq!(t.size(), 4);
    assert_eq!(longest("apple", "banana"), "banana");
    assert_eq!(Scale(3).scaled(&[1, 2], 1, &"x".to_string()), vec![3, 6]);
}

journal::scenario_tests!(CHILD, scenario);

const EXPECTED: &[Expected] = &[
    ("fact", "fact_outer_pre", "pre", "pass", None, 1),
    ("fact", "fact_outer_post", "post", "pass", None, 1),
    ("fact_all", "every_call_pre", "pre", "pass", None, 5),
    ("Tree::size", "size_outer_post", "post", "pass", None, 1),
    ("longest", "longest_with_args", "post", "pass", None, 1),
    ("longest", "longest_return_only", "post", "pass", None, 1),
    ("Scale::scaled", "scaled_with_args", "post", "pass", None, 1),
    (
        "Scale::scaled",
        "scaled_receiver_only",
        "post",
        "pass",
        None,
        1,
    ),
];

#[test]
fn outermost_and_reference_arguments_in_pods() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = journal::run_child_scenario(CHILD, dir.path());
    let want = journal::expected(EXPECTED, "outermost_refs::", "");
    journal::assert_records(&journal, &want, "main.rs");
}
