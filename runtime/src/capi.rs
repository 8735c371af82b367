//! The C library: `invite.h` implemented over the Rust runtime. Every function here is a thin,
//! panic-free adapter; the decisions live in the modules it calls.

use crate::inside::Inside;
use crate::site::Site;
use crate::snapshot::{self, Ckpt, PodKind};
use std::ffi::{c_char, c_int, CStr};
use std::sync::Mutex;

/// `int ckpt(void)`: the seed's contract.
#[no_mangle]
pub extern "C" fn ckpt() -> c_int {
    manual("?", 0, "ckpt")
}

/// `ckpt()` as the header's macro calls it, with the caller's location.
///
/// # Safety
/// `file` and `function` are null or NUL-terminated strings that live for the whole program
/// (the macro passes `__FILE__` and `__func__`).
#[no_mangle]
pub unsafe extern "C" fn invite_ckpt_at(
    file: *const c_char,
    line: c_int,
    function: *const c_char,
) -> c_int {
    manual(
        static_str(file, "?"),
        line.max(0) as u32,
        static_str(function, "?"),
    )
}

fn static_str(p: *const c_char, default: &'static str) -> &'static str {
    if p.is_null() {
        return default;
    }
    // SAFETY: the caller promises a NUL-terminated string with static lifetime.
    unsafe { CStr::from_ptr::<'static>(p) }
        .to_str()
        .unwrap_or(default)
}

fn manual(file: &'static str, line: u32, function: &'static str) -> c_int {
    match snapshot::start(PodKind::Manual {
        file,
        line,
        function,
    }) {
        Ok(Ckpt::Original) => 0,
        Ok(Ckpt::Pod(id)) => {
            crate::pod::begin_test(false);
            id as c_int
        }
        Err(e) => -e.errno.max(1),
    }
}

/// `int invite_checkpoint(const char *name)`, the macro's form with the caller's location: keep
/// a live checkpoint; 0 in the original, k in the k-th pod branched from it, < 0 a negative errno.
///
/// # Safety
/// `name` is null or a NUL-terminated string; `file` and `function` as for `invite_ckpt_at`.
#[no_mangle]
pub unsafe extern "C" fn invite_checkpoint_at(
    name: *const c_char,
    file: *const c_char,
    line: c_int,
    function: *const c_char,
) -> c_int {
    let name = if name.is_null() {
        None
    } else {
        // SAFETY: promised NUL-terminated by the caller; read during this call only.
        unsafe { CStr::from_ptr(name) }.to_str().ok()
    };
    let r = crate::live::checkpoint_at(
        name.unwrap_or(""),
        static_str(file, "?"),
        line.max(0) as u32,
        static_str(function, "?"),
    );
    match r {
        Ok(Ckpt::Original) => 0,
        Ok(Ckpt::Pod(k)) => {
            crate::pod::begin_test(false);
            k as c_int
        }
        Err(e) => -e.errno.max(1),
    }
}

/// `invite_checkpoint` called as a function, `(invite_checkpoint)(name)`, without a location.
///
/// # Safety
/// As `invite_checkpoint_at`.
#[no_mangle]
pub unsafe extern "C" fn invite_checkpoint(name: *const c_char) -> c_int {
    // SAFETY: forwarded under the same contract; the location strings are static literals.
    unsafe { invite_checkpoint_at(name, c"?".as_ptr(), 0, c"invite_checkpoint".as_ptr()) }
}

static LAST_ERROR_C: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// The message of the last `ckpt()` failure. The pointer stays valid until the next call.
#[no_mangle]
pub extern "C" fn invite_last_error() -> *const c_char {
    let _inside = Inside::enter();
    let mut buf = LAST_ERROR_C.lock().unwrap_or_else(|e| e.into_inner());
    *buf = snapshot::last_error().replace('\0', " ").into_bytes();
    buf.push(0);
    buf.as_ptr().cast()
}

/// # Safety
/// `message` is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn invite_fail_str(message: *const c_char) {
    let m = if message.is_null() {
        "invite_fail".into()
    } else {
        // SAFETY: promised NUL-terminated by the caller (the header's invite_fail).
        unsafe { CStr::from_ptr(message) }.to_string_lossy()
    };
    crate::test_api::fail(&m);
}

#[no_mangle]
pub extern "C" fn invite_flush_summary() {
    crate::runtime::flush_summary();
}

/// The slow path of objects compiled with an earlier `invite.h` (their fast path counts down
/// the site's own field, which stays 0: every call comes here, and is counted exactly).
///
/// # Safety
/// `site` points at a static `invite_site` made with `INVITE_SITE`.
#[no_mangle]
pub unsafe extern "C" fn invite_sample_slow(site: *mut Site) -> c_int {
    match site_ref(site) {
        Some(s) => crate::sample::sample_slow(s, None, None) as c_int,
        None => 0,
    }
}

/// The slow path of `invite_sample`: `countdowns` is the address of the calling thread's
/// `invite_countdowns`, which the runtime points at the thread's countdowns.
///
/// # Safety
/// `site` as for `invite_sample_slow`; `countdowns` is the address of the calling thread's
/// `invite_countdowns` thread-local (or null).
#[no_mangle]
pub unsafe extern "C" fn invite_sample_slow_tls(
    site: *mut Site,
    countdowns: *mut *const i64,
) -> c_int {
    let c_var = (!countdowns.is_null()).then_some(crate::counts::CVar(countdowns as usize));
    match site_ref(site) {
        Some(s) => crate::sample::sample_slow(s, None, c_var) as c_int,
        None => 0,
    }
}

/// # Safety
/// As `invite_sample_slow`.
#[no_mangle]
pub unsafe extern "C" fn invite_pod_enter(site: *mut Site) -> c_int {
    match site_ref(site) {
        Some(s) => {
            let in_pod = snapshot::enter_site(s, None);
            if in_pod {
                crate::pod::begin_test(false);
            }
            in_pod as c_int
        }
        None => 0,
    }
}

fn site_ref(site: *mut Site) -> Option<&'static Site> {
    // SAFETY: generated code passes the address of a static invite_site, whose layout is Site's
    // (#[repr(C)]) and which lives for the whole program; all mutation goes through atomics.
    unsafe { site.cast_const().as_ref() }
}

#[no_mangle]
pub extern "C" fn invite_pod_exit(passed: c_int) -> ! {
    if crate::runtime::in_pod() {
        crate::pod::end_test(passed != 0, None);
    }
    // Not in a pod: a wrapper reached this without a pod (cannot happen with generated code).
    crate::sys::exit_now(if passed != 0 { 0 } else { 1 })
}

#[no_mangle]
pub extern "C" fn invite_in_pod() -> c_int {
    crate::runtime::in_pod() as c_int
}
