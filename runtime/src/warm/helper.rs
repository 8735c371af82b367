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
//! ```
//!
//! - Only where warm pods can be used: testing on (`INVITE`), pods (`INVITE_ISOLATION`), warm
//!   pods on (`INVITE_WARM`), root, not set-id, and the process still single-threaded (a library
//!   opened later by `dlopen` starts no helper: its host has threads, a fork there is not small).
//! - The helper is a grandchild, reaped at once: the host's own `wait()` never sees it, never
//!   blocks on it. It dies with the host (it polls the host's pidfd; its worker has a
//!   parent-death signal on it) and holds none of the host's descriptors or streams.
//! - Fail closed: no helper, a dead one, or a descriptor that is no longer ours means no blanks,
//!   so pods are cold, as when the stock is empty.

use crate::config::{Config, Isolation, Warm as WarmMode};
use crate::ownfd;
use crate::plan::Plan;
use crate::pod;
use crate::sys;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// The host's end of the helper's control socket (-1: no helper).
static CTL: AtomicI32 = AtomicI32::new(-1);
/// Its inode, to tell it from another file the host may have put at the same number.
static CTL_INO: AtomicU64 = AtomicU64::new(0);

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
        sys::close(ours);
        sys::close(theirs);
        return;
    };
    // SAFETY: the process is single-threaded here (`wanted`), and both children only run the
    // helper's own code and end with `_exit`.
    match unsafe { sys::fork() } {
        Ok(sys::Forked::Child) => {
            sys::close(ours);
            // SAFETY: single-threaded, as above.
            match unsafe { sys::fork() } {
                Ok(sys::Forked::Child) => serve(theirs, host_pidfd),
                _ => sys::exit_now(0),
            }
        }
        Ok(sys::Forked::Parent(pid)) => {
            let _ = sys::wait4(pid, 0);
            sys::close(theirs);
            sys::close(host_pidfd);
            match sys::fstat(ours) {
                Ok(st) => {
                    CTL_INO.store(st.st_ino, Ordering::Relaxed);
                    CTL.store(ownfd::own(ours), Ordering::Release);
                }
                Err(_) => sys::close(ours),
            }
        }
        Err(_) => [ours, theirs, host_pidfd].into_iter().for_each(sys::close),
    }
}

fn wanted() -> bool {
    if sys::set_id() || !crate::plan::is_root() {
        return false;
    }
    let on = Config::from_env(sys::secure_getenv_os, std::path::Path::new("/"))
        .is_ok_and(|c| c.enabled && c.isolation == Isolation::Pod && c.warm != WarmMode::Off);
    on && std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1)
}

/// The control socket, if the helper was started and the descriptor is still ours.
fn ctl() -> Option<RawFd> {
    let fd = CTL.load(Ordering::Acquire);
    if fd < 0 {
        return None;
    }
    let ours = sys::fstat(fd).is_ok_and(|st| st.st_ino == CTL_INO.load(Ordering::Relaxed));
    ours.then_some(fd)
}

pub fn available() -> bool {
    CTL.load(Ordering::Acquire) >= 0
}

/// Send one request; returns the host's end of its reply socket (close-on-exec, owned).
fn ask(req: &[u8]) -> Option<RawFd> {
    let ctl = ctl()?;
    let (ours, theirs) = sys::seqpacket_pair().ok()?;
    let sent = sys::send_fds(ctl, req, &[theirs]);
    sys::close(theirs);
    if sent.is_err() {
        sys::close(ours);
        return None;
    }
    Some(ownfd::own(ours))
}

/// Ask for `n` blanks: the socket they arrive on (`B…` messages, then `D<cpu_ns> <cow_ns>`,
/// then end of file), non-blocking.
pub fn request_blanks(n: usize) -> Option<RawFd> {
    let sock = ask(format!("R{n}").as_bytes())?;
    let _ = sys::set_nonblock(sock);
    Some(sock)
}

/// In the helper: the network namespace it made at start.
static HELPER_NET: AtomicI32 = AtomicI32::new(-1);

/// The pods' empty network namespace, made by the helper when it started (no fork of the host
/// for it, no wait).
pub fn netns() -> Option<RawFd> {
    let own = HELPER_NET.load(Ordering::Relaxed);
    if own >= 0 {
        return Some(own); // the helper's own plan
    }
    let sock = ask(b"N")?;
    let mut rev = [0i16];
    let mut buf = [0u8; 64];
    let got = match sys::poll_in(&[sock], 10_000, &mut rev) {
        Ok(1) => sys::recv_fds(sock, &mut buf).ok(),
        _ => None,
    };
    ownfd::close(sock);
    match got {
        Some((n, fds)) if n > 0 && buf[0] == b'N' && fds.len() == 1 => Some(fds[0]),
        Some((_, fds)) => {
            fds.into_iter().for_each(sys::close);
            None
        }
        None => None,
    }
}

/// The helper's loop: one request at a time, each builder a fork of this small process.
fn serve(ctl: RawFd, host_pidfd: RawFd) -> ! {
    sys::setsid(); // no terminal's signals: it ends with the host, not with a ^C
    if let Ok(null) = sys::open(c"/dev/null", libc::O_RDWR, 0) {
        for fd in 0..3 {
            let _ = sys::dup2(null, fd);
        }
    }
    sys::close_all_except(3, &[ctl, host_pidfd]);
    sys::set_name(c"invite-builder");
    if let Ok(net) = new_netns() {
        HELPER_NET.store(net, Ordering::Relaxed);
    }
    let mut plan: Option<Result<Plan, String>> = None;
    let mut cow_ns = 0;
    let mut workers: Vec<(libc::pid_t, RawFd)> = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let mut rev = [0i16; 2];
        let timeout = if workers.is_empty() { -1 } else { 20 };
        if sys::poll_in(&[ctl, host_pidfd], timeout, &mut rev).is_err() || rev[1] != 0 {
            sys::exit_now(0); // the host is gone
        }
        reap(&mut workers, cow_ns);
        if rev[0] == 0 {
            continue;
        }
        let (n, fds) = match sys::recv_fds(ctl, &mut buf) {
            Ok((0, _)) => sys::exit_now(0), // every copy of the host's end closed
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => sys::exit_now(0),
        };
        let [reply] = fds[..] else {
            fds.into_iter().for_each(sys::close);
            continue;
        };
        if buf[0] == b'N' {
            let net = HELPER_NET.load(Ordering::Relaxed);
            let _ = sys::send_fds(reply, b"N", &[net][..(net >= 0) as usize]);
            sys::close(reply);
            continue;
        }
        let plan = plan.get_or_insert_with(Plan::build);
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
                    Err(_) => sys::close(reply),
                }
            }
            (_, Err(e)) => {
                let _ = sys::send_fds(reply, format!("E{e}").as_bytes(), &[]);
                sys::close(reply);
            }
            _ => sys::close(reply),
        }
    }
}

/// A new, empty network namespace, the helper itself staying in its own (it is single-threaded:
/// the switch is its only thread's).
fn new_netns() -> std::io::Result<RawFd> {
    let flags = libc::O_RDONLY | libc::O_CLOEXEC;
    let orig = sys::open(c"/proc/self/ns/net", flags, 0)?;
    let made =
        sys::unshare(libc::CLONE_NEWNET).and_then(|()| sys::open(c"/proc/self/ns/net", flags, 0));
    let back = sys::setns(orig, libc::CLONE_NEWNET);
    sys::close(orig);
    if back.is_err() {
        sys::exit_now(1); // a helper stuck in the pods' namespace would build nothing right
    }
    made
}

/// Reap the workers that are done; each one's CPU time goes to its requester, who charges it to
/// the budget, with the cost of a copy-on-write fault measured here.
fn reap(workers: &mut Vec<(libc::pid_t, RawFd)>, cow_ns: u64) {
    workers.retain(|&(pid, reply)| match sys::wait4(pid, libc::WNOHANG) {
        Ok((0, _, _)) => true,
        Ok((_, _, ru)) => {
            let cpu = pod::tv_ns(ru.ru_utime) + pod::tv_ns(ru.ru_stime);
            let _ = sys::send_fds(reply, format!("D{cpu} {cow_ns}").as_bytes(), &[]);
            sys::close(reply);
            false
        }
        Err(_) => {
            sys::close(reply);
            false
        }
    });
}

/// A worker: `n` blanks, each new mount, IPC and UTS namespaces with the mounts prepared as a
/// cold pod's would be, sent with a descriptor of its scratch; then exit.
fn build(plan: &Plan, sock: RawFd, n: usize, ctl: RawFd, host_pidfd: RawFd) -> ! {
    let helper = sys::getppid();
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    if sys::getppid() != helper {
        sys::exit_now(0);
    }
    sys::close(ctl);
    sys::close(host_pidfd);
    let Ok(host_mnt) = sys::open(c"/proc/self/ns/mnt", libc::O_RDONLY | libc::O_CLOEXEC, 0) else {
        sys::exit_now(1)
    };
    let Ok(scratch_dir) = sys::cstring(&plan.scratch_mountpoint) else {
        sys::exit_now(1)
    };
    for i in 0..n {
        if i > 0 && sys::setns(host_mnt, libc::CLONE_NEWNS).is_err() {
            sys::exit_now(1);
        }
        match pod::prepare_blank(plan) {
            Err(e) => {
                let _ = sys::send_fds(sock, format!("E{e}").as_bytes(), &[]);
                sys::exit_now(1);
            }
            Ok(scratch) => {
                let flags = libc::O_RDONLY | libc::O_CLOEXEC;
                let fds = [
                    sys::open(c"/proc/self/ns/mnt", flags, 0),
                    sys::open(c"/proc/self/ns/ipc", flags, 0),
                    sys::open(c"/proc/self/ns/uts", flags, 0),
                    sys::open(&scratch_dir, flags | libc::O_DIRECTORY, 0),
                ];
                let Ok(fds) = fds.into_iter().collect::<Result<Vec<_>, _>>() else {
                    sys::exit_now(1)
                };
                let msg = format!("B{}", scratch.encode());
                if sys::send_fds(sock, msg.as_bytes(), &fds).is_err() {
                    sys::exit_now(1);
                }
                fds.into_iter().for_each(sys::close);
            }
        }
    }
    sys::exit_now(0)
}
