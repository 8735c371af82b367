//! What a test returned, told apart at compile time: the code `#[in_vivo]` generates asks these
//! types, by method lookup on `&Probe<T>` (autoref specialization), whether the test's value is
//! a future (an `async fn` test: run it on the pod's executor) and whether its error type has
//! `Display` (the journal's message is then `to_string()`, else `Debug`).
//!
//! The generated code, for a test value `t`:
//!
//! ```text
//! probe(&t).__invite_kind().run(t, |out| probe(&out).__invite_verdict().verdict(out))
//! ```
//!
//! Method lookup tries `&Probe<T>` before `&&Probe<T>`, so the impl on `Probe<T>` with a bound
//! (`T: Future`, `T = Result<_, E: Display>`) wins when the bound holds, and the unbounded impl
//! on `&Probe<T>` is the fallback. The same expression is emitted with the `enabled` feature off
//! (never run), so a test is accepted or rejected the same way in both builds.

use crate::test_api::TestResult;
use std::fmt::Display;
use std::future::Future;
use std::marker::PhantomData;

/// A test's verdict: `Ok(())` passes, `Err(message)` fails.
pub struct Verdict(Result<(), Option<String>>);

impl TestResult for Verdict {
    fn into_verdict(self) -> Result<(), Option<String>> {
        self.0
    }
}

/// A type, asked about at compile time.
pub struct Probe<T>(PhantomData<T>);

/// The probe of `value`'s type, by reference: the receiver method lookup starts from.
pub fn probe<T>(_value: &T) -> &Probe<T> {
    &Probe(PhantomData)
}

/// The test returned a future: it runs on an executor of the pod's own (`executor`).
pub struct FutureKind;
/// The test returned its result.
pub struct ValueKind;

/// Selected when the test's value is a future.
pub trait ViaFuture {
    /// The kind of the test's value.
    fn __invite_kind(&self) -> FutureKind {
        FutureKind
    }
}
impl<F: Future> ViaFuture for Probe<F> {}

/// The fallback: the test's value is its result.
pub trait ViaValue {
    /// The kind of the test's value.
    fn __invite_kind(&self) -> ValueKind {
        ValueKind
    }
}
impl<T> ViaValue for &Probe<T> {}

impl FutureKind {
    /// Run the test's future to completion in the pod and decide on its output.
    pub fn run<F, D>(self, test: F, decide: D) -> Verdict
    where
        F: Future + Send,
        D: FnOnce(F::Output) -> Verdict + Send,
    {
        match crate::executor::run(async move { decide(test.await) }) {
            Ok(v) => v,
            Err(e) => Verdict(Err(Some(e))),
        }
    }
}

impl ValueKind {
    /// Decide on the test's value.
    pub fn run<T, D: FnOnce(T) -> Verdict>(self, value: T, decide: D) -> Verdict {
        decide(value)
    }
}

/// `Err(e)` of a `Result` whose error type has `Display`: the message is `e.to_string()`.
pub struct DisplayKind;
/// Any other `TestResult`: its own verdict (`Debug` for errors).
pub struct ResultKind;

/// Selected when the result is a `Result` whose error type has `Display`.
pub trait ViaDisplay {
    /// How the result becomes a verdict.
    fn __invite_verdict(&self) -> DisplayKind {
        DisplayKind
    }
}
impl<T, E: Display> ViaDisplay for Probe<Result<T, E>> {}

/// The fallback: the result's own `TestResult` verdict.
pub trait ViaTestResult {
    /// How the result becomes a verdict.
    fn __invite_verdict(&self) -> ResultKind {
        ResultKind
    }
}
impl<T> ViaTestResult for &Probe<T> {}

impl DisplayKind {
    /// Pass on `Ok`; fail on `Err(e)` with `e.to_string()`.
    pub fn verdict<T, E: Display>(self, result: Result<T, E>) -> Verdict {
        Verdict(result.map(|_| ()).map_err(|e| Some(e.to_string())))
    }
}

impl ResultKind {
    /// The result's own verdict.
    pub fn verdict<R: TestResult>(self, result: R) -> Verdict {
        Verdict(result.into_verdict())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<R>(r: R) -> Option<String>
    where
        for<'a> &'a Probe<R>: ViaTestResult,
        R: TestResult,
    {
        ResultKind.verdict(r).0.err().flatten()
    }

    #[test]
    fn display_wins_over_debug_for_errors_that_have_it() {
        let r: Result<(), String> = Err("two\nlines".to_string());
        let v = probe(&r).__invite_verdict().verdict(r);
        assert_eq!(v.0, Err(Some("two\nlines".to_string())));
        #[derive(Debug)]
        struct OnlyDebug;
        let r: Result<(), OnlyDebug> = Err(OnlyDebug);
        let v = probe(&r).__invite_verdict().verdict(r);
        assert_eq!(v.0, Err(Some("OnlyDebug".to_string())));
        assert_eq!(message(false).as_deref(), Some("test returned false"));
    }

    #[test]
    fn values_are_not_futures() {
        let v = probe(&true)
            .__invite_kind()
            .run(true, |b| ResultKind.verdict(b));
        assert_eq!(v.0, Ok(()));
    }
}
