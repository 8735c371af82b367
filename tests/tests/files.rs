//! Files as they were at the checkpoint (issue 20): a pod never reports a failure on a file the
//! host was writing without saying so; it copies no file it does not write; a file of any size
//! open for writing in the host stays writable in the pod, and the host's copy untouched.

use invite_tests::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn build(name: &str, dir: &Path, libs: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let o = Command::new("gcc")
        .args([
            "-std=gnu11",
            "-O1",
            "-g",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
        ])
        .arg("-I")
        .arg(include_dir())
        .arg(fixture(&format!("c/files/{name}.c")))
        .arg(static_lib())
        .args(libs)
        .args(NATIVE_LIBS)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run gcc");
    assert!(o.status.success(), "gcc: {}", text(&o));
    out
}

/// A file system image of `kind` (xfs, btrfs) loop-mounted in `dir`, unmounted when dropped;
/// `None` (and a line saying why) where loop devices are unavailable.
struct LoopFs {
    mnt: PathBuf,
}

impl LoopFs {
    fn new(dir: &Path, kind: &str) -> Option<LoopFs> {
        let img = dir.join(format!("{kind}.img"));
        let mnt = dir.join(kind);
        std::fs::create_dir_all(&mnt).unwrap();
        std::fs::File::create(&img)
            .unwrap()
            .set_len(512 << 20)
            .unwrap();
        let mkfs = Command::new(format!("mkfs.{kind}"))
            .args(if kind == "xfs" {
                &["-q", "-m", "reflink=1"][..]
            } else {
                &["-q"][..]
            })
            .arg(&img)
            .output()
            .expect("mkfs (scripts/test.sh installs it)");
        assert!(mkfs.status.success(), "mkfs.{kind}: {}", text(&mkfs));
        let m = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt)
            .output()
            .unwrap();
        if !m.status.success() {
            eprintln!(
                "SKIPPED: no loop device to mount a {kind} image: {}",
                text(&m)
            );
            return None;
        }
        std::fs::set_permissions(&mnt, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Some(LoopFs { mnt })
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

/// A check that failed (a timeout is the machine's load or a lock another thread of the host
/// held at the fork, not a file's state: counted apart).
fn failing(r: &Value) -> bool {
    matches!(r["outcome"].as_str(), Some("fail" | "crash"))
}

/// Every failing record of a pod that may have read a file in a mixed state says so; returns
/// (records, failing, unreliable).
fn check_sqlite_journal(j: &[Value]) -> (usize, usize, usize) {
    let recs = tests_of(j);
    let mut fails = 0;
    let mut unreliable = 0;
    let timeouts = recs.iter().filter(|r| r["outcome"] == "timeout").count();
    eprintln!("{timeouts} timeouts");
    for r in &recs {
        if r["unreliable"] == Value::Bool(true) {
            unreliable += 1;
            let notes = r["notes"].to_string();
            assert!(
                notes.contains("kv.db"),
                "unreliable without naming the file: {r}"
            );
        }
        if failing(r) {
            fails += 1;
            assert_eq!(
                r["unreliable"],
                Value::Bool(true),
                "a failure on a database the host was writing, not marked unreliable: {r}"
            );
        }
    }
    (recs.len(), fails, unreliable)
}

/// Run a SQLite host (C or Rust) cold and warm, its pods only checking the database or also
/// writing to it (`pod_args`: `["write"]`): the host's database stays intact and holds no pod's
/// row, and no failing check goes unmarked. Returns the records of each run.
fn sqlite_host_never_fails_silently(
    bin: &Path,
    dir: &Path,
    modes: &[&str],
    pod_args: &[&str],
    env: &[(&str, &str)],
) -> Vec<Vec<Value>> {
    let mut runs = Vec::new();
    for &warm in modes {
        // Cloning a file flushes what the host wrote of it first: on a loop device, slow.
        let deadline = "60000";
        for f in ["invite.jsonl", "kv.db", "kv.db-wal", "kv.db-shm"] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let args: Vec<&str> = ["kv.db", "150"].iter().chain(pod_args).copied().collect();
        let o = run(
            bin,
            &args,
            dir,
            &[
                ("INVITE_WARM", warm),
                ("INVITE_MAX_CONCURRENT", "4"),
                ("INVITE_TIMEOUT_MS", deadline),
            ]
            .into_iter()
            .chain(env.iter().copied())
            .collect::<Vec<_>>(),
        );
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("host ok"), "{}", text(&o));
        let j = journal(&dir.join("invite.jsonl"));
        let (n, fails, unreliable) = check_sqlite_journal(&j);
        eprintln!(
            "{} {pod_args:?}, warm={warm}: {n} pods, {fails} failing, {unreliable} unreliable",
            bin.display()
        );
        assert!(n >= 100, "only {n} records");
        runs.push(tests_of(&j).into_iter().cloned().collect());
    }
    runs
}

#[test]
fn sqlite_wal_checks_in_pods_of_a_c_host_never_fail_silently() {
    if !require_root("pods with overlays") {
        return;
    }
    let d = scratch();
    let bin = build("sqlite_host", d.path(), &["-lsqlite3"]);
    sqlite_host_never_fails_silently(&bin, d.path(), &["off", "on"], &[], &[]);
    sqlite_host_never_fails_silently(&bin, d.path(), &["off"], &["write"], &[]);
}

#[test]
fn sqlite_wal_checks_in_pods_of_a_rust_host_never_fail_silently() {
    if !require_root("pods with overlays") {
        return;
    }
    let d = scratch();
    // fixtures/rust/bank/src/bin/kv.rs, built by the workspace build.
    sqlite_host_never_fails_silently(&tool("kv"), d.path(), &["off", "on"], &[], &[]);
    sqlite_host_never_fails_silently(&tool("kv"), d.path(), &["on"], &["write"], &[]);
}

/// On XFS and btrfs pods' database, -wal and -shm are reflink clones of one instant (the host
/// held still while they are taken), while the host writes the database all the time: every
/// check passes, whether the pod only checks the database or also writes to it first, and no
/// pod saw the live files or a mixed set (a count over all pods). Each file system runs a C and
/// a Rust host, one with pods that only check, the other with pods that write, each with warm
/// pods off and on (a host writing such files gets cold pods).
#[test]
fn on_a_file_system_with_reflinks_every_sqlite_check_passes_on_a_consistent_set() {
    if !require_root("mounts file system images") {
        return;
    }
    let d = scratch();
    let c_host = build("sqlite_host", d.path(), &["-lsqlite3"]);
    let rust_host = tool("kv");
    let live = "kv.db: the host wrote it after the checkpoint";
    let mixed = "while the pod's clones were taken";
    // Per file system, two hosts, each with its pods' arguments.
    type Hosts<'a> = [(&'a PathBuf, &'a [&'a str]); 2];
    let runs: [(&str, Hosts); 2] = [
        ("xfs", [(&c_host, &[]), (&rust_host, &["write"])]),
        ("btrfs", [(&rust_host, &[]), (&c_host, &["write"])]),
    ];
    for (kind, hosts) in runs {
        let Some(fs) = LoopFs::new(d.path(), kind) else {
            return;
        };
        let (mut pods, mut passes, mut mixed_sets, mut live_sets) = (0, 0, 0, 0);
        let mut failures = Vec::new();
        for (bin, pod_args) in hosts {
            for r in sqlite_host_never_fails_silently(bin, &fs.mnt, &["off", "on"], pod_args, &[])
                .iter()
                .flatten()
            {
                let notes = r["notes"].to_string();
                pods += 1;
                passes += usize::from(r["outcome"] == "pass");
                mixed_sets += usize::from(notes.contains(mixed));
                live_sets += usize::from(notes.contains(live));
                if r["outcome"] != "pass" || notes.contains(mixed) {
                    failures.push(r.to_string());
                }
            }
        }
        eprintln!(
            "{kind}: {pods} pods, {passes} passed, {mixed_sets} mixed, {live_sets} on live files"
        );
        assert_eq!(
            (passes, mixed_sets, live_sets),
            (pods, 0, 0),
            "{kind}: every pod passes on clones of one instant; not so:\n{}",
            failures.join("\n")
        );
    }
}

/// `INVITE_HOLD_HOST=off`: nothing holds the host still while its files are cloned (a server
/// that must not stall), so under a host that writes all the time some sets come out mixed or
/// on live files — and every such failing check is marked unreliable (`check_sqlite_journal`).
#[test]
fn with_the_hold_off_the_host_is_never_held_and_torn_sets_say_so() {
    if !require_root("mounts file system images") {
        return;
    }
    let d = scratch();
    let c_host = build("sqlite_host", d.path(), &["-lsqlite3"]);
    let Some(fs) = LoopFs::new(d.path(), "xfs") else {
        return;
    };
    let env = [("INVITE_HOLD_HOST", "off")];
    let records: Vec<Value> =
        sqlite_host_never_fails_silently(&c_host, &fs.mnt, &["off", "on"], &[], &env)
            .into_iter()
            .flatten()
            .collect();
    let torn = records
        .iter()
        .filter(|r| {
            let notes = r["notes"].to_string();
            notes.contains("while the pod's clones were taken")
                || notes.contains("kv.db: the host wrote it after the checkpoint")
        })
        .count();
    eprintln!(
        "hold off: {} pods, {torn} on a set the host wrote",
        records.len()
    );
    assert!(
        torn > 0,
        "{} pods, none of them on a set the host wrote while it was taken: was the host held?",
        records.len()
    );
}

fn changed(r: &Value) -> Vec<String> {
    r["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Run big_host; its three pods' records.
fn big_host(bin: &Path, dir: &Path, size: &str, mode: &str, warm: &str) -> Vec<Value> {
    let _ = std::fs::remove_file(dir.join("invite.jsonl"));
    let o = run(bin, &["big.dat", size, mode], dir, &[("INVITE_WARM", warm)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("host ok"), "{}", text(&o));
    let j = journal(&dir.join("invite.jsonl"));
    let recs: Vec<Value> = tests_of(&j).into_iter().cloned().collect();
    assert_eq!(recs.len(), 3, "{j:?}");
    recs
}

/// On XFS the pod's file is a clone, cold or warm: written in the pod, untouched in the host,
/// listed in `changed` only where the pod wrote it (a warm test says so itself as it ends).
#[test]
fn a_cloned_file_is_the_pods_own() {
    if !require_root("mounts file system images") {
        return;
    }
    let d = scratch();
    let bin = build("big_host", d.path(), &[]);
    let Some(fs) = LoopFs::new(d.path(), "xfs") else {
        return;
    };
    for warm in ["off", "wait"] {
        for r in big_host(&bin, &fs.mnt, "64", "idle", warm) {
            assert_eq!(r["outcome"], "pass", "warm {warm}: {r}");
            assert!(changed(&r).is_empty(), "warm {warm}: {r}");
            assert!(r.get("notes").is_none(), "warm {warm}: {r}");
        }
        for r in big_host(&bin, &fs.mnt, "64", "write", warm) {
            assert_eq!(r["outcome"], "pass", "warm {warm}: {r}");
            let c = changed(&r);
            assert!(
                c.len() == 2 && c.iter().any(|p| p.ends_with("/big.dat")),
                "warm {warm}: {r}"
            );
        }
    }
}

#[test]
fn pods_that_touch_nothing_copy_nothing() {
    if !require_root("pods with overlays") {
        return;
    }
    let d = scratch();
    let bin = build("big_host", d.path(), &[]);
    for (size, warm) in [("16", "off"), ("16", "wait"), ("1024", "wait")] {
        for r in big_host(&bin, d.path(), size, "idle", warm) {
            assert_eq!(r["outcome"], "pass", "{r}");
            // The host did not write it after the checkpoint: nothing to say.
            assert!(r.get("notes").is_none(), "{r}");
            assert!(changed(&r).is_empty(), "{size} MiB, warm {warm}: {r}");
        }
    }
}

#[test]
fn a_large_file_open_for_writing_stays_writable_in_the_pod_and_untouched_in_the_host() {
    if !require_root("pods with overlays") {
        return;
    }
    let d = scratch();
    let bin = build("big_host", d.path(), &[]);
    for (size, warm) in [("8", "off"), ("1024", "off"), ("1024", "wait")] {
        for r in big_host(&bin, d.path(), size, "write", warm) {
            assert_eq!(r["outcome"], "pass", "{size} MiB, warm {warm}: {r}");
            let c = changed(&r);
            assert!(
                c.len() == 2 && c[0].ends_with("/big.dat") && c[1].ends_with("/sub.txt"),
                "{size} MiB, warm {warm}: {r}"
            );
        }
    }
}

/// On XFS and btrfs a pod, cold or warm, sees the file as it was at the checkpoint although the
/// host writes it right after: by its path (a fresh open, as SQLite's would be) and through the
/// inherited descriptor. The host waits until the clone exists (its blocks are shared) before
/// it writes; if the pod's clone could only be taken after that write, the record says so.
#[test]
fn on_a_file_system_with_reflinks_a_pod_sees_the_checkpoints_file() {
    if !require_root("mounts file system images") {
        return;
    }
    let d = scratch();
    let bin = build("clone_host", d.path(), &[]);
    for kind in ["xfs", "btrfs"] {
        let Some(fs) = LoopFs::new(d.path(), kind) else {
            return;
        };
        for warm in ["off", "wait"] {
            let _ = std::fs::remove_file(fs.mnt.join("invite.jsonl"));
            let o = run(&bin, &["data"], &fs.mnt, &[("INVITE_WARM", warm)]);
            assert!(
                text(&o).contains("host ok"),
                "{kind} warm {warm}: {}",
                text(&o)
            );
            let j = journal(&fs.mnt.join("invite.jsonl"));
            let recs = tests_of(&j);
            assert_eq!(recs.len(), 1, "{j:?}");
            let r = recs[0];
            let late = r["notes"]
                .to_string()
                .contains("cloned after the host wrote");
            assert!(
                r["outcome"] == "pass" || late,
                "{kind}, warm {warm}: the pod did not see the checkpoint's file: {r}"
            );
            assert!(changed(r).is_empty(), "{kind}, warm {warm}: {r}");
        }
    }
}

/// A file the host opens and writes only after the checkpoint (not watched: it was not open for
/// writing then), which the test opens for writing once the host's write shows through: the
/// pod's copy is a state the checkpoint never had, and the record names the file, cold or warm.
#[test]
fn a_file_the_host_writes_after_the_checkpoint_and_the_test_opens_for_writing_is_named() {
    if !require_root("pods with overlays") {
        return;
    }
    let d = scratch();
    let bin = build("late_host", d.path(), &[]);
    for warm in ["off", "wait"] {
        let _ = std::fs::remove_file(d.path().join("invite.jsonl"));
        let o = run(&bin, &["late.dat"], d.path(), &[("INVITE_WARM", warm)]);
        assert!(text(&o).contains("host ok"), "warm {warm}: {}", text(&o));
        let j = journal(&d.path().join("invite.jsonl"));
        let recs = tests_of(&j);
        assert_eq!(recs.len(), 1, "{j:?}");
        let r = recs[0];
        assert_eq!(r["outcome"], "pass", "warm {warm}: {r}");
        assert!(
            r["output"].to_string().contains("starting with 'b'"),
            "warm {warm}: {r}"
        );
        assert!(
            r["notes"]
                .to_string()
                .contains("late.dat: the host wrote it after the checkpoint"),
            "warm {warm}: the pod's copy of a file the host wrote later is not named: {r}"
        );
    }
}
