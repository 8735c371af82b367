//! Signal dispositions: the supervisor's reset, the pod's restore, PID 1's reporting.

use super::check;
use std::io;

/// Install `handler` for `sig` if its disposition is the default (keeps the host's handlers and
/// ignored signals as they are). The handler runs on the current stack with the signal blocked.
pub fn handle_if_default(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
    // SAFETY: zeroed sigaction is valid (empty mask, no flags); we only read the old action.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries.
    check(unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) })?;
    if old.sa_sigaction != libc::SIG_DFL {
        return Ok(());
    }
    // SAFETY: as above.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as usize;
    // SAFETY: sa is a valid action; `handler` is async-signal-safe (see pod::pid1).
    check(unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) }).map(drop)
}

/// The dispositions and mask of every signal, to give a pod the host's own.
pub struct SignalState {
    actions: Vec<(libc::c_int, libc::sigaction)>,
    mask: libc::sigset_t,
}

pub fn save_signal_state() -> SignalState {
    let mut actions = Vec::with_capacity(64);
    for sig in 1..=64 {
        // SAFETY: zeroed sigaction is a valid out-parameter; a null new action only queries.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } == 0 {
            actions.push((sig, old));
        }
    }
    // SAFETY: zeroed sigset_t is valid; a null new set only queries.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask) };
    SignalState { actions, mask }
}

pub fn restore_signal_state(s: &SignalState) {
    for (sig, act) in &s.actions {
        // SAFETY: re-installing an action this process had (same handlers, same address space).
        unsafe { libc::sigaction(*sig, act, std::ptr::null_mut()) };
    }
    // SAFETY: a mask this process had.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &s.mask, std::ptr::null_mut()) };
}

/// In a supervisor: every signal back to its default action (SIGPIPE ignored, so a write to a
/// closed pipe is an error, not death), none blocked.
pub fn reset_signal_handlers() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let action = if sig == libc::SIGPIPE {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: setting a disposition to SIG_DFL/SIG_IGN; invalid numbers return EINVAL.
        unsafe { libc::signal(sig, action) };
    }
    // SAFETY: an empty set, then unblocking everything.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}
