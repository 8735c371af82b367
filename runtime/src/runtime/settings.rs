//! What the runtime reads of the environment, once: the `INVITE` switch (read in place, so an
//! instrumented call with testing off does nothing else), the full configuration, the working
//! directory and time at start-up, and the journal's check at load.

use crate::config::Config;
use crate::journal;
use crate::sys;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;

static START_CWD: OnceLock<PathBuf> = OnceLock::new();
pub(super) static SETTINGS: OnceLock<Option<Config>> = OnceLock::new();
static READING: AtomicBool = AtomicBool::new(false);
pub(super) static INITIALIZING: AtomicBool = AtomicBool::new(false);
static SWITCH: AtomicU8 = AtomicU8::new(0);
const SWITCH_OFF: u8 = 1;
const SWITCH_ON: u8 = 2;
static START_NS: OnceLock<u64> = OnceLock::new();

/// At start-up: remember the working directory (default journal and pod paths are relative to
/// it).
pub fn capture_start_cwd() {
    START_NS.get_or_init(sys::monotonic_ns);
    if let Ok(cwd) = std::env::current_dir() {
        let _ = START_CWD.set(cwd);
    }
}

/// When the process started (the library's load, or the runtime's first use), for the budget's
/// elapsed time.
pub fn started_ns() -> u64 {
    *START_NS.get_or_init(sys::monotonic_ns)
}

/// The journal's path passed its check at load (`check_early`).
pub(super) static JOURNAL_OK_AT_LOAD: AtomicBool = AtomicBool::new(false);

/// At load, testing on: what the runtime's building would check or look up on the first
/// `ckpt()`'s pause. The journal's path is checked (a failure says nothing now: the building
/// checks again and says why, as it did), and which fork the runtime's forks use is looked up.
/// A journal usable at load that is not by the first write turns testing off then
/// (`journal_file`), with the same message.
pub fn check_early() {
    if let Some(Some(c)) = SETTINGS.get() {
        if c.enabled && journal::check(&c.journal).is_ok() {
            JOURNAL_OK_AT_LOAD.store(true, Ordering::Relaxed);
        }
    }
    sys::look_up_forks();
}

/// `INVITE` read once, in place: false for `off` (or `0`). With testing off an instrumented call
/// does nothing else, ever: no allocation, lock or system call (a bad value is reported by the
/// full configuration, read only when testing is on).
pub fn switched_on() -> bool {
    match SWITCH.load(Ordering::Relaxed) {
        SWITCH_ON => true,
        SWITCH_OFF => false,
        _ => {
            let off = sys::with_secure_env(c"INVITE", |v| matches!(v, Some(b"off" | b"0")));
            SWITCH.store(if off { SWITCH_OFF } else { SWITCH_ON }, Ordering::Relaxed);
            !off
        }
    }
}

/// The configuration, read once from the environment (`None` in it: testing is off, the reason
/// printed). The outer `None`: not read yet and being read right now (by the library's
/// constructor, whose allocations may call instrumented functions), so the caller must decide
/// without it. Read here, allocating, only when no constructor did it at load time.
pub fn settings() -> Option<&'static Option<Config>> {
    if let Some(s) = SETTINGS.get() {
        return Some(s);
    }
    if READING.swap(true, Ordering::Acquire) {
        return None;
    }
    Some(SETTINGS.get_or_init(read_settings))
}

/// Whether the runtime is being built (a call sampled meanwhile is not tested: building it
/// allocates, and the allocator may be what called).
pub fn initializing() -> bool {
    INITIALIZING.load(Ordering::Relaxed)
}

pub(super) fn read_settings() -> Option<Config> {
    READING.store(true, Ordering::Relaxed);
    if sys::set_id() {
        // A setuid or setgid program: its working directory is its caller's, where it would
        // create files the caller cannot remove, and secure_getenv hides every INVITE_*
        // variable, so nothing it may trust says where a journal may go: testing is off.
        eprintln!(
            "invite: a setuid/setgid process reads no INVITE_* variable and writes no \
             journal: in vivo testing is off"
        );
        return None;
    }
    if crate::config::under_valgrind(std::env::var_os("LD_PRELOAD").as_deref()) {
        eprintln!(
            "invite: running under valgrind, which does not emulate what a pod needs \
             (pidfd_open, namespaces, mounts): in vivo testing is off"
        );
        return None;
    }
    let cwd = START_CWD
        .get()
        .cloned()
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    match Config::from_env(sys::secure_getenv_os, &cwd) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}
