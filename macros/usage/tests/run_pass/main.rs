//! Run-pass tests of `#[in_vivo]` through the real runtime.
//!
//! `bodies_keep_their_meaning` calls every supported kind of function (`shapes`) and checks what
//! the host gets back. `tests_run_in_pods_and_see_the_calls` runs the same scenario in a child
//! process with `INVITE_PROBABILITY=1` and a private journal, then reads the journal: every test
//! (`checks`) ran in a pod, under the function's Rust path, and passed, which each one only does
//! when it saw the arguments or return value the scenario passed; the three tests that fail on
//! purpose fail with their messages.

mod checks;
#[path = "../common/journal.rs"]
mod journal;
mod shapes;

use journal::Expected;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Set in the child process that runs the scenario with in vivo testing on.
const CHILD: &str = "INVITE_MACROS_RUN_PASS_CHILD";

static STARTED: AtomicUsize = AtomicUsize::new(0);

/// In the child: wait until the journal holds the `k` tests the last call started, so one call's
/// pods are done before the next call.
pub fn settle(k: usize) {
    let Some(journal) = std::env::var_os("INVITE_JOURNAL").filter(|_| in_child()) else {
        return;
    };
    let want = STARTED.fetch_add(k, Ordering::Relaxed) + k;
    journal::wait_for(Path::new(&journal), want);
}

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

#[test]
fn bodies_keep_their_meaning() {
    if !in_child() {
        shapes::scenario();
    }
}

/// The scenario, run only as the child of `tests_run_in_pods_and_see_the_calls`.
#[test]
fn child_scenario() {
    if in_child() {
        shapes::scenario();
    }
}

const EXPECTED: &[Expected] = &[
    ("add", "add_pre", "pre", "pass", None, 1),
    ("add", "add_post", "post", "pass", None, 1),
    ("largest", "largest_pre", "pre", "pass", None, 1),
    ("largest", "largest_post", "post", "pass", None, 1),
    ("longest", "longest_post", "post", "pass", None, 1),
    ("evens", "evens_pre", "pre", "pass", None, 1),
    ("evens", "evens_post", "post", "pass", None, 1),
    ("swap", "swap_pre", "pre", "pass", None, 1),
    ("swap", "swap_post", "post", "pass", None, 1),
    ("Counter::bump", "bump_pre", "pre", "pass", None, 1),
    ("Counter::bump", "bump_post", "post", "pass", None, 1),
    ("Counter::get", "get_post", "post", "pass", None, 1),
    ("Counter::name", "name_post", "post", "pass", None, 1),
    ("Counter::slot", "slot_pre", "pre", "pass", None, 1),
    ("Counter::fetch", "fetch_pre", "pre", "pass", None, 2),
    ("Counter::fetch", "fetch_post", "post", "pass", None, 2),
    (
        "Counter::into_doubled",
        "doubled_pre",
        "pre",
        "pass",
        None,
        1,
    ),
    (
        "Counter::into_doubled",
        "doubled_post",
        "post",
        "pass",
        None,
        1,
    ),
    ("Counter::unbox", "unbox_pre", "pre", "pass", None, 1),
    ("Square::area", "area_pre", "pre", "pass", None, 1),
    ("Square::area", "area_post", "post", "pass", None, 1),
    ("Square::describe", "describe_post", "post", "pass", None, 1),
    ("read", "read_pre", "pre", "pass", None, 1),
    ("read", "read_post", "post", "pass", None, 1),
    ("twice", "twice_pre", "pre", "pass", None, 1),
    ("twice", "twice_post", "post", "pass", None, 1),
    ("fact", "fact_pre", "pre", "pass", None, 5),
    ("fact", "fact_post", "post", "pass", None, 5),
    ("parse_sum", "parse_pre", "pre", "pass", None, 3),
    ("parse_sum", "parse_post", "post", "pass", None, 3),
    ("log", "unit_pre", "pre", "pass", None, 1),
    ("log", "unit_post", "post", "pass", None, 1),
    (
        "half",
        "half_is_exact",
        "post",
        "fail",
        Some("test returned false"),
        1,
    ),
    (
        "half",
        "half_is_err",
        "post",
        "fail",
        Some("half of 7 came out 3"),
        1,
    ),
    (
        "half",
        "half_panics",
        "post",
        "fail",
        Some("panicked: half of 7 is not 3"),
        1,
    ),
];

#[test]
fn tests_run_in_pods_and_see_the_calls() {
    if in_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = journal::run_child_scenario(CHILD, dir.path());
    let want = journal::expected(EXPECTED, "run_pass::shapes::", "checks::");
    journal::assert_records(&journal, &want, "shapes.rs");
}
