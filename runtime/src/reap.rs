//! Reaping supervisors. Each supervisor is a child of the host; when it exits it must be waited
//! for, or it stays a zombie. The host's own code owns SIGCHLD, so a small thread
//! (`invite-reaper`, started with the first pod) waits on each supervisor's pidfd and reaps
//! exactly that pid — never `waitpid(-1)`, which would steal the host's children. If the host
//! reaps a supervisor first (its own `waitpid(-1)`), the reaper gets ECHILD: not an error.
//!
//! The host hands pids over through a pipe, so the hot side takes no lock that a fork could
//! leave held; a pod (a fork without the thread) starts its own reaper when it needs one.

use crate::sys;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

const NONE: i32 = -1;
const STARTING: i32 = -2;

static WRITE_FD: AtomicI32 = AtomicI32::new(NONE);
static READ_FD: AtomicI32 = AtomicI32::new(NONE);

/// Hand a supervisor's pid to the reaper (starting it on first use).
pub fn watch(pid: libc::pid_t) {
    let fd = ensure();
    if fd < 0 || sys::write(fd, &pid.to_le_bytes()).is_err() {
        // No reaper: reap now if it is already over, else at exit.
        let _ = sys::wait4(pid, libc::WNOHANG);
    }
}

/// Descriptors of the reaper that pods must not inherit.
pub fn own_fds() -> [RawFd; 2] {
    [
        WRITE_FD.load(Ordering::Relaxed),
        READ_FD.load(Ordering::Relaxed),
    ]
}

/// In a new pod: the reaper thread did not survive the fork; forget its pipe.
pub fn forget() {
    for fd in own_fds() {
        if fd >= 0 {
            sys::close(fd);
        }
    }
    WRITE_FD.store(NONE, Ordering::Relaxed);
    READ_FD.store(NONE, Ordering::Relaxed);
}

fn ensure() -> RawFd {
    let fd = WRITE_FD.load(Ordering::Acquire);
    if fd != NONE {
        return fd;
    }
    if WRITE_FD
        .compare_exchange(NONE, STARTING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // Another thread is starting it: this pid is reaped the slow way.
        return STARTING;
    }
    let Ok((r, w)) = sys::pipe() else {
        WRITE_FD.store(NONE, Ordering::Release);
        return NONE;
    };
    let spawned = std::thread::Builder::new()
        .name("invite-reaper".into())
        .spawn(move || run(r));
    if spawned.is_err() {
        sys::close(r);
        sys::close(w);
        WRITE_FD.store(NONE, Ordering::Release);
        return NONE;
    }
    READ_FD.store(r, Ordering::Relaxed);
    WRITE_FD.store(w, Ordering::Release);
    w
}

fn run(pipe_r: RawFd) {
    let mut watched: Vec<(libc::pid_t, RawFd)> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = vec![pipe_r];
        fds.extend(watched.iter().map(|(_, fd)| *fd));
        let mut rev = vec![0i16; fds.len()];
        if sys::poll_in(&fds, -1, &mut rev).is_err() {
            return;
        }
        if rev[0] != 0 {
            match sys::read(pipe_r, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    for c in buf[..n - n % 4].chunks(4) {
                        let pid = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                        match sys::pidfd_open(pid) {
                            Ok(pfd) => watched.push((pid, pfd)),
                            Err(_) => {
                                let _ = sys::wait4(pid, libc::WNOHANG);
                            }
                        }
                    }
                }
            }
        }
        let done: Vec<usize> = (1..fds.len())
            .filter(|&i| rev[i] != 0)
            .map(|i| i - 1)
            .collect();
        for &i in done.iter().rev() {
            let (pid, pfd) = watched.swap_remove(i);
            let _ = sys::wait4(pid, libc::WNOHANG);
            sys::close(pfd);
        }
    }
}
