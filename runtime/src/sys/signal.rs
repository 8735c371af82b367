//! Signal dispositions: the supervisor's reset, the pod's restore, PID 1's reporting.
//!
//! The host's dispositions are read once per pod (one query per signal); after that only the
//! signals the host changed from the default are touched, so a pod pays a few system calls for
//! this, not hundreds.

use super::check;
use std::io;

/// The host's signal dispositions that differ from the default, and its signal mask.
pub struct SignalState {
    changed: Vec<(libc::c_int, libc::sigaction)>,
    mask: libc::sigset_t,
}

impl SignalState {
    /// True when the host left `sig` at its default action.
    pub fn is_default(&self, sig: libc::c_int) -> bool {
        !self.changed.iter().any(|(s, _)| *s == sig)
    }
}

pub fn save_signal_state() -> SignalState {
    let mut changed = Vec::new();
    for sig in 1..=64 {
        // SAFETY: zeroed sigaction is a valid out-parameter; a null new action only queries.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } == 0
            && old.sa_sigaction != libc::SIG_DFL
        {
            changed.push((sig, old));
        }
    }
    // SAFETY: zeroed sigset_t is valid; a null new set only queries.
    let mut mask: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, std::ptr::null(), &mut mask) };
    SignalState { changed, mask }
}

/// In a supervisor: none of the host's handlers (its SIGCHLD handler would reap the
/// supervisor's children); what the host handled or ignored is ignored, but for `SIGCHLD` and
/// faults (`supervisor_disposition`); SIGPIPE ignored (a write to a closed pipe is an error,
/// not death); nothing blocked.
pub fn reset_signal_handlers(s: &SignalState) {
    for (sig, _) in &s.changed {
        // SAFETY: setting a disposition to SIG_DFL or SIG_IGN.
        unsafe { libc::signal(*sig, supervisor_disposition(*sig)) };
    }
    // SAFETY: setting a disposition to SIG_IGN; then an empty mask.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// What the supervisor does with a signal the host handles or ignores: the host's handler is
/// not the supervisor's to run. A signal sent from outside (to the host's process group, as
/// `kill -USR1 -PGID` does) is ignored: at its default action it would kill the supervisor, and
/// the pod's record with it, for a signal the host survives. `SIGCHLD` stays at its default
/// (ignored, children would reap themselves before their supervisor's `wait4`), and so do the
/// signals of a fault, which must end a supervisor that takes one.
fn supervisor_disposition(sig: libc::c_int) -> libc::sighandler_t {
    const FAULTS: [libc::c_int; 7] = [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGSYS,
        libc::SIGABRT,
    ];
    if sig == libc::SIGCHLD || FAULTS.contains(&sig) {
        libc::SIG_DFL
    } else {
        libc::SIG_IGN
    }
}

/// In the pod's test: the host's dispositions and mask again.
pub fn restore_signal_state(s: &SignalState) {
    if s.is_default(libc::SIGPIPE) {
        // SAFETY: SIGPIPE back to its default (the supervisor ignored it).
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    for (sig, act) in &s.changed {
        // SAFETY: re-installing an action this process had (same handlers, same address space).
        unsafe { libc::sigaction(*sig, act, std::ptr::null_mut()) };
    }
    // SAFETY: a mask this process had.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &s.mask, std::ptr::null_mut()) };
}

/// Install `handler` for `sig` only if its disposition is the default (one call when it is);
/// true if installed.
///
/// # Safety
///
/// `handler` runs on whatever thread the signal interrupts, in the middle of any code: it must
/// be async-signal-safe (no allocation, no lock, only async-signal-safe calls).
pub unsafe fn handle_if_default(
    sig: libc::c_int,
    handler: extern "C" fn(libc::c_int),
) -> io::Result<bool> {
    // SAFETY: zeroed sigaction is valid (empty mask, no flags).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as usize;
    // SAFETY: zeroed sigaction is a valid out-parameter.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: sa is a valid action, old a valid out-parameter; `handler` is async-signal-safe
    // (the caller's obligation).
    check(unsafe { libc::sigaction(sig, &sa, &mut old) })?;
    if old.sa_sigaction == libc::SIG_DFL {
        return Ok(true);
    }
    // SAFETY: putting back the action just read.
    check(unsafe { libc::sigaction(sig, &old, std::ptr::null_mut()) }).map(|_| false)
}

/// Install `handler` for `sig`, which the caller knows is at its default action. The handler
/// runs on the current stack with the signal blocked.
///
/// # Safety
///
/// As for [`handle_if_default`]: `handler` must be async-signal-safe.
pub unsafe fn handle(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) -> io::Result<()> {
    // SAFETY: zeroed sigaction is valid (empty mask, no flags).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler as usize;
    // SAFETY: sa is a valid action; `handler` is async-signal-safe (the caller's obligation).
    check(unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) }).map(drop)
}

/// Block every signal of the calling thread; returns the mask to put back with `set_mask`.
pub fn block_all() -> libc::sigset_t {
    // SAFETY: zeroed sigset_t values are valid; sigfillset fills one; pthread_sigmask only
    // changes this thread's mask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Take the signals pending for this thread or its process without running their handlers
/// (they are blocked: `block_all`): a signal that came while they were blocked is dropped.
pub fn drop_pending() {
    // SAFETY: zeroed sigset_t and timespec values are valid; sigtimedwait only takes signals
    // that are blocked (no handler runs), and returns at once when none is pending.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        let now: libc::timespec = std::mem::zeroed();
        // Real-time signals queue: at most a bounded number is taken.
        for _ in 0..1024 {
            if libc::sigtimedwait(&all, std::ptr::null_mut(), &now) < 0 {
                return;
            }
        }
    }
}

/// Put back a mask `block_all` returned.
pub fn set_mask(mask: &libc::sigset_t) {
    // SAFETY: a valid mask; only this thread's mask changes.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
}
