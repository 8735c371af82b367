//! Async tests in the pod: a fresh executor of the pod's own, on a fresh thread.
//!
//! The thread matters: the pod is a fork of whichever host thread sampled the site, often a
//! worker of the host's async runtime, whose thread-local state says "inside a runtime" (tokio
//! then refuses to start another, and the host's own runtime has no threads or driver in the
//! pod). A new thread has none of that. The future is polled there and the pod's first thread
//! waits for it; a panic in the test is carried back so it fails the test with its message.
//!
//! With the `tokio` feature the future runs on a current-thread tokio runtime with every driver
//! the application's tokio has compiled in (timers, I/O, signals). Without it, a minimal
//! `block_on` polls the future and parks the thread until woken: futures that need no reactor
//! (channels, locks, `join`, `futures`' combinators) work; tokio's timers and sockets panic with
//! tokio's "no reactor running", which fails the test with that message.

use std::future::Future;

/// Run `test` to completion on a new thread with a fresh executor; `Err` says why it could not
/// start.
pub fn run<T: Send, F: Future<Output = T> + Send>(test: F) -> Result<T, String> {
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("invite-test".into())
            .spawn_scoped(s, move || block_on(test))
            .map_err(|e| format!("cannot start the async test's thread in the pod: {e}"))?;
        match handle.join() {
            Ok(out) => out,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    })
}

#[cfg(feature = "tokio")]
fn block_on<F: Future>(test: F) -> Result<F::Output, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime in the pod: {e}"))?;
    let out = rt.block_on(test);
    // Blocking tasks the test left running must not hold the pod's verdict back.
    rt.shutdown_background();
    Ok(out)
}

#[cfg(not(feature = "tokio"))]
fn block_on<F: Future>(test: F) -> Result<F::Output, String> {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut test = std::pin::pin!(test);
    loop {
        if let Poll::Ready(out) = test.as_mut().poll(&mut cx) {
            return Ok(out);
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_future_woken_from_another_thread_completes() {
        let (tx, rx) = std::sync::mpsc::channel::<u32>();
        let out = super::run(async move {
            let h = std::thread::spawn(move || tx.send(7).unwrap());
            h.join().unwrap();
            rx.recv().unwrap() + 1
        });
        assert_eq!(out, Ok(8));
    }

    #[test]
    fn a_panic_comes_back_with_its_message() {
        let r = std::panic::catch_unwind(|| super::run(async { panic!("boom") }));
        let payload = r.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    }
}
