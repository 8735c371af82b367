//! The parked copy: what it keeps, and the loop that serves its socket.
//!
//! At park time, in order:
//!
//! | step | why |
//! |---|---|
//! | name `invite-ckpt`, new session | visible in `ps`; out of the terminal's process group, so Ctrl-C and job control reach the host only |
//! | own counters, ids from 1 under `NAME/`, no host reaper | branches do not count against the host's concurrency and budget |
//! | descriptors: 0-2 → /dev/null; files and directories reopened by path (same flags, offset); sockets, pipes and event descriptors → inert ones of the same kind, as pods get (`pod::inert`; a listening socket becomes a socket that leads nowhere, since a listener made here would listen in the host's network namespace), the other ends held by the copy; everything else → /dev/null | the copy must not keep the host's pipes, sockets, ports or `flock` locks alive; numbers stay valid for the branches, and code in a branch can still register them with epoll |
//! | lowest CPU priority, `oom_score_adj` 1000 | under memory pressure the kernel kills a checkpoint before the host |
//!
//! Then it waits on its socket and on the host's pidfd. When the host exits, or on `DROP`, the
//! socket is removed and the copy exits as soon as the pods branched from it have ended (each
//! within its deadline).

use super::backend;
use super::proto::{self, Request};
use crate::runtime::{self, Runtime};
use crate::snapshot::{self, Ckpt, PodKind};
use crate::sys;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

/// Everything the parked copy owns.
pub struct Parked {
    pub name: String,
    pub socket: PathBuf,
    pub listener: UnixListener,
    /// pidfd of the host: readable when it exits.
    pub host: RawFd,
    /// Held open while the copy (or a pod branched from it) lives; the host counts on it.
    pub alive_w: RawFd,
    /// Where `invite_checkpoint` was called: the branches' `site` and `function`.
    pub site: (&'static str, u32, &'static str),
}

enum Served {
    Next,
    Stop,
    /// In the k-th branch's test process.
    Branch(u32),
}

/// Park, then serve until dropped or orphaned (never returns there), or return `k` in the k-th
/// branch's test process.
pub fn run(p: Parked) -> u32 {
    let rt = runtime::get();
    sys::set_name(c"invite-ckpt");
    sys::setsid();
    rt.become_checkpoint(&p.name);
    // The host's reaper thread and warm stock stayed in the host.
    crate::reap::drop_pending();
    crate::warm::disown_stock();
    let mut keep = vec![rt.journal_fd(), p.host, p.alive_w, p.listener.as_raw_fd()];
    keep.extend(rt.keep_fd());
    if let Ok(plan) = rt.plan() {
        keep.extend(plan.own_fds());
    }
    clean_fds(&keep);
    sys::lowest_priority();
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    let started = sys::monotonic_ns();
    let mut issued = 0u32;
    let fds = [p.listener.as_raw_fd(), p.host];
    let mut rev = [0i16; 2];
    loop {
        if sys::poll_in(&fds, -1, &mut rev).is_err() || rev[1] != 0 {
            break;
        }
        if rev[0] == 0 {
            continue;
        }
        let Ok((conn, _)) = p.listener.accept() else {
            continue;
        };
        match serve(rt, &p, conn, started, &mut issued) {
            Served::Next => {}
            Served::Stop => break,
            Served::Branch(k) => {
                // The test process of the branch: the copy's descriptors are /dev/null here.
                sys::close(p.host);
                sys::close(p.alive_w);
                drop(p.listener);
                return k;
            }
        }
    }
    let _ = std::fs::remove_file(&p.socket);
    drop(p.listener);
    while rt.ledger().running() > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    sys::exit_now(0)
}

fn serve(rt: &Runtime, p: &Parked, mut conn: UnixStream, started: u64, issued: &mut u32) -> Served {
    let owner = sys::geteuid();
    // The request is read before the answer, even a refusal, so that the client's write does not
    // meet a closed socket.
    let deadline = std::time::Instant::now() + REQUEST_DEADLINE;
    let read = read_request(&mut conn, deadline);
    let line = read.as_deref().unwrap_or("").to_string();
    match sys::peer_cred(conn.as_raw_fd()) {
        Ok(c) if c.uid == owner || c.uid == 0 => {}
        Ok(c) => {
            let m = format!(
                "permission denied: uid {} may not use the checkpoints of uid {owner}",
                c.uid
            );
            let _ = conn.write_all(proto::err(&m).as_bytes());
            return Served::Next;
        }
        Err(_) => return Served::Next,
    }
    if read.is_err() || line.is_empty() {
        return Served::Next;
    }
    let (answer, next) = match proto::parse(&line) {
        Err(m) => (proto::err(&m), Served::Next),
        Ok(Request::Info) => {
            let info = proto::Info {
                name: &p.name,
                host_pid: rt.pid(),
                parked_pid: sys::getpid(),
                uid: owner,
                age_ms: (sys::monotonic_ns() - started) / 1_000_000,
                branches: *issued,
                running: rt.ledger().running(),
            };
            (info.line(), Served::Next)
        }
        Ok(Request::Drop) => (proto::ok("dropped"), Served::Stop),
        Ok(Request::Persist(dir)) => {
            let r = backend::backend().persist(sys::getpid(), dir.as_ref());
            match r {
                Ok(()) => (proto::ok(&format!("persisted={dir}")), Served::Next),
                Err(m) => (proto::err(&m), Served::Next),
            }
        }
        Ok(Request::Branch) => match branch(rt, p, issued) {
            Ok(Ckpt::Pod(k)) => return Served::Branch(k),
            Ok(Ckpt::Original) => {
                let k = *issued;
                (
                    proto::ok(&format!("id={k} pod={}/{k}", p.name)),
                    Served::Next,
                )
            }
            Err(m) => (proto::err(&m), Served::Next),
        },
    };
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    let _ = conn.set_write_timeout(Some(left.max(Duration::from_millis(1))));
    let _ = conn.write_all(answer.as_bytes());
    next
}

/// The whole exchange with one client (its request, our answer) must fit in this: a client that
/// trickles bytes cannot hold the checkpoint, which serves one connection at a time.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);

/// One request line, at most `MAX_REQUEST` bytes, read before `deadline` (an overall bound, not
/// one per read).
fn read_request(conn: &mut UnixStream, deadline: std::time::Instant) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut buf = [0u8; 512];
    while !line.contains(&b'\n') && line.len() < proto::MAX_REQUEST {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        conn.set_read_timeout(Some(left))?;
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        line.extend_from_slice(&buf[..n]);
    }
    line.truncate(proto::MAX_REQUEST);
    if let Some(end) = line.iter().position(|&b| b == b'\n') {
        line.truncate(end + 1);
    }
    String::from_utf8(line).map_err(|_| std::io::ErrorKind::InvalidData.into())
}

/// Start the next branch, once fewer than `INVITE_MAX_CONCURRENT` of this checkpoint's pods run.
fn branch(rt: &Runtime, p: &Parked, issued: &mut u32) -> Result<Ckpt, String> {
    let max = rt.config.as_ref().map_or(1, |c| c.max_concurrent.max(1));
    let mut rev = [0i16; 1];
    while rt.ledger().running() >= max {
        if sys::poll_in(&[p.host], 20, &mut rev).is_err() || rev[0] != 0 {
            return Err("the process of this checkpoint has exited".into());
        }
    }
    let (file, line, function) = p.site;
    // Every start() here takes an id (the configuration and plan were checked when the
    // checkpoint was taken; only the fork itself can fail, after the id is drawn), so the
    // k-th call's pod is k.
    *issued += 1;
    snapshot::start(PodKind::Branch {
        file,
        line,
        function,
    })
    .map_err(|e| format!("branch {}: {e}", *issued))
}

/// Make the descriptor table safe to park with: keep `keep`, reopen files and directories by
/// path with the same flags and offset (a new open file description, so no shared offset and no
/// `flock` held for the host), make sockets, pipes and event descriptors inert ones of the same
/// kind (`inert`), replace everything else with /dev/null at the same number.
fn clean_fds(keep: &[RawFd]) {
    let Ok(null) = sys::open(c"/dev/null", libc::O_RDWR | libc::O_CLOEXEC, 0) else {
        return;
    };
    let listed: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // The other ends of the inert pipes and sockets, held for the copy's life (and so never
    // replaced in turn, whatever number they got).
    let mut held: Vec<RawFd> = Vec::new();
    for fd in listed {
        if fd == null.as_raw_fd() || keep.contains(&fd) || held.contains(&fd) {
            continue;
        }
        let Ok(fd_flags) = sys::get_fd_flags(fd) else {
            continue; // the directory listing's own descriptor, closed by now
        };
        let reopened = if fd > 2 { reopen(fd) } else { None };
        let made = match reopened {
            None if fd > 2 => inert(fd, &mut held),
            _ => None,
        };
        let from = reopened
            .as_ref()
            .map(AsRawFd::as_raw_fd)
            .or(made)
            .unwrap_or(null.as_raw_fd());
        // SAFETY: the parked copy is single-threaded (a fork of one thread) and replaces the
        // descriptors it inherited, which nothing in it uses as the files they were.
        if unsafe { sys::dup2(from, fd) }.is_ok() {
            let _ = sys::set_fd_flags(fd, fd_flags);
        }
        if let Some(made) = made {
            sys::close(made);
        }
    }
}

/// A socket, pipe or event descriptor: an inert one of the same kind, with its other end (if
/// any) pushed on `held`. A listening socket becomes a socket that leads nowhere: the copy is in
/// the host's network namespace, where a listener would take connections.
fn inert(fd: RawFd, held: &mut Vec<RawFd>) -> Option<RawFd> {
    let st = sys::fstat(fd).ok()?;
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let mut plan = crate::pod::plan_inert(fd, st.st_mode & libc::S_IFMT, target.to_str()?)?;
    if let crate::pod::Inert::Listener { ty, .. } = plan.kind {
        plan.kind = crate::pod::Inert::Socket { ty };
    }
    let (new, other) = crate::pod::make_inert(&plan, false).ok()?;
    held.extend(other);
    Some(new)
}

fn reopen(fd: RawFd) -> Option<OwnedFd> {
    let st = sys::fstat(fd).ok()?;
    let fmt = st.st_mode & libc::S_IFMT;
    if fmt != libc::S_IFREG && fmt != libc::S_IFDIR {
        return None;
    }
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    let target = target.to_str()?;
    if !target.starts_with('/') || target.ends_with(" (deleted)") {
        return None;
    }
    const KEPT: libc::c_int = libc::O_ACCMODE
        | libc::O_APPEND
        | libc::O_NONBLOCK
        | libc::O_DIRECTORY
        | libc::O_PATH
        | libc::O_NOATIME
        | libc::O_SYNC
        | libc::O_DSYNC;
    let flags = (sys::get_fl(fd).ok()? & KEPT) | libc::O_CLOEXEC | libc::O_NOCTTY;
    let new = sys::open(&sys::cstring(target).ok()?, flags, 0).ok()?;
    let same =
        sys::fstat(new.as_raw_fd()).is_ok_and(|n| n.st_dev == st.st_dev && n.st_ino == st.st_ino);
    let placed = fmt != libc::S_IFREG
        || flags & libc::O_PATH != 0
        || sys::lseek(fd, 0, libc::SEEK_CUR)
            .and_then(|off| sys::lseek(new.as_raw_fd(), off, libc::SEEK_SET))
            .is_ok();
    (same && placed).then_some(new)
}
