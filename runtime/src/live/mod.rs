//! Live checkpoints: a frozen copy-on-write copy of the process, kept under a name, from which
//! an operator starts pods later, as often as wanted (`invite branch NAME`) — what DejaView's
//! `listckpt` / `branch` / `resume` did for the seed, as a fork server instead of a kernel module.
//!
//! ```text
//! host ──fork──▶ short-lived child ──fork──▶ parked copy (serves NAME's socket)
//!  │ returns 0      exits at once               │ BRANCH (the k-th)
//!  ▼                (the host's reaper                └─▶ supervisor ─▶ pod init ─▶ test:
//!  goes on           waits for it)                        invite_checkpoint() returns k
//! ```
//!
//! The module owns the checkpoint's life: taking it (here, in the host), parking it (`park`: the
//! descriptors it keeps, its priority, watching the host), its socket directory (`dir`) and line
//! protocol (`proto`). It does not build pods: a branch is an ordinary pod of kind
//! `PodKind::Branch`, started by `snapshot::start` inside the parked copy, with the isolation,
//! supervision and journal of every pod. Where a checkpoint could be written to disk or moved to
//! another machine is `backend` (not available: it needs CRIU ≥ 4.1; see docs/live-checkpoints.md).
//!
//! Bounds: at most [`MAX_LIVE`] live checkpoints per process. Each costs the memory the host
//! changes after it was taken (copy-on-write pages diverge as the host runs), up to the host's
//! resident size at the time; `invite checkpoints` shows it as PRIVATE.

mod backend;
mod dir;
mod park;
mod proto;

use crate::runtime;
use crate::snapshot::{self, Ckpt, CkptError};
use crate::sys;
use std::os::fd::{IntoRawFd, RawFd};
use std::sync::Mutex;

/// Live checkpoints one process may keep at once.
pub const MAX_LIVE: usize = 4;

/// Longest checkpoint name (bytes of `A-Z a-z 0-9 _ -`).
pub const MAX_NAME: usize = 32;

/// A checkpoint this process took, as the host sees it: the read end of a pipe whose only writer
/// is the parked copy (and the pods branched from it), so it reads end-of-file once they are gone.
struct Taken {
    name: String,
    alive_r: RawFd,
}

static TAKEN: Mutex<Vec<Taken>> = Mutex::new(Vec::new());

/// Keep a frozen copy of the calling process under `name`.
///
/// Returns `Ckpt::Original` in the caller, at once; later, each pod an operator branches from the
/// checkpoint (`invite branch NAME`) returns from this call with `Ckpt::Pod(k)`, k = 1, 2, 3 for
/// the first, second, third branch. Branches are pods like any other (isolation, deadline,
/// journal record with phase `manual`, test `branch`, pod path `NAME/k`). The checkpoint lives
/// until `invite drop NAME` or until this process exits.
///
/// ```no_run
/// // After warming up: keep this state so an operator can test it later, as often as wanted.
/// match invite::checkpoint("warm") {
///     Ok(invite::Ckpt::Pod(k)) => {
///         println!("branch {k} of the warm state");
///         std::process::exit(0);
///     }
///     Ok(invite::Ckpt::Original) => { /* serve requests as before */ }
///     Err(e) => eprintln!("no live checkpoint: {e}"),
/// }
/// ```
#[track_caller]
pub fn checkpoint(name: &str) -> Result<Ckpt, CkptError> {
    let loc = std::panic::Location::caller();
    let r = checkpoint_at(name, loc.file(), loc.line(), "checkpoint");
    if let Ok(Ckpt::Pod(_)) = r {
        crate::pod::begin_test(true);
    }
    r
}

/// `checkpoint` with the caller's location, for the C API.
pub fn checkpoint_at(
    name: &str,
    file: &'static str,
    line: u32,
    function: &'static str,
) -> Result<Ckpt, CkptError> {
    let _inside = crate::inside::Inside::enter();
    check_name(name)?;
    let rt = runtime::get();
    if runtime::in_pod() {
        return Err(snapshot::fail(
            libc::ENOTSUP,
            "live checkpoints are taken by the original process, not inside a pod".into(),
        ));
    }
    let Some(cfg) = rt.config.as_ref().filter(|c| c.enabled) else {
        return Err(snapshot::fail(
            libc::ECANCELED,
            "in vivo testing is off (INVITE=off or a bad configuration): no checkpoint".into(),
        ));
    };
    // The probe: branches need the same isolation as every pod, so find out now, not at branch time.
    if cfg.isolation == crate::config::Isolation::Pod {
        rt.plan().map_err(|m| snapshot::fail(libc::ENOTSUP, m))?;
    }
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    forget_gone(&mut taken);
    if taken.iter().any(|t| t.name == name) {
        return Err(snapshot::fail(
            libc::EEXIST,
            format!("this process already has a live checkpoint named {name:?}"),
        ));
    }
    if taken.len() >= MAX_LIVE {
        return Err(snapshot::fail(
            libc::EAGAIN,
            format!("this process already keeps {MAX_LIVE} live checkpoints, the most it may (invite drop one)"),
        ));
    }
    let fail = |(errno, m): (i32, String)| snapshot::fail(errno, m);
    let socket_dir = dir::ensure().map_err(fail)?;
    let socket = socket_dir.join(dir::socket_name(rt.pid(), name));
    let listener = dir::bind(&socket).map_err(fail)?;
    let os = |step: &str, e: std::io::Error| {
        let _ = std::fs::remove_file(&socket);
        snapshot::fail(
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("{step}: {e}"),
        )
    };
    let host = sys::pidfd_open(sys::getpid()).map_err(|e| os("pidfd_open", e))?;
    let (alive_r, alive_w) = sys::pipe().map_err(|e| os("pipe", e))?;
    let t0 = sys::monotonic_ns();
    // SAFETY: the child only forks the parked copy and exits; the copy serves the live
    // checkpoint with the host's code, the feature's trade-off (docs: live checkpoints).
    match unsafe { sys::fork() } {
        Err(e) => Err(os("fork", e)),
        Ok(sys::Forked::Parent(child)) => {
            let pause = sys::monotonic_ns() - t0;
            rt.ledger().charge(pause);
            crate::reap::reap_when_over(child);
            drop((host, alive_w, listener));
            taken.push(Taken {
                name: name.to_string(),
                alive_r: alive_r.into_raw_fd(),
            });
            Ok(Ckpt::Original)
        }
        Ok(sys::Forked::Child) => {
            // The short-lived child: its only job is to take the parked copy out of the host's
            // wait(), by forking it and exiting (the copy is then reparented away from the host).
            drop(taken);
            drop(alive_r);
            // SAFETY: this child is single-threaded (a fork of one thread).
            match unsafe { sys::fork() } {
                Ok(sys::Forked::Parent(_)) => sys::exit_now(0),
                Err(_) => {
                    let _ = std::fs::remove_file(&socket);
                    sys::exit_now(1)
                }
                Ok(sys::Forked::Child) => {
                    let k = park::run(park::Parked {
                        name: name.to_string(),
                        socket,
                        listener,
                        host: host.into_raw_fd(),
                        alive_w: alive_w.into_raw_fd(),
                        site: (file, line, function),
                    });
                    Ok(Ckpt::Pod(k))
                }
            }
        }
    }
}

/// Names go into a socket's file name and a pod path (`NAME/k`, kept as `PID.NAME.k`).
fn check_name(name: &str) -> Result<(), CkptError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(snapshot::fail(
            libc::EINVAL,
            format!("bad checkpoint name {name:?}: use 1 to {MAX_NAME} of A-Z a-z 0-9 _ -"),
        ))
    }
}

/// Drop the entries whose parked copy has exited (its pipe reads end-of-file).
fn forget_gone(taken: &mut Vec<Taken>) {
    if taken.is_empty() {
        return;
    }
    let fds: Vec<RawFd> = taken.iter().map(|t| t.alive_r).collect();
    let mut rev = vec![0i16; fds.len()];
    if sys::poll_in(&fds, 0, &mut rev).is_err() {
        return;
    }
    for i in (0..taken.len()).rev() {
        if rev[i] != 0 {
            sys::close(taken.swap_remove(i).alive_r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_and_plain() {
        for good in ["demo", "warm-1", "A_b", &"x".repeat(MAX_NAME)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a/b",
            "a.b",
            "a b",
            "..",
            "é",
            &"x".repeat(MAX_NAME + 1),
        ] {
            let e = check_name(bad).unwrap_err();
            assert_eq!(e.errno, libc::EINVAL, "{bad}");
        }
    }
}
