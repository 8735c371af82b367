//! The C library's allocator: never the program's `malloc`. Pages of the runtime's own: in the
//! host a heap with reuse (`pool`), in the copy of the host that a sampled call forks a bump of
//! its own.
//!
//! A sampled function may run inside the program's allocator with its lock held (jemalloc calls
//! instrumented functions under its mutexes). Any of the runtime's code that called that
//! allocator meanwhile would wait for the call: in the host, the call's own way to the fork and
//! the runtime's thread (which lends blanks to waiting copies, makes new ones and writes records
//! while the call may be waiting for a blank); in the fork's copy — a cold pod's supervisor, a
//! pod's setup, a warm test entering its blank, the runtime's work after the test —, which
//! inherits the lock held by a thread it no longer has, for ever. So the runtime's Rust code
//! allocates from pages of its own everywhere. The host's heap (`pool`) takes no lock, so a fork
//! at any instant leaves its child a heap it can use. Once a copy has called [`use_own_pages`],
//! it allocates from a mapping of its own instead (a bump pointer: these processes live as long
//! as one test; the mapping is made by its first allocation, before the pod's limits, which its
//! children inherit), and frees nothing (the host's blocks included: the copy ends soon and its
//! memory with it).
//!
//! Not everything of the runtime is Rust: a `libc` function that allocates (`opendir`,
//! `pthread_create`'s thread-local storage, `__cxa_thread_atexit_impl`) still calls the
//! program's `malloc`, and the runtime keeps them off those paths. The program's own code in the
//! copy (the test) calls the program's `malloc` too: a test that allocates under a lock its call
//! held at the fork is a deadlock, named as one (`deadlock`). Rust programs link the `invite`
//! crate, not the C library, and keep their own global allocator: this one is the C library's
//! only (`runtime/clib`).

use super::pool;
use std::alloc::{GlobalAlloc, Layout};
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

/// The C library's global allocator (`runtime/clib`): the runtime's heap (`pool`), or the copy's
/// own pages after `use_own_pages`.
pub struct CHeap;

// SAFETY: every block handed out is either the pool's (freed and grown by the pool) or from the
// own pages (a fresh, suitably aligned range of a live mapping, never handed out twice); blocks
// are told apart by address, and after `use_own_pages` no block is given back to the pool (only
// leaked).
unsafe impl GlobalAlloc for CHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if on_own_pages() {
            return own_alloc(layout);
        }
        pool::alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if on_own_pages() {
            // Anonymous pages are zero, and a bump never hands a byte out twice.
            return own_alloc(layout);
        }
        pool::alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if on_own_pages() || is_own(p) {
            return;
        }
        // SAFETY: `p` came from the pool with `layout` (the caller's contract).
        unsafe { pool::dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !on_own_pages() && !is_own(p) {
            // SAFETY: `p` came from the pool with `layout`, and `new_size` is valid for it (the
            // caller's contract).
            return unsafe { pool::realloc(p, layout, new_size) };
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
