//! `invite report` on journals written the way the runtime writes them.

mod common;

use std::fs;

use common::{assert_has, assert_starts, cells, invite, invite_with, lines, record, row, summary};
use serde_json::{json, Value};

const HEADER: [&str; 12] = [
    "FUNCTION",
    "TEST",
    "RUNS",
    "PASS",
    "FAIL",
    "CRASH",
    "TIMEOUT",
    "ERROR",
    "SKIPPED",
    "MEDIAN",
    "P99",
    "SKIPPED BY (SETTING)",
];

fn journal_dir(values: &[Value]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("invite.jsonl"), lines(values)).unwrap();
    dir
}

#[test]
fn counts_outcomes_and_durations_per_function_and_test() {
    let mut values: Vec<Value> = (1..=10)
        .map(|i| record("parse_config", "rejects_empty", "pass", i * 100))
        .collect();
    values.push(record("parse_config", "rejects_empty", "fail", 50_000));
    values.push(record("cache_put", "keeps_order", "crash", 2_500_000));
    values.push(record("cache_put", "keeps_order", "timeout", 3_000_000));
    values.push(record("cache_put", "evicts", "error", 40));
    let dir = journal_dir(&values);

    let run = invite(dir.path(), &["report"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "");
    let first = run.stdout.lines().next().unwrap();
    assert_eq!(cells(first), HEADER);
    // 100..1000 µs and one 50 ms: the median is the 6th of 11, p99 the largest.
    assert_eq!(
        row(&run.stdout, "parse_config", "rejects_empty"),
        [
            "parse_config",
            "rejects_empty",
            "11",
            "10",
            "1",
            "0",
            "0",
            "0",
            "0",
            "600 µs",
            "50.0 ms"
        ]
    );
    // An even count: the median is the mean of the two middle runs.
    assert_eq!(
        row(&run.stdout, "cache_put", "keeps_order"),
        [
            "cache_put",
            "keeps_order",
            "2",
            "0",
            "0",
            "1",
            "1",
            "0",
            "0",
            "2.75 s",
            "3.00 s"
        ]
    );
    assert_eq!(
        row(&run.stdout, "cache_put", "evicts"),
        [
            "cache_put",
            "evicts",
            "1",
            "0",
            "0",
            "0",
            "0",
            "1",
            "0",
            "40 µs",
            "40 µs"
        ]
    );
    assert_has(
        &run.stdout,
        "14 runs in 3 tests: 10 pass, 1 fail, 1 crash, 1 timeout, 1 error; 0 skipped",
    );
}

#[test]
fn json_has_the_same_rows() {
    let dir = journal_dir(&[
        record("f", "t", "pass", 100),
        record("f", "t", "pass", 300),
        record("f", "t", "fail", 200),
    ]);
    let run = invite(dir.path(), &["report", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).expect("stdout is JSON");
    let rows = report["tests"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    for (field, value) in [
        ("function", json!("f")),
        ("test", json!("t")),
        ("runs", json!(3)),
        ("pass", json!(2)),
        ("fail", json!(1)),
        ("crash", json!(0)),
        ("timeout", json!(0)),
        ("error", json!(0)),
        ("skipped", json!(0)),
        ("median_us", json!(200)),
        ("p99_us", json!(300)),
    ] {
        assert_eq!(row[field], value, "{field} in {row}");
    }
    assert_eq!(report["failures"], 1);
    assert_eq!(report["recent_failures"][0]["outcome"], "fail");
    assert_eq!(report["warnings"], 0);
}

#[test]
fn fail_on_exits_1_and_names_what_it_found() {
    let dir = journal_dir(&[
        record("f", "t", "pass", 1),
        record("f", "t", "timeout", 1),
        record("g", "u", "crash", 1),
        record("g", "u", "crash", 1),
    ]);
    let run = invite(dir.path(), &["report", "--fail-on", "fail,crash,timeout"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "invite: --fail-on fail,crash,timeout: the journal has 2 crash, 1 timeout\n"
    );
    assert!(
        run.stdout.starts_with("FUNCTION"),
        "the report is still printed"
    );

    let run = invite(dir.path(), &["report", "--fail-on", "fail,error"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));

    let run = invite(dir.path(), &["report", "--json", "--fail-on", "timeout"]);
    assert_eq!(run.code, 1);
    serde_json::from_str::<Value>(&run.stdout).expect("JSON on stdout even when failing");

    let run = invite(dir.path(), &["report", "--fail-on", "pass"]);
    assert_eq!(run.code, 2, "pass is not an outcome to fail on");
    assert_has(&run.stderr, "possible values: fail, crash, timeout, error");
}

#[test]
fn bad_lines_are_reported_with_their_line_numbers_and_skipped() {
    let good = record("f", "t", "pass", 10).to_string();
    let text = [
        good.as_str(),
        r#"{"schema":1,"kind":"test","function":"f","te"#,
        r#"{"level":"info","msg":"someone else's log"}"#,
        r#"{"schema":2,"kind":"test"}"#,
        r#"{"schema":1,"kind":"metric"}"#,
        r#"{"schema":1,"kind":"test","function":"f","test":"t","outcome":"exploded","duration_us":1}"#,
        "",
        good.as_str(),
        r#"{"schema":1,"kind":"test","function":"f","test":"t","outcome":"pa"#,
    ]
    .join("\n");
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("app.jsonl"), text).unwrap();

    let run = invite(dir.path(), &["report", "app.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings: Vec<&str> = run.stderr.lines().collect();
    let expected = [
        "app.jsonl:2: warning: invalid JSON",
        "app.jsonl:3: warning: not an invite record: no `schema` field",
        "app.jsonl:4: warning: schema 2 is not supported",
        "app.jsonl:5: warning: unknown kind \"metric\"",
        "app.jsonl:6: warning: test record: unknown variant `exploded`",
        "app.jsonl:9: warning: torn line: no newline at the end of the file",
    ];
    assert_eq!(warnings.len(), expected.len(), "{}", run.stderr);
    for (warning, start) in warnings.iter().zip(expected) {
        assert!(
            warning.starts_with(start),
            "{warning:?} should start with {start:?}"
        );
    }
    assert_eq!(row(&run.stdout, "f", "t")[2], "2", "both good lines count");
    assert_has(&run.stdout, "6 journal lines ignored");
}

#[test]
fn a_missing_journal_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = invite(dir.path(), &["report", "nowhere.jsonl"]);
    assert_eq!(run.code, 2);
    assert_starts(
        &run.stderr,
        "invite: error: cannot read nowhere.jsonl: No such file",
    );
    assert_eq!(run.stdout, "");

    let run = invite(dir.path(), &["report"]);
    assert_eq!(run.code, 2);
    assert_starts(
        &run.stderr,
        "invite: error: no journal at invite.jsonl in the current directory",
    );
}

#[test]
fn invite_journal_names_the_default_journal() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("elsewhere.jsonl"),
        lines(&[record("f", "t", "pass", 1)]),
    )
    .unwrap();
    let run = invite_with(
        dir.path(),
        &["report"],
        &[("INVITE_JOURNAL", "elsewhere.jsonl")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(row(&run.stdout, "f", "t")[2], "1");
}

#[test]
fn skipped_comes_from_the_latest_summary_of_each_process() {
    // A summary for a site that did not name its test.
    let mut anonymous = summary("2026-05-01T12:00:05Z", 3, &[("g", "x", [0, 0, 7])]);
    anonymous["sites"][0]
        .as_object_mut()
        .unwrap()
        .remove("test");
    let dir = journal_dir(&[
        record("f", "t", "pass", 1),
        // pid 1 writes a summary on demand, then again at exit: only the last one counts.
        summary("2026-05-01T12:00:01Z", 1, &[("f", "t", [1, 0, 0])]),
        summary(
            "2026-05-01T12:00:09Z",
            1,
            &[("f", "t", [2, 3, 1]), ("f", "never_ran", [0, 4, 0])],
        ),
        // Another process adds its own.
        summary("2026-05-01T12:00:05Z", 2, &[("f", "t", [0, 10, 0])]),
        anonymous,
    ]);

    let run = invite(dir.path(), &["report"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(row(&run.stdout, "f", "t")[8], "16", "{}", run.stdout);
    assert_eq!(
        row(&run.stdout, "f", "never_ran"),
        [
            "f",
            "never_ran",
            "0",
            "0",
            "0",
            "0",
            "0",
            "0",
            "4",
            "-",
            "-",
            "never ran: budget 4 (INVITE_MAX_OVERHEAD)"
        ]
    );
    assert_eq!(
        row(&run.stdout, "f", "t")[11],
        "budget 13 (INVITE_MAX_OVERHEAD), concurrency 2 (INVITE_MAX_CONCURRENT), \
         in_pod 1 (called inside a pod)"
    );
    assert_eq!(row(&run.stdout, "g", "*")[8], "7");
    assert_has(&run.stdout, "; 2 tests never ran");

    let run = invite(dir.path(), &["report", "--json"]);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let t = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["function"] == "f" && r["test"] == "t")
        .unwrap();
    assert_eq!(
        t["skipped_by"],
        json!({"concurrency": 2, "budget": 13, "in_pod": 1})
    );
    assert_eq!(t["calls"], 2000);
}

#[test]
fn recent_failures_show_message_and_output_tail_newest_first() {
    let mut older = record("parse_config", "rejects_empty", "fail", 10);
    older["time"] = json!("2026-05-01T12:00:01Z");
    older["pod"] = json!("3");
    // The runtime's pod may exit 0 and still fail: the status says nothing then.
    older["exit_code"] = json!(0);
    older["message"] = json!("expected 0 entries, got 2");
    older["output"] = json!("line 1\nline 2\nline 3\nline 4\n\nline 6\nline 7\n");
    let mut newer = record("cache_put", "keeps_order", "crash", 10);
    newer["time"] = json!("2026-05-01T12:00:02Z");
    newer["pod"] = json!("2/1");
    newer["signal"] = json!("SIGSEGV");
    newer["exit_code"] = json!(null);
    newer["output"] = json!("x".repeat(100));
    newer["truncated"] = json!(true);
    let dir = journal_dir(&[older, record("f", "t", "pass", 1), newer]);

    let run = invite(dir.path(), &["report"]);
    let failures = run
        .stdout
        .split_once("most recent failures (2 of 2, newest first):\n")
        .expect("a failures section")
        .1;
    let expected = format!(
        "
crash (SIGSEGV)  cache_put / keeps_order
    pod 4242.2.1 on web1 at 2026-05-01T12:00:02Z (invite.jsonl:3)
    output (last lines, cut to fit the journal):
    | {}

fail  parse_config / rejects_empty
    pod 4242.3 on web1 at 2026-05-01T12:00:01Z (invite.jsonl:1)
    expected 0 entries, got 2
    output (last lines):
    | line 3
    | line 4
    |
    | line 6
    | line 7
",
        "x".repeat(100)
    );
    assert_eq!(failures, expected);

    let run = invite(dir.path(), &["report", "--failures", "0"]);
    assert!(!run.stdout.contains("failures"), "{}", run.stdout);
}

#[test]
fn several_journals_add_up_and_dash_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("a.jsonl"),
        lines(&[record("f", "t", "pass", 1)]),
    )
    .unwrap();
    fs::write(
        dir.path().join("b.jsonl"),
        lines(&[record("f", "t", "fail", 1)]),
    )
    .unwrap();
    let run = invite(dir.path(), &["report", "a.jsonl", "b.jsonl"]);
    assert_eq!(row(&run.stdout, "f", "t")[2..5], ["2", "1", "1"]);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_invite"))
        .args(["report", "-"])
        .stdin(fs::File::open(dir.path().join("b.jsonl")).unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(row(&stdout, "f", "t")[2..5], ["1", "0", "1"]);
}

#[test]
fn an_empty_journal_says_so() {
    let dir = journal_dir(&[]);
    let run = invite(dir.path(), &["report"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "no test records\n"));
}

#[test]
fn the_queue_and_the_pods_cpu_bound_name_their_settings() {
    let mut s = summary("2026-05-01T12:00:01Z", 1, &[("f", "t", [0, 0, 0])]);
    s["sites"][0]["started"] = json!(1);
    s["sites"][0]["skipped"] = json!({"queue": 6, "pod_cpu": 3, "budget": 0});
    s["settings"] = json!({"INVITE_MAX_QUEUE": "32", "INVITE_MAX_POD_CPU": "50"});
    let dir = journal_dir(&[record("f", "t", "pass", 1), s]);
    let run = invite(dir.path(), &["report"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        row(&run.stdout, "f", "t")[11],
        "queue 6 (INVITE_MAX_QUEUE=32), pod_cpu 3 (INVITE_MAX_POD_CPU=50)",
        "{}",
        run.stdout
    );
}

#[test]
fn an_unreliable_failure_says_so_and_names_the_files() {
    let torn = "/srv/kv.db-wal: the host wrote it after the checkpoint; the pod may have read it \
                mixed with earlier states (torn)";
    let mut r = record("check_db", "quick_check", "fail", 10);
    r["message"] = json!("pod exited with status 1");
    r["unreliable"] = json!(true);
    r["notes"] = json!([torn, "seccomp refused the system call keyctl (250): EPERM"]);
    let dir = journal_dir(&[r, record("check_db", "quick_check", "fail", 10)]);
    let run = invite(dir.path(), &["report"]);
    assert!(
        run.stdout.contains(&format!(
            "fail (exit 1) (unreliable)  check_db / quick_check\n    pod 4242.1 on web1 at \
             2026-05-01T12:00:00Z (invite.jsonl:1)\n    pod exited with status 1\n    \
             unreliable: the pod may have read files the host wrote after the checkpoint:\n    \
             ! {torn}\n"
        )),
        "{}",
        run.stdout
    );
    // The other failure is not marked.
    assert!(
        run.stdout
            .contains("\nfail (exit 1)  check_db / quick_check\n"),
        "{}",
        run.stdout
    );
    let json: Value =
        serde_json::from_str(&invite(dir.path(), &["report", "--json"]).stdout).unwrap();
    let f = &json["recent_failures"];
    let marked: Vec<bool> = f
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["unreliable"] == true)
        .collect();
    assert_eq!(marked.iter().filter(|m| **m).count(), 1, "{f}");
}
