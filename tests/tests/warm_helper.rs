//! The warm pods' helper (issue 13): blanks are built by a small process started once at the
//! host's start, not by forks of the host. It exists only where warm pods can be used, holds
//! nothing of the host's, is invisible to the host's wait(), dies with the host, and without it
//! pods are cold, not lost.

use invite_tests::*;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Start the fixture host in `mode` (see fixtures/c/helper_host.c); returns it and its pid once
/// it is past its start-up.
fn start(bin: &Path, mode: &str, dir: &Path, env: &[(&str, &str)], nobody: bool) -> (Child, i32) {
    let mut cmd = if nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.arg(mode).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("INVITE") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start the host");
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .expect("read the host's pid");
    let pid = first
        .strip_prefix("pid ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid line: {first:?}"));
    (child, pid)
}

/// Let the host go on and collect what it printed.
fn finish(mut child: Child) -> (bool, String) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let o = child.wait_with_output().unwrap();
    (o.status.success(), text(&o))
}

/// The processes other than `host` that hold a pidfd of it: its helper (forked before `main`,
/// so there from the host's first line on) and, for a moment, the short-lived child that forks it.
fn holders_of(host: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == host {
            continue;
        }
        let holds_host = fds_of(pid).iter().any(|(fd, link)| {
            link == "anon_inode:[pidfd]"
                && std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
                    .unwrap_or_default()
                    .lines()
                    .any(|l| {
                        l.split_whitespace().collect::<Vec<_>>() == ["Pid:", &host.to_string()]
                    })
        });
        if holds_host {
            out.push(pid);
        }
    }
    out
}

/// (descriptor, what it points to) of a process.
fn fds_of(pid: i32) -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    rd.flatten()
        .map(|e| {
            let link = std::fs::read_link(e.path()).unwrap_or_default();
            (
                e.file_name().to_string_lossy().into_owned(),
                link.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

fn comm_of(pid: i32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    comm.trim().to_string()
}

/// The helper of `host`, once it has named itself (up to 60 s against a hang).
fn helper_of(host: i32) -> Option<i32> {
    for _ in 0..6000 {
        if let [h] = holders_of(host)[..] {
            if comm_of(h) == "invite-builder" {
                return Some(h);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

fn ppid_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Wait (without a deadline that decides anything: 60 s against a hang) for `pid` to be gone.
fn gone(pid: i32) -> bool {
    for _ in 0..6000 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

fn host(d: &Path) -> std::path::PathBuf {
    let bin = d.join("helper_host");
    compile_c(&[fixture("c/helper_host.c")], &bin);
    bin
}

#[test]
fn one_helper_per_host_holding_nothing_of_the_hosts_and_dying_with_it() {
    if !require_root("warm pods need root") {
        return;
    }
    let d = scratch();
    let bin = host(d.path());
    let (mut child, pid) = start(&bin, "hold", d.path(), &[], false);
    let h = helper_of(pid).unwrap_or_else(|| panic!("no helper for {pid}: {:?}", holders_of(pid)));
    // A grandchild, reparented away: the host's wait() never meets it.
    assert_ne!(ppid_of(h), Some(pid));
    // Its streams are /dev/null; it holds no pipe, file or journal of the host's: its control
    // socket, the host's pidfd and the pods' network namespace only.
    for (fd, link) in fds_of(h) {
        match fd.as_str() {
            "0" | "1" | "2" => assert_eq!(link, "/dev/null", "helper fd {fd}"),
            _ => assert!(
                link.starts_with("socket:")
                    || link == "anon_inode:[pidfd]"
                    || link.starts_with("net:["),
                "helper fd {fd} -> {link}"
            ),
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(gone(h), "the helper {h} outlived its host");
}

#[test]
fn the_hosts_wait_does_not_see_the_helper() {
    if !require_root("warm pods need root") {
        return;
    }
    let d = scratch();
    let bin = host(d.path());
    let (child, pid) = start(&bin, "wait", d.path(), &[], false);
    assert!(helper_of(pid).is_some());
    let (ok, out) = finish(child);
    assert!(ok, "{out}");
    assert!(out.contains("wait -1 No child processes"), "{out}");
}

#[test]
fn no_helper_where_warm_pods_cannot_be() {
    if !require_root("warm pods need root") {
        return;
    }
    let d = scratch();
    let bin = host(d.path());
    let cases: [(&[(&str, &str)], bool); 4] = [
        (&[("INVITE", "off")], false),
        (&[("INVITE_WARM", "off")], false),
        (&[("INVITE_ISOLATION", "fork")], false),
        (&[], true), // not root
    ];
    for (env, nobody) in cases {
        let (child, pid) = start(&bin, "hold", d.path(), env, nobody);
        let helpers = holders_of(pid);
        let (ok, out) = finish(child);
        assert!(ok, "{out}");
        assert!(helpers.is_empty(), "{env:?} nobody={nobody}: {helpers:?}");
    }
}

#[test]
fn warm_pods_come_from_the_helper_and_are_cold_without_it() {
    if !require_root("warm pods need root") {
        return;
    }
    let d = scratch();
    let bin = host(d.path());
    let env = [("INVITE_WARM", "wait"), ("INVITE_DRAIN_MS", "0")];
    let (child, _) = start(&bin, "pod", d.path(), &env, false);
    let (ok, out) = finish(child);
    assert!(ok && out.lines().any(|l| l == "warm"), "{out}");
    // The helper killed before the first ckpt(): no blanks, the pod is cold, not lost.
    let (child, pid) = start(&bin, "pod", d.path(), &env, false);
    let h = helper_of(pid).expect("a helper");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(h, libc::SIGKILL) };
    assert!(gone(h));
    let (ok, out) = finish(child);
    assert!(ok && out.lines().any(|l| l == "cold"), "{out}");
}

#[test]
fn a_host_that_moved_after_start_up_gets_pods_of_what_it_sees_now() {
    if !require_root("warm pods need root") {
        return;
    }
    // The host no longer looks at its root and mount namespace on each ckpt()'s pause: the
    // pod's first process (a fork of it) does. The host moves to a mount namespace of its own
    // with a tmpfs at ./moved holding a file the helper's blanks cannot show; each of its three
    // pods passes only if it sees the file. With `wait` the first pod is a warm test that finds
    // the host moved and builds its pod cold; with `on` the first pod is cold (the stock is
    // still empty) and its supervisor finds it; the later ones are cold from the host.
    for warm in ["wait", "on"] {
        let d = scratch();
        let bin = host(d.path());
        let env = [("INVITE_WARM", warm)];
        let (child, _) = start(&bin, "moved", d.path(), &env, false);
        let (ok, out) = finish(child);
        assert!(ok && out.lines().any(|l| l == "records 3"), "{warm}: {out}");
        let j = journal(&d.path().join("invite.jsonl"));
        let t = tests_of(&j);
        assert_eq!(t.len(), 3, "{warm}: {t:?}");
        for r in &t {
            assert_eq!(r["outcome"], "pass", "{warm}: a pod of the old view: {r}");
        }
    }
}

#[test]
fn the_plan_is_made_at_start_up_and_the_journal_at_the_first_ckpt() {
    if !require_root("warm pods need root") {
        return;
    }
    // Where pods are warm, the first ckpt() no longer reads the mount table while the host waits:
    // the constructor did, before main. The journal is still created only once pods start (by
    // the runtime's thread or the first supervisor, off the host's pause). strace (following
    // threads and children) shows the order of the opens and the host's first line of output.
    let d = scratch();
    let bin = host(d.path());
    let trace = d.path().join("trace.txt");
    let mut cmd = Command::new("strace");
    cmd.arg("-o")
        .arg(&trace)
        .args(["-f", "-e", "trace=openat,write", "-s", "64"])
        .arg(&bin)
        .arg("pod")
        .current_dir(d.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("INVITE") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .envs([("INVITE_WARM", "wait"), ("INVITE_DRAIN_MS", "0")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace (apt-get install strace)");
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let out = text(&o);
    assert!(
        o.status.success() && out.lines().any(|l| l == "warm"),
        "{out}"
    );
    let calls = std::fs::read_to_string(&trace).expect("the trace");
    let at = |what: &str| calls.lines().position(|l| l.contains(what));
    let main = at("write(1, \"pid ").unwrap_or_else(|| panic!("no pid line:\n{calls}"));
    let mountinfo = at("/proc/self/mountinfo").unwrap_or_else(|| panic!("no plan:\n{calls}"));
    let journal = at("invite.jsonl").unwrap_or_else(|| panic!("no journal:\n{calls}"));
    assert!(
        mountinfo < main,
        "the mount table was read after main started:\n{calls}"
    );
    assert!(
        journal > main,
        "the journal was opened before main:\n{calls}"
    );
}
