//! The watcher's side of lending, without root: an ask that reaches the watcher before the host
//! has registered its waiter (a waiter whose turn came at once) is kept for it.

use super::*;

#[test]
fn an_ask_before_its_waiters_registration_is_kept_for_it() {
    // A real process for the waiter's pidfd; never a blank (no stock here: the lender is not
    // asked to serve).
    let mut waiter = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("sleep");
    let (lend_w, lend_r) = sys::seqpacket_pair().expect("lend socket");
    let (_reply_ours, reply_theirs) = sys::seqpacket_pair().expect("reply socket");
    let t = Ticket {
        slot: 7,
        key: Key::from_raw(0x5eed_0000_0007),
    };
    let mut msg = [0u8; 13];
    msg[0] = b'L';
    msg[1..5].copy_from_slice(&(t.slot as u32).to_le_bytes());
    msg[5..13].copy_from_slice(&t.key.raw().to_le_bytes());
    sys::send_fds(lend_w.as_fd(), &msg, &[reply_theirs.as_fd()]).expect("ask");
    let _ = sys::set_nonblock(lend_r.as_raw_fd());

    let mut lender = Lender::default();
    lender.read_asks(lend_r.as_fd());
    lender.take_in();
    assert!(lender.asks.is_empty(), "no waiter yet, so no ask matched");

    // The host, back from its fork, registers the waiter; the watcher's next round picks it up.
    assert!(register(waiter.id() as libc::pid_t, t, 1));
    lender.take_in();
    let _ = waiter.kill();
    let _ = waiter.wait();
    assert_eq!(
        lender.asks.len(),
        1,
        "the early ask is the registered waiter's (it was dropped, and the waiter waited 60 s \
         for a blank: journaled as an error)"
    );
    assert!(lender.early.is_empty());
}
