//! The builder of blanks: a small helper process started once, from the library's constructor,
//! while the host is still small; the host never forks for warm pods after that.
//!
//! ```text
//! constructor ──fork──▶ (short-lived) ──fork──▶ helper: own session, no host descriptor,
//!                        reaped at once            /dev/null for its streams
//!                                                   │ per request: fork ──▶ worker: builds n
//! watcher thread ── "R n" + reply socket ──────────▶│    blanks, sends them (SCM_RIGHTS)
//!                ◀─ "B…" blanks, "D cpu cow" ───────┘    on the reply socket, exits
//! first ckpt()  ─── "N" + reply socket ─────────────▶ helper: the pods' empty network namespace
//! watcher thread ── "P" pod + its record, journal ──▶ helper: kept until "O" pod (`orphan`);
//!                                                      journaled if the host ends first
//! ```
//!
//! - Only where warm pods can be used: testing on (`INVITE`), pods (`INVITE_ISOLATION`), warm
//!   pods on (`INVITE_WARM`), root, not set-id, not PID 1, and the process still single-threaded
//!   (a library opened later by `dlopen` starts no helper: its host has threads, a fork there is
//!   not small).
//! - The helper is a grandchild, reaped at once: the host's own `wait()` never sees it, never
//!   blocks on it. It dies with the host (it polls the host's pidfd; its worker has a
//!   parent-death signal on it) and holds none of the host's descriptors or streams.
//! - Fail closed: no helper, a dead one, or a descriptor that is no longer ours means no blanks,
//!   so pods are cold, as when the stock is empty.

use super::orphan::Orphans;
use crate::config::{Config, Isolation, Warm as WarmMode};
use crate::ownfd;
use crate::plan::Plan;
use crate::pod;
use crate::sys;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::OnceLock;

/// The host's end of the helper's control socket, and its inode (to tell it from another file
/// the host may have put at the same number after closing ours).
static CTL: OnceLock<(OwnedFd, u64)> = OnceLock::new();

/// The files the helper sees: the process's root when it started (`sys::root_identity`: its
/// mount, new in another mount namespace, and inode). Its blanks are made there, so they serve
/// only a host that still sees the same.
static VIEW: OnceLock<(u64, u64, u64)> = OnceLock::new();

fn view() -> Option<(u64, u64, u64)> {
    sys::root_identity().ok()
}

/// From the library's constructor: start the helper if warm pods may be used here.
pub fn start() {
    if !wanted() {
        return;
    }
    let Ok((ours, theirs)) = sys::seqpacket_pair() else {
        return;
    };
    let host = sys::getpid();
    let Ok(host_pidfd) = sys::pidfd_open(host) else {
        return;
    };
    // SAFETY: the process is single-threaded here (`wanted`), and both children only run the
    // helper's own code and end with `_exit`.
    match unsafe { sys::fork() } {
        Ok(sys::Forked::Child) => {
            drop(ours);
            // SAFETY: single-threaded, as above.
            match unsafe { sys::fork() } {
                Ok(sys::Forked::Child) => serve(theirs, host_pidfd),
                _ => sys::exit_now(0),
            }
        }
        Ok(sys::Forked::Parent(pid)) => {
            let _ = sys::wait4(pid, 0);
            drop(theirs);
            drop(host_pidfd);
            if let (Ok(st), Some(v)) = (sys::fstat(ours.as_raw_fd()), view()) {
                ownfd::mark(ours.as_raw_fd());
                let _ = CTL.set((ours, st.st_ino));
                let _ = VIEW.set(v);
            }
        }
        Err(_) => drop(host_pidfd),
    }
}

fn wanted() -> bool {
    // PID 1 (a container's init) adopts every orphan: the helper would be its child again, seen
    // by its wait().
    if sys::set_id() || !crate::plan::is_root() || sys::getpid() == 1 {
        return false;
    }
    let on = Config::from_env(sys::secure_getenv_os, std::path::Path::new("/"))
        .is_ok_and(|c| c.enabled && c.isolation == Isolation::Pod && c.warm != WarmMode::Off);
    on && std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1)
}

/// The control socket, if the helper was started and the descriptor is still ours.
fn ctl() -> Option<BorrowedFd<'static>> {
    let (fd, ino) = CTL.get()?;
    let ours = sys::fstat(fd.as_raw_fd()).is_ok_and(|st| st.st_ino == *ino);
    ours.then(|| fd.as_fd())
}

/// Was the helper started (at load)?
pub fn started() -> bool {
    CTL.get().is_some()
}

/// Is there a helper whose blanks fit this host? Not if the host has since entered another
/// mount namespace or root (`unshare`, `chroot`): its pods are cold then. Asked when pods are
/// first needed (by the plan and the warm state, both made once), and answered once.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(same_view)
}

/// Whether the helper runs and the host still sees the mounts it saw at start (asked again
/// each time: the plan and the warm state are made at load, and a host may `unshare` or
/// `chroot` later). System calls only: no allocation on a sampled call's path.
pub fn same_view() -> bool {
    // A view this process can no longer read (it dropped root: /proc/self is root's then) is
    // not another view: a change of credentials moves no mount.
    started()
        && VIEW
            .get()
            .is_some_and(|v| view().is_none_or(|now| now == *v))
}

/// The host's end of one request's reply socket: one of the runtime's own descriptors (no pod
/// inherits it) while it lives.
pub type Reply = ownfd::Own;

/// Send one request with a new reply socket; returns the host's end of it.
fn ask(req: &[u8]) -> Option<Reply> {
    let ctl = ctl()?;
    let (ours, theirs) = sys::seqpacket_pair().ok()?;
    sys::send_fds(ctl, req, &[theirs.as_fd()]).ok()?;
    Some(ownfd::Own::new(ours))
}

/// Tell the helper something that needs no answer (`orphan`); false if it could not be told.
pub(super) fn tell(msg: &[u8], fds: &[RawFd]) -> bool {
    ctl().is_some_and(|ctl| sys::send_raw_fds(ctl, msg, fds).is_ok())
}

/// Ask for `n` blanks: the socket they arrive on (`B…` messages, then `D<cpu_ns> <cow_ns>`,
/// then end of file), non-blocking.
pub fn request_blanks(n: usize) -> Option<Reply> {
    let reply = ask(format!("R{n}").as_bytes())?;
    let _ = sys::set_nonblock(reply.raw());
    Some(reply)
}

/// In the helper: the network namespace it made at start.
static HELPER_NET: OnceLock<OwnedFd> = OnceLock::new();

/// The pods' empty network namespace, made by the helper when it started (no fork of the host
/// for it). The host gets its own descriptor, which its plan owns.
pub fn netns() -> Option<RawFd> {
    if let Some(own) = HELPER_NET.get() {
        return Some(own.as_raw_fd()); // the helper's own plan
    }
    let asked = ASKED.lock().unwrap_or_else(|e| e.into_inner()).take();
    // Only the process that asked reads the answer (a fork of it would take its parent's).
    let reply = match asked {
        Some((pid, reply)) if pid == sys::getpid() => reply,
        _ => ask(b"N")?,
    };
    receive_netns(reply)
}

/// The network namespace asked for at start-up (`ask_netns_early`), by this process id.
static ASKED: std::sync::Mutex<Option<(libc::pid_t, Reply)>> = std::sync::Mutex::new(None);

/// At start-up: ask the helper for the pods' network namespace now, without waiting: it makes it
/// while the constructor does the rest of its work, and `netns` takes the answer.
pub fn ask_netns_early() {
    if let Some(reply) = ask(b"N") {
        *ASKED.lock().unwrap_or_else(|e| e.into_inner()) = Some((sys::getpid(), reply));
    }
}

/// The helper's answer to a request for the network namespace, waited for.
fn receive_netns(reply: Reply) -> Option<RawFd> {
    let mut rev = [0i16];
    let mut buf = [0u8; 64];
    let (n, mut fds) = match sys::poll_in(&[reply.raw()], 10_000, &mut rev) {
        Ok(1) => sys::recv_fds(reply.as_fd(), &mut buf).ok()?,
        _ => return None,
    };
    // The plan owns it from here (`Plan::netns_fd`, a number the pods' setup joins).
    (n > 0 && buf[0] == b'N' && fds.len() == 1).then(|| fds.remove(0).into_raw_fd())
}

/// The helper's loop: one request at a time, each builder a fork of this small process.
fn serve(ctl: OwnedFd, host_pidfd: OwnedFd) -> ! {
    sys::setsid(); // no terminal's signals: it ends with the host, not with a ^C
                   // SAFETY: the helper is a single-threaded fork made before the host's `main`: every
                   // descriptor it inherited is its own to replace or close but the two it keeps (no owner in
                   // its memory refers to the others: the host's owners stay the host's).
    unsafe {
        if let Ok(null) = sys::open(c"/dev/null", libc::O_RDWR, 0) {
            for fd in 0..3 {
                let _ = sys::dup2(null.as_raw_fd(), fd);
            }
        }
        sys::close_all_except(3, &[ctl.as_raw_fd(), host_pidfd.as_raw_fd()]);
    }
    sys::set_name(c"invite-builder");
    if let Ok(net) = new_netns() {
        let _ = HELPER_NET.set(net);
    }
    let mut plan: Option<Result<Plan, String>> = None;
    let mut cow_ns = 0;
    let mut workers: Vec<(libc::pid_t, OwnedFd)> = Vec::new();
    let mut orphans = Orphans::default();
    // A word of the watcher's carries a journal line (at most 64 KiB).
    let mut buf = vec![0u8; 66 << 10];
    loop {
        let mut rev = [0i16; 2];
        let timeout = if workers.is_empty() { -1 } else { 20 };
        let polled = [ctl.as_raw_fd(), host_pidfd.as_raw_fd()];
        if sys::poll_in(&polled, timeout, &mut rev).is_err() || rev[1] != 0 {
            orphans.host_gone(ctl.as_fd(), &mut buf);
        }
        reap(&mut workers, cow_ns);
        if rev[0] == 0 {
            continue;
        }
        let (n, mut fds) = match sys::recv_fds(ctl.as_fd(), &mut buf) {
            // Every copy of the host's end closed: the host is gone (or made a new image).
            Ok((0, _)) => orphans.host_gone(ctl.as_fd(), &mut buf),
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => orphans.host_gone(ctl.as_fd(), &mut buf),
        };
        if orphans.take(&buf[..n], &mut fds) {
            continue;
        }
        let Ok::<[OwnedFd; 1], _>([reply]) = fds.try_into() else {
            continue;
        };
        if buf[0] == b'N' {
            let net: Vec<BorrowedFd> = HELPER_NET.get().map(AsFd::as_fd).into_iter().collect();
            let _ = sys::send_fds(reply.as_fd(), b"N", &net);
            continue;
        }
        let plan = plan.get_or_insert_with(|| {
            Plan::build(
                || crate::pod::make_namespaces(netns()),
                crate::pod::seccomp_filter,
                // Only root has a helper, and root's pods overlay every tree: none is cut.
                crate::config::DEFAULT_MAX_PIECES,
            )
        });
        match (buf[0], &*plan) {
            (b'R', Ok(p)) => {
                if cow_ns == 0 {
                    cow_ns = sys::measure_cow_fault_ns().unwrap_or(0);
                }
                let count = std::str::from_utf8(&buf[1..n])
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                    .unwrap_or(0);
                // SAFETY: the helper is single-threaded; the worker runs `build` and exits.
                match unsafe { sys::fork() } {
                    Ok(sys::Forked::Child) => build(p, reply, count, ctl, host_pidfd),
                    Ok(sys::Forked::Parent(pid)) => workers.push((pid, reply)),
                    Err(_) => {}
                }
            }
            (_, Err(e)) => {
                let _ = sys::send_fds(reply.as_fd(), format!("E{e}").as_bytes(), &[]);
            }
            _ => {}
        }
    }
}

/// A new, empty network namespace, the helper itself staying in its own (it is single-threaded:
/// the switch is its only thread's).
fn new_netns() -> std::io::Result<OwnedFd> {
    let orig = File::open("/proc/self/ns/net")?;
    let made = sys::unshare(libc::CLONE_NEWNET).and_then(|()| File::open("/proc/self/ns/net"));
    if sys::setns(orig.as_raw_fd(), libc::CLONE_NEWNET).is_err() {
        sys::exit_now(1); // a helper stuck in the pods' namespace would build nothing right
    }
    made.map(OwnedFd::from)
}

/// Reap the workers that are done; each one's CPU time goes to its requester, who charges it to
/// the budget, with the cost of a copy-on-write fault measured here.
fn reap(workers: &mut Vec<(libc::pid_t, OwnedFd)>, cow_ns: u64) {
    workers.retain(|(pid, reply)| match sys::wait4(*pid, libc::WNOHANG) {
        Ok((0, _, _)) => true,
        Ok((_, _, ru)) => {
            let cpu = pod::tv_ns(ru.ru_utime) + pod::tv_ns(ru.ru_stime);
            let _ = sys::send_fds(reply.as_fd(), format!("D{cpu} {cow_ns}").as_bytes(), &[]);
            false
        }
        Err(_) => false,
    });
}

/// A worker: `n` blanks, each new mount, IPC and UTS namespaces with the mounts prepared as a
/// cold pod's would be, sent with a descriptor of its scratch; then exit.
fn build(plan: &Plan, sock: OwnedFd, n: usize, ctl: OwnedFd, host_pidfd: OwnedFd) -> ! {
    let helper = sys::getppid();
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    if sys::getppid() != helper {
        sys::exit_now(0);
    }
    drop((ctl, host_pidfd));
    // Other requests' reply sockets (the helper's `workers`, never dropped here): only this
    // request's end stays, so theirs reach end of file when the helper closes them.
    // SAFETY: single-threaded; the owners of the others (`workers` in the helper's memory) are
    // never used or dropped here: the worker ends with `_exit`.
    unsafe { sys::close_all_except(3, &[sock.as_raw_fd()]) };
    let Ok(host_mnt) = File::open("/proc/self/ns/mnt") else {
        sys::exit_now(1)
    };
    for i in 0..n {
        if i > 0 && sys::setns(host_mnt.as_raw_fd(), libc::CLONE_NEWNS).is_err() {
            sys::exit_now(1);
        }
        match pod::prepare_blank(plan) {
            Err(e) => {
                let _ = sys::send_fds(sock.as_fd(), format!("E{e}").as_bytes(), &[]);
                sys::exit_now(1);
            }
            Ok(scratch) => {
                let dir = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_DIRECTORY)
                    .open(&plan.scratch_mountpoint);
                let fds = [
                    File::open("/proc/self/ns/mnt"),
                    File::open("/proc/self/ns/ipc"),
                    File::open("/proc/self/ns/uts"),
                    dir,
                ];
                let Ok(fds) = fds.into_iter().collect::<Result<Vec<_>, _>>() else {
                    sys::exit_now(1)
                };
                let msg = format!("B{}", scratch.encode());
                let borrowed: Vec<BorrowedFd> = fds.iter().map(AsFd::as_fd).collect();
                if sys::send_fds(sock.as_fd(), msg.as_bytes(), &borrowed).is_err() {
                    sys::exit_now(1);
                }
            }
        }
    }
    sys::exit_now(0)
}
