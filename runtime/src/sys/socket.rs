//! Unix-socket calls that std does not offer: the peer's credentials of a connection.

use super::check;
use std::io;
use std::os::fd::RawFd;

/// The credentials (pid, uid, gid) of the process at the other end of a Unix socket, as the kernel
/// recorded them when it connected (`SO_PEERCRED`): the peer cannot forge them.
pub fn peer_cred(fd: RawFd) -> io::Result<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred is a valid, writable ucred and len holds its size, as SO_PEERCRED requires.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok(cred)
}
