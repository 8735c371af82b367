//! The one room where `unsafe` lives: thin wrappers over the system calls that build and run pods.
//!
//! Everything returns `io::Result` (the OS error intact); callers add the step's name. Nothing here
//! decides policy. Functions taking paths take `&CStr` so the child never allocates to call them.

#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

use std::ffi::CString;
use std::io;

mod at;
mod fd;
mod fs;
mod mem;
mod process;
mod seccomp;
mod signal;
mod socket;

pub use at::*;
pub use fd::*;
pub use fs::*;
pub use mem::*;
pub use process::*;
pub use seccomp::*;
pub use signal::*;
pub use socket::{peer_cred, recv_fds, send_fds, seqpacket_pair};

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
