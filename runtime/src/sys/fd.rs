//! Descriptors: open, close, duplicate, read, write, poll.

use super::{check, check_long};
use std::ffi::CStr;
use std::io;
use std::os::fd::RawFd;

pub fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<RawFd> {
    // SAFETY: valid C string.
    check(unsafe { libc::open(path.as_ptr(), flags, mode as libc::c_uint) })
}

pub fn close(fd: RawFd) {
    // SAFETY: closing an fd we own (or a stale number, which only returns EBADF).
    unsafe { libc::close(fd) };
}

/// Close every descriptor >= `from` except those in `keep` (sorted or not).
pub fn close_all_except(from: RawFd, keep: &[RawFd]) {
    let mut ks: Vec<RawFd> = keep.iter().copied().filter(|k| *k >= from).collect();
    ks.sort_unstable();
    ks.dedup();
    let mut lo = from as libc::c_uint;
    for k in ks {
        if (k as libc::c_uint) > lo {
            close_range(lo, k as libc::c_uint - 1);
        }
        lo = k as libc::c_uint + 1;
    }
    close_range(lo, libc::c_uint::MAX);
}

fn close_range(lo: libc::c_uint, hi: libc::c_uint) {
    // SAFETY: close_range only closes descriptors; the caller owns the whole range.
    let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) };
    if r < 0 {
        for fd in lo..=hi.min(65535) {
            close(fd as RawFd);
        }
    }
}

pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    if from == to {
        return Ok(());
    }
    // SAFETY: plain syscall on fds.
    check(unsafe { libc::dup2(from, to) }).map(drop)
}

pub fn get_fl(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: plain fcntl.
    check(unsafe { libc::fcntl(fd, libc::F_GETFL) })
}

pub fn get_fd_flags(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: plain fcntl.
    check(unsafe { libc::fcntl(fd, libc::F_GETFD) })
}

pub fn set_fd_flags(fd: RawFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: plain fcntl.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, flags) }).map(drop)
}

pub fn set_nonblock(fd: RawFd) -> io::Result<()> {
    let fl = get_fl(fd)?;
    // SAFETY: plain fcntl.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(drop)
}

pub fn lseek(fd: RawFd, off: i64, whence: libc::c_int) -> io::Result<i64> {
    // SAFETY: plain syscall.
    let r = unsafe { libc::lseek(fd, off, whence) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable stat.
    check(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

pub fn pipe() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((fds[0], fds[1]))
}

pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for reads of its length.
        let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        if n == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        buf = &buf[n..];
    }
    Ok(())
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for writes of its length.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<RawFd> {
    // SAFETY: plain syscall.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    check_long(r).map(|fd| fd as RawFd)
}

/// Poll `fds` (events POLLIN) for up to `timeout_ms`; returns the revents per fd.
pub fn poll_in(fds: &[RawFd], timeout_ms: i32, revents: &mut [i16]) -> io::Result<usize> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: pfds is a valid array of the length passed.
    let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    for (o, p) in revents.iter_mut().zip(&pfds) {
        *o = p.revents;
    }
    Ok(r as usize)
}
