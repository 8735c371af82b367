//! The files around the pod hold against hostile input (issues 22.1, 22.3, 22.4, 12.8): the
//! journal is opened and written safely, the configuration is checked, and kept pods are private
//! and never follow links. (The status pipe, the host's descriptors and the cgroup bounds are in
//! `surround.rs`.)

use invite_tests::surround::*;
use invite_tests::*;
use serde_json::Value;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

// ---- 22.1: the journal is opened safely ----

#[test]
fn a_planted_fifo_or_a_journal_of_another_user_is_refused() {
    if !require_root("plants files as nobody") {
        return;
    }
    let d = scratch();
    let bin = surround(d.path());
    let shared = d.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    as_nobody("mkfifo invite.jsonl && : > theirs.jsonl", &shared);
    // A FIFO with no reader would block the host's open for ever: the test harness kills it
    // after a minute, which the assertions below then report.
    let o = Command::new("timeout")
        .args(["60"])
        .arg(&bin)
        .arg("plain")
        .current_dir(&shared)
        .env_remove("INVITE_JOURNAL")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("invite.jsonl")
            && err.contains("not a regular file")
            && err.lines().count() == 1,
        "{}",
        text(&o)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("in vivo testing is off"));
    let o = run(
        &bin,
        &["plain"],
        &shared,
        &[("INVITE_JOURNAL", "theirs.jsonl")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::metadata(shared.join("theirs.jsonl"))
            .unwrap()
            .len(),
        0
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("INVITE_JOURNAL") && err.contains("owned by uid 65534"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_setuid_program_does_not_journal_into_the_callers_directory() {
    if !require_root("makes a setuid-root program") {
        return;
    }
    // The set-uid bit needs a file system mounted without nosuid.
    let d = [
        std::env::temp_dir(),
        PathBuf::from("/var/tmp"),
        workspace().join("target"),
    ]
    .into_iter()
    .filter(|p| !nosuid(p))
    .find_map(|p| {
        tempfile::Builder::new()
            .prefix("invite-suid-")
            .tempdir_in(p)
            .ok()
    })
    .expect("a directory on a file system that honours set-uid bits");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = surround(d.path());
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let caller = d.path().join("caller");
    std::fs::create_dir(&caller).unwrap();
    std::fs::set_permissions(&caller, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = run_as_nobody(&bin, &["plain"], &caller, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !caller.join("invite.jsonl").exists(),
        "a setuid-root program created a journal in the caller's directory: {}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("setuid"),
        "{}",
        text(&o)
    );
}

fn nosuid(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: statvfs writes into the struct it is given.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out-pointer.
    unsafe { libc::statvfs(c.as_ptr(), &mut s) != 0 || s.f_flag & libc::ST_NOSUID != 0 }
}

// ---- 22.3: a short write is undone and counted ----

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .unwrap();
        assert!(o.status.success(), "mount tmpfs: {}", text(&o));
        Tmpfs(at.to_path_buf())
    }

    fn free_bytes(&self) -> u64 {
        let c = std::ffi::CString::new(self.0.as_os_str().as_bytes()).unwrap();
        // SAFETY: statvfs writes into the struct it is given.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: valid path and out-pointer.
        assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
        s.f_bavail as u64 * s.f_frsize as u64
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_short_journal_write_is_undone_and_the_record_counted_as_lost() {
    if !require_root("mounts a small tmpfs") {
        return;
    }
    let d = scratch();
    let bin = surround(d.path());
    let fs = Tmpfs::mount(&d.path().join("fs"), "1m");
    let filler = fs.0.join("filler");
    let leave = 40 * 1024;
    let size = fs.free_bytes() - leave;
    std::fs::write(&filler, vec![b'f'; size as usize]).unwrap();
    let journal_path = fs.0.join("j.jsonl");
    let n = 12;
    let o = run(
        &bin,
        &["fill", filler.to_str().unwrap(), &n.to_string()],
        d.path(),
        &[
            ("INVITE_JOURNAL", journal_path.to_str().unwrap()),
            ("INVITE_WARM", "off"),
            ("INVITE_DRAIN_MS", "20000"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // Every line is one whole record (a fragment would join the next record and not parse).
    let j = journal(&journal_path);
    let written = tests_of(&j).len() as u64;
    let s = summary(&j);
    let lost = s["lost"]
        .as_u64()
        .unwrap_or_else(|| panic!("no lost in {s}"));
    assert!(lost >= 1, "{s}");
    assert_eq!(written + lost, n + 1, "{s}");
    let last = tests_of(&j).last().copied().unwrap();
    assert_eq!(last["outcome"], "pass");
}

// ---- 22.4: configuration ----

#[test]
fn configuration_ranges_and_contradictions_are_refused_by_name() {
    let d = scratch();
    let bin = surround(d.path());
    for (env, var) in [
        (
            vec![("INVITE_MAX_OVERHEAD", "1e308")],
            "INVITE_MAX_OVERHEAD",
        ),
        (vec![("INVITE_MAX_OVERHEAD", "5%%")], "INVITE_MAX_OVERHEAD"),
        (vec![("INVITE_MAX_OVERHEAD", "nan")], "INVITE_MAX_OVERHEAD"),
        (vec![("INVITE_PROBABILITY", "inf")], "INVITE_PROBABILITY"),
        (
            vec![("INVITE_SHARD", "1/4"), ("INVITE_FLEET", "4")],
            "INVITE_FLEET",
        ),
    ] {
        let o = run(&bin, &["plain"], d.path(), &env);
        assert!(o.status.success(), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{env:?}: {}", text(&o));
        assert!(
            err.contains(var) && err.contains("expected"),
            "{env:?}: {err}"
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("in vivo testing is off"),
            "{env:?}: {}",
            text(&o)
        );
        if env.len() == 2 {
            assert!(err.contains("INVITE_SHARD"), "{err}");
        }
    }
    assert!(!d.path().join("invite.jsonl").exists());
}

#[test]
fn no_budget_means_no_pod_at_all() {
    let d = scratch();
    let bin = surround(d.path());
    let o = run(&bin, &["pids"], d.path(), &[("INVITE_MAX_OVERHEAD", "0")]);
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&d.path().join("invite.jsonl"));
    assert!(tests_of(&j).is_empty(), "{j:#?}");
    let site = &summary(&j)["sites"][0];
    assert_eq!(site["skipped"]["budget"], 1, "{site}");
    let o = run(&bin, &["plain"], d.path(), &[("INVITE_MAX_OVERHEAD", "0")]);
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("ckpt: "),
        "{}",
        text(&o)
    );
}

#[test]
fn a_non_utf8_journal_path_is_kept_as_bytes() {
    let d = scratch();
    let bin = surround(d.path());
    let name = std::ffi::OsStr::from_bytes(b"j\xff.jsonl");
    let mut cmd = Command::new(&bin);
    cmd.arg("plain").current_dir(d.path());
    for (k, _) in std::env::vars() {
        if k.starts_with("INVITE") {
            cmd.env_remove(k);
        }
    }
    let o = cmd.env("INVITE_JOURNAL", name).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let j = journal(&d.path().join(name));
    assert_eq!(tests_of(&j).len(), 1, "{j:#?}");
    assert!(!d.path().join("j\u{FFFD}.jsonl").exists());
}

// ---- 12.8 / 22.1: kept pods ----

fn kept_dirs(pods: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(pods)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn kept_pods_are_fresh_private_directories_that_never_follow_links() {
    if !require_root("pods as root") {
        return;
    }
    kept_pods_never_follow_links("off");
}

#[test]
fn kept_warm_pods_are_fresh_private_directories_that_never_follow_links() {
    if !require_root("pods as root") {
        return;
    }
    kept_pods_never_follow_links("wait");
}

fn kept_pods_never_follow_links(warm: &str) {
    let d = scratch();
    let bin = surround(d.path());
    let pods = d.path().join("pods");
    // Outside /tmp, which a cold pod's supervisor covers with its scratch.
    let v = tempfile::Builder::new()
        .prefix("invite-victim-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let victim = v.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(v.path().join("victim-file"), "precious\n").unwrap();
    // A directory of an earlier pod of the same name, left with links into the victim (the pid
    // is that of the shell, which execs the program).
    let script = format!(
        "mkdir -p {p}/$$.1/changes && ln -s {v} {p}/$$.1/changes/tmp && \
         ln -s {vf} {p}/$$.1/record.json && chmod 700 {p} && exec {bin} keep",
        p = pods.display(),
        v = victim.display(),
        vf = v.path().join("victim-file").display(),
        bin = bin.display()
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .current_dir(d.path())
        .env("INVITE_KEEP_PODS", "failed")
        .env("INVITE_POD_DIR", &pods)
        .env("INVITE_WARM", warm)
        .env("INVITE_DRAIN_MS", "20000")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(v.path().join("victim-file")).unwrap(),
        "precious\n"
    );
    assert!(
        kept_dirs(&victim).is_empty(),
        "the copy-out followed a planted link into {}",
        victim.display()
    );
    let dirs = kept_dirs(&pods);
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let fresh = &dirs[1];
    let m = std::fs::symlink_metadata(fresh).unwrap();
    assert!(m.is_dir());
    assert_eq!(m.mode() & 0o777, 0o700, "{}", fresh.display());
    let rec = fresh.join("record.json");
    assert_eq!(
        std::fs::symlink_metadata(&rec).unwrap().mode() & 0o777,
        0o600
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&rec).unwrap()).unwrap();
    assert_eq!(r["outcome"], "fail");
    let changes = fresh
        .join("changes")
        .join(d.path().strip_prefix("/").unwrap());
    let a = changes.join("kept-dir/a.txt");
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "pod data\n");
    assert_eq!(std::fs::metadata(&a).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_link(changes.join("kept-link")).unwrap(),
        Path::new("/etc/hostname")
    );
}

#[test]
fn kept_pods_are_capped_and_say_so() {
    if !require_root("pods as root") {
        return;
    }
    let d = scratch();
    let bin = surround(d.path());
    let pods = d.path().join("pods");
    let o = run(
        &bin,
        &["many", "1500"],
        d.path(),
        &[
            ("INVITE_KEEP_PODS", "failed"),
            ("INVITE_POD_DIR", pods.to_str().unwrap()),
            ("INVITE_DRAIN_MS", "20000"),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let dirs = kept_dirs(&pods);
    assert_eq!(dirs.len(), 1);
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("record.json")).unwrap())
            .unwrap();
    assert!(notes(&r).contains("kept"), "{r}");
    let n = walk_count(&dirs[0].join("changes"));
    assert!((900..=1000).contains(&n), "{n} files kept");
    let j = journal(&d.path().join("invite.jsonl"));
    assert!(notes(record_for(&j, "1")).contains("kept"));
}

fn walk_count(p: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk_count(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn an_unusable_pod_dir_is_said_once_and_nothing_is_kept() {
    if !require_root("plants files as nobody") {
        return;
    }
    let d = scratch();
    let bin = surround(d.path());
    std::fs::write(d.path().join("afile"), "x").unwrap();
    std::fs::create_dir(d.path().join("theirs")).unwrap();
    std::fs::set_permissions(
        d.path().join("theirs"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    as_nobody("mkdir theirs/pods", d.path());
    for dir in ["afile", "theirs/pods"] {
        let o = run(
            &bin,
            &["keep"],
            d.path(),
            &[
                ("INVITE_KEEP_PODS", "failed"),
                ("INVITE_POD_DIR", dir),
                ("INVITE_DRAIN_MS", "20000"),
            ],
        );
        assert!(o.status.success(), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("INVITE_POD_DIR") && err.lines().count() == 1,
            "{dir}: {}",
            text(&o)
        );
        assert!(kept_dirs(&d.path().join("theirs/pods")).is_empty());
    }
}
