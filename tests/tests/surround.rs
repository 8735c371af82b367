//! What surrounds the pod holds against hostile input (issues 12.5-12.7): the status pipe cannot
//! forge records, a host's close() takes effect while pods run, and pods stay inside the host's
//! cgroup headroom. (The journal, the configuration and kept pods are in `hostile_files.rs`.)

use invite_tests::surround::*;
use invite_tests::*;

use std::path::{Path, PathBuf};
use std::process::Command;

// ---- 12.7: the status pipe is the pod's verdict and nothing else ----

fn forged(warm: &str, nobody: bool) {
    let d = scratch();
    let bin = surround(d.path());
    let env = [
        ("INVITE_WARM", warm),
        ("INVITE_DRAIN_MS", "20000"),
        ("INVITE_TIMEOUT_MS", "20000"),
    ];
    let o = if nobody {
        std::os::unix::fs::chown(d.path(), Some(65534), Some(65534)).unwrap();
        run_as_nobody(&bin, &["forge"], d.path(), &env)
    } else {
        run(&bin, &["forge"], d.path(), &env)
    };
    assert!(o.status.success(), "{}", text(&o));
    let path = d.path().join("invite.jsonl");
    let j = journal(&path);
    let t = tests_of(&j);
    assert!(
        t.iter().all(|r| r["function"] != "forged"),
        "forged records reached the journal: {} records",
        t.len()
    );
    assert_eq!(t.len(), 1, "{t:#?}");
    let r = record_for(&j, "1");
    assert_eq!(r["outcome"], "pass", "{r}");
    // The status pipe, and any pipe the host inherited (the pod's own inert copy of it).
    let output = r["output"].as_str().unwrap();
    assert!(
        output.contains("forger wrote on ") && !output.contains("forger wrote on 0 pipes"),
        "{r}"
    );
    assert!(notes(r).contains("status pipe"), "{r}");
    assert_eq!(j.iter().filter(|v| v["kind"] == "summary").count(), 1);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 64 * 1024, "journal of {size} bytes for one pod");
}

#[test]
fn forged_frames_on_the_status_pipe_never_reach_the_journal() {
    if !require_root("pods as root") {
        return;
    }
    forged("off", false);
}

#[test]
fn forged_frames_on_the_status_pipe_never_reach_the_journal_warm() {
    if !require_root("pods as root") {
        return;
    }
    forged("wait", false);
}

#[test]
fn forged_frames_on_the_status_pipe_never_reach_the_journal_unprivileged() {
    if !require_root("runs a fixture as nobody") {
        return;
    }
    forged("off", true);
}

#[test]
fn nested_pods_records_are_relayed_under_their_pod_marked_and_capped() {
    let d = scratch();
    let bin = surround(d.path());
    let o = run(
        &bin,
        &["nest", "70"],
        d.path(),
        &[("INVITE_DRAIN_MS", "20000")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&d.path().join("invite.jsonl"));
    let t = tests_of(&j);
    let top = record_for(&j, "1");
    assert_eq!(top["outcome"], "pass", "{top}");
    assert!(top.get("relayed").is_none(), "{top}");
    let relayed: Vec<_> = t.iter().filter(|r| r["pod"] != "1").collect();
    assert_eq!(relayed.len(), 64, "relayed records are capped at 64");
    for r in &relayed {
        assert_eq!(r["relayed"], true, "{r}");
        assert!(r["pod"].as_str().unwrap().starts_with("1/"), "{r}");
        assert_eq!(r["pid"], top["pid"], "{r}");
        assert_eq!(r["outcome"], "pass", "{r}");
    }
    assert!(notes(top).contains("6 records of nested pods"), "{top}");
}

// ---- 12.6: a host's close() takes effect at once ----

fn host_close(warm: &str, nobody: bool) {
    let d = scratch();
    let bin = surround(d.path());
    let env = [("INVITE_WARM", warm), ("INVITE_DRAIN_MS", "20000")];
    let o = if nobody {
        std::os::unix::fs::chown(d.path(), Some(65534), Some(65534)).unwrap();
        run_as_nobody(&bin, &["hostclose"], d.path(), &env)
    } else {
        run(&bin, &["hostclose"], d.path(), &env)
    };
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "eof_before_record=1 lock_before_record=1\n",
        "the peer saw the host's close only once the pod had ended"
    );
    let j = journal(&d.path().join("invite.jsonl"));
    assert_eq!(record_for(&j, "1")["outcome"], "pass");
}

#[test]
fn a_hosts_close_takes_effect_while_a_cold_pod_runs() {
    if !require_root("pods as root") {
        return;
    }
    host_close("off", false);
}

#[test]
fn a_hosts_close_takes_effect_while_an_unprivileged_pod_runs() {
    if !require_root("runs a fixture as nobody") {
        return;
    }
    host_close("off", true);
}

#[test]
fn a_hosts_close_takes_effect_while_a_warm_pod_runs() {
    if !require_root("pods as root") {
        return;
    }
    host_close("wait", false);
}

// ---- 12.5: resources inside the host's cgroup ----

fn shm_bounded(warm: &str) {
    let d = scratch();
    let bin = surround(d.path());
    let o = run(
        &bin,
        &["shm"],
        d.path(),
        &[("INVITE_WARM", warm), ("INVITE_DRAIN_MS", "20000")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&d.path().join("invite.jsonl"));
    let r = record_for(&j, "1");
    let out = r["output"].as_str().unwrap();
    let segs: u64 = out
        .split("segments_64MiB=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{r}"));
    assert!(segs * 64 <= 64, "{segs} segments of 64 MiB: {r}");
    assert!(out.contains("big_2GiB=0"), "{r}");
    let queues: u64 = out
        .split("msg_queues=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{r}"));
    assert!(queues <= 64, "{queues} SysV message queues: {r}");
}

#[test]
fn sysv_shared_memory_is_bounded_in_a_cold_pod() {
    if !require_root("pods as root") {
        return;
    }
    shm_bounded("off");
}

#[test]
fn sysv_shared_memory_is_bounded_in_a_warm_pod() {
    if !require_root("pods as root") {
        return;
    }
    shm_bounded("wait");
}

/// A cgroup of its own for one run (v1 controller hierarchy, or v2), removed at the end.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(controller: &str, file: &str, limit: &str) -> Option<Cgroup> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("invite-test-{}-{n}-{controller}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup").join(controller);
        let dir = if v1.join("cgroup.procs").exists() {
            v1.join(name)
        } else if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            let _ = std::fs::write(
                "/sys/fs/cgroup/cgroup.subtree_control",
                format!("+{controller}"),
            );
            Path::new("/sys/fs/cgroup").join(name)
        } else {
            return None;
        };
        std::fs::create_dir(&dir).ok()?;
        let cg = Cgroup(dir);
        std::fs::write(cg.0.join(file), limit).ok()?;
        Some(cg)
    }

    /// `bin args` inside the cgroup (the shell moves itself in, then execs).
    fn run(
        &self,
        bin: &Path,
        args: &str,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> std::process::Output {
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec {} {args}",
            self.0.display(),
            bin.display()
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]).current_dir(dir);
        for (k, _) in std::env::vars() {
            if k.starts_with("INVITE") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied()).output().unwrap()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..200 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

#[test]
fn a_pod_never_starves_the_host_of_pids_in_its_cgroup() {
    if !require_root("creates a pids cgroup") {
        return;
    }
    let d = scratch();
    let bin = surround(d.path());
    let Some(cg) = Cgroup::new("pids", "pids.max", "64") else {
        panic!("no pids cgroup controller to test with");
    };
    for warm in ["off", "wait"] {
        let o = cg.run(
            &bin,
            "pids",
            d.path(),
            &[("INVITE_WARM", warm), ("INVITE_TIMEOUT_MS", "2000")],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "v=6 threads_ok=8 fork_ok=1\n",
            "{warm}: the host was starved"
        );
        let j = journal(&d.path().join("invite.jsonl"));
        let site = &summary(&j)["sites"][0];
        assert_eq!(site["skipped"]["cgroup"], 1, "{warm}: {site}");
        let _ = std::fs::remove_file(d.path().join("invite.jsonl"));
    }
}

#[test]
fn no_memory_headroom_in_the_hosts_cgroup_turns_pods_away() {
    if !require_root("creates a memory cgroup") {
        return;
    }
    let d = scratch();
    let bin = surround(d.path());
    let file = if Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
        "memory.limit_in_bytes"
    } else {
        "memory.max"
    };
    let Some(cg) = Cgroup::new("memory", file, &(96u64 << 20).to_string()) else {
        panic!("no memory cgroup controller to test with");
    };
    let o = cg.run(&bin, "pids", d.path(), &[("INVITE_TIMEOUT_MS", "2000")]);
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&d.path().join("invite.jsonl"));
    assert!(tests_of(&j).is_empty(), "{j:#?}");
    let site = &summary(&j)["sites"][0];
    assert_eq!(site["skipped"]["cgroup"], 1, "{site}");
}

/// The pods' own cgroup (root, cgroup v1 here): in a host cgroup with a memory limit, pods run in
/// `invite-<host pid>` below it, whose limit bounds them together; it is gone once the host has
/// exited.
fn pods_cgroup(warm: &str) {
    let d = scratch();
    let bin = surround(d.path());
    let (file, v1) = if Path::new("/sys/fs/cgroup/memory/cgroup.procs").exists() {
        ("memory.limit_in_bytes", true)
    } else {
        ("memory.max", false)
    };
    let Some(cg) = Cgroup::new("memory", file, &(2u64 << 30).to_string()) else {
        panic!("no memory cgroup controller to test with");
    };
    let o = cg.run(
        &bin,
        "cgroup",
        d.path(),
        &[("INVITE_WARM", warm), ("INVITE_DRAIN_MS", "20000")],
    );
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&d.path().join("invite.jsonl"));
    let r = record_for(&j, "1");
    let pid = r["pid"].as_u64().unwrap();
    let out = r["output"].as_str().unwrap();
    let own = format!("invite-{pid}");
    let line = out
        .lines()
        .find(|l| {
            let ctrls = l.split(':').nth(1).unwrap_or("");
            if v1 {
                ctrls.split(',').any(|c| c == "memory")
            } else {
                l.starts_with("0::")
            }
        })
        .unwrap_or_else(|| panic!("{r}"));
    assert!(line.ends_with(&own), "the pod ran in {line}: {r}");
    assert!(
        !cg.0.join(&own).exists(),
        "the pods' cgroup outlived the host"
    );
}

#[test]
fn root_pods_run_in_a_cgroup_of_their_own() {
    if !require_root("creates cgroups") {
        return;
    }
    pods_cgroup("off");
}

#[test]
fn warm_root_pods_run_in_a_cgroup_of_their_own() {
    if !require_root("creates cgroups") {
        return;
    }
    pods_cgroup("wait");
}
