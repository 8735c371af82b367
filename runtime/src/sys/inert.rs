//! The objects a pod gets in place of inherited sockets, pipes and event descriptors (see
//! `pod/inert`): new ones of the same kind that lead nowhere. Every descriptor returned is
//! close-on-exec and new; the caller places it.

use super::check;
use std::io;
use std::os::fd::RawFd;

/// An integer socket option (`SOL_SOCKET`): `SO_DOMAIN`, `SO_TYPE`, `SO_PROTOCOL`, `SO_ACCEPTCONN`.
pub fn socket_opt(fd: RawFd, opt: libc::c_int) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v is a writable int and len its size, as these options require.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(v)
}

fn nonblock_flag(nonblock: bool, flag: libc::c_int) -> libc::c_int {
    if nonblock {
        flag
    } else {
        0
    }
}

/// A connected pair of Unix sockets of type `ty`.
pub fn unix_pair(ty: libc::c_int, nonblock: bool) -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    let ty = ty | libc::SOCK_CLOEXEC | nonblock_flag(nonblock, libc::SOCK_NONBLOCK);
    // SAFETY: fds has room for the two descriptors socketpair writes.
    check(unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) })?;
    Ok((fds[0], fds[1]))
}

/// A listening socket of this domain, type and protocol, bound by the kernel to an address of
/// its choosing in the calling process's network namespace (an abstract name for `AF_UNIX`, an
/// ephemeral port for IP): it accepts nothing unless someone in that namespace connects.
pub fn unbound_listener(
    domain: libc::c_int,
    ty: libc::c_int,
    protocol: libc::c_int,
    nonblock: bool,
) -> io::Result<RawFd> {
    let flags = libc::SOCK_CLOEXEC | nonblock_flag(nonblock, libc::SOCK_NONBLOCK);
    // SAFETY: plain syscall.
    let fd = check(unsafe { libc::socket(domain, ty | flags, protocol) })?;
    let listened = (|| {
        if domain == libc::AF_UNIX {
            // An address of just the family: the kernel picks an abstract name ("autobind").
            // SAFETY: a zeroed sockaddr_un is valid; the length covers only its family.
            let addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
            let addr = libc::sockaddr_un {
                sun_family: libc::AF_UNIX as libc::sa_family_t,
                ..addr
            };
            // SAFETY: addr is a valid sockaddr_un at least as long as the length given.
            check(unsafe {
                libc::bind(
                    fd,
                    (&addr as *const libc::sockaddr_un).cast(),
                    std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t,
                )
            })?;
        }
        // SAFETY: plain syscall on our new socket.
        check(unsafe { libc::listen(fd, 1) })
    })();
    match listened {
        Ok(_) => Ok(fd),
        Err(e) => {
            super::close(fd);
            Err(e)
        }
    }
}

/// No more reading on this socket: reads see end of file.
pub fn shutdown_read(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall.
    check(unsafe { libc::shutdown(fd, libc::SHUT_RD) }).map(drop)
}

/// A new pipe (read end, write end).
pub fn pipe_with(nonblock: bool) -> io::Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    let flags = libc::O_CLOEXEC | nonblock_flag(nonblock, libc::O_NONBLOCK);
    // SAFETY: fds has room for two descriptors.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), flags) })?;
    Ok((fds[0], fds[1]))
}

/// The kinds of event descriptor a pod gets a fresh, idle one of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Counter 0: never readable.
    Eventfd,
    /// Disarmed: never fires.
    Timerfd,
    /// An empty mask: no signal arrives.
    Signalfd,
    /// Nothing registered.
    Epoll,
    /// No watch.
    Inotify,
}

/// A fresh, idle event descriptor of this kind.
pub fn idle_event(kind: EventKind, nonblock: bool) -> io::Result<RawFd> {
    // SAFETY: each arm makes plain syscalls creating a new descriptor; the signal set is a valid,
    // emptied sigset_t.
    check(unsafe {
        match kind {
            EventKind::Eventfd => libc::eventfd(
                0,
                libc::EFD_CLOEXEC | nonblock_flag(nonblock, libc::EFD_NONBLOCK),
            ),
            EventKind::Timerfd => libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_CLOEXEC | nonblock_flag(nonblock, libc::TFD_NONBLOCK),
            ),
            EventKind::Signalfd => {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::signalfd(
                    -1,
                    &set,
                    libc::SFD_CLOEXEC | nonblock_flag(nonblock, libc::SFD_NONBLOCK),
                )
            }
            EventKind::Epoll => libc::epoll_create1(libc::EPOLL_CLOEXEC),
            EventKind::Inotify => {
                libc::inotify_init1(libc::IN_CLOEXEC | nonblock_flag(nonblock, libc::IN_NONBLOCK))
            }
        }
    })
}
