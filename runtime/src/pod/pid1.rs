//! The test is PID 1 of its pod (one fork fewer than an init + test pair). PID 1 of a PID
//! namespace ignores signals whose action is the default, unless the kernel forces them (faults,
//! SIGKILL): `abort()` or `raise(SIGTERM)` would not end it. So, for every signal whose default
//! action terminates and whose disposition is still the default, a handler reports the signal to
//! the supervisor and exits: the outcome is the same as for a process killed by it.
//!
//! The handler is async-signal-safe: one `write` of a fixed frame (after a warm test's word on
//! its clones, `clones::report_changes`), then `_exit`. Dying with a
//! PID 1 also ends every other process of the pod (the kernel kills the namespace).

use crate::sys;
use std::io;

const TERMINATING: &[libc::c_int] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGUSR1,
    libc::SIGSEGV,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGSTKFLT,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGSYS,
    libc::SIGIO,
    libc::SIGPWR,
];

extern "C" fn on_signal(sig: libc::c_int) {
    super::clones::report_changes();
    super::report_signal(sig);
    sys::exit_now(128 + sig);
}

/// `host` says which signals the host left at their default action (only those get a handler);
/// `None`: the dispositions in force are the host's, asked signal by signal.
pub fn report_default_signals(host: Option<&sys::SignalState>) -> io::Result<()> {
    for &sig in TERMINATING {
        match host {
            // SAFETY: `on_signal` is async-signal-safe: one write of a fixed frame to the
            // status pipe and `_exit`.
            Some(h) if h.is_default(sig) => unsafe { sys::handle(sig, on_signal) }?,
            Some(_) => {}
            None => {
                // SAFETY: as above.
                unsafe { sys::handle_if_default(sig, on_signal) }?;
            }
        }
    }
    Ok(())
}
