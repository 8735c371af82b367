//! `invite report --follow`: a journal appended to while it runs, then Ctrl-C.

mod common;

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{lines, record};

/// Kills the follower if the test fails before it could end it with SIGINT.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// Waits until `seen` has `needle` in it; a guard against a hang, not a timing assertion.
fn wait_for(seen: &Arc<Mutex<String>>, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !seen.lock().unwrap().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "{needle:?} never appeared in:\n{}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn follow_redraws_as_lines_are_appended_and_ends_cleanly_on_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invite.jsonl");
    fs::write(&path, lines(&[record("f", "t", "pass", 10)])).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_invite"))
        .args(["report", "--follow", "invite.jsonl"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child.id());
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    wait_for(&seen, "1 run in 1 test: 1 pass");

    let mut journal = OpenOptions::new().append(true).open(&path).unwrap();
    let failing = lines(&[record("g", "u", "crash", 20)]);
    // A record arrives in two writes: the first half must wait for the rest, not be a warning.
    let (head, tail) = failing.split_at(failing.len() / 2);
    journal.write_all(head.as_bytes()).unwrap();
    journal.flush().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    journal.write_all(tail.as_bytes()).unwrap();
    journal
        .write_all(lines(&[record("f", "t", "pass", 30)]).as_bytes())
        .unwrap();
    wait_for(&seen, "3 runs in 2 tests: 2 pass, 1 crash");
    assert!(seen.lock().unwrap().contains("crash (exit 1)  g / u"));

    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    // Reaped: its pid may belong to someone else from now on.
    std::mem::forget(guard);
    reader.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "SIGINT ends it cleanly: {stderr}");
    assert_eq!(stderr, "", "no warning: the torn record was completed");
    let out = seen.lock().unwrap();
    assert!(
        !out.contains('\u{1b}'),
        "no screen control sequences on a pipe"
    );
}
