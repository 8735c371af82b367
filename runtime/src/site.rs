//! Call sites: the static record of one (function under test, test) pair. Data only: the fast
//! path is `sample`'s (`Site::sample`), the first step of the flow.
//!
//! A site's countdowns (calls left before the next sample) are per thread (`counts`); the site
//! holds its `index`, its slot in every thread's countdowns (0 until its first call). The
//! `countdown` field is no longer used (objects built with an earlier `invite.h` count it down;
//! left at 0, it sends each of their calls to the slow path, which counts it exactly).
//!
//! The layout is `#[repr(C)]` and shared with `invite_site` in `invite.h`.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicI64, AtomicPtr, AtomicU32};

/// When a test runs relative to the call of the function under test.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Before the call, with its arguments.
    Pre = 1,
    /// After the call, with its return value.
    Post = 2,
}

impl Phase {
    /// The journal's name for the phase.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pre => invite_vocab::phase::PRE,
            Phase::Post => invite_vocab::phase::POST,
        }
    }
}

/// One in vivo test site. Create it with [`Site::new`] in a `static`.
#[repr(C)]
pub struct Site {
    pub(crate) countdown: AtomicI64,
    pub(crate) function: *const c_char,
    pub(crate) test: *const c_char,
    pub(crate) file: *const c_char,
    pub(crate) line: u32,
    pub(crate) phase: u32,
    pub(crate) probability: f64,
    pub(crate) timeout_ms: u32,
    pub(crate) index: AtomicU32,
    pub(crate) next: AtomicPtr<c_void>,
}

// SAFETY: the raw pointers point at 'static, immutable, NUL-terminated strings (checked in `new`
// for Rust sites; promised by the generated C code); everything mutable is atomic.
unsafe impl Sync for Site {}
// SAFETY: as for `Sync`: nothing in a site belongs to one thread.
unsafe impl Send for Site {}

const fn nul_terminated(s: &'static str) -> *const c_char {
    let b = s.as_bytes();
    if b.is_empty() || b[b.len() - 1] != 0 {
        panic!("invite::Site strings must end with \\0");
    }
    b.as_ptr() as *const c_char
}

impl Site {
    /// A site record. Strings must end in `"\0"` (use `concat!(.., "\0")`).
    #[allow(clippy::too_many_arguments)]
    pub const fn new(
        function: &'static str,
        test: &'static str,
        file: &'static str,
        line: u32,
        phase: Phase,
        probability: f64,
        timeout_ms: u32,
    ) -> Site {
        Site {
            countdown: AtomicI64::new(0),
            function: nul_terminated(function),
            test: nul_terminated(test),
            file: nul_terminated(file),
            line,
            phase: phase as u32,
            probability,
            timeout_ms,
            index: AtomicU32::new(0),
            next: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        if self.phase == Phase::Post as u32 {
            Phase::Post
        } else {
            Phase::Pre
        }
    }

    pub(crate) fn function(&self) -> &str {
        cstr(self.function)
    }

    pub(crate) fn test(&self) -> &str {
        cstr(self.test)
    }

    pub(crate) fn file(&self) -> &str {
        cstr(self.file)
    }
}

/// `module::Type::method`: the owner type's path plus the function's last segment.
pub(crate) fn qualified(function: &str, owner: Option<&str>) -> String {
    match owner {
        Some(o) => format!("{o}::{}", function.rsplit("::").next().unwrap_or(function)),
        None => function.to_string(),
    }
}

fn cstr(p: *const c_char) -> &'static str {
    if p.is_null() {
        return "?";
    }
    // SAFETY: site strings are 'static and NUL-terminated (see the `Sync` impl).
    let s = unsafe { std::ffi::CStr::from_ptr(p) };
    s.to_str().unwrap_or("?")
}
