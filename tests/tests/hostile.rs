//! The hostile battery (issue 12, classes 1-4): what container runtimes guard against, tried from
//! a pod as root and as an unprivileged user, from cold and warm pods, each run checked from the
//! host. The fixture (fixtures/c/hostile*.c) prepares the host's side in a private mount
//! namespace, so the mounts it adds are nobody else's; this runner checks what only root can
//! see (the kernel log) and writes back any tunable the pod managed to change.

use invite_tests::*;
use serde_json::Value;
use std::path::Path;

const TUNABLE: &str = "/proc/sys/fs/lease-break-time";

/// (as nobody, INVITE_WARM): root cold, root warm, unprivileged (always cold).
const VARIANTS: &[(bool, &str)] = &[(false, "off"), (false, "wait"), (true, "off")];

struct Run {
    variant: String,
    work: std::path::PathBuf,
    out: String,
    record: Option<Value>,
}

impl Run {
    fn pod_output(&self) -> &str {
        self.record
            .as_ref()
            .and_then(|r| r["output"].as_str())
            .unwrap_or("")
    }

    fn notes(&self) -> Vec<String> {
        self.record
            .as_ref()
            .and_then(|r| r["notes"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn run_class(class: &str, as_nobody: bool, warm: &str, marker: &str, more: &[(&str, &str)]) -> Run {
    let d = scratch();
    let bin = d.path().join("hostile");
    let files = ["hostile.c", "hostile_late.c", "hostile_cut.c"];
    compile_c(&files.map(|f| fixture(&format!("c/{f}"))), &bin);
    let work = d.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut args = vec![class];
    if as_nobody {
        std::os::unix::fs::chown(&work, Some(65534), Some(65534)).unwrap();
        args.push("nobody");
    }
    let mut env = vec![("INVITE_WARM", warm), ("HOSTILE_MARKER", marker)];
    env.extend_from_slice(more);
    let o = run(&bin, &args, &work, &env);
    let j = journal(&work.join("invite.jsonl"));
    let record = tests_of(&j).first().map(|r| (*r).clone());
    Run {
        variant: format!(
            "{class}, {}, {}",
            if as_nobody { "unprivileged" } else { "root" },
            if warm == "off" { "cold" } else { "warm" }
        ),
        out: text(&o),
        record,
        work,
    }
}

/// Every attempt in the pod prints `what: DONE` when it got through.
fn pod_breaches(r: &Run) -> Vec<String> {
    r.pod_output()
        .lines()
        .filter(|l| l.ends_with(": DONE"))
        .map(String::from)
        .collect()
}

/// The common checks of a run: the host saw nothing, the pod ran and passed, every attempt in
/// it was refused. Problems go to `failures`.
fn check_run(r: &Run, failures: &mut Vec<String>) {
    let mut bad = Vec::new();
    if !r.out.contains("hostile: 0 breaches") {
        bad.push("the host saw a breach".to_string());
    }
    match &r.record {
        None => bad.push("no record".into()),
        Some(rec) if rec["outcome"] != "pass" => bad.push(format!(
            "outcome {} ({}; notes {})",
            rec["outcome"], rec["message"], rec["notes"]
        )),
        Some(_) => {}
    }
    // The attempts ran where the host's objects are: the pod kept the working directory.
    let here = format!(" in {}\n", r.work.display());
    if r.record.is_some() && !r.pod_output().contains(&here) {
        bad.push(format!(
            "the pod lost its working directory {}",
            r.work.display()
        ));
    }
    for b in pod_breaches(r) {
        bad.push(format!("in the pod: {b}"));
    }
    if !bad.is_empty() {
        failures.push(format!(
            "[{}] {}\n{}\npod output:\n{}",
            r.variant,
            bad.join("; "),
            r.out,
            r.pod_output()
        ));
    }
}

/// Run `class` in every variant; `extra` adds its own checks of a run (given the marker the
/// pod was told to leave). Fails listing every failing run.
fn battery(class: &str, title: &str, extra: impl Fn(&Run, &str, &mut Vec<String>)) {
    if !require_root("the hostile battery prepares the host's side as root") {
        return;
    }
    let mut failures = Vec::new();
    for (i, &(nobody, warm)) in VARIANTS.iter().enumerate() {
        let m = format!("invite-hostile-{class}-{}-{i}", std::process::id());
        let r = run_class(class, nobody, warm, &m, &[]);
        extra(&r, &m, &mut failures);
        check_run(&r, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "class {title}: {} failing run(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn class1_kernel_tunables_stay_the_hosts() {
    let original = std::fs::read_to_string(TUNABLE).unwrap();
    battery("tunables", "1 (kernel tunables)", |r, _, failures| {
        // Never leave the machine changed, whatever the pod did.
        if std::fs::read_to_string(TUNABLE).unwrap() != original {
            std::fs::write(TUNABLE, &original).unwrap();
            failures.push(format!("[{}] {TUNABLE} was changed (restored)", r.variant));
        }
    });
}

#[test]
fn class2_keyrings_of_the_host_are_out_of_reach() {
    battery("keyrings", "2 (keyrings)", |_, _, _| {});
}

/// Does the kernel log hold `marker`? (Each open of /dev/kmsg starts at the oldest record, so
/// the whole buffer is read and searched.)
fn kernel_log_has(marker: &str) -> bool {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(Path::new("/dev/kmsg"))
    else {
        return false;
    };
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => {
                if String::from_utf8_lossy(&buf[..n]).contains(marker) {
                    return true;
                }
            }
            // EPIPE: a record was overwritten while reading; go on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            // EINVAL: a record longer than the buffer; skip it.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => continue,
            Err(_) => return false,
        }
    }
}

#[test]
fn class3_host_sockets_fifos_and_device_nodes_are_unusable() {
    let title = "3 (host sockets, FIFOs, device nodes)";
    battery("nodes", title, |r, marker, failures| {
        if kernel_log_has(marker) {
            failures.push(format!(
                "[{}] the pod wrote to the kernel log through a device node",
                r.variant
            ));
        }
        if !r.pod_output().contains("own sockets and FIFOs: work") {
            failures.push(format!(
                "[{}] the test's own sockets and FIFOs broke:\n{}",
                r.variant,
                r.pod_output()
            ));
        }
    });
}

/// Not as root, trees with a mount below are bound whole and the sockets and FIFOs a start-up
/// scan finds in them are hidden: a tree the scan cannot walk fully (more entries than it
/// visits) is hidden whole, a directory it may search but not list is hidden alone (a user's
/// /tmp often holds one: the rest of the tree stays visible); neither lets the host's through.
#[test]
fn class3_trees_the_scan_cannot_walk_fully_keep_host_sockets_and_fifos_out() {
    let title = "3 (trees too large or unreadable to scan)";
    battery("scan", title, |r, _, failures| {
        if !r.variant.contains("unprivileged") {
            return;
        }
        // Hidden, and said so on stderr, once for each.
        let top = r.work.parent().unwrap();
        for hidden in ["big", "blind/hid"] {
            let warning = format!("invite: {}/{hidden} is hidden from pods", top.display());
            if r.out.matches(&warning).count() != 1 {
                failures.push(format!("[{}] no single warning {warning:?}", r.variant));
            }
        }
        let seen = "../blind/seen beside the unlistable directory: visible";
        if !r.pod_output().contains(seen) {
            failures.push(format!(
                "[{}] the tree around an unlistable directory was hidden too:\n{}",
                r.variant,
                r.pod_output()
            ));
        }
    });
}

/// Not as root, a socket the host creates after start-up in a tree the pod sees bound whole is
/// not hidden by the start-up scan: the pod's `connect` is made by its supervisor, which
/// refuses a socket of the host's (by path, absolute path, the pod's own symbolic link, an
/// O_PATH descriptor's /proc link), and Unix datagram sockets (whose `sendmsg` names its
/// receiver where the filter cannot read it) are refused. The pod's own sockets keep working.
#[test]
fn class3_host_sockets_created_after_start_up_are_unreachable() {
    let title = "3 (host sockets created after start-up)";
    battery("late", title, |r, _, failures| {
        let out = r.pod_output();
        let mut bad = Vec::new();
        if !out.contains("own sockets after start-up: work") {
            bad.push("the test's own sockets broke".to_string());
        }
        if !out.contains("../late/host.sock appeared: yes") {
            bad.push("the host's socket never appeared in the pod".to_string());
        }
        if r.variant.contains("unprivileged") {
            // Too many files to cut into pieces: bound whole, and said so once.
            let top = r.work.parent().unwrap();
            let warning = format!("invite: {}/late is bound whole in pods", top.display());
            if r.out.matches(&warning).count() != 1 {
                bad.push(format!("no single warning {warning:?}"));
            }
            if out.contains("with a listener: installed") {
                bad.push("the pod installed a filter with a listener of its own".into());
            }
            let notes = r.notes().join("\n");
            if !notes.contains("connect to ../late/host.sock refused") {
                bad.push(format!(
                    "the record's notes do not name the refusal: {notes:?}"
                ));
            }
        }
        if !bad.is_empty() {
            failures.push(format!("[{}] {}:\n{out}", r.variant, bad.join("; ")));
        }
    });
}

/// Not as root, a tree with a mount below is cut into pieces where it can be (read-only
/// overlays, regular files bound read-only, directories of the pod's own on the ways to the
/// mounts): a FIFO or socket the host makes there after start-up, beside a way or deeper, is
/// the overlay's own or absent, never the host's. The rest of the tree is there, and with no
/// tree bound whole the pod's own datagram sockets work.
#[test]
fn class3_host_sockets_and_fifos_made_after_start_up_in_a_cut_tree_are_unreachable() {
    let title = "3 (host sockets and FIFOs made after start-up in a tree cut into pieces)";
    battery("cut", title, |r, _, failures| {
        let out = r.pod_output();
        let mut bad = Vec::new();
        for want in [
            "the host made its sockets and FIFOs: yes",
            "../cut/dir/host.fifo: there",
            "the rest of ../cut: there",
        ] {
            if !out.contains(want) {
                bad.push(format!("no {want:?}"));
            }
        }
        // Datagram sockets are refused only while some tree is bound whole (its connects go
        // through the supervisor, and a `sendmsg` address cannot be checked).
        let whole = r.out.contains("is bound whole in pods");
        if !whole && !out.contains("own datagram sockets: work") {
            bad.push("the test's own datagram sockets broke".into());
        }
        if !bad.is_empty() {
            failures.push(format!("[{}] {}:\n{out}", r.variant, bad.join("; ")));
        }
    });
}

/// `INVITE_MAX_PIECES` sets how many pieces a tree may be cut into: raised past the late
/// class's 300 files, its tree is cut instead of bound whole (no warning), so the sockets the
/// host makes beside the way to its mount after start-up are not in the pod at all, and its
/// connects no longer go through the supervisor.
#[test]
fn invite_max_pieces_lets_a_larger_tree_be_cut() {
    if !require_root("the hostile battery prepares the host's side as root") {
        return;
    }
    // The pod waits 10 s for the host's sockets, which never show.
    let more = [
        ("INVITE_MAX_PIECES", "1000"),
        ("INVITE_TIMEOUT_MS", "30000"),
    ];
    let r = run_class("late", true, "off", "invite-hostile-pieces", &more);
    let mut failures = Vec::new();
    check_run(&r, &mut failures);
    let out = r.pod_output();
    if r.out.contains("is bound whole in pods") {
        failures.push(format!("a tree was bound whole:\n{}", r.out));
    }
    if !out.contains("../late/host.sock appeared: No such file or directory") {
        failures.push(format!("the host's socket was in the pod:\n{out}"));
    }
    if r.notes().iter().any(|n| n.contains("connect to")) {
        failures.push(format!(
            "a connect went through the supervisor: {:?}",
            r.notes()
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn class4_refused_system_calls_fail_with_eperm_and_are_noted() {
    battery("syscalls", "4 (system calls)", |r, _, failures| {
        let out = r.pod_output();
        if !out.contains("threads, pipes, files, sockets, fork and exec: work") {
            failures.push(format!("[{}] ordinary work broke:\n{out}", r.variant));
        }
        for line in [
            "socket(AF_VSOCK)",
            "keyctl",
            "bpf",
            "perf_event_open",
            "userfaultfd",
        ] {
            if !out.contains(&format!("{line}: Operation not permitted")) {
                failures.push(format!("[{}] {line} not refused with EPERM", r.variant));
            }
        }
        let notes = r.notes().join("\n");
        for name in [
            "socket",
            "keyctl",
            "add_key",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "unshare",
            "io_uring_setup",
        ] {
            if !notes.contains(&format!("refused the system call {name} ")) {
                failures.push(format!(
                    "[{}] the record's notes do not name {name}: {notes:?}",
                    r.variant
                ));
            }
        }
    });
}
