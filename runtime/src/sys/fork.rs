//! The runtime's fork: its own atfork steps, never the program's.
//!
//! glibc's `fork` runs every `pthread_atfork` handler of the process. A program's prepare handler
//! may take a lock the forking thread already holds: jemalloc's takes every jemalloc mutex, and a
//! sampled jemalloc function can be running under one of them, so the host would wait for itself
//! for ever. The runtime therefore forks with `_Fork` (glibc 2.34 and later: the system call and
//! the thread's own fix-ups — its TID, its robust-mutex list —, no handler) and runs the handlers
//! the runtime registered ([`at_fork`], [`at_fork_child`]) itself, in glibc's order: prepare
//! handlers last-registered first, parent and child handlers first-registered first. They stay
//! registered with `pthread_atfork` too, for the program's own forks.
//!
//! What else glibc's `fork` does, only when the process has more than one thread: it takes
//! malloc's arena locks, the stdio list lock and the NSS lock before the fork, and resets them
//! and every `FILE`'s lock in the child, so that the child's `malloc` and `printf` never wait for
//! a thread that is not there. `_Fork` does none of it. The stdio steps go through functions
//! glibc exports, so the direct fork takes them too; malloc's and NSS's have no such entry
//! point. Without them, a child in a multithreaded process on glibc's malloc may find an arena
//! locked for ever (the runtime's own threads allocate too, and a warm pod frees what they
//! allocated). So by default (`INVITE_FORK=auto`, [`ForkVia`]) the direct fork is used where the
//! program's `malloc` is not glibc's, and glibc's `fork` elsewhere; a program on glibc's malloc
//! with a library whose handler takes a lock its instrumented code holds (jemalloc linked under a
//! prefix, as jemalloc's own tests link it) needs `INVITE_FORK=direct`.

use std::io;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Which side of a fork we are on.
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// Which fork the runtime's forks use (`INVITE_FORK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkVia {
    /// `Direct` where the program's `malloc` is not glibc's (an allocator of its own, with its
    /// own locks and atfork handlers: glibc's malloc resets protect nothing there), else `Libc`.
    Auto,
    /// `_Fork`, the runtime's own handlers and glibc's stdio steps: no handler of the program's.
    Direct,
    /// glibc's `fork`: every atfork handler of the program runs, and malloc's locks are reset.
    Libc,
}

const AUTO: u8 = 0;
const DIRECT: u8 = 1;
const LIBC: u8 = 2;
static VIA: AtomicU8 = AtomicU8::new(AUTO);

/// Set which fork every later fork of the runtime makes (once, when the runtime is built), and
/// look up now, outside any child, what that needs: `_Fork`, and whose `malloc` the program calls.
pub fn set_fork_via(via: ForkVia) {
    let v = match via {
        ForkVia::Auto => AUTO,
        ForkVia::Direct => DIRECT,
        ForkVia::Libc => LIBC,
    };
    VIA.store(v, Ordering::Relaxed);
    look_up_forks();
}

/// Look up what the runtime's forks need (`_Fork`, and whose `malloc` the program calls), once:
/// at load where testing is on, so that the first `ckpt()` does not.
pub fn look_up_forks() {
    let _ = underscore_fork();
    let _ = malloc_is_glibcs();
}

/// Fork the calling process: `_Fork` with the runtime's own handlers, or glibc's `fork`, as
/// `INVITE_FORK` says ([`ForkVia`], and the module's top).
///
/// # Safety
///
/// The child has only the calling thread. Whatever another thread of the parent held at the
/// fork (a lock, a half-updated structure) stays held or half-updated in the child for ever,
/// and so does what the calling thread itself held (the program's atfork handlers, which might
/// have made it consistent, do not run unless glibc's `fork` was chosen). The caller must make
/// sure the child touches none of it: either the process is single-threaded and held nothing,
/// or the child uses only async-signal-safe calls, C stdio, the runtime's lock-free state and
/// allocation, then ends with [`super::exit_now`] or `exec`. (Allocation in the child of the
/// direct fork may wait for ever on an allocator lock another thread held, or the calling thread
/// when the allocator is the instrumented code: a hang of that child, never of the parent.) A
/// child that goes on to run the host's own code (a pod's test) is that caller's documented
/// trade-off and must say so where it forks. The child also inherits every descriptor: the
/// caller closes what the child must not hold.
pub unsafe fn fork() -> io::Result<Forked> {
    let direct = match VIA.load(Ordering::Relaxed) {
        DIRECT => true,
        LIBC => false,
        _ => !malloc_is_glibcs(),
    };
    if direct {
        // SAFETY: the caller's obligation (above).
        unsafe { fork_direct() }
    } else {
        // SAFETY: the caller's obligation (above).
        unsafe { fork_libc() }
    }
}

/// Whether the program's `malloc` is glibc's own (not jemalloc, tcmalloc or another allocator
/// that replaces it), looked up once.
fn malloc_is_glibcs() -> bool {
    const UNKNOWN: u8 = 0;
    const GLIBC: u8 = 1;
    const OTHER: u8 = 2;
    static WHOSE: AtomicU8 = AtomicU8::new(UNKNOWN);
    let mut w = WHOSE.load(Ordering::Relaxed);
    if w == UNKNOWN {
        let (malloc, glibc) = (symbol(c"malloc"), symbol(c"__libc_malloc"));
        // Without the answer (a static glibc), glibc's fork keeps its locks safe.
        w = if malloc != 0 && glibc != 0 && malloc != glibc {
            OTHER
        } else {
            GLIBC
        };
        WHOSE.store(w, Ordering::Relaxed);
    }
    w == GLIBC
}

/// glibc's fork: runs every atfork handler, so malloc and stdio locks are reset in the child.
///
/// # Safety
///
/// As for [`fork`].
unsafe fn fork_libc() -> io::Result<Forked> {
    // SAFETY: fork itself has no memory-safety precondition; what the child may do afterwards
    // is this function's caller's obligation.
    let pid = unsafe { libc::fork() };
    forked(pid)
}

fn forked(pid: libc::pid_t) -> io::Result<Forked> {
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(p)),
    }
}

/// `_Fork` between the runtime's own handlers.
///
/// # Safety
///
/// As for [`fork`].
unsafe fn fork_direct() -> io::Result<Forked> {
    let Some(f) = underscore_fork() else {
        // SAFETY: the caller's obligation.
        return unsafe { fork_libc() };
    };
    let n = registered();
    for i in (0..n).rev() {
        run(&HANDLERS[i].prepare);
    }
    // SAFETY: glibc's own step of its fork, with the same pairing: unlocked in the parent,
    // reset in the child, below.
    unsafe { _IO_list_lock() };
    // SAFETY: `_Fork` has no memory-safety precondition; the child's obligations are the
    // caller's.
    let pid = unsafe { f() };
    // Before the handlers, which may make system calls of their own.
    let result = forked(pid);
    if pid == 0 {
        reset_stdio_locks();
    } else {
        // SAFETY: taken above by this thread.
        unsafe { _IO_list_unlock() };
    }
    for h in &HANDLERS[..n] {
        run(if pid == 0 { &h.child } else { &h.parent });
    }
    result
}

// glibc's stdio list, exported since glibc 2.2.5 for programs that walk it; its `fork` uses the
// same steps.
extern "C" {
    fn _IO_list_lock();
    fn _IO_list_unlock();
    fn _IO_list_resetlock();
    fn _IO_iter_begin() -> *mut libc::c_void;
    fn _IO_iter_end() -> *mut libc::c_void;
    fn _IO_iter_next(i: *mut libc::c_void) -> *mut libc::c_void;
    fn _IO_iter_file(i: *mut libc::c_void) -> *mut FilePrefix;
}

/// The start of glibc's `struct _IO_FILE` (bits/types/struct_FILE.h), up to its lock.
#[repr(C)]
struct FilePrefix {
    flags: libc::c_int,
    /// `_IO_read_ptr` to `_IO_save_end`.
    pointers: [*mut libc::c_char; 11],
    markers: *mut libc::c_void,
    chain: *mut libc::c_void,
    fileno: libc::c_int,
    flags2: libc::c_int,
    old_offset: libc::off_t,
    cur_column: libc::c_ushort,
    vtable_offset: libc::c_schar,
    shortbuf: [libc::c_char; 1],
    lock: *mut StdioLock,
}

// Where glibc's header puts it on 64-bit targets (`offsetof(FILE, _lock)`).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::offset_of!(FilePrefix, lock) == 136);

/// glibc's `_IO_lock_t`: a recursive lock, all zeros when free.
#[repr(C)]
struct StdioLock {
    lock: libc::c_int,
    cnt: libc::c_int,
    owner: *mut libc::c_void,
}

/// A stream that does its own locking (`__fsetlocking(FSETLOCKING_BYCALLER)`) is not reset.
const IO_USER_LOCK: libc::c_int = 0x8000;

/// In the child of a direct fork, as glibc's fork does: the stdio list's lock, taken before the
/// fork, and every stream's lock, which a thread that is not in the child may have held, are
/// free again (the calling thread is the child's only one).
fn reset_stdio_locks() {
    // SAFETY: the child's only thread walks glibc's list of streams with glibc's own iterator
    // while holding the list's lock (taken before the fork); each `FILE` starts with the public
    // prefix above, and a stream without IO_USER_LOCK has a valid `_lock`, which glibc's fork
    // sets to its initial value the same way.
    unsafe {
        let end = _IO_iter_end();
        let mut i = _IO_iter_begin();
        while i != end {
            let f = _IO_iter_file(i);
            if (*f).flags & IO_USER_LOCK == 0 && !(*f).lock.is_null() {
                (*f).lock.write(StdioLock {
                    lock: 0,
                    cnt: 0,
                    owner: std::ptr::null_mut(),
                });
            }
            i = _IO_iter_next(i);
        }
        _IO_list_resetlock();
    }
}

/// The runtime's atfork handlers, in the order they were registered.
struct Handlers {
    prepare: AtomicUsize,
    parent: AtomicUsize,
    child: AtomicUsize,
    /// Written in full: a fork may run it.
    ready: AtomicUsize,
}

const MAX_HANDLERS: usize = 16;
#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Handlers = Handlers {
    prepare: AtomicUsize::new(0),
    parent: AtomicUsize::new(0),
    child: AtomicUsize::new(0),
    ready: AtomicUsize::new(0),
};
static HANDLERS: [Handlers; MAX_HANDLERS] = [EMPTY; MAX_HANDLERS];
static RESERVED: AtomicUsize = AtomicUsize::new(0);

/// How many leading entries of `HANDLERS` are complete.
fn registered() -> usize {
    let n = RESERVED.load(Ordering::Acquire).min(MAX_HANDLERS);
    HANDLERS[..n]
        .iter()
        .take_while(|h| h.ready.load(Ordering::Acquire) != 0)
        .count()
}

fn run(slot: &AtomicUsize) {
    let f = slot.load(Ordering::Relaxed);
    if f != 0 {
        // SAFETY: only `register` stores here, and only `extern "C" fn()` pointers.
        let f: extern "C" fn() = unsafe { std::mem::transmute::<usize, extern "C" fn()>(f) };
        f();
    }
}

fn register(
    prepare: Option<extern "C" fn()>,
    parent: Option<extern "C" fn()>,
    child: extern "C" fn(),
) {
    let i = RESERVED.fetch_add(1, Ordering::AcqRel);
    // A fixed handful of runtime modules register one each.
    assert!(
        i < MAX_HANDLERS,
        "more than {MAX_HANDLERS} runtime atfork handlers"
    );
    let h = &HANDLERS[i];
    h.prepare
        .store(prepare.map_or(0, |f| f as usize), Ordering::Relaxed);
    h.parent
        .store(parent.map_or(0, |f| f as usize), Ordering::Relaxed);
    h.child.store(child as usize, Ordering::Relaxed);
    h.ready.store(1, Ordering::Release);
}

/// Run `prepare` before every fork of this process, and `parent` and `child` after it in each
/// (`pthread_atfork`, and the runtime's own forks, which run no other handler).
///
/// # Safety
///
/// As for [`at_fork_child`]: each must be async-signal-safe (atomics, system calls; no
/// allocation, no lock), `prepare` included (a fork may come from a signal handler).
pub unsafe fn at_fork(prepare: extern "C" fn(), parent: extern "C" fn(), child: extern "C" fn()) {
    // SAFETY: registering handlers is always sound; what they do is the caller's obligation.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    register(Some(prepare), Some(parent), child);
}

/// Run `child` in the child of every fork of this process (`pthread_atfork`, and the runtime's
/// own forks).
///
/// # Safety
///
/// `child` runs in the child of any fork, whatever the other threads of the parent held: it
/// must be async-signal-safe (atomic stores, system calls; no allocation, no lock).
pub unsafe fn at_fork_child(child: extern "C" fn()) {
    // SAFETY: registering a handler is always sound; what it does is the caller's obligation.
    unsafe { libc::pthread_atfork(None, None, Some(child)) };
    register(None, None, child);
}

type UnderscoreFork = unsafe extern "C" fn() -> libc::pid_t;

/// glibc's `_Fork`, looked up once (absent before glibc 2.34: then every fork is glibc's).
fn underscore_fork() -> Option<UnderscoreFork> {
    const UNKNOWN: usize = 1;
    static FORK: AtomicUsize = AtomicUsize::new(UNKNOWN);
    let mut f = FORK.load(Ordering::Relaxed);
    if f == UNKNOWN {
        f = symbol(c"_Fork");
        FORK.store(f, Ordering::Relaxed);
    }
    // SAFETY: a non-null address dlsym gave for `_Fork`, whose type this is.
    (f != 0).then(|| unsafe { std::mem::transmute::<usize, UnderscoreFork>(f) })
}

/// The address the dynamic linker gives `name` for the whole process (0: none).
fn symbol(name: &std::ffi::CStr) -> usize {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
}

#[cfg(test)]
#[path = "fork_tests.rs"]
mod tests;
