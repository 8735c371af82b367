//! The ledger's page: shared with the supervisors (`MAP_SHARED`), made at start-up where pods will
//! be warm so the first `ckpt()` does not map and fault it in.

use crate::ledger::Ledger;
use crate::sys;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// Whether the current ledger is a mapping of its own (not the fallback box).
pub static SHARED_MAPPED: AtomicBool = AtomicBool::new(false);

/// The host's ledger page, made at start-up where pods will be warm (`start::prepare`) and taken
/// by the runtime when it is built.
pub static PREMADE_LEDGER: AtomicPtr<Ledger> = AtomicPtr::new(std::ptr::null_mut());

/// At start-up: the ledger's page, mapped and touched now rather than on the first `ckpt()`'s
/// pause. A mapping of the process's own, no descriptor.
pub fn premake_ledger() {
    let page = new_ledger();
    // SAFETY: a live, never-unmapped page (or box) just made, holding a valid `Ledger`.
    let _ = unsafe { &*page }.running(); // the page's first fault, here
    PREMADE_LEDGER.store(page, Ordering::Release);
}

pub fn new_ledger() -> *mut Ledger {
    match sys::map_shared_page(sys::page_size()) {
        Ok(p) => {
            SHARED_MAPPED.store(true, Ordering::Relaxed);
            p.cast()
        }
        // Without a shared page supervisors cannot report back; a private page keeps the
        // counters coherent within the host at least.
        Err(_) => {
            SHARED_MAPPED.store(false, Ordering::Relaxed);
            Box::into_raw(Box::new(Ledger::new()))
        }
    }
}
