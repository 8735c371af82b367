//! Inherited sockets, pipes and event descriptors become objects of the same kind that lead
//! nowhere, so code in the pod that reads them, polls them or registers them with epoll (an
//! async runtime's reactor, tokio's signal socket) keeps working and sees end of file or nothing:
//!
//! | inherited | in the pod |
//! |---|---|
//! | listening socket | a listening socket of the same domain and type, bound by the kernel in the pod's network namespace: no connection arrives |
//! | other socket | one end of a new Unix socket pair of the same type (stream, datagram, seqpacket), the other end held by the pod: nothing arrives, writes are absorbed; a blocking socket is shut down for reading (reads see end of file) |
//! | pipe or FIFO, read end | a new pipe: blocking, its write end closed (end of file); non-blocking, held (nothing) |
//! | pipe or FIFO, write end | a new pipe whose read end the pod holds: writes are absorbed (then `EAGAIN`) |
//!
//! What leads nowhere fills up: the pod's end of a socket or of a pipe's write end is always
//! non-blocking, so once its buffer is full a write fails with `EAGAIN` rather than hang the test
//! until its deadline (a blocking write there used to go to /dev/null).
//! | eventfd, timerfd, signalfd, epoll, inotify | a fresh one: counter 0, disarmed, empty mask, empty interest list, no watch |
//!
//! Otherwise blocking mode (`O_NONBLOCK`) and close-on-exec are those of the inherited descriptor. Planned
//! in the supervisor (which reads the host's descriptors), made in the test, in the pod's
//! network namespace. Nothing of the host's is reachable through any of them.

use crate::sys::{self, EventKind};
use std::io;
use std::os::fd::RawFd;

/// What an inherited descriptor becomes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Inert {
    Listener { domain: i32, ty: i32, protocol: i32 },
    Socket { ty: i32 },
    PipeRead,
    PipeWrite,
    Event(EventKind),
}

/// The plan for one descriptor.
#[derive(Debug, Clone, Copy)]
pub struct InertPlan {
    pub kind: Inert,
    pub nonblock: bool,
    pub cloexec: bool,
}

/// Classify `fd` (of file type `fmt`, `/proc/self/fd` link `target`); `None` when it is none of
/// the kinds above.
pub fn plan(fd: RawFd, fmt: libc::mode_t, target: &str) -> Option<InertPlan> {
    let fl = sys::get_fl(fd).ok()?;
    let kind = if fmt == libc::S_IFSOCK {
        let opt = |o| sys::socket_opt(fd, o).ok();
        let ty = opt(libc::SO_TYPE)?;
        if opt(libc::SO_ACCEPTCONN) == Some(1) {
            Inert::Listener {
                domain: opt(libc::SO_DOMAIN)?,
                ty,
                protocol: opt(libc::SO_PROTOCOL).unwrap_or(0),
            }
        } else {
            Inert::Socket { ty }
        }
    } else if fmt == libc::S_IFIFO {
        if fl & libc::O_ACCMODE == libc::O_WRONLY {
            Inert::PipeWrite
        } else {
            Inert::PipeRead
        }
    } else {
        Inert::Event(match target {
            "anon_inode:[eventfd]" => EventKind::Eventfd,
            "anon_inode:[timerfd]" => EventKind::Timerfd,
            "anon_inode:[signalfd]" => EventKind::Signalfd,
            "anon_inode:[eventpoll]" => EventKind::Epoll,
            "anon_inode:inotify" => EventKind::Inotify,
            _ => return None,
        })
    };
    let cloexec = sys::get_fd_flags(fd)
        .map(|f| f & libc::FD_CLOEXEC != 0)
        .unwrap_or(false);
    Some(InertPlan {
        kind,
        nonblock: fl & libc::O_NONBLOCK != 0,
        cloexec,
    })
}

/// The new object: (the descriptor to put in place, the other end the pod must hold open).
/// `no_dgram`: a datagram socket becomes a seqpacket pair (message boundaries kept), for a pod
/// that may hold no Unix datagram socket (`unotify`).
pub fn make(p: &InertPlan, no_dgram: bool) -> io::Result<(RawFd, Option<RawFd>)> {
    let nb = p.nonblock;
    match p.kind {
        Inert::Listener {
            domain,
            ty,
            protocol,
        } => match sys::unbound_listener(domain, ty, protocol, nb) {
            Ok(fd) => Ok((fd, None)),
            // A family the pod's namespace lacks: a socket that leads nowhere all the same.
            Err(_) => pair(ty, nb, no_dgram),
        },
        Inert::Socket { ty } => pair(ty, nb, no_dgram),
        Inert::PipeRead => {
            let (r, w) = sys::pipe_with(nb)?;
            if nb {
                Ok((r, Some(w)))
            } else {
                sys::close(w);
                Ok((r, None))
            }
        }
        Inert::PipeWrite => {
            let (r, w) = sys::pipe_with(true)?;
            Ok((w, Some(r)))
        }
        Inert::Event(kind) => sys::idle_event(kind, nb).map(|fd| (fd, None)),
    }
}

fn pair(ty: i32, nonblock: bool, no_dgram: bool) -> io::Result<(RawFd, Option<RawFd>)> {
    let ty = match ty {
        libc::SOCK_STREAM | libc::SOCK_SEQPACKET => ty,
        _ if no_dgram => libc::SOCK_SEQPACKET,
        _ => libc::SOCK_DGRAM,
    };
    let (ours, held) = sys::unix_pair(ty, true)?;
    if !nonblock {
        if let Err(e) = sys::shutdown_read(ours) {
            sys::close(ours);
            sys::close(held);
            return Err(e);
        }
    }
    Ok((ours, Some(held)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(fd: RawFd) -> Option<InertPlan> {
        let st = sys::fstat(fd).unwrap();
        let mut link = [0u8; 256];
        let n = sys::fd_target(fd, &mut link).unwrap_or(0);
        plan(
            fd,
            st.st_mode & libc::S_IFMT,
            &String::from_utf8_lossy(&link[..n]),
        )
    }

    #[test]
    fn each_kind_is_recognised_and_made_again() {
        let (r, w) = sys::pipe_with(true).unwrap();
        let (a, b) = sys::unix_pair(libc::SOCK_STREAM, false).unwrap();
        let ev = sys::idle_event(EventKind::Eventfd, true).unwrap();
        let ep = sys::idle_event(EventKind::Epoll, false).unwrap();
        let want = [
            (r, Inert::PipeRead, true),
            (w, Inert::PipeWrite, true),
            (
                a,
                Inert::Socket {
                    ty: libc::SOCK_STREAM,
                },
                false,
            ),
            (ev, Inert::Event(EventKind::Eventfd), true),
            (ep, Inert::Event(EventKind::Epoll), false),
        ];
        for (fd, kind, nonblock) in want {
            let p = plan_of(fd).unwrap_or_else(|| panic!("fd {fd} not planned"));
            assert_eq!((p.kind, p.nonblock, p.cloexec), (kind, nonblock, true));
            let (new, held) = make(&p, false).unwrap();
            let again = plan_of(new).unwrap();
            // What is written to leads nowhere: never blocks.
            let writes = matches!(kind, Inert::Socket { .. } | Inert::PipeWrite);
            assert_eq!(
                (again.kind, again.nonblock),
                (kind, nonblock || writes),
                "{kind:?}"
            );
            sys::close(new);
            held.into_iter().for_each(sys::close);
        }
        for fd in [r, w, a, b, ev, ep] {
            sys::close(fd);
        }
    }

    #[test]
    fn a_blocking_socket_reads_end_of_file_and_a_nonblocking_one_nothing() {
        let p = |nonblock| InertPlan {
            kind: Inert::Socket {
                ty: libc::SOCK_STREAM,
            },
            nonblock,
            cloexec: true,
        };
        let mut buf = [0u8; 8];
        let (blocking, held) = make(&p(false), false).unwrap();
        assert_eq!(sys::read(blocking, &mut buf).unwrap(), 0);
        let (nonblocking, held2) = make(&p(true), false).unwrap();
        let e = sys::read(nonblocking, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        // Writes are absorbed until the buffer is full, then fail: they never block.
        let chunk = [0u8; 4096];
        let full = (0..10_000).find_map(|_| sys::write(blocking, &chunk).err());
        assert_eq!(full.map(|e| e.kind()), Some(io::ErrorKind::WouldBlock));
        for fd in [Some(blocking), held, Some(nonblocking), held2]
            .into_iter()
            .flatten()
        {
            sys::close(fd);
        }
    }

    #[test]
    fn a_listener_listens_and_accepts_nothing() {
        let p = InertPlan {
            kind: Inert::Listener {
                domain: libc::AF_UNIX,
                ty: libc::SOCK_STREAM,
                protocol: 0,
            },
            nonblock: true,
            cloexec: true,
        };
        let (fd, held) = make(&p, false).unwrap();
        assert!(held.is_none());
        assert_eq!(sys::socket_opt(fd, libc::SO_ACCEPTCONN).unwrap(), 1);
        sys::close(fd);
    }
}
