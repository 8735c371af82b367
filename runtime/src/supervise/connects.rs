//! The pod's `connect`, made by its supervisor (see `pod::unotify` for why and for what the
//! pod's filter refuses around it). The test announces its listener on the status pipe; the
//! supervisor takes its own copy (`pidfd_getfd`, checked to be a seccomp listener; without it no
//! `connect` gets through, and a pod whose calls would wait for ever is ended) and, in its poll
//! loop, answers each `connect`:
//!
//! 1. the caller's socket (`pidfd_getfd` of its thread) and address (copied once out of its
//!    memory: what the pod writes there afterwards changes nothing);
//! 2. a Unix path: opened `O_PATH` in the caller's root (`openat2`, `RESOLVE_IN_ROOT` from
//!    `/proc/TID/root`; a relative one below its working directory), and refused with
//!    ECONNREFUSED (what a host's socket seen through an overlay gives) unless the inode is on
//!    a mount the supervisor made for the pod (an overlay, the scratch, its /dev: no host
//!    process listens on those), never through a bind of a host's tree; a magic link of /proc
//!    fails the lookup (a scoped lookup does not follow one), and is refused too;
//! 3. once the call is known to still wait (its id valid: the thread, its descriptors and its
//!    memory were the caller's while they were read), the socket is connected here, to
//!    `/proc/self/fd/N` of that very inode (or the copied address when not a path: abstract
//!    names live in the pod's network namespace, the socket's), with no effective capability
//!    (checked as the pod's own call would be), and the call gets the result. The call is never
//!    let through to the kernel (`SECCOMP_USER_NOTIF_FLAG_CONTINUE` would read the descriptor
//!    table and the address again, which another thread of the pod may have changed).
//!
//! A blocking connection-oriented socket is connected non-blocking (the flag set for the call,
//! on the file the pod shares: nothing else can use an unconnected socket meanwhile), so that
//! the supervisor never waits: a listener whose backlog is full leaves the call waiting, tried
//! again every few milliseconds while the supervisor watches the pod as ever.

use crate::record::parse_frames;
use crate::sys;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// How often a waiting `connect` is tried again.
const RETRY_MS: i32 = 2;
/// Distinct refusals noted per pod.
const MAX_NOTES: usize = 8;

pub struct Connects {
    listener: Option<OwnedFd>,
    /// The test's word on its listener was looked for and found (`take`).
    taken: bool,
    own_mounts: Vec<u64>,
    /// The pod's root as the supervisor sees it.
    root: Vec<u8>,
    pending: Vec<Pending>,
    pub notes: Vec<String>,
}

/// A `connect` that would have blocked: tried again until done or no longer waited for.
struct Pending {
    id: u64,
    sock: OwnedFd,
    to: Target,
}

/// Where a socket is connected: the copied address, or the checked inode of a path.
enum Target {
    Address(Vec<u8>),
    Inode(OwnedFd),
}

enum Step {
    Answer(Result<i64, i32>),
    Later(Pending),
    /// The caller went away (interrupted, killed): no answer.
    Gone,
}

impl Connects {
    /// For a pod whose filter notifies its `connect` (`Filter::notify`), built in `scratch`.
    pub fn new(notify: bool, scratch: Option<&crate::pod::Scratch>) -> Option<Connects> {
        let s = scratch.filter(|_| notify)?;
        Some(Connects {
            listener: None,
            taken: false,
            own_mounts: s.own_mounts.clone(),
            root: s.root.as_bytes().to_vec(),
            pending: Vec::new(),
            notes: Vec::new(),
        })
    }

    /// Once the test has said which descriptor its listener is (its first `L` frame, sent during
    /// its setup), take a copy of it from `test` (a pidfd). Without the supervisor's copy no
    /// `connect` gets through: where the test closed its own first, they fail (ENOSYS: noted);
    /// otherwise (no right to take it: a host that is not dumpable; another file at its number)
    /// they would wait, and the pod is ended instead (the error).
    pub fn take(&mut self, frames: &[u8], test: Option<RawFd>) -> Result<(), String> {
        if self.taken {
            return Ok(());
        }
        let Some(fd) = parse_frames(frames)
            .into_iter()
            .find_map(|(tag, p)| (tag == b'L').then(|| p.try_into().ok()).flatten())
            .map(i32::from_le_bytes)
        else {
            return Ok(());
        };
        self.taken = true;
        let Some(test) = test else { return Ok(()) };
        let (why, closed) = match sys::pidfd_getfd(test, fd) {
            Ok(l) if sys::is_seccomp_listener(l.as_raw_fd()) => {
                self.listener = Some(l);
                return Ok(());
            }
            Ok(_) => (format!("descriptor {fd} is not a seccomp listener"), false),
            // Exiting (its descriptors let go, before its pidfd polls readable): ESRCH.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(()),
            Err(e) => (e.to_string(), e.raw_os_error() == Some(libc::EBADF)),
        };
        // A test that has ended already (its pidfd readable) connects no more.
        if sys::poll_in(&[test], 0, &mut [0]).unwrap_or(0) > 0 {
            return Ok(());
        }
        if closed {
            self.notes.push(
                "the pod closed its connect listener before its supervisor took it: its connect \
                 calls fail (ENOSYS)"
                    .to_string(),
            );
            return Ok(());
        }
        Err(format!(
            "pod setup failed at step \"take the pod's connect listener\": {why}"
        ))
    }

    /// The listener, to poll.
    pub fn fd(&self) -> Option<RawFd> {
        self.listener.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// How long the supervisor may sleep at most: a waiting call is tried again soon.
    pub fn wait_ms(&self, ms: i32) -> i32 {
        if self.pending.is_empty() {
            ms
        } else {
            ms.min(RETRY_MS)
        }
    }

    /// Answer the calls that wait, new and pending.
    pub fn serve(&mut self) {
        let Some(l) = self.fd() else { return };
        for p in std::mem::take(&mut self.pending) {
            if sys::notif_id_valid(l, p.id) {
                let step = attempt(p.id, p.sock, p.to, true);
                self.finish(l, p.id, step);
            }
        }
        for _ in 0..64 {
            if !sys::wait_readable(l, 0) {
                break;
            }
            let Ok(n) = sys::notif_recv(l) else { break };
            let step = self.decide(l, &n);
            self.finish(l, n.id, step);
        }
    }

    fn finish(&mut self, l: RawFd, id: u64, step: Step) {
        match step {
            Step::Answer(r) => {
                let _ = sys::notif_send(l, id, r);
            }
            Step::Later(p) => self.pending.push(p),
            Step::Gone => {}
        }
    }

    /// What the notified call `n` gets.
    fn decide(&mut self, l: RawFd, n: &sys::Notif) -> Step {
        if n.data.nr as libc::c_long != libc::SYS_connect {
            return Step::Answer(Err(libc::ENOSYS));
        }
        let tid = n.pid as libc::pid_t;
        let [fd, at, len, ..] = n.data.args;
        // The kernel's bounds on the length (an int, at most a sockaddr_storage).
        let Some(len) = usize::try_from(len as i32).ok().filter(|&l| l <= 128) else {
            return Step::Answer(Err(libc::EINVAL));
        };
        let thread = match sys::pidfd_open_thread(tid) {
            Ok(t) => t,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Step::Gone,
            // No thread pidfds (before Linux 6.9): refused rather than left waiting.
            Err(e) => return Step::Answer(Err(errno(&e))),
        };
        let sock = match sys::pidfd_getfd(thread.as_raw_fd(), fd as i32) {
            Ok(s) => s,
            Err(e) => return Step::Answer(Err(errno(&e))),
        };
        let mut buf = [0u8; 128];
        let addr = &mut buf[..len];
        if !addr.is_empty() && sys::read_memory(tid, at, addr).ok() != Some(len) {
            return Step::Answer(Err(libc::EFAULT));
        }
        let to = match unix_path(addr) {
            None => Ok(Target::Address(addr.to_vec())),
            Some(path) => self.resolve(tid, path).map(Target::Inode),
        };
        // What was read above was the caller's only if it still waits for this answer.
        if !sys::notif_id_valid(l, n.id) {
            return Step::Gone;
        }
        match to {
            Ok(to) => attempt(n.id, sock, to, false),
            Err(errno) => Step::Answer(Err(errno)),
        }
    }

    /// The socket inode at `path` as thread `tid` would reach it, if it is on one of the pod's
    /// own mounts; else an errno (ECONNREFUSED for a socket of the host's).
    fn resolve(&mut self, tid: libc::pid_t, path: &[u8]) -> Result<OwnedFd, i32> {
        let proc = |what: &str| sys::cstring(&format!("/proc/{tid}/{what}")).map_err(|e| errno(&e));
        let root = sys::open(
            &proc("root")?,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        )
        .map_err(|e| errno(&e))?;
        let mut full = Vec::with_capacity(path.len() + 64);
        if path[0] != b'/' {
            // Below the working directory, as the pod names it (its root stripped).
            let cwd = sys::readlinkat(libc::AT_FDCWD, &proc("cwd")?).map_err(|e| errno(&e))?;
            let cwd = cwd.as_bytes();
            let rest = cwd.strip_prefix(&self.root[..]).ok_or(libc::ENOENT)?;
            if !rest.is_empty() && rest[0] != b'/' {
                return Err(libc::ENOENT);
            }
            full.extend_from_slice(rest);
            full.push(b'/');
        }
        full.extend_from_slice(path);
        let full = CString::new(full).map_err(|_| libc::EINVAL)?;
        let _caps = NoCaps::new();
        let inode = match sys::open_in_root(root.as_raw_fd(), &full) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => return Err(libc::ECONNREFUSED),
            Err(e) => return Err(errno(&e)),
        };
        let own =
            sys::mount_id_at(inode.as_raw_fd(), c"").is_ok_and(|id| self.own_mounts.contains(&id));
        if !own {
            self.note(path);
            return Err(libc::ECONNREFUSED);
        }
        Ok(inode)
    }

    fn note(&mut self, path: &[u8]) {
        let n = format!(
            "connect to {} refused: not a socket of the pod's own (the host's, in a tree the \
             pod sees bound whole)",
            String::from_utf8_lossy(path)
        );
        if self.notes.len() < MAX_NOTES && !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }
}

/// The path of a Unix socket address (not abstract, not unnamed): up to its first NUL.
fn unix_path(addr: &[u8]) -> Option<&[u8]> {
    let family = u16::from_ne_bytes(addr.get(..2)?.try_into().ok()?);
    let path = addr
        .get(2..)
        .filter(|p| p.first().is_some_and(|&b| b != 0))?;
    (family == libc::AF_UNIX as u16).then(|| path.split(|&b| b == 0).next().unwrap_or(path))
}

/// Connect `sock` to `to` without waiting: the result, or the call left waiting where a
/// blocking socket would have. `again`: an earlier attempt left it waiting.
fn attempt(id: u64, sock: OwnedFd, to: Target, again: bool) -> Step {
    let fd = sock.as_raw_fd();
    let fl = sys::get_fl(fd).unwrap_or(0);
    let connection = matches!(
        sys::socket_opt(fd, libc::SO_TYPE),
        Ok(libc::SOCK_STREAM | libc::SOCK_SEQPACKET)
    );
    let flip = fl & libc::O_NONBLOCK == 0 && connection;
    if flip {
        let _ = sys::set_fl(fd, fl | libc::O_NONBLOCK);
    }
    let r = {
        let _caps = NoCaps::new();
        match &to {
            Target::Address(a) => sys::connect_raw(fd, a),
            Target::Inode(inode) => sys::connect_raw(fd, &proc_fd_address(inode.as_raw_fd())),
        }
    };
    if flip {
        let _ = sys::set_fl(fd, fl);
    }
    match r.map_err(|e| errno(&e)) {
        Ok(()) => Step::Answer(Ok(0)),
        Err(libc::EAGAIN | libc::EINPROGRESS | libc::EALREADY) if flip => {
            Step::Later(Pending { id, sock, to })
        }
        // A connection begun by an earlier attempt, now made.
        Err(libc::EISCONN) if again => Step::Answer(Ok(0)),
        Err(e) => Step::Answer(Err(e)),
    }
}

/// `sockaddr_un` for `/proc/self/fd/N`: the inode `fd` was opened on, whatever is at its path now.
fn proc_fd_address(fd: RawFd) -> Vec<u8> {
    let mut a = (libc::AF_UNIX as u16).to_ne_bytes().to_vec();
    a.extend_from_slice(format!("/proc/self/fd/{fd}").as_bytes());
    a.push(0);
    a
}

fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// No effective capability while it lives (the supervisor holds all of the pod's user
/// namespace's; the pod none).
struct NoCaps(bool);

impl NoCaps {
    fn new() -> NoCaps {
        NoCaps(sys::effective_caps(false).is_ok())
    }
}

impl Drop for NoCaps {
    fn drop(&mut self) {
        if self.0 {
            let _ = sys::effective_caps(true);
        }
    }
}
