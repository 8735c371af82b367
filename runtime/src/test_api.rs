//! What runs a test inside a pod and how it ends: the Rust side of the call-site API.
//!
//! `enter` starts a pod for a sampled site (returning `true` in the pod); `run_test` runs the test
//! body there, turns its result or panic into an outcome, reports it to the supervisor and exits
//! the pod. A test that calls `exit()` itself never reports, and the supervisor records `error`.

use crate::site::Site;
use std::fmt::Debug;

/// What a test returned, as pass or fail-with-message: `()` passes (unless the test panics),
/// `bool` passes when `true`, `Result` when `Ok`.
///
/// ```
/// use invite::TestResult;
/// assert_eq!(true.into_verdict(), Ok(()));
/// assert!(Err::<(), _>("balance below zero").into_verdict().is_err());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a test result",
    label = "this test returns `{Self}`",
    note = "an in vivo test returns `()`, `bool` or `Result<_, E>` (E: Display or Debug), or is an \
            `async fn` returning one of them"
)]
pub trait TestResult {
    /// `Ok(())` passes; `Err(message)` fails.
    fn into_verdict(self) -> Result<(), Option<String>>;
}

impl TestResult for () {
    fn into_verdict(self) -> Result<(), Option<String>> {
        Ok(())
    }
}

impl TestResult for bool {
    fn into_verdict(self) -> Result<(), Option<String>> {
        if self {
            Ok(())
        } else {
            Err(Some("test returned false".to_string()))
        }
    }
}

impl<T, E: Debug> TestResult for Result<T, E> {
    fn into_verdict(self) -> Result<(), Option<String>> {
        match self {
            Ok(_) => Ok(()),
            Err(e) => Err(Some(format!("{e:?}"))),
        }
    }
}

/// Start a pod for a site whose `sample()` returned true. Returns `true` in the pod, `false` in
/// the original (also when no pod could be started; that is journaled, never fatal). `owner` is
/// the `Self` type's name for methods, so the journal names `module::Type::method`.
pub fn enter(site: &'static Site, owner: Option<&'static str>) -> bool {
    let in_pod = crate::snapshot::enter_site(site, owner);
    if in_pod {
        crate::pod::begin_test(true);
    }
    in_pod
}

/// Run a test body in the pod and end the pod with its outcome. Never returns.
pub fn run_test<T: TestResult, F: FnOnce() -> T>(f: F) -> ! {
    let verdict = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.into_verdict(),
        Err(payload) => Err(Some(panic_message(&*payload))),
    };
    match verdict {
        Ok(()) => crate::pod::end_test(true, None),
        Err(msg) => crate::pod::end_test(false, msg.as_deref()),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}

/// End the current in vivo test as `fail` with a message. Outside a pod it prints the message to
/// stderr and returns, so the host keeps running.
///
/// ```
/// fn no_overdraft(balance: i64) {
///     if balance < 0 {
///         invite::fail(&format!("balance {balance}"));
///     }
/// }
/// no_overdraft(10);
/// ```
pub fn fail(message: &str) {
    if crate::runtime::in_pod() {
        crate::pod::end_test(false, Some(message));
    }
    eprintln!("invite: fail outside a pod: {message}");
}

/// True inside a pod.
///
/// ```
/// if !invite::in_pod() {
///     // The host: for example, write to a real socket that a pod must not touch.
/// }
/// ```
pub fn in_pod() -> bool {
    crate::runtime::in_pod()
}
