use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

/// A block of `l` filled with `byte`, checked and freed by `check_and_free`.
fn filled(l: Layout, byte: u8) -> *mut u8 {
    let p = alloc(l);
    assert!(!p.is_null() && p as usize % l.align() == 0, "{l:?}: {p:?}");
    // SAFETY: a fresh block of `l.size()` bytes.
    unsafe { ptr::write_bytes(p, byte, l.size()) };
    p
}

fn check_and_free(p: *mut u8, l: Layout, byte: u8) {
    // SAFETY: a block `filled` made with `l`, still ours.
    let bytes = unsafe { std::slice::from_raw_parts(p, l.size()) };
    assert!(bytes.iter().all(|&b| b == byte), "{l:?}: overwritten");
    // SAFETY: as above, freed once.
    unsafe { dealloc(p, l) };
}

/// Small xorshift, so that every thread has its own sequence of sizes.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Many allocations and frees of random sizes; each block holds its own byte until it is
/// freed: a block handed out twice, or a free list broken, shows as an overwritten block.
fn churn(seed: u64, rounds: usize) {
    let mut s = seed;
    let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
    for _ in 0..rounds {
        let r = next(&mut s);
        if live.len() > 64 || (r % 3 == 0 && !live.is_empty()) {
            let (p, l, b) = live.swap_remove((r as usize / 3) % live.len());
            check_and_free(p, l, b);
        } else {
            let size = match r % 16 {
                0 => 70_000 + (r as usize % 200_000),
                _ => 1 + (r as usize >> 8) % 3000,
            };
            let l = layout(size, 1 << ((r >> 40) % 6));
            live.push((filled(l, r as u8), l, r as u8));
        }
    }
    for (p, l, b) in live {
        check_and_free(p, l, b);
    }
}

#[test]
fn blocks_are_aligned_kept_and_reused() {
    for (size, align) in [
        (1, 1),
        (24, 8),
        (100, 64),
        (5000, 4096),
        (65536, 16),
        (70_000, 8),
    ] {
        let l = layout(size, align);
        let p = filled(l, 7);
        check_and_free(p, l, 7);
    }
    let big = layout(300_000, 1 << 20);
    check_and_free(filled(big, 3), big, 3);
    // Four threads at once.
    let threads: Vec<_> = (1..=4u64)
        .map(|t| std::thread::spawn(move || churn(t.wrapping_mul(0x9E37_79B9_7F4A_7C15), 20_000)))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // A freed block is the next one of its class (no other test uses this class).
    let l = layout(12_000, 8);
    let p = alloc(l);
    // SAFETY: just made, freed once.
    unsafe { dealloc(p, l) };
    assert_eq!(alloc(l), p);
}

#[test]
fn realloc_keeps_the_contents() {
    let mut l = layout(10, 8);
    let mut p = filled(l, 9);
    for size in [16, 200, 40_000, 100_000, 1 << 20, 300, 5] {
        // SAFETY: `p` is our block of `l`.
        p = unsafe { realloc(p, l, size) };
        assert!(!p.is_null());
        let kept = l.size().min(size);
        // SAFETY: the first `kept` bytes were copied; the rest is ours to fill.
        unsafe {
            assert!(std::slice::from_raw_parts(p, kept).iter().all(|&b| b == 9));
            ptr::write_bytes(p, 9, size);
        }
        l = layout(size, 8);
    }
    check_and_free(p, l, 9);
}

/// The child of a fork taken while other threads allocate and free can allocate and free: no
/// lock left held by a thread it does not have, no list left broken.
#[test]
fn a_fork_amid_other_threads_allocations_leaves_a_usable_heap() {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (1..=2u64)
        .map(|t| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seed = t;
                while !stop.load(Ordering::Relaxed) {
                    churn(next(&mut seed) | 1, 500);
                }
            })
        })
        .collect();
    for i in 0..50u64 {
        // SAFETY: the child only runs `churn` (this module's heap: no lock) and `_exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            churn(i + 1, 2000);
            // SAFETY: ends the child without running the parent's exit handlers.
            unsafe { libc::_exit(0) };
        }
        assert!(pid > 0);
        let mut status = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            // SAFETY: waits for our own child, without blocking.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "child {i} never ended"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child {i}: {status}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}
