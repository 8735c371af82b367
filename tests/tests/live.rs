//! Live checkpoints (issue 8): the seed's demo flow branched through the `invite` command, access
//! control, drop, bounds, and a checkpoint dying with its process. Real C programs built with the
//! project's flags; each test has its own socket directory (`--dir`), so tests running side by
//! side do not see each other's checkpoints.

use invite_tests::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A host program running the demo fixture, parked on its checkpoint `demo`.
struct Host {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
    dir: PathBuf,
    sockets: PathBuf,
    pods: PathBuf,
}

impl Host {
    fn start(dir: &Path) -> Host {
        let bin = dir.join("demo");
        compile_c(&[fixture("c/live/demo.c")], &bin);
        Host::start_bin(dir, &bin)
    }

    /// The same flow from another program (the Rust twin of demo.c).
    fn start_bin(dir: &Path, bin: &Path) -> Host {
        let sockets = dir.join("sockets");
        let pods = dir.join("kept");
        let mut cmd = Command::new(bin);
        cmd.current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("INVITE") {
                cmd.env_remove(k);
            }
        }
        cmd.env("INVITE_CHECKPOINT_DIR", &sockets)
            .env("INVITE_KEEP_PODS", "all")
            .env("INVITE_POD_DIR", &pods);
        let mut child = cmd.spawn().expect("start the demo");
        let stdin = child.stdin.take();
        let mut first = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        let pid = first
            .strip_prefix("parked ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| {
                let mut err = String::new();
                let _ = child.stderr.as_mut().unwrap().read_to_string(&mut err);
                panic!("the demo did not park: {first:?}; stderr: {err}")
            });
        Host {
            child,
            stdin,
            pid,
            dir: dir.to_path_buf(),
            sockets,
            pods,
        }
    }

    fn invite(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--dir", self.sockets.to_str().unwrap()]);
        run(&tool("invite"), &all, &self.dir, &[])
    }

    fn invite_ok(&self, args: &[&str]) -> String {
        let o = self.invite(args);
        assert!(o.status.success(), "invite {args:?}: {}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// `invite checkpoints --json`.
    fn checkpoints(&self) -> Vec<Value> {
        let out = self.invite_ok(&["checkpoints", "--json"]);
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// Branch the checkpoint once (its first branch): the branch's record.
    fn branch_once(&self) -> Value {
        self.invite_ok(&["branch", "demo"]);
        let journal = self.dir.join("invite.jsonl");
        wait_until("the branch's record", || {
            journal.exists() && journal_has_pod(&journal, "demo/1")
        });
        record(&journal, "demo/1")
    }

    fn socket(&self) -> PathBuf {
        self.sockets.join(format!("{}.demo.sock", self.pid))
    }

    /// Close the host's stdin: it writes "parent done" and exits.
    fn finish(mut self) -> Output {
        drop(self.stdin.take());
        let mut o = self.child.wait_with_output().unwrap();
        o.stdout
            .splice(0..0, format!("parked {}\n", self.pid).bytes());
        o
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "timed out waiting: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn record(journal_path: &Path, pod: &str) -> Value {
    let mut found = None;
    wait_until(&format!("the record of pod {pod}"), || {
        found = journal(journal_path)
            .into_iter()
            .find(|r| r["kind"] == "test" && r["pod"] == pod);
        found.is_some()
    });
    found.unwrap()
}

fn alive(pid: u64) -> bool {
    // A zombie has no memory map left; the parked copy is nobody's child here, so it is reaped.
    Path::new(&format!("/proc/{pid}/status")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("State:\tZ")
}

#[test]
fn seed_demo_three_pods_branched_in_turn_each_in_its_own_pod() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    let host = Host::start(d.path());
    let listed = host.checkpoints();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["name"], "demo");
    assert_eq!(listed[0]["pid"], host.pid);
    assert_eq!(listed[0]["branches"], 0);
    let journal_path = d.path().join("invite.jsonl");
    let child_output = d.path().join("Child_Output");
    for k in 1..=3 {
        let out = host.invite_ok(&["branch", "demo"]);
        assert_eq!(
            out,
            format!("started pod demo/{k} of process {}\n", host.pid)
        );
        let r = record(&journal_path, &format!("demo/{k}"));
        assert_eq!(r["outcome"], "pass", "{r}");
        assert_eq!(r["phase"], "manual");
        assert_eq!(r["test"], "branch");
        assert_eq!(r["function"], "main");
        assert_eq!(r["isolation"], "pod");
        assert_eq!(r["pid"], host.pid, "records name the original process");
        assert!(r["site"].as_str().unwrap().ends_with("demo.c:14"), "{r}");
        assert_eq!(r["output"], format!("I am the Child # {k}\n"));
        assert_eq!(
            r["changed"],
            serde_json::json!([child_output.to_str().unwrap()])
        );
        // The pod's own file, kept after it ended: each branch wrote its own id.
        let kept = host
            .pods
            .join(format!("{}.demo.{k}/changes", host.pid))
            .join(child_output.strip_prefix("/").unwrap());
        assert_eq!(
            std::fs::read_to_string(&kept).unwrap(),
            format!("I am the Child # {k}\n")
        );
    }
    assert!(!child_output.exists(), "a branch's file reached the host");
    assert_eq!(host.checkpoints()[0]["branches"], 3);
    let table = host.invite_ok(&["checkpoints"]);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains(&format!("demo  {}", host.pid)), "{table}");
    // The parent's output is unchanged by the branches.
    assert_eq!(
        std::fs::read_to_string(d.path().join("Parent_Output")).unwrap(),
        "I am the Parent\n"
    );
    let host_pid = host.pid;
    let o = host.finish();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("parked {}\nparent done\n", host_pid)
    );
    assert_eq!(tests_of(&journal(&journal_path)).len(), 3);
}

#[test]
fn another_user_can_neither_list_nor_branch() {
    if !require_root("running the invite command as uid 65534") {
        return;
    }
    let d = scratch();
    let host = Host::start(d.path());
    let sockets = host.sockets.to_str().unwrap().to_string();
    let as_nobody = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--dir", &sockets]);
        run_as_nobody(&tool("invite"), &all, d.path(), &[])
    };
    let pid = host.pid.to_string();
    // First gate: the directory is 0700 and root's.
    let mode = std::fs::metadata(&host.sockets).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o700
    );
    let o = as_nobody(&["checkpoints"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "no live checkpoints\n");
    assert!(text(&o).contains("Permission denied"), "{}", text(&o));
    let o = as_nobody(&["branch", "demo", "--pid", &pid]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("Permission denied"), "{}", text(&o));
    // With the first gate opened by mistake, the invite command does not talk to a socket of
    // another user at all...
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&host.sockets, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(host.socket(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let not_yours = "owned by uid 0, not by you (uid 65534); ignored";
    let o = as_nobody(&["checkpoints"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "no live checkpoints\n");
    assert!(text(&o).contains(not_yours), "{}", text(&o));
    for args in [&["branch", "demo"][..], &["drop", "demo"][..]] {
        let o = as_nobody(args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(not_yours), "{}", text(&o));
    }
    // ...and the second gate holds against a client that connects anyway: the peer's uid,
    // checked on every connection (a raw client in Perl, which every Debian system has).
    let refused = "permission denied: uid 65534 may not use the checkpoints of uid 0";
    let client = "use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) \
                  or die \"connect: $!\"; print $s \"$ARGV[1]\\n\"; print scalar <$s>;";
    let socket = host.socket().to_str().unwrap().to_string();
    for request in ["INFO", "BRANCH", "DROP"] {
        let o = run_as_nobody(
            Path::new("perl"),
            &["-e", client, &socket, request],
            d.path(),
            &[],
        );
        assert!(text(&o).contains(refused), "{request}: {}", text(&o));
    }
    // Nothing happened: still there, never branched.
    assert_eq!(host.checkpoints()[0]["branches"], 0);
    let o = host.finish();
    assert!(o.status.success(), "{}", text(&o));
    assert!(tests_of(&journal(&d.path().join("invite.jsonl"))).is_empty());
}

#[test]
fn drop_discards_the_checkpoint_and_the_host_goes_on() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    let host = Host::start(d.path());
    let out = host.invite_ok(&["branch", "demo", "-n", "2", "--pid", &host.pid.to_string()]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let parked = host.checkpoints()[0]["parked_pid"].as_u64().unwrap();
    assert!(alive(parked));
    let out = host.invite_ok(&["drop", "demo"]);
    assert_eq!(
        out,
        format!("dropped checkpoint demo of process {}\n", host.pid)
    );
    wait_until("the parked copy to exit", || !alive(parked));
    assert!(!host.socket().exists());
    assert_eq!(host.invite_ok(&["checkpoints"]), "no live checkpoints\n");
    let o = host.invite(&["branch", "demo"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no live checkpoint \"demo\""),
        "{}",
        text(&o)
    );
    let o = host.finish();
    assert!(o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).ends_with("parent done\n"));
    let j = journal(&d.path().join("invite.jsonl"));
    for k in 1..=2 {
        assert_eq!(record_for(&j, &format!("demo/{k}"))["outcome"], "pass");
    }
}

#[test]
fn the_checkpoint_dies_with_its_process() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    let mut host = Host::start(d.path());
    let parked = host.checkpoints()[0]["parked_pid"].as_u64().unwrap();
    // Killed, not exiting: nothing of the host's runs, the parked copy notices by itself.
    host.child.kill().unwrap();
    host.child.wait().unwrap();
    wait_until("the parked copy to exit", || !alive(parked));
    assert!(!host.socket().exists(), "the socket outlived its process");
    assert_eq!(host.invite_ok(&["checkpoints"]), "no live checkpoints\n");
}

#[test]
fn checkpoints_are_bounded_named_and_not_the_hosts_children() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    let bin = d.path().join("limits");
    compile_c(&[fixture("c/live/limits.c")], &bin);
    let sockets = d.path().join("sockets");
    let o = run(
        &bin,
        &[],
        d.path(),
        &[("INVITE_CHECKPOINT_DIR", sockets.to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "a=0\nb=0\nc=0\nd=0\ne=-EAGAIN\na=-EEXIST\nno/slash=-EINVAL\nno children left\n"
    );
    // The process is gone, and so are its four checkpoints.
    wait_until("the sockets to go", || {
        std::fs::read_dir(&sockets).map_or(0, |rd| rd.count()) == 0
    });
}

#[test]
fn rust_programs_checkpoint_and_branch_the_same_way() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    // fixtures/rust/bank/src/bin/parked.rs, built by the workspace build.
    let host = Host::start_bin(d.path(), &tool("parked"));
    let r = host.branch_once();
    assert_eq!(r["outcome"], "pass", "{r}");
    assert_eq!(r["test"], "branch");
    assert!(
        r["output"].as_str().unwrap().contains("I am the Child # 1"),
        "{r}"
    );
    assert!(
        !host.dir.join("Child_Output").exists(),
        "the branch's file reached the host"
    );
    let o = host.finish();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).ends_with("parent done\n"),
        "{}",
        text(&o)
    );
}

fn journal_has_pod(journal: &Path, pod: &str) -> bool {
    invite_tests::journal(journal)
        .iter()
        .any(|v| v["kind"] == "test" && v["pod"] == pod)
}

/// Issue 12.9: a client that trickles a request byte by byte cannot hold the parked copy, which
/// serves one connection at a time: the exchange has an overall deadline, so a second client is
/// answered while the first one is still trickling.
#[test]
fn a_trickling_client_cannot_hold_the_checkpoint() {
    if !require_root("pods as root") {
        return;
    }
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let d = scratch();
    let host = Host::start(d.path());
    let socket = host.socket();
    let answered = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let trickler = {
        let (answered, sent, socket) = (answered.clone(), sent.clone(), socket.clone());
        std::thread::spawn(move || {
            let mut c = UnixStream::connect(&socket).unwrap();
            for _ in 0..120 {
                if answered.load(Ordering::SeqCst) {
                    return true; // still trickling when the other client was answered
                }
                let _ = c.write_all(b"I");
                sent.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(500));
            }
            false
        })
    };
    wait_until("the trickler to start", || sent.load(Ordering::SeqCst) > 0);
    let mut c = UnixStream::connect(&socket).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    c.write_all(b"INFO\n").unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    answered.store(true, Ordering::SeqCst);
    assert!(answer.starts_with("OK name=demo "), "{answer:?}");
    assert!(
        trickler.join().unwrap(),
        "the second client was answered only after the trickler gave up"
    );
    let o = host.finish();
    assert!(o.status.success(), "{}", text(&o));
}

/// Issue 21: in a live checkpoint's branches, inherited sockets, pipes and event descriptors are
/// inert objects of the same kind, as in pods (they were /dev/null, which epoll refuses), and
/// nothing a branch writes to them reaches the host.
#[test]
fn branches_get_inert_sockets_pipes_and_event_fds_of_the_same_kind() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    let bin = d.path().join("inert_host");
    compile_c(&[fixture("c/live/sockets.c")], &bin);
    let host = Host::start_bin(d.path(), &bin);
    let r = host.branch_once();
    assert_eq!(r["outcome"], "pass", "{r}");
    assert!(r["output"].as_str().unwrap().contains("kinds ok"), "{r}");
    let o = host.finish();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).ends_with("host saw nothing\n"),
        "{}",
        text(&o)
    );
}
