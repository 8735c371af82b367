//! The one room where `unsafe` lives: thin wrappers over the system calls that build and run pods.
//!
//! Everything returns `io::Result` (the OS error intact); callers add the step's name. Nothing here
//! decides policy. Functions taking paths take `&CStr` so the child never allocates to call them.
//!
//! A function whose caller must uphold something the compiler cannot check (what the child of a
//! `fork` may touch, an async-signal-safe handler, no reference into memory being replaced) is an
//! `unsafe fn` with a `# Safety` section; each call site says why it holds.
//!
//! Why these wrappers and not `rustix`: most of them run in a freshly forked child of a
//! multithreaded host, where only async-signal-safe, allocation-free code may run before the
//! pod is isolated; `fork` is glibc's `_Fork` with the runtime's own atfork handlers (or glibc's
//! `fork` under `INVITE_FORK=libc`; a raw `clone` would skip glibc's fix-ups of the thread's own
//! state); and several calls have no `rustix` API or need
//! the exact flags here (`clone3`-free `fork` into a PID namespace switched per thread, the
//! seccomp trap handler that rewrites the saved registers, `PROCMAP_QUERY`, `/proc/self/mem`
//! copies). `rustix` (already in the dependency tree, through `tempfile`) would serve for the
//! plain ones (`open`, `pipe`, `socketpair`, `mount`, `setns`) and return `OwnedFd` directly; the
//! move is left for when the descriptors are `OwnedFd` throughout (see the descriptor note in
//! `fd`), so that one change does both.

#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

use std::ffi::CString;
use std::io;

mod at;
mod fd;
mod fork;
mod fs;
mod futex;
mod heap;
mod inert;
mod mem;
mod pool;
mod process;
mod seccomp;
mod signal;
mod sites;
mod socket;
mod trace;
mod unotify;

pub use at::*;
pub use fd::*;
pub use fork::{at_fork, at_fork_child, fork, look_up_forks, set_fork_via, ForkVia, Forked};
pub use fs::*;
pub use futex::{futex_wait, futex_wake};
pub use heap::{use_own_pages, CHeap};
pub use inert::*;
pub use mem::*;
pub use process::*;
pub use seccomp::*;
pub use signal::*;
pub use sites::{compiled_sites, has_own_sites};
pub use socket::{peer_cred, recv_fds, send_fds, send_raw_fds, seqpacket_pair};
pub use trace::*;
pub use unotify::*;

fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn check_long(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

pub fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}
