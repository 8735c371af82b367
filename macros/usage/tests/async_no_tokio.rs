//! Async tests without the runtime's `tokio` feature (this crate does not enable it), run in
//! real pods: the minimal executor polls the test on a thread of the pod and parks it until a
//! waker fires. Supported there: futures that need no reactor — woken from another thread (a
//! channel fed by a thread the test starts), woken at once (a yield), a failing async test
//! whose error becomes the message. (tokio's timers and sockets need the `tokio` feature.)

#[path = "common/journal.rs"]
mod journal;

use invite::in_vivo;
use journal::Expected;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

const CHILD: &str = "INVITE_MACROS_ASYNC_NO_TOKIO_CHILD";

/// A one-value channel: the receiver is a future woken by the sender's thread.
struct Slot<T> {
    value: Mutex<Option<T>>,
    waker: Mutex<Option<Waker>>,
}

struct Recv<T>(Arc<Slot<T>>);

impl<T> Future for Recv<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        match self.0.value.lock().unwrap().take() {
            Some(v) => Poll::Ready(v),
            None => Poll::Pending,
        }
    }
}

/// A value sent from a new thread after it slept a little, so the test must park and be woken.
fn from_a_thread<T: Send + 'static>(v: T) -> Recv<T> {
    let slot = Arc::new(Slot {
        value: Mutex::new(None),
        waker: Mutex::new(None),
    });
    let sender = slot.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        *sender.value.lock().unwrap() = Some(v);
        if let Some(w) = sender.waker.lock().unwrap().take() {
            w.wake();
        }
    });
    Recv(slot)
}

/// Pending once, waking itself at once.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

async fn sent_by_a_thread(x: u64) -> Result<(), String> {
    let got = from_a_thread(x).await;
    if got == 41 {
        Ok(())
    } else {
        Err(format!("received {got}, sent 41"))
    }
}

async fn after_a_yield(r: &u64) -> bool {
    YieldOnce(false).await;
    *r == 42
}

async fn fails_after_waiting(x: u64) -> Result<(), String> {
    let got = from_a_thread(x).await;
    Err(format!("{got} is not enough"))
}

#[in_vivo(pre = sent_by_a_thread, post = after_a_yield, pre = fails_after_waiting)]
fn bump(x: u64) -> u64 {
    x + 1
}

fn scenario() {
    assert_eq!(bump(41), 42);
}

journal::scenario_tests!(CHILD, scenario);

const EXPECTED: &[Expected] = &[
    ("bump", "sent_by_a_thread", "pre", "pass", None, 1),
    ("bump", "after_a_yield", "post", "pass", None, 1),
    (
        "bump",
        "fails_after_waiting",
        "pre",
        "fail",
        Some("41 is not enough"),
        1,
    ),
];

#[test]
fn async_tests_run_in_pods_without_tokio() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = journal::run_child_scenario(CHILD, dir.path());
    let want = journal::expected(EXPECTED, "async_no_tokio::", "");
    journal::assert_records(&journal, &want, "async_no_tokio.rs");
}
