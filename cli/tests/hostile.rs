//! Hostile input around the CLI: journals, kept pods and checkpoint sockets written by someone
//! who wants to hurt the person reading them (issue 22).

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{assert_has, guarded, invite, lines, record, summary, tools};
use serde_json::json;

/// Every character a terminal acts on that the report must not pass through: C0 but `\n`, DEL,
/// C1 (U+0080..U+009F, U+009B is a one-character CSI), and the bidi overrides and isolates.
fn dangerous(c: char) -> bool {
    (c.is_control() && c != '\n')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

#[track_caller]
fn assert_clean(what: &str, text: &str) {
    if let Some((i, c)) = text.char_indices().find(|&(_, c)| dangerous(c)) {
        panic!("{what} has {c:?} at byte {i}:\n{text:?}");
    }
}

const OSC52: &str = "\u{1b}]52;c;cm0gLXJmIH4K\u{7}";

fn hostile_journal(dir: &Path) {
    let mut bad = record(&format!("parse{OSC52}"), "t\u{9b}2J\u{202e}", "fail", 10);
    bad["message"] = json!("\r42 runs: all pass\u{1b}[2J");
    bad["output"] = json!("line\u{1b}]0;owned\u{7}\r\u{1b}[2Jlast\u{7f}\n");
    bad["host"] = json!("web\u{1b}[31m1");
    bad["changed"] = json!(["/tmp/\u{1b}[2Jx"]);
    let mut foreign = record("f", "t", "pass", 1);
    // A bad value ends up quoted in the warning: it must be escaped there too.
    foreign["outcome"] = json!("\u{1b}]52;c;AAAA\u{7}");
    let mut never = summary(
        "2026-05-01T12:00:09Z",
        1,
        &[("g\u{1b}[2J", "never\r", [0, 3, 0])],
    );
    never["settings"] = json!({"INVITE_MAX_OVERHEAD": "10\u{1b}[2J"});
    let text = lines(&[bad, foreign, never]);
    fs::write(dir.join("invite.jsonl"), text).unwrap();
}

#[test]
fn report_never_prints_a_control_character_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    hostile_journal(dir.path());
    let run = invite(dir.path(), &["report"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_clean("stdout", &run.stdout);
    assert_clean("stderr", &run.stderr);
    // Escaped, not dropped: the reader sees what was there.
    assert_has(&run.stdout, "parse\\e]52;c;cm0gLXJmIH4K\\a");
    assert_has(&run.stdout, "\\r42 runs: all pass\\e[2J");
    assert_has(&run.stdout, "t\\u{9b}2J\\u{202e}");

    let run = invite(dir.path(), &["report", "--json"]);
    assert_clean("--json", &run.stdout);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report["recent_failures"][0]["function"],
        format!("parse{OSC52}"),
        "JSON keeps the text, escaped the JSON way"
    );
}

#[test]
fn pods_never_print_a_control_character_from_a_kept_pod() {
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("invite-pods/7.1");
    fs::create_dir_all(pod.join("changes/tmp")).unwrap();
    let mut rec = record("f\u{1b}[2J", "t\r", "fail", 1);
    rec["pid"] = json!(7);
    rec["message"] = json!("\u{1b}]52;c;AAAA\u{7}");
    rec["output"] = json!("\u{9b}2J\u{202e}\n");
    rec["changed"] = json!(["/tmp/a\u{1b}[2J"]);
    fs::write(pod.join("record.json"), rec.to_string()).unwrap();
    fs::write(pod.join("changes/tmp/a\u{1b}[2J"), "x").unwrap();
    for args in [
        &["pods"][..],
        &["pods", "--json"],
        &["pods", "show", "7.1"],
        &["pods", "show", "7.1", "--json"],
        &["pods", "cat", "7.1", "/nope\u{1b}[2J"],
    ] {
        let run = invite(dir.path(), args);
        assert_clean(&format!("{args:?} stdout"), &run.stdout);
        assert_clean(&format!("{args:?} stderr"), &run.stderr);
    }
}

/// Makes `path` (a file or link) belong to `nobody`, as if another user had planted it.
fn chown_nobody(path: &Path) {
    std::os::unix::fs::lchown(path, Some(65534), Some(65534)).unwrap();
}

fn keep_plain_pod(pods: &Path, id: &str) -> std::path::PathBuf {
    let root = pods.join(id);
    fs::create_dir_all(&root).unwrap();
    let mut rec = record("f", "t", "fail", 1);
    rec["changed"] = json!(["/shadow", "/etc/shadow"]);
    fs::write(root.join("record.json"), rec.to_string()).unwrap();
    root
}

#[test]
fn cat_never_leaves_the_pod_through_a_planted_link() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("pods");
    let root = keep_plain_pod(&pods, "99.1");
    // Another user makes the pod's `changes` a link to /etc.
    std::os::unix::fs::symlink("/etc", root.join("changes")).unwrap();
    chown_nobody(&root.join("changes"));
    let pods_arg = pods.to_str().unwrap();
    let run = invite(
        dir.path(),
        &["pods", "--dir", pods_arg, "cat", "99.1", "/shadow"],
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(!run.stdout.contains("root:"), "printed /etc/shadow");
    assert_has(&run.stderr, "symbolic link");
    // The pod directory itself planted as a link.
    std::os::unix::fs::symlink(&root, pods.join("98.1")).unwrap();
    let run = invite(
        dir.path(),
        &["pods", "--dir", pods_arg, "cat", "98.1", "/shadow"],
    );
    assert_eq!(run.code, 2);
    assert!(!run.stdout.contains("root:"));
    // `record.json` as a link to a file outside is not read either.
    let other = keep_plain_pod(&pods, "97.1");
    fs::remove_file(other.join("record.json")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", other.join("record.json")).unwrap();
    let run = invite(
        dir.path(),
        &["pods", "--dir", pods_arg, "show", "97.1", "--json"],
    );
    assert_eq!(run.code, 2);
    assert!(!run.stdout.contains("root:"));
}

#[test]
fn a_fifo_or_a_device_as_record_json_neither_hangs_nor_fills_memory() {
    let dir = tempfile::tempdir().unwrap();
    let pods = dir.path().join("invite-pods");
    let fifo = keep_plain_pod(&pods, "1.1");
    fs::remove_file(fifo.join("record.json")).unwrap();
    let made = Command::new("mkfifo")
        .arg(fifo.join("record.json"))
        .status()
        .unwrap();
    assert!(made.success());
    let zero = keep_plain_pod(&pods, "2.1");
    fs::remove_file(zero.join("record.json")).unwrap();
    let made = Command::new("mknod")
        .args([zero.join("record.json").to_str().unwrap(), "c", "1", "5"])
        .status()
        .unwrap();
    assert!(made.success(), "mknod (the tests run as root)");
    let run = guarded(dir.path(), &["pods"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_has(&run.stderr, "1.1/record.json: warning: not a regular file");
    assert_has(&run.stderr, "2.1/record.json: warning: not a regular file");
    let run = guarded(dir.path(), &["pods", "show", "2.1", "--json"]);
    assert_eq!(run.code, 2);
    let changes = zero.join("changes");
    fs::create_dir_all(&changes).unwrap();
    let made = Command::new("mknod")
        .args([changes.join("shadow").to_str().unwrap(), "c", "1", "5"])
        .status()
        .unwrap();
    assert!(made.success());
    let run = guarded(dir.path(), &["pods", "cat", "2.1", "/shadow"]);
    assert_eq!(run.code, 2);
}

#[test]
fn a_device_or_an_endless_line_as_journal_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let run = guarded(dir.path(), &["report", "/dev/zero"]);
    assert_eq!(run.code, 2);
    assert_has(&run.stderr, "/dev/zero: not a regular file");

    // A 20 MB line between two good records: skipped with a warning, the rest counted.
    let mut text = lines(&[record("f", "t", "pass", 1)]);
    text.push_str(&"x".repeat(20 << 20));
    text.push('\n');
    text.push_str(&lines(&[record("f", "t", "pass", 1)]));
    fs::write(dir.path().join("invite.jsonl"), text).unwrap();
    let (run, peak_kib) = peak_rss(dir.path(), &["report"]);
    assert_eq!(run.0, 0, "{}", run.2);
    assert_has(&run.2, "invite.jsonl:2: warning: line longer than");
    assert!(
        peak_kib < 16 * 1024,
        "peak RSS {peak_kib} KiB for a 20 MB line"
    );
}

/// Runs `invite ARGS` under Python, which reports the child's peak RSS from getrusage.
fn peak_rss(dir: &Path, args: &[&str]) -> ((i32, String, String), u64) {
    assert!(
        tools::python_with("resource", &[]),
        "python3 measures peak RSS"
    );
    let script = "import resource, subprocess, sys\n\
                  p = subprocess.run(sys.argv[1:], capture_output=True, timeout=120)\n\
                  sys.stdout.buffer.write(p.stdout)\n\
                  sys.stderr.buffer.write(p.stderr)\n\
                  sys.stderr.write('\\nPEAK_KIB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
                  sys.exit(p.returncode)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_invite"))
        .args(args)
        .current_dir(dir)
        .env_remove("INVITE_JOURNAL")
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (stderr, peak) = stderr.rsplit_once("\nPEAK_KIB=").expect("peak line");
    let peak = peak.trim().parse().unwrap();
    (
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr.to_string(),
        ),
        peak,
    )
}

#[test]
fn a_million_records_fit_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invite.jsonl");
    let mut file = std::io::BufWriter::new(fs::File::create(&path).unwrap());
    let tests = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for i in 0..1_000_000u64 {
        let outcome = if i % 1000 == 7 { "fail" } else { "pass" };
        let mut rec = record(
            "parse_config",
            tests[(i % 8) as usize],
            outcome,
            100 + i % 5000,
        );
        rec["pid"] = json!(1000 + i % 4);
        rec["output"] = json!("some output of the test that takes room\n".repeat(3));
        writeln!(file, "{rec}").unwrap();
    }
    file.flush().unwrap();
    drop(file);
    let size = fs::metadata(&path).unwrap().len();
    assert!(size > 300 << 20, "the journal is {size} bytes");
    let (run, peak_kib) = peak_rss(dir.path(), &["report", "--json"]);
    assert_eq!(run.0, 0, "{}", run.2);
    let report: serde_json::Value = serde_json::from_str(&run.1).unwrap();
    assert_eq!(report["totals"]["pass"], 999_000);
    assert_eq!(report["totals"]["fail"], 1_000);
    // The bound docs/cli.md states is far above this; the old reader held the whole file.
    eprintln!("peak RSS {peak_kib} KiB for a {size}-byte journal of 1,000,000 records");
    assert!(
        peak_kib < 64 * 1024,
        "peak RSS {peak_kib} KiB for a {size}-byte journal"
    );
}

#[test]
fn counters_that_would_wrap_saturate_with_a_warning() {
    let big = u64::MAX - 5;
    let mut a = summary("2026-05-01T12:00:09Z", 1, &[("f", "t", [0, 0, 0])]);
    a["sites"][0]["calls"] = json!(big);
    a["sites"][0]["skipped"]["budget"] = json!(big);
    let mut b = a.clone();
    b["pid"] = json!(2);
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("invite.jsonl"), lines(&[a, b])).unwrap();
    let run = invite(dir.path(), &["report", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["tests"][0]["calls"], json!(u64::MAX));
    assert_eq!(report["tests"][0]["skipped_by"]["budget"], json!(u64::MAX));
    assert_has(&run.stderr, "saturated");
}

/// A fake checkpoint socket run by a Python script: `mode` says how it misbehaves.
fn fake_socket(dir: &Path, mode: &str) -> std::process::Child {
    assert!(
        tools::python_with("socket", &[]),
        "python3 runs the fake socket"
    );
    let script = r#"
import os, socket, sys, time
path, mode = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(8)
open(path + ".ready", "w").close()
while True:
    c, _ = s.accept()
    try:
        c.recv(100)
        if mode == "slow":
            while True:
                c.send(b"O")
                time.sleep(4)
        else:
            chunk = b"OK " + b"x" * 65536
            while True:
                c.send(chunk)
    except OSError:
        c.close()
"#;
    let path = dir.join("4242.demo.sock");
    let child = Command::new("python3")
        .args(["-c", script, path.to_str().unwrap(), mode])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while !dir.join("4242.demo.sock.ready").exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

#[test]
fn a_slow_or_endless_checkpoint_answer_neither_hangs_nor_grows() {
    for mode in ["slow", "endless"] {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let mut server = fake_socket(dir.path(), mode);
        let d = dir.path().to_str().unwrap();
        let (run, peak_kib) = peak_rss(dir.path(), &["checkpoints", "--dir", d]);
        server.kill().unwrap();
        server.wait().unwrap();
        assert_eq!(run.0, 0, "{mode}: {}", run.2);
        assert_has(&run.1, "no live checkpoints");
        let why = if mode == "slow" {
            "no answer within"
        } else {
            "longer than"
        };
        assert_has(&run.2, why);
        assert!(peak_kib < 16 * 1024, "{mode}: peak RSS {peak_kib} KiB");
    }
}

#[test]
fn a_checkpoint_socket_of_another_user_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = fake_socket(dir.path(), "slow");
    chown_nobody(&dir.path().join("4242.demo.sock"));
    let d = dir.path().to_str().unwrap();
    let run = guarded(dir.path(), &["checkpoints", "--dir", d]);
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_has(&run.stderr, "owned by uid 65534");
}
