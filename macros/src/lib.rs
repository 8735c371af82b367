//! `#[invite::in_vivo]`: in vivo tests on Rust functions.
//!
//! Use it through the runtime, as `invite::in_vivo`; this crate only rewrites tokens and calls the
//! runtime's call-site API (`invite::__private`). The steps are one file each: `attr.rs` parses the
//! arguments into a struct, `expand.rs` generates the wrapped function; this file is the entry point.
//!
//! The attribute is documented on [`in_vivo`].

use proc_macro::TokenStream;
use quote::quote;

mod attr;
mod expand;

/// Run in vivo tests when this function is called.
///
/// # The attribute
///
/// ```text
/// #[invite::in_vivo(pre = path, post = path, probability = 0.01, timeout_ms = 500, outermost)]
/// ```
///
/// * `pre = path` — a test run before the call, in a pod, with the call's arguments. `test = path`
///   is the same thing, shorter. Give as many as you like; each is its own site.
/// * `post = path` — a test run after the call, in a pod, with the return value.
/// * `probability` — the chance that one call starts a given test, from 0 to 1. Default **0.01**.
///   At run time `INVITE_PROBABILITY` (every site) and `INVITE_RATES` (by function) override it.
/// * `timeout_ms` — the test's deadline; `0` or absent means the runtime's (`INVITE_TIMEOUT_MS`).
/// * `outermost` — sample only the thread's outermost call: a call made while the same thread is
///   already inside this function (recursion, or a call back through other functions) is not
///   tested, nor counted in the site's `calls`. Use it where the function re-enters itself under a
///   lock its thread holds (a pod's thread is not that lock's owner). Only such functions keep a
///   per-thread depth; not on an `async fn`, which may move between threads.
///
/// # What a test receives
///
/// A **pre** test has the function's parameter list, the receiver first as an ordinary parameter
/// (`&Self`, `&mut Self`, `Self`, `Box<Self>`, ...), and receives the call's arguments **by
/// value**. That is sound without `unsafe` and without `Clone`: the test runs in a pod, which owns a
/// private copy of the whole process and never returns, and the original call goes on with its own
/// arguments. A pre test may take an argument by value and consume it, or mutate through
/// `&mut Self`: the host never sees it. Generic parameters are inferred as at any call, so a test
/// may be generic itself, or name a type (`pre = check::<u8>`).
///
/// A **post** test receives `&R`, a reference to the return value (`&()` for functions that return
/// nothing), preceded by the receiver when the method takes `&self` or `&mut self` (by-value
/// receivers were consumed by the body). It may also take the function's shared-reference
/// parameters (`&T`, `&str`, `&[T]`; all of them, in order, up to eight) between the receiver and
/// `&R`, to compare the result with the input: for `fn scaled(&self, xs: &[u32], by: u32) -> Vec<u32>`
/// either `fn t(s: &Scale, r: &Vec<u32>)` or `fn t(s: &Scale, xs: &[u32], r: &Vec<u32>)`. The
/// shape is chosen by the test's number of parameters; one that fits neither is an error at the
/// test's path. A `&mut self` method whose return value borrows from
/// `self` cannot have a post test: both cannot be passed at once, and the borrow checker says so.
///
/// A test returns `()` (passes unless it panics), `bool` (`false` fails), or `Result<_, E>`
/// (`Err(e)` fails with `e`'s `Display` text as the journal's message when `E` has `Display`, its
/// `Debug` text otherwise). A panic fails the test with the panic message; `invite::fail("...")`
/// ends it as failed from anywhere. A test may be an `async fn` returning one of these: in the pod
/// its future runs to completion on a new thread with an executor of its own (a current-thread
/// tokio runtime with the runtime's `tokio` feature, else a minimal `block_on` for futures that
/// need no reactor); it must be `Send`. Pre tests of an `async fn` start at its first poll.
///
/// A test whose signature does not fit the function is a type error on the call, reported at the
/// test's path in the attribute. The test functions are type-checked the same way with the feature
/// on or off, so code that builds in one configuration builds in the other.
///
/// # Examples
///
/// ```ignore
/// use invite::in_vivo;
///
/// pub struct Account {
///     balance: u64,
///     history: Vec<i64>,
/// }
///
/// mod checks {
///     use super::Account;
///
///     /// Pre test: the same parameters as `withdraw`, receiver first.
///     pub fn ledger_adds_up(account: &mut Account, _amount: u64) -> Result<(), String> {
///         let sum: i64 = account.history.iter().sum();
///         if sum == account.balance as i64 {
///             Ok(())
///         } else {
///             Err(format!("balance {} but history sums to {sum}", account.balance))
///         }
///     }
///
///     /// Post test: the receiver, then the return value.
///     pub fn never_negative(account: &mut Account, result: &Result<u64, String>) -> bool {
///         result.is_err() || account.balance as i64 >= 0
///     }
/// }
///
/// impl Account {
///     #[in_vivo(pre = checks::ledger_adds_up, post = checks::never_negative, probability = 0.05)]
///     pub fn withdraw(&mut self, amount: u64) -> Result<u64, String> {
///         if amount > self.balance {
///             return Err(format!("{amount} is more than the balance {}", self.balance));
///         }
///         self.balance -= amount;
///         self.history.push(-(amount as i64));
///         Ok(self.balance)
///     }
/// }
///
/// // Free functions, patterns in parameters and several tests:
/// fn sum_is_small((a, b): (u8, u8)) -> bool {
///     (a as u16 + b as u16) < 256
/// }
/// fn not_zero(r: &u8) {
///     assert_ne!(*r, 0, "a sum of two bytes came out zero");
/// }
///
/// #[in_vivo(test = sum_is_small, post = not_zero, post = not_zero)]
/// fn add((a, b): (u8, u8)) -> u8 {
///     a.wrapping_add(b)
/// }
/// # fn main() { add((1, 2)); }
/// ```
///
/// # Names in the journal
///
/// Each (function, test) pair is one site. Its `function` is the Rust path: `module::function`,
/// or `module::Type::method` when the signature has a receiver or mentions `Self` (the type comes
/// from `core::any::type_name::<Self>()`, so generic types carry their arguments). An associated
/// function that does neither is named `module::function`. Its `test` is the test's path as
/// written in the attribute (`checks::ledger_adds_up`), its `site` the file and line of the
/// function's name. The generated code names the runtime `::invite`: a renamed dependency is not
/// supported.
///
/// # What the function keeps
///
/// The body is emitted token for token, never rewritten: inside a block when there are only pre
/// tests, inside a closure (an `async` block for an `async fn`) when post tests need its value. So
/// `return`, `?`, labelled breaks, closures and `.await` mean what they meant, and rustc's errors
/// in the body point into the body. Free functions, inherent and trait methods with any receiver,
/// generics, lifetimes, where clauses, `impl Trait` arguments and returns, `unsafe fn`,
/// `extern "C" fn`, `async fn` and recursion are supported. Two visible differences: parameters
/// written as patterns (`(a, b): (u8, u8)`, `_`) get hidden names in the signature (rustdoc shows
/// them) and are destructured at the top of the body; and with post tests,
/// `core::panic::Location::caller()` inside the body of a `#[track_caller]` function names the
/// generated closure.
///
/// Errors, each at the token it is about: a `const fn` (pods start at run time), C variadics, a
/// post test on a function returning `!`, a declaration without a body, an attribute on something
/// that is not a function, and malformed arguments. A body that does not parse is passed through
/// untouched, so rustc reports its own error.
///
/// # Turning it off at compile time
///
/// The runtime's default feature `enabled` turns on this crate's `enabled` feature. Depend on
/// `invite` with `default-features = false` and every `#[in_vivo]` compiles to the plain function:
/// no site, no branch on the hot path, no runtime call. The test calls are still emitted, in
/// `if false` branches the compiler removes, so the tests are type-checked and do not warn as
/// unused. (Exception: post tests of a function returning `impl Trait` are not referenced then;
/// a test used only there may warn as dead code.) The feature is additive: code that builds with it
/// off builds with it on. Per call site, `INVITE=off` turns testing off at run time instead.
///
/// # Cost
///
/// With the feature on, each test adds one `static` site record and, per call, one relaxed load, a
/// compare and a relaxed store (`Site::sample`); the pod is only started on a sampled call.
/// `benches/fast_path.rs` measures it against the same function without the attribute, in the
/// same run: on the 2-core development machine the difference stays within ±0.7 ns per call,
/// the size of code-layout effects (the attributed function was sometimes the faster one).
#[proc_macro_attribute]
pub fn in_vivo(attr: TokenStream, item: TokenStream) -> TokenStream {
    in_vivo_impl(attr.into(), item.into(), cfg!(feature = "enabled")).into()
}

fn in_vivo_impl(
    attr: proc_macro2::TokenStream,
    item: proc_macro2::TokenStream,
    enabled: bool,
) -> proc_macro2::TokenStream {
    let func = match syn::parse2::<expand::InVivoFn>(item.clone()) {
        Ok(f) => f,
        Err(e) => return not_a_function(e, item),
    };
    // A body rustc cannot parse goes through untouched: rustc's error is the useful one.
    if syn::parse2::<syn::Block>(proc_macro2::TokenTree::Group(func.body.clone()).into()).is_err() {
        return item;
    }
    let expanded =
        syn::parse2::<attr::Args>(attr).and_then(|args| expand::expand(&args, func, enabled));
    match expanded {
        Ok(tokens) => tokens,
        // The item is kept, so the error is the only one the user sees.
        Err(e) => {
            let e = e.to_compile_error();
            quote!(#e #item)
        }
    }
}

/// The item is not a function with a body. Say so when it is some other item; when it does not
/// parse at all, leave it to rustc.
fn not_a_function(e: syn::Error, item: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let error = if let Ok(f) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        if f.default.is_none() {
            e
        } else {
            return item;
        }
    } else if let Ok(other) = syn::parse2::<syn::Item>(item.clone()) {
        syn::Error::new_spanned(
            first_token(&other),
            "#[in_vivo] applies to functions and methods only",
        )
    } else {
        return item;
    };
    let error = error.to_compile_error();
    quote!(#error #item)
}

fn first_token(item: &syn::Item) -> proc_macro2::TokenStream {
    use quote::ToTokens;
    let tokens = item.to_token_stream();
    // Skip outer attributes so the error points at `struct`, `mod`, ... not at a doc comment.
    let mut iter = tokens.into_iter().peekable();
    while let Some(t) = iter.next() {
        match &t {
            proc_macro2::TokenTree::Punct(p) if p.as_char() == '#' => {
                iter.next();
            }
            _ => return t.into(),
        }
    }
    proc_macro2::TokenStream::new()
}

#[cfg(test)]
mod tests;
