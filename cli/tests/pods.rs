//! `invite pods` on kept-pod directories laid out the way the runtime keeps them.

mod common;

use std::fs;
use std::path::Path;

use common::{assert_has, assert_starts, cells, invite, invite_with, record};
use serde_json::{json, Value};

/// Keeps a pod as `<dir>/<pid>.<pod>/` with its record and the given changed files' contents
/// (`None`: removed).
fn keep(dir: &Path, pid: u64, pod: &str, outcome: &str, changes: &[(&str, Option<&str>)]) {
    let root = dir.join(format!("{pid}.{}", pod.replace('/', ".")));
    fs::create_dir_all(root.join("changes")).unwrap();
    let mut rec = record(
        "parse_config",
        &format!("test_{}", pod.replace('/', "_")),
        outcome,
        10,
    );
    rec["pid"] = json!(pid);
    rec["pod"] = json!(pod);
    rec["message"] = json!(format!("pod {pod} says hello"));
    rec["output"] = json!("first\nlast\n");
    rec["changed"] = json!(changes.iter().map(|(p, _)| p).collect::<Vec<_>>());
    fs::write(
        root.join("record.json"),
        serde_json::to_string_pretty(&rec).unwrap(),
    )
    .unwrap();
    for (path, contents) in changes {
        if let Some(contents) = contents {
            let file = root.join("changes").join(path.trim_start_matches('/'));
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(file, contents).unwrap();
        }
    }
}

fn kept_pods() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("invite-pods");
    keep(
        &pods,
        4242,
        "3",
        "fail",
        &[
            ("/var/lib/app/state.db", Some("state v2\n")),
            ("/tmp/scratch", None),
        ],
    );
    keep(&pods, 4242, "2/1", "crash", &[]);
    keep(
        &pods,
        99,
        "10",
        "pass",
        &[("/etc/app.conf", Some("debug = true\n"))],
    );
    keep(&pods, 99, "2/1", "pass", &[]);
    dir
}

#[test]
fn lists_pods_with_outcome_and_changed_files() {
    let dir = kept_pods();
    let run = invite(dir.path(), &["pods"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let table: Vec<Vec<String>> = run.stdout.lines().map(cells).collect();
    let expected: Vec<Vec<&str>> = vec![
        vec!["POD", "OUTCOME", "FUNCTION", "TEST", "CHANGED"],
        vec!["99.2.1", "pass", "parse_config", "test_2_1", "-"],
        vec!["99.10", "pass", "parse_config", "test_10", "/etc/app.conf"],
        vec!["4242.2.1", "crash", "parse_config", "test_2_1", "-"],
        vec![
            "4242.3",
            "fail",
            "parse_config",
            "test_3",
            "/var/lib/app/state.db",
        ],
        vec!["/tmp/scratch (removed)"],
    ];
    assert_eq!(table, expected, "\n{}", run.stdout);

    let run = invite(dir.path(), &["pods", "--json"]);
    let pods: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(pods[3]["pod"], "4242.3");
    assert_eq!(
        pods[3]["changed"],
        json!([
            {"path": "/var/lib/app/state.db", "removed": false},
            {"path": "/tmp/scratch", "removed": true}
        ])
    );
}

#[test]
fn pod_dir_comes_from_the_flag_or_the_environment() {
    let dir = kept_pods();
    fs::rename(dir.path().join("invite-pods"), dir.path().join("kept")).unwrap();
    let run = invite(dir.path(), &["pods"]);
    assert_eq!(run.code, 2);
    assert_starts(
        &run.stderr,
        "invite: error: no kept pods: invite-pods does not exist",
    );
    let by_flag = invite(dir.path(), &["pods", "--dir", "kept"]);
    let by_env = invite_with(dir.path(), &["pods"], &[("INVITE_POD_DIR", "kept")]);
    assert_eq!(by_flag.code, 0, "{}", by_flag.stderr);
    assert_eq!(by_flag.stdout, by_env.stdout);
    assert_eq!(by_flag.stdout.lines().count(), 6);
}

#[test]
fn show_finds_a_pod_by_id_or_unambiguous_path() {
    let dir = kept_pods();
    let by_id = invite(dir.path(), &["pods", "show", "4242.3"]);
    assert_eq!(by_id.code, 0, "{}", by_id.stderr);
    let by_path = invite(dir.path(), &["pods", "show", "3"]);
    assert_eq!(by_id.stdout, by_path.stdout);
    assert_starts(&by_id.stdout, "pod        4242.3 (");
    for line in [
        "test       test_3\n",
        "outcome    fail (exit 1)\n",
        "message    pod 3 says hello\n",
        "changed    /var/lib/app/state.db\n           /tmp/scratch (removed)\n",
        "output:\nfirst\nlast\n",
    ] {
        assert_has(&by_id.stdout, line);
    }

    // The pod path 2/1 was kept by two processes.
    let run = invite(dir.path(), &["pods", "show", "2/1"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "invite: error: pod \"2/1\" is ambiguous: it could be 99.2.1, 4242.2.1; give <pid>.<pod>\n"
    );
    let run = invite(dir.path(), &["pods", "show", "4242.2/1"]);
    assert_has(&run.stdout, "outcome    crash");

    let run = invite(dir.path(), &["pods", "show", "7"]);
    assert_eq!(run.code, 2);
    assert_has(
        &run.stderr,
        "no pod \"7\" in invite-pods (kept: 99.2.1, 99.10",
    );

    let run = invite(dir.path(), &["pods", "show", "10", "--json"]);
    let rec: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (rec["pid"].as_u64(), rec["pod"].as_str()),
        (Some(99), Some("10"))
    );
}

#[test]
fn cat_prints_a_changed_file_as_the_pod_left_it() {
    let dir = kept_pods();
    let run = invite(
        dir.path(),
        &["pods", "cat", "4242.3", "/var/lib/app/state.db"],
    );
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "state v2\n"),
        "{}",
        run.stderr
    );
    let run = invite(dir.path(), &["pods", "cat", "10", "/etc/app.conf"]);
    assert_eq!(run.stdout, "debug = true\n");

    let run = invite(dir.path(), &["pods", "cat", "3", "/tmp/scratch"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "invite: error: pod 4242.3 removed /tmp/scratch: there is nothing to print\n"
    );

    let run = invite(dir.path(), &["pods", "cat", "3", "/etc/passwd"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "invite: error: pod 4242.3 did not change /etc/passwd; it changed \
         /var/lib/app/state.db, /tmp/scratch\n"
    );

    let run = invite(
        dir.path(),
        &["pods", "cat", "3", "/var/../../../etc/passwd"],
    );
    assert_eq!(run.code, 2);
    assert_has(&run.stderr, "is not an absolute path without `..`");
}

#[test]
fn cat_does_not_follow_a_link_the_test_made() {
    let dir = kept_pods();
    let pods = dir.path().join("invite-pods");
    keep(&pods, 7, "1", "fail", &[("/tmp/link", None)]);
    fs::create_dir_all(pods.join("7.1/changes/tmp")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", pods.join("7.1/changes/tmp/link")).unwrap();
    let run = invite(dir.path(), &["pods", "cat", "7.1", "/tmp/link"]);
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "invite: error: /tmp/link in pod 7.1 is a symbolic link to /etc/hostname; not following it\n"
    );
    let run = invite(dir.path(), &["pods", "cat", "7.1", "/tmp"]);
    assert_eq!(
        run.stderr,
        "invite: error: /tmp in pod 7.1 is a directory; name a file in it\n"
    );
    // A link in a parent directory does not lead out of the pod either.
    std::os::unix::fs::symlink("/etc", pods.join("7.1/changes/var")).unwrap();
    let run = invite(dir.path(), &["pods", "cat", "7.1", "/var/hostname"]);
    assert_eq!((run.code, run.stdout.as_str()), (2, ""));
    assert_has(
        &run.stderr,
        "/var in pod 7.1 is a symbolic link to /etc; not following it",
    );
}

#[test]
fn an_unreadable_record_is_a_warning_in_the_list() {
    let dir = kept_pods();
    let bad = dir.path().join("invite-pods/5.1");
    fs::create_dir_all(&bad).unwrap();
    fs::write(bad.join("record.json"), "{\"schema\": 1, \"kind\"").unwrap();
    let run = invite(dir.path(), &["pods"]);
    assert_eq!(run.code, 0);
    assert_starts(
        &run.stderr,
        "invite-pods/5.1/record.json: warning: invalid JSON",
    );
    assert_eq!(
        cells(run.stdout.lines().nth(1).unwrap()),
        ["5.1", "?", "(unreadable record.json)", "-"]
    );
    let run = invite(dir.path(), &["pods", "show", "5.1"]);
    assert_eq!(run.code, 2);
    assert_has(&run.stderr, "cannot read the record of pod 5.1");
}
