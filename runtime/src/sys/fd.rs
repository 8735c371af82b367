//! Descriptors: open, close, duplicate, read, write, poll.
//!
//! What opens a descriptor returns an `OwnedFd`: a step's temporary descriptor closes when it
//! goes out of scope. Many of the runtime's descriptors are published through lock-free atomics
//! (`ownfd`'s bitmap, the warm stock's slots) that a freshly forked test reads, and end their
//! life there, not at a scope's end; their owners take the number with `into_raw_fd` where they
//! publish it, and the functions that use a descriptor take it as a number. (`close` of a raw
//! number is still a safe function.)
//!
//! Owned: what a thread of the host holds for a while and then lets go of (the reaper's and the
//! watcher's pidfds, the warm state's descriptors, the helper's reply sockets) is an
//! `ownfd::Own`, an `OwnedFd` marked in the bitmap while it lives. Numbers: what a freshly
//! forked child reads lock-free (the journal, the kept-pods directory, the stock's blanks, the
//! pods' cgroup), and what a supervisor or a pod's test holds, which close and reopen descriptors
//! by number in bulk (`close_all_except`, inherited descriptors reopened at the same number): an
//! owner dropped there could close a number that is another file's by then.

use super::{check, check_long};
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A descriptor a system call just returned (`r >= 0`), or its error.
pub(super) fn owned(r: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check_long(r)? as RawFd;
    // SAFETY: a new descriptor, which nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    // SAFETY: valid C string.
    owned(unsafe { libc::open(path.as_ptr(), flags, mode as libc::c_uint) }.into())
}

pub fn close(fd: RawFd) {
    // SAFETY: closing an fd we own (or a stale number, which only returns EBADF).
    unsafe { libc::close(fd) };
}

/// Close every descriptor >= `from` except those in `keep` (sorted or not).
///
/// # Safety
///
/// The caller owns every descriptor in the range: no other thread uses them and no `OwnedFd`,
/// `File` or other owner that will still close or use one lives on (it would act on a number
/// that is closed, or by then another file's). In practice: a freshly forked, single-threaded
/// child that only `_exit`s or execs after owners in its memory go out of use.
pub unsafe fn close_all_except(from: RawFd, keep: &[RawFd]) {
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

/// Make `to` a copy of `from`, closing what `to` was.
///
/// # Safety
///
/// The caller owns `to` (or it is free): whatever owned the descriptor that was there will not
/// use or close that number again, since it now names another file.
pub unsafe fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    if from == to {
        return Ok(());
    }
    // SAFETY: plain syscall on fds; replacing `to` is the caller's obligation.
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

pub fn set_fl(fd: RawFd, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: plain fcntl.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags) }).map(drop)
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

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: two new descriptors, which nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
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

/// Write `data` to the existing file at `path` (a /proc or /sys tunable): opened write-only,
/// neither created nor truncated (`std::fs::write` asks for both, each a step of its own in the
/// kernel), no allocation.
pub fn write_existing(path: &CStr, data: &[u8]) -> io::Result<()> {
    let fd = open(path, libc::O_WRONLY | libc::O_CLOEXEC, 0)?;
    write_all(fd.as_raw_fd(), data)
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

/// `pread`: up to `buf.len()` bytes at `offset`, the descriptor's own offset untouched.
pub fn read_at(fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    // SAFETY: buf is valid for writes of its length.
    let r = unsafe {
        libc::pread(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            offset as libc::off_t,
        )
    };
    super::check_long(r as libc::c_long).map(|n| n as usize)
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

/// Read the start of a small file (a /proc or cgroup file) into `buf`: what was read, at most
/// `buf.len()` bytes, or `None`. No allocation (`read_to_string` would go through the program's
/// allocator, which a sampled call may be running inside of with its lock held).
pub fn read_start(path: &CStr, buf: &mut [u8]) -> Option<usize> {
    let fd = open(path, libc::O_RDONLY | libc::O_CLOEXEC, 0).ok()?;
    let mut n = 0;
    while n < buf.len() {
        match read(fd.as_raw_fd(), &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    Some(n)
}

pub fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })
}

/// A duplicate of descriptor `fd` of the process `pidfd` refers to (close-on-exec; needs the
/// right to ptrace it).
pub fn pidfd_getfd(pidfd: RawFd, fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) })
}

/// Wait until `fd` is readable (or `timeout_ms` passed; -1: no limit), without allocating; true
/// if it is readable.
pub fn wait_readable(fd: RawFd, timeout_ms: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, timeout_ms) > 0 && p.revents & libc::POLLIN != 0 }
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

/// A non-blocking, close-on-exec eventfd: a doorbell one thread rings for another.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }.into())
}

/// Ring an eventfd (one write of a counter increment).
pub fn ring(fd: RawFd) {
    let _ = write(fd, &1u64.to_ne_bytes());
}

/// The open descriptors of this process into `out` (sorted); the count, or `None` if they did
/// not fit or /proc could not be read. Listing `/proc/self/fd` makes the kernel build an inode
/// per descriptor (~4 µs each here), so where the kernel reports the count as the directory's
/// size (Linux 6.2+) the descriptors are found by `poll` (POLLNVAL marks closed numbers) instead.
/// No allocation: a freshly forked test pays for every page it writes.
pub fn list_fds(out: &mut [RawFd]) -> Option<usize> {
    let listing = open(
        c"/proc/self/fd",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )
    .ok()?;
    let dir = listing.as_raw_fd();
    let count = fstat(dir).map(|st| st.st_size.max(0) as usize).unwrap_or(0);
    let n = if count > 0 && count <= out.len() {
        probe_fds(count, dir, out)
    } else {
        None
    };
    n.or_else(|| read_fd_dir(dir, out))
}

/// Find `count` open descriptors (one of them `skip`) by polling ranges of numbers.
fn probe_fds(count: usize, skip: RawFd, out: &mut [RawFd]) -> Option<usize> {
    const CHUNK: usize = 256;
    let mut pfds = [libc::pollfd {
        fd: 0,
        events: 0,
        revents: 0,
    }; CHUNK];
    let (mut found, mut n, mut base) = (0usize, 0usize, 0i32);
    while found < count {
        if base > (1 << 20) {
            return None;
        }
        for (i, p) in pfds.iter_mut().enumerate() {
            p.fd = base + i as i32;
            p.revents = 0;
        }
        // SAFETY: pfds is a valid array of CHUNK pollfd; timeout 0 never blocks.
        if unsafe { libc::poll(pfds.as_mut_ptr(), CHUNK as libc::nfds_t, 0) } < 0 {
            return None;
        }
        for p in &pfds {
            if p.revents & libc::POLLNVAL == 0 {
                found += 1;
                if p.fd != skip {
                    *out.get_mut(n)? = p.fd;
                    n += 1;
                }
            }
        }
        base += CHUNK as i32;
    }
    Some(n)
}

/// The descriptors by reading the directory (older kernels, or very many descriptors).
fn read_fd_dir(dir: RawFd, out: &mut [RawFd]) -> Option<usize> {
    let mut n = 0;
    let mut fit = true;
    for_each_dirent(dir, |name| {
        let Some(fd) = std::str::from_utf8(name).ok().and_then(|s| s.parse().ok()) else {
            return;
        };
        match out.get_mut(n) {
            _ if fd == dir => {}
            Some(slot) => {
                *slot = fd;
                n += 1;
            }
            None => fit = false,
        }
    })
    .ok()?;
    out[..n].sort_unstable();
    fit.then_some(n)
}

/// Call `f` with the name of every entry of the open directory `dir` (`.` and `..` included),
/// reading it with `getdents64` into a buffer on the stack: no allocation.
pub fn for_each_dirent(dir: RawFd, mut f: impl FnMut(&[u8])) -> io::Result<()> {
    for_each_typed_dirent(dir, |name, _| f(name))
}

/// The entries of the directory at `path` (without `.` and `..`): each name and its `d_type`
/// (`libc::DT_DIR`, ..., `DT_UNKNOWN` where the file system does not say). `std::fs::read_dir`
/// calls `opendir`, whose buffer comes from the program's `malloc`, which a sampled call may hold
/// (`heap`). Here only the names are allocated, by the runtime's allocator.
pub fn dir_entries(path: &CStr) -> io::Result<Vec<(std::ffi::OsString, u8)>> {
    use std::os::unix::ffi::OsStrExt;
    let dir = open(
        path,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
    )?;
    let mut out = Vec::new();
    for_each_typed_dirent(dir.as_raw_fd(), |name, kind| {
        if name != b"." && name != b".." {
            out.push((std::ffi::OsStr::from_bytes(name).to_os_string(), kind));
        }
    })?;
    Ok(out)
}

/// [`dir_entries`] of a path as Rust holds it (an error for one with a NUL byte).
pub fn dir_entries_of(path: &std::path::Path) -> io::Result<Vec<(std::ffi::OsString, u8)>> {
    use std::os::unix::ffi::OsStrExt;
    dir_entries(&std::ffi::CString::new(path.as_os_str().as_bytes())?)
}

fn for_each_typed_dirent(dir: RawFd, mut f: impl FnMut(&[u8], u8)) -> io::Result<()> {
    let mut buf = [0u64; 256]; // 2 KiB, aligned for dirent64
    loop {
        // SAFETY: buf is writable for its whole length.
        let r = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir,
                buf.as_mut_ptr(),
                std::mem::size_of_val(&buf),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        if r == 0 {
            return Ok(());
        }
        // SAFETY: the kernel wrote `r` bytes of dirent64 records into buf.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), r as usize) };
        let mut off = 0;
        while off + 19 < bytes.len() {
            let reclen = u16::from_ne_bytes([bytes[off + 16], bytes[off + 17]]) as usize;
            let name = &bytes[off + 19..(off + reclen).min(bytes.len())];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            f(name, bytes[off + 18]);
            off += reclen.max(1);
        }
    }
}

/// Where descriptor `fd` points (`readlink /proc/self/fd/N`), into `buf`; the length.
pub fn fd_target(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut path = *b"/proc/self/fd/\0\0\0\0\0\0\0\0\0\0\0\0";
    let mut digits = [0u8; 11];
    let (mut v, mut k) = (fd.max(0) as u32, 0);
    loop {
        digits[k] = b'0' + (v % 10) as u8;
        k += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for i in 0..k {
        path[14 + i] = digits[k - 1 - i];
    }
    // SAFETY: path is NUL-terminated (at most 10 digits after the 14-byte prefix of a 26-byte
    // zeroed array); buf is writable for its length.
    let r = unsafe { libc::readlink(path.as_ptr().cast(), buf.as_mut_ptr().cast(), buf.len()) };
    check_long(r as libc::c_long).map(|n| n as usize)
}

/// Make `dst` a reflink clone of `src` (`FICLONE`): the two share their blocks until either is
/// written. Atomic with respect to writes to `src`; fails with EOPNOTSUPP, EXDEV or EINVAL where
/// the file system has no reflinks or the two are on different ones.
pub fn clone_file(dst: RawFd, src: RawFd) -> io::Result<()> {
    const FICLONE: libc::c_ulong = 0x4004_9409;
    // SAFETY: FICLONE takes the source descriptor as its integer argument; no memory is passed.
    check(unsafe { libc::ioctl(dst, FICLONE, src) }).map(drop)
}

/// Write the file's dirty pages out and wait for them (`sync_file_range`: data only, no
/// metadata, no cache flush of the device).
pub fn write_out(fd: RawFd) -> io::Result<()> {
    let flags = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: no memory is passed; offset 0 and length 0 mean the whole file.
    check(unsafe { libc::sync_file_range(fd, 0, 0, flags) }).map(drop)
}

/// The type of the file system `fd` is on (`statfs`'s `f_type`: a magic number).
pub fn fs_type(fd: RawFd) -> io::Result<i64> {
    // SAFETY: zeroed statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid, writable statfs.
    check(unsafe { libc::fstatfs(fd, &mut st) })?;
    Ok(st.f_type as i64)
}
