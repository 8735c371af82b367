//! Issue 15.5 for Rust sites: an `#[in_vivo]` function allocates nothing on its way to "not this
//! time", its first call included, with testing on; and nothing at all with `INVITE=off`. A
//! counting global allocator watches the calls, in a child process started with the environment
//! under test (the runtime reads it when the program loads).

use invite::in_vivo;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

fn seen() {
    if WATCHING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; counting touches no memory it
// returns.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        seen();
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        seen();
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        seen();
        // SAFETY: as for `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn positive(x: &u64) -> bool {
    *x > 0
}

fn doubled(x: &u64, r: &u64) -> bool {
    *r == 2 * x
}

#[in_vivo(pre = positive, post = doubled, probability = 0.000000001)]
fn double(x: &u64) -> u64 {
    2 * x
}

const CHILD: &str = "INVITE_MACROS_INERT_CHILD";

#[test]
fn child_calls() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    WATCHING.with(|w| w.set(true));
    let mut sum = 0;
    for i in 1..=1000u64 {
        sum += double(&i);
    }
    WATCHING.with(|w| w.set(false));
    println!("allocations: {}", ALLOCATIONS.load(Ordering::Relaxed));
    assert_eq!(sum, 1000 * 1001);
}

fn allocations_with(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    for (k, _) in std::env::vars() {
        if k.starts_with("INVITE") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(["--exact", "child_calls", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("INVITE_JOURNAL", dir.path().join("invite.jsonl"))
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn rust_sites_never_allocate_when_off() {
    let out = allocations_with(&[("INVITE", "off")]);
    assert!(out.contains("allocations: 0\n"), "{out}");
}

#[test]
fn rust_sites_never_allocate_up_to_not_this_time() {
    let out = allocations_with(&[("INVITE_SEED", "7"), ("INVITE_MAX_OVERHEAD", "off")]);
    assert!(out.contains("allocations: 0\n"), "{out}");
}
