//! The pod's `connect`, decided by its supervisor (`supervise::connects`), for unprivileged
//! pods that see a host's tree bound whole (a tree with locked mounts below it: `/run`, `/tmp`,
//! `/mnt`): a socket the host creates there after start-up is not hidden by the start-up scan,
//! and a read-only bind does not stop `connect`. The pod's filter notifies every `connect` to
//! the supervisor (`SECCOMP_RET_USER_NOTIF`), which connects the pod's socket on its behalf, to
//! an inode it has checked, or refuses (README, "not root").
//!
//! What would let the pod past that, refused by the same filter (`SECCOMP_RET_TRAP`: EPERM,
//! noted):
//! - the listener's own `ioctl`s (every request of seccomp's type, `'!'`): the test keeps its
//!   copy of the listener (the supervisor takes its own with `pidfd_getfd`), inert;
//! - a filter of the pod's own with a listener (`seccomp` with `SECCOMP_FILTER_FLAG_NEW_LISTENER`):
//!   the newest filter's notification wins, and its listener could let `connect` through;
//! - `AF_UNIX` datagram sockets (`socket`, `socketpair`; `SOCK_RAW` is one there): a datagram
//!   names its receiver in `sendto` and `sendmsg`, whose address the filter cannot read for
//!   `sendmsg`, and only a supervisor sending on the pod's behalf (its data, its descriptors)
//!   could check it. Stream and seqpacket sockets ignore or refuse an address on send.

use super::bpf::{off_arg, Asm, To, ALLOW, JEQ, JSET, LD, TRAP};

const NOTIFY: To = To::Ret(libc::SECCOMP_RET_USER_NOTIF);

/// Names of the calls refused here, for the notes.
const NAMES: &[(libc::c_long, &str)] = &[
    (libc::SYS_socketpair, "socketpair"),
    (libc::SYS_ioctl, "ioctl"),
    (libc::SYS_seccomp, "seccomp"),
];

pub fn name(nr: i64) -> Option<(libc::c_long, &'static str)> {
    NAMES.iter().copied().find(|&(n, _)| n == nr)
}

/// Where the checks start, in a filter being written (`seccomp::write`).
pub struct Checks {
    socketpair: To,
    family: To,
    ioctl: To,
    seccomp: To,
}

impl Checks {
    pub fn new(a: &mut Asm) -> Checks {
        Checks {
            socketpair: a.label(),
            family: a.label(),
            ioctl: a.label(),
            seccomp: a.label(),
        }
    }

    /// The calls of the search that go to these checks (or are notified).
    pub fn calls(&self) -> [(u32, To); 4] {
        [
            (libc::SYS_connect as u32, NOTIFY),
            (libc::SYS_socketpair as u32, self.socketpair),
            (libc::SYS_ioctl as u32, self.ioctl),
            (libc::SYS_seccomp as u32, self.seccomp),
        ]
    }

    /// Where `socket` goes once its family is loaded and is not one refused by the pod's filter.
    pub fn socket_family(&self) -> To {
        self.family
    }

    /// The checks, after the search.
    pub fn write(self, a: &mut Asm) {
        a.place(self.socketpair);
        a.op(LD, off_arg(0), To::Next, To::Next);
        a.place(self.family);
        a.op(JEQ, libc::AF_UNIX as u32, To::Next, ALLOW);
        // The type's low four bits: SOCK_DGRAM (2) or SOCK_RAW (3), which AF_UNIX makes a
        // datagram socket.
        a.op(LD, off_arg(1), To::Next, To::Next);
        a.op(JSET, 0xc, ALLOW, To::Next);
        a.op(JSET, 0x2, TRAP, ALLOW);
        // ioctl: a request whose type byte (bits 8-15) is '!' (0x21), seccomp's alone, whatever
        // its size and direction bits (the kernel matches ADDFD without them).
        a.place(self.ioctl);
        a.op(LD, off_arg(1), To::Next, To::Next);
        a.op(JSET, 0xde00, ALLOW, To::Next);
        a.op(JSET, 0x2000, To::Next, ALLOW);
        a.op(JSET, 0x0100, TRAP, ALLOW);
        a.place(self.seccomp);
        a.op(LD, off_arg(1), To::Next, To::Next);
        const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 1 << 3;
        a.op(JSET, SECCOMP_FILTER_FLAG_NEW_LISTENER, TRAP, ALLOW);
    }
}

/// In the test, right after the filter is installed with `listener`: tell the supervisor its
/// number (it takes its own copy; the test keeps this one, which the filter makes inert).
pub fn announce(listener: std::os::fd::OwnedFd) {
    use std::os::fd::IntoRawFd;
    let fd = listener.into_raw_fd();
    super::report_frame(b'L', &fd.to_le_bytes());
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::bpf::{self, AUDIT_ARCH};
    use super::super::seccomp;

    fn run(p: &[crate::sys::Insn], nr: libc::c_long, a0: u32, a1: u32) -> u32 {
        bpf::walk(p, AUDIT_ARCH, nr as u32, 0, [a0, a1, 0, 0, 0, 0]).0
    }

    #[test]
    fn connect_is_notified_and_what_would_get_past_it_refused() {
        let p = seccomp::program(true);
        let (allow, trap) = (libc::SECCOMP_RET_ALLOW, libc::SECCOMP_RET_TRAP);
        let notify = libc::SECCOMP_RET_USER_NOTIF;
        assert_eq!(run(&p, libc::SYS_connect, 3, 0), notify);
        let unix = libc::AF_UNIX as u32;
        let flags = (libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) as u32;
        for nr in [libc::SYS_socket, libc::SYS_socketpair] {
            for ty in [libc::SOCK_DGRAM, libc::SOCK_RAW] {
                assert_eq!(run(&p, nr, unix, ty as u32 | flags), trap, "{nr} {ty}");
            }
            for ty in [libc::SOCK_STREAM, libc::SOCK_SEQPACKET] {
                assert_eq!(run(&p, nr, unix, ty as u32 | flags), allow, "{nr} {ty}");
            }
            let dgram = libc::SOCK_DGRAM as u32;
            assert_eq!(run(&p, nr, libc::AF_INET6 as u32, dgram), allow);
        }
        let vsock = libc::AF_VSOCK as u32;
        assert_eq!(run(&p, libc::SYS_socket, vsock, 1), trap);
        for req in [
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            libc::SECCOMP_IOCTL_NOTIF_ADDFD,
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
            0x2103, // ADDFD without size or direction: the kernel takes it too
        ] {
            assert_eq!(run(&p, libc::SYS_ioctl, 3, req as u32), trap, "{req:#x}");
        }
        for req in [libc::FIONREAD, libc::TCGETS, libc::TIOCGWINSZ, 0x4004_9409] {
            assert_eq!(run(&p, libc::SYS_ioctl, 3, req as u32), allow, "{req:#x}");
        }
        let seccomp = libc::SYS_seccomp;
        assert_eq!(run(&p, seccomp, 1, 0), allow);
        assert_eq!(run(&p, seccomp, 1, 1 << 3), trap);
        // Without notification, none of it is looked at.
        let plain = seccomp::program(false);
        assert_eq!(run(&plain, libc::SYS_connect, 3, 0), allow);
        assert_eq!(run(&plain, libc::SYS_socket, unix, 2), allow);
        assert_eq!(run(&plain, libc::SYS_ioctl, 3, 0xc050_2100), allow);
    }
}
