//! Seccomp user notification, for the pod's `connect` (see `supervise::connects`): the test
//! installs its filter with a listener; the supervisor takes the listener, receives each
//! `connect`, reads its address out of the caller, resolves a path in the caller's root, looks at
//! the mount the socket is on, makes the call on the caller's behalf and answers it.

use super::fd::owned;
use super::{check, check_long};
use std::ffi::CStr;
use std::io;
use std::os::fd::{OwnedFd, RawFd};

/// One notified call: the caller's thread id (in the supervisor's PID namespace), the call's
/// number and arguments, and the id that answers it.
pub type Notif = libc::seccomp_notif;

/// `install_filter` with a listener: the descriptor on which the calls the filter returns
/// `SECCOMP_RET_USER_NOTIF` for wait to be answered (close-on-exec).
pub fn install_filter_listening(prog: &[super::Insn]) -> io::Result<OwnedFd> {
    const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
    super::seccomp::install_with(prog, SECCOMP_FILTER_FLAG_NEW_LISTENER).and_then(owned)
}

/// Whether `fd` is a seccomp listener (an anonymous inode of that name).
pub fn is_seccomp_listener(fd: RawFd) -> bool {
    let mut buf = [0u8; 64];
    super::fd_target(fd, &mut buf).is_ok_and(|n| &buf[..n] == b"anon_inode:seccomp notify")
}

/// The next notified call (blocks until there is one).
pub fn notif_recv(listener: RawFd) -> io::Result<Notif> {
    // SAFETY: a zeroed seccomp_notif is valid, and the kernel wants it zeroed.
    let mut n: Notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV writes one seccomp_notif to the pointer, which is valid and writable.
    check(unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) })?;
    Ok(n)
}

/// Whether the call `id` still waits for its answer (its caller neither gone nor interrupted):
/// what was read of the caller since it was received was the caller's.
pub fn notif_id_valid(listener: RawFd, id: u64) -> bool {
    // SAFETY: ID_VALID reads one u64 through the pointer.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
}

/// Answer the call `id`: it returns `Ok(value)`, or fails with `Err(errno)`.
pub fn notif_send(listener: RawFd, id: u64, result: Result<i64, i32>) -> io::Result<()> {
    let (val, error) = match result {
        Ok(v) => (v, 0),
        Err(e) => (0, -e),
    };
    let resp = libc::seccomp_notif_resp {
        id,
        val,
        error,
        flags: 0,
    };
    // SAFETY: SEND reads one seccomp_notif_resp through the pointer.
    check(unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) }).map(drop)
}

/// A pidfd of the thread `tid` (not only of a process's leader).
pub fn pidfd_open_thread(tid: libc::pid_t) -> io::Result<OwnedFd> {
    const PIDFD_THREAD: libc::c_long = libc::O_EXCL as libc::c_long;
    // SAFETY: plain syscall.
    owned(unsafe { libc::syscall(libc::SYS_pidfd_open, tid, PIDFD_THREAD) })
}

/// Copy `buf.len()` bytes at `addr` out of the process `pid`; how many it could.
pub fn read_memory(pid: libc::pid_t, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` covers `buf`, writable; `remote` is only read, in the other process.
    let r = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    check_long(r as libc::c_long).map(|n| n as usize)
}

/// `path` opened `O_PATH` (following a final symbolic link, as `connect` does) with `root` as
/// the root: `..` and absolute symbolic links stay below it, and a magic link of /proc fails
/// (EXDEV), as the kernel does for scoped lookups.
pub fn open_in_root(root: RawFd, path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: a zeroed open_how is valid (no flags, no mode, no resolve flags).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT;
    // SAFETY: a NUL-terminated path and an open_how of the size passed.
    owned(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    })
}

/// The id of the mount `path` (`fd` when `path` is empty) is on, as `/proc/self/mountinfo`
/// numbers it; a final symbolic link is not followed.
pub fn mount_id_at(fd: RawFd, path: &CStr) -> io::Result<u64> {
    const STATX_MNT_ID: u32 = 0x1000;
    // SAFETY: a zeroed statx is a valid out-parameter.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    let flags = libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH;
    // SAFETY: a NUL-terminated path and a writable statx.
    check(unsafe { libc::statx(fd, path.as_ptr(), flags, STATX_MNT_ID, &mut st) })?;
    if st.stx_mask & STATX_MNT_ID == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    Ok(st.stx_mnt_id)
}

/// `connect(fd, addr)`, the address as bytes.
pub fn connect_raw(fd: RawFd, addr: &[u8]) -> io::Result<()> {
    // SAFETY: `addr` is readable for its length, which is passed.
    check(unsafe { libc::connect(fd, addr.as_ptr().cast(), addr.len() as libc::socklen_t) })
        .map(drop)
}
