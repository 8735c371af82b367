//! The namespaces made once per process: one empty network namespace that every pod joins (no
//! interfaces up, so no route out, not even to the host's loopback), and, when not root, the user
//! namespace that owns it, with the caller's own uid and gid mapped to themselves.
//!
//! A helper child creates them and parks while the host opens `/proc/<helper>/ns/*`; then it is
//! killed and reaped. Joining later costs ~5 µs per pod instead of ~350 µs for a fresh netns.

use crate::sys;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

pub fn make_namespaces(premade: Option<RawFd>) -> Result<(RawFd, Option<RawFd>), String> {
    let root = crate::plan::is_root();
    if root {
        // Made by the warm pods' helper when there is one: no fork of the host for it.
        if let Some(net) = premade {
            return Ok((net, None));
        }
    }
    let (uid, gid) = (sys::geteuid(), sys::getegid());
    let (ready_r, ready_w) =
        sys::pipe().map_err(|e| format!("isolation unavailable: pipe: {e}"))?;
    let (go_r, _go_w) = sys::pipe().map_err(|e| format!("isolation unavailable: pipe: {e}"))?;
    let flags = if root {
        libc::CLONE_NEWNET
    } else {
        libc::CLONE_NEWUSER | libc::CLONE_NEWNET
    };
    // SAFETY: the child makes system calls only (unshare, write, read, _exit), nothing another
    // thread could hold.
    let child = match unsafe { sys::fork() } {
        Err(e) => return Err(format!("isolation unavailable: fork: {e}")),
        Ok(sys::Forked::Child) => {
            let code = match sys::unshare(flags) {
                Ok(()) => 0,
                Err(e) => e.raw_os_error().unwrap_or(1) as u8,
            };
            let byte = [code];
            let _ = sys::write(ready_w.as_raw_fd(), &byte);
            let mut b = [0u8; 1];
            let _ = sys::read(go_r.as_raw_fd(), &mut b);
            sys::exit_now(0);
        }
        Ok(sys::Forked::Parent(pid)) => pid,
    };
    drop((ready_w, go_r));
    // The pipes' other ends close when this returns.
    let finish = |res: Result<(RawFd, Option<RawFd>), String>| {
        sys::kill(child, libc::SIGKILL);
        let _ = sys::wait4(child, 0);
        res
    };
    let mut b = [0u8; 1];
    match sys::read(ready_r.as_raw_fd(), &mut b) {
        Ok(1) if b[0] == 0 => {}
        Ok(1) => {
            let e = std::io::Error::from_raw_os_error(b[0] as i32);
            let what = if root {
                "network namespaces (unshare CLONE_NEWNET)"
            } else {
                "unprivileged user namespaces (unshare CLONE_NEWUSER); see /proc/sys/user/max_user_namespaces and kernel.unprivileged_userns_clone"
            };
            return finish(Err(format!("isolation unavailable: {what}: {e}")));
        }
        _ => return finish(Err("isolation unavailable: namespace helper died".into())),
    }
    let proc = format!("/proc/{child}");
    if !root {
        let maps = [
            ("setgroups", "deny".to_string()),
            ("uid_map", format!("{uid} {uid} 1")),
            ("gid_map", format!("{gid} {gid} 1")),
        ];
        for (f, v) in maps {
            if let Err(e) = std::fs::write(format!("{proc}/{f}"), v) {
                return finish(Err(format!(
                    "isolation unavailable: writing {proc}/{f}: {e}"
                )));
            }
        }
    }
    let open = |ns: &str| {
        let p = sys::cstring(&format!("{proc}/ns/{ns}")).map_err(|e| e.to_string())?;
        sys::open(&p, libc::O_RDONLY | libc::O_CLOEXEC, 0)
            .map_err(|e| format!("isolation unavailable: open {proc}/ns/{ns}: {e}"))
    };
    let net = match open("net") {
        Ok(fd) => fd,
        Err(e) => return finish(Err(e)),
    };
    let user = if root {
        None
    } else {
        match open("user") {
            Ok(fd) => Some(fd),
            Err(e) => return finish(Err(e)),
        }
    };
    // The plan owns them from here (`Plan::netns_fd`, `Plan::userns_fd`).
    finish(Ok((net.into_raw_fd(), user.map(IntoRawFd::into_raw_fd))))
}
