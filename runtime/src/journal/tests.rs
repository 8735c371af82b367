//! Unit tests of the journal's records (see `journal.rs`).

use super::*;

fn rec<'a>(output: &'a str, changed: &'a [String]) -> TestRecord<'a> {
    TestRecord {
        time_ns: 1_764_000_000_123_456_789,
        host: "h",
        pid: 7,
        pod: "2/1",
        site: "bank.c:12",
        function: "withdraw",
        test: "check \"funds\"",
        phase: "pre",
        outcome: "fail",
        duration_us: 42,
        pod_us: 7,
        exit_code: None,
        signal: Some("SIGABRT"),
        message: None,
        output,
        changed,
        isolation: "pod",
        notes: &[],
        relayed: false,
        unreliable: false,
    }
}

#[test]
fn record_is_one_valid_json_line() {
    let changed = vec!["/tmp/a\nb".to_string()];
    let line = rec("out\u{1}put\n", &changed).to_line();
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["runtime_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["test"], "check \"funds\"");
    assert_eq!(v["output"], "out\u{1}put\n");
    assert_eq!(v["changed"][0], "/tmp/a\nb");
    assert_eq!(v["exit_code"], serde_json::Value::Null);
    assert_eq!(v["time"], "2025-11-24T16:00:00.123456Z");
}

/// The exact bytes: the journal's format is a contract with every reader of old journals.
#[test]
fn records_are_written_byte_for_byte_as_schema_1_says() {
    let notes = vec!["n".to_string()];
    let line = TestRecord {
        exit_code: Some(3),
        notes: &notes,
        relayed: true,
        unreliable: false,
        ..rec("o", &[])
    }
    .to_line();
    let v = RUNTIME_VERSION;
    assert_eq!(
        line,
        format!(
            "{{\"schema\":1,\"kind\":\"test\",\"time\":\"2025-11-24T16:00:00.123456Z\",\
             \"host\":\"h\",\"pid\":7,\"runtime_version\":\"{v}\",\"pod\":\"2/1\",\
             \"site\":\"bank.c:12\",\"function\":\"withdraw\",\"test\":\"check \\\"funds\\\"\",\
             \"phase\":\"pre\",\"outcome\":\"fail\",\"duration_us\":42,\"pod_us\":7,\"exit_code\":3,\
             \"signal\":\"SIGABRT\",\"message\":null,\"output\":\"o\",\"changed\":[],\
             \"isolation\":\"pod\",\"notes\":[\"n\"],\"relayed\":true}}\n"
        )
    );
    let row = SiteSummary {
        site: "a.c:3".into(),
        function: "f".into(),
        test: "t".into(),
        calls: 10,
        sampled: 3,
        started: 2,
        skipped_concurrency: 1,
        skipped_budget: 4,
        skipped_in_pod: 5,
        skipped_cgroup: 6,
        skipped_pod_cpu: 7,
        skipped_queue: 8,
        queued: 1,
    };
    assert_eq!(
        summary_line(
            1_764_000_000_123_456_789,
            "h",
            7,
            Totals {
                lost: 2,
                threads_running: 0
            },
            &[("INVITE_MAX_CONCURRENT", "4".to_string())],
            &admission(),
            &[row]
        ),
        format!(
            "{{\"schema\":1,\"kind\":\"summary\",\"time\":\"2025-11-24T16:00:00.123456Z\",\
             \"host\":\"h\",\"pid\":7,\"runtime_version\":\"{v}\",\"lost\":2,\
             \"calls_exact\":true,\"threads_running\":0,\"settings\":{{\"INVITE_MAX_CONCURRENT\":\"4\"}},\
             \"budget\":{{\"elapsed_us\":2000000,\"host_us\":30000,\"drain_us\":10000,\
             \"pod_cpu_us\":500000,\"cpus\":1.50}},\
             \"queue\":{{\"max\":32,\"queued\":5,\"displaced\":2,\"waiting\":1}},\"sites\":[\
             {{\"site\":\"a.c:3\",\"function\":\"f\",\"test\":\"t\",\"calls\":10,\"sampled\":3,\
             \"started\":2,\"queued\":1,\"skipped\":{{\"concurrency\":1,\"budget\":4,\"in_pod\":5,\
             \"cgroup\":6,\"pod_cpu\":7,\"queue\":8}}}}]}}\n"
        )
    );
}

#[test]
fn long_records_are_cut_to_64k_keeping_the_tail() {
    let big = "x".repeat(200_000) + "THE END";
    let changed: Vec<String> = (0..10_000).map(|i| format!("/tmp/file-{i}")).collect();
    let line = rec(&big, &changed).to_line();
    assert!(line.len() <= MAX_LINE, "{}", line.len());
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["truncated"], true);
    assert!(
        v["output"].as_str().unwrap().is_empty()
            || v["output"].as_str().unwrap().ends_with("THE END")
    );
}

#[test]
fn summary_names_its_settings_and_lost_records() {
    let site = SiteSummary {
        site: "a.c:3".into(),
        function: "f".into(),
        test: "t".into(),
        calls: 10,
        sampled: 4,
        started: 1,
        skipped_concurrency: 1,
        skipped_budget: 2,
        skipped_in_pod: 0,
        skipped_cgroup: 0,
        skipped_pod_cpu: 0,
        skipped_queue: 0,
        queued: 0,
    };
    let settings = [("INVITE_MAX_OVERHEAD", "10".to_string())];
    let line = summary_line(
        1_764_000_000_000_000_000,
        "h",
        7,
        Totals {
            lost: 3,
            threads_running: 2,
        },
        &settings,
        &admission(),
        &[site],
    );
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["kind"], "summary");
    assert_eq!(v["lost"], 3);
    assert_eq!(v["calls_exact"], false);
    assert_eq!(v["threads_running"], 2);
    assert_eq!(v["settings"]["INVITE_MAX_OVERHEAD"], "10");
    assert_eq!(v["sites"][0]["skipped"]["budget"], 2);
}

fn admission() -> Admission {
    Admission {
        elapsed_ns: 2_000_000_000,
        host_ns: 30_000_000,
        drain_ns: 10_000_000,
        pod_cpu_ns: 500_000_000,
        cpus: 1.5,
        queue_max: 32,
        queued: 5,
        displaced: 2,
        waiting: 1,
    }
}

#[test]
fn the_journal_is_checked_without_being_created_and_refused_as_open_would() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invite.jsonl");
    // Missing, in a directory this user may write: usable, and still missing.
    assert_eq!(check(&path), Ok(()));
    assert!(!path.exists());
    // Missing, in a directory that does not exist: what open() would meet.
    let nowhere = dir.path().join("no/such/dir/invite.jsonl");
    assert!(check(&nowhere).unwrap_err().contains("No such file"));
    assert!(open_c(&c_path(&nowhere).unwrap()).is_err());
    // Not a regular file: the same words as `open`.
    let fifo = dir.path().join("fifo.jsonl");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()));
    assert_eq!(check(&fifo), open_c(&c_path(&fifo).unwrap()).map(drop));
    assert!(check(&fifo).unwrap_err().contains("a FIFO"));
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(check(&link).unwrap_err().contains("symbolic link"));
    // An existing regular file of this user: usable, and left as it was.
    std::fs::write(&path, b"x\n").unwrap();
    assert_eq!(check(&path), Ok(()));
    assert_eq!(std::fs::read(&path).unwrap(), b"x\n");
}
