//! The summary's `calls` is exact when many threads call one `#[in_vivo]` function (issue
//! 21.5; the C side is tests/tests/sampling.rs): a child process runs 8 threads that each call
//! it `CALLS` times and exits; its summary must count every call and say the count is exact.

#[path = "common/journal.rs"]
mod journal;

use invite::in_vivo;
use std::process::Command;

const CHILD: &str = "INVITE_MACROS_EXACT_COUNTS_CHILD";
const THREADS: u64 = 8;
const CALLS: u64 = 50_000;

fn never(_: u64) {}

#[in_vivo(pre = never, probability = 0)]
fn work(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[test]
fn child_scenario() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(|| {
                (0..CALLS)
                    .map(|i| work(std::hint::black_box(i)))
                    .sum::<u64>()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn calls_from_8_threads_are_counted_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("invite.jsonl");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_scenario",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("INVITE_JOURNAL", &journal)
        .env("INVITE_MAX_OVERHEAD", "off")
        .env_remove("INVITE")
        .env_remove("INVITE_PROBABILITY")
        .env_remove("INVITE_RATES")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summaries = journal::records(&journal, "summary");
    let last = summaries.last().expect("a summary");
    let row = last["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["function"].as_str().is_some_and(|f| f.ends_with("work")))
        .unwrap_or_else(|| panic!("no row for work: {last}"));
    assert_eq!(row["calls"], THREADS * CALLS, "{last}");
    assert_eq!(last["calls_exact"], true, "{last}");
    assert_eq!(last["threads_running"], 0, "{last}");
}
