use super::*;
use std::sync::atomic::{AtomicI64, Ordering};

/// A page shared with a child: once made private and zero in place, neither side's stores reach
/// the other, and the value reads as zero (what a pod does with the runtime's page).
#[test]
fn a_shared_page_made_private_and_zero_no_longer_reaches_the_other_side() {
    let page: &'static AtomicI64 = map_zeroed_shared().unwrap();
    page.store(5, Ordering::Relaxed);
    let (go_r, go_w) = super::super::pipe().unwrap();
    // SAFETY: the child only uses system calls and atomics, then exits with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // The child waits for the parent's page to be private (or the parent to give up: the
        // pipe's end), then writes the shared one.
        drop(go_w);
        let mut b = [0u8; 1];
        let _ = super::super::read(go_r.as_raw_fd(), &mut b);
        page.store(7, Ordering::Relaxed);
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(0) };
    }
    drop(go_r);
    let addr = page as *const AtomicI64 as usize;
    // SAFETY: a whole page of ours holding one atomic integer; the child has its own copy of the
    // address space, and no other thread of this test uses the page.
    let made = unsafe { zero_private(addr, page_size()) };
    let after = page.load(Ordering::Relaxed);
    page.store(9, Ordering::Relaxed);
    drop(go_w); // the child goes on
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    made.unwrap();
    assert_eq!(after, 0, "the page kept its value");
    assert_eq!(
        page.load(Ordering::Relaxed),
        9,
        "the child's store reached the parent"
    );
}
