//! The benchmark suite still runs (issue 7): `scripts/bench.sh --quick` builds every harness
//! against the built runtime, runs each for a moment and prints a table with every row. No
//! timing is asserted: timings never gate (see BENCHMARKS.md for the figures).

use invite_tests::*;
use std::process::Command;

/// The figures the table must show, by the start of their label.
const ROWS: &[&str] = &[
    "fast path per call, p = 0: C wrapper",
    "fast path per call, p = 0: Rust #[in_vivo]",
    "parent pause per ckpt(), tiny",
    "parent pause per ckpt(), 100 MiB resident",
    "parent pause per ckpt(), 1 GiB resident",
    "parent pause per ckpt(), tiny, steady state",
    "worst pause of the first three ckpt(), tiny",
    "worst pause of the first three ckpt(), 1 GiB resident",
    "ckpt() to code in the pod, tiny",
    "ckpt() to code in the pod, a 1 GiB file open for writing",
    "pod tests per second, 2 cores",
    "pod tests per second, default wait queue",
    "CPU-bound program, INVITE_MAX_OVERHEAD=5",
    "same, writing a 64 MiB heap",
    "same, a thread per core",
    "idle server, 95 % asleep",
    "invite-precompile",
];

#[test]
fn quick_mode_produces_every_row() {
    if !require_root("pods as root") {
        return;
    }
    // --no-build: cargo is busy running this test; use what the workspace build produced. The
    // Rust fast-path row needs `cargo bench` and is printed as "not run" here.
    let o = Command::new(workspace().join("scripts/bench.sh"))
        .args(["--quick", "--no-build"])
        .env("INVITE_BENCH_PROFILE_DIR", profile_dir())
        .output()
        .expect("run scripts/bench.sh");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "bench.sh --quick failed:\n{}", text(&o));
    let table: Vec<&str> = out.lines().filter(|l| l.starts_with("| ")).collect();
    for row in ROWS {
        let line = table
            .iter()
            .find(|l| l.starts_with(&format!("| {row}")))
            .unwrap_or_else(|| panic!("no row {row:?} in:\n{out}"));
        assert!(!line.contains("MISSING"), "{line}");
        // Every measured row has a figure, a baseline and a ratio; only the Rust fast path may be
        // "not run" (it needs cargo bench).
        let cells: Vec<&str> = line.split(" | ").collect();
        assert_eq!(cells.len(), 7, "{line}");
        if !row.contains("Rust") {
            assert!(!line.contains("not run"), "{line}");
            let ratio: f64 = cells[4]
                .parse()
                .unwrap_or_else(|_| panic!("no ratio in {line}"));
            assert!(
                ratio.is_finite() && ratio > 0.0,
                "figure or baseline missing: {line}"
            );
        }
    }
    assert!(
        out.contains("machine: ") && out.contains("load average"),
        "{out}"
    );
}
