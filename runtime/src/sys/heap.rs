//! The C library's allocator: the program's `malloc` everywhere, except in the copy of the host
//! that a sampled call forks, which allocates from pages of its own.
//!
//! A sampled function may run inside the program's allocator with its lock held (jemalloc calls
//! instrumented functions under its mutexes). The host's path from the call to the fork
//! allocates nothing (`start::build_ahead`), but the fork's copy — a cold pod's supervisor, a
//! pod's setup, a warm test entering its blank, the runtime's work after the test — inherits
//! that lock held by a thread it no longer has: any `malloc` there would wait for ever. So, once
//! such a copy has called [`use_own_pages`], every allocation of the runtime's Rust code in it
//! takes memory from an anonymous mapping of its own (a bump pointer: these processes live as
//! long as one test), and frees nothing the program's allocator handed out before the fork
//! (freeing it would take the same lock; the copy ends soon and its memory with it).
//!
//! The program's own code in the copy (the test) still calls the program's `malloc`: a test that
//! allocates under a lock its call held at the fork is a deadlock, named as one (`deadlock`).
//! Rust programs link the `invite` crate, not the C library, and keep their own global
//! allocator: this one is the C library's only (`runtime/clib`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Address space reserved for a copy's own pages (committed only where touched), mapped by its
/// first allocation (before the pod's limits: its children inherit it).
const RESERVE: usize = 256 << 20;

/// Set in a fork's copy by `use_own_pages`: from then on, allocations are the copy's own.
static OWN: AtomicBool = AtomicBool::new(false);
/// The copy's mapping (0: none yet) and the next free byte in it.
static BASE: AtomicUsize = AtomicUsize::new(0);
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// In a copy forked by a sampled call (or `ckpt()`), right after the fork: the runtime's
/// allocations no longer go through the program's allocator. Async-signal-safe (a store); the
/// pages are mapped by the first allocation, and a copy's own copies (the test below a
/// supervisor) go on in theirs.
pub fn use_own_pages() {
    OWN.store(true, Ordering::Release);
}

/// Whether this process allocates from its own pages (a fork's copy, `use_own_pages`).
fn on_own_pages() -> bool {
    OWN.load(Ordering::Acquire)
}

/// `layout` from the copy's own pages: a bump, lock-free (a test may start threads that call the
/// runtime), never given back.
fn own_alloc(layout: Layout) -> *mut u8 {
    let mut base = BASE.load(Ordering::Acquire);
    if base == 0 {
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                RESERVE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return ptr::null_mut();
        }
        match BASE.compare_exchange(0, p as usize, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => base = p as usize,
            Err(other) => {
                // SAFETY: the mapping made just above, which no one else has seen.
                unsafe { libc::munmap(p, RESERVE) };
                base = other;
            }
        }
    }
    let mut next = NEXT.load(Ordering::Relaxed);
    loop {
        let start = (base + next).next_multiple_of(layout.align()) - base;
        let end = start + layout.size().max(1);
        if end > RESERVE {
            return ptr::null_mut();
        }
        match NEXT.compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return (base + start) as *mut u8,
            Err(now) => next = now,
        }
    }
}

/// Whether `p` is in the copy's own pages.
fn is_own(p: *mut u8) -> bool {
    let base = BASE.load(Ordering::Acquire);
    base != 0 && (p as usize).wrapping_sub(base) < RESERVE
}

/// The C library's global allocator (`runtime/clib`): `System` (the program's `malloc`), or the
/// copy's own pages after `use_own_pages`.
pub struct CHeap;

// SAFETY: every block handed out is either System's (freed and grown by System) or from the own
// pages (a fresh, suitably aligned range of a live mapping, never handed out twice); blocks are
// told apart by address, and blocks of the program's allocator are never given to System after
// `use_own_pages` (only leaked).
unsafe impl GlobalAlloc for CHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if on_own_pages() {
            return own_alloc(layout);
        }
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if on_own_pages() {
            // Anonymous pages are zero, and a bump never hands a byte out twice.
            return own_alloc(layout);
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if on_own_pages() || is_own(p) {
            return;
        }
        // SAFETY: `p` came from System with `layout` (the caller's contract).
        unsafe { System.dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !on_own_pages() && !is_own(p) {
            // SAFETY: `p` came from System with `layout` (the caller's contract).
            return unsafe { System.realloc(p, layout, new_size) };
        }
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        let q = own_alloc(new);
        if !q.is_null() {
            // SAFETY: `p` holds `layout.size()` bytes (the caller's contract), `q` at least
            // `new_size`, and they do not overlap (`q` is fresh).
            unsafe { ptr::copy_nonoverlapping(p, q, layout.size().min(new_size)) };
        }
        q
    }
}
