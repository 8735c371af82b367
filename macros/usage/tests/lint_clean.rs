//! `#[in_vivo]` leaves no warning in the user's crate: this file is compiled with every warning
//! an error (`#![deny(warnings)]`, as `-D warnings` does), on functions and methods whose body is
//! a single expression, on one line (where rustc's `unused_braces` looked at the generated block)
//! or not, with pre tests only, post tests, both, and async bodies. Compiling is
//! the test; the calls check that the bodies still give their values.

#![deny(warnings)]

use invite::in_vivo;

fn pre_of_one(_: u32) -> bool {
    true
}

fn post_of_one(_: &u32) -> bool {
    true
}

#[in_vivo(pre = pre_of_one, probability = 0)]
fn pre_only(x: u32) -> u32 {
    x + 1
}

#[in_vivo(post = post_of_one, probability = 0)]
fn post_only(x: u32) -> u32 {
    x + 2
}

#[in_vivo(pre = pre_of_one, post = post_of_one, probability = 0)]
fn pre_and_post(x: u32) -> u32 {
    x + 3
}

#[rustfmt::skip] // one line: the shape that met unused_braces

#[in_vivo(pre = pre_of_one, probability = 0)]
fn one_line_pre(x: u32) -> u32 { x + 6 }

#[rustfmt::skip] // one line: the shape that met unused_braces

#[in_vivo(pre = pre_of_one, post = post_of_one, probability = 0)]
fn one_line_pre_post(x: u32) -> u32 { x + 7 }

#[rustfmt::skip] // one line: the shape that met unused_braces

#[in_vivo(pre = pre_of_one, probability = 0)]
fn one_line_unsafe(x: u32) -> u32 { unsafe { std::ptr::read(&x) } }

#[rustfmt::skip] // one line: the shape that met unused_braces

#[in_vivo(pre = async_pre, probability = 0)]
async fn one_line_async(x: u32) -> u32 { x + 8 }

#[in_vivo(pre = pre_of_one, probability = 0, outermost)]
fn outermost(x: u32) -> u32 {
    x + 4
}

#[in_vivo(pre = pre_of_one, post = post_of_one, probability = 0, outermost)]
fn outermost_post(x: u32) -> u32 {
    x + 4
}

fn unit_pre(_: u32) {}

#[in_vivo(pre = unit_pre, probability = 0)]
fn unit_body(x: u32) {
    std::hint::black_box(x);
}

async fn async_pre(_: u32) -> bool {
    true
}

#[in_vivo(pre = async_pre, post = post_of_one, probability = 0)]
async fn async_body(x: u32) -> u32 {
    x + 5
}

struct Counter(u32);

fn method_pre(_: &Counter, _: u32) -> bool {
    true
}

fn method_post(_: &Counter, _: &u32) -> bool {
    true
}

impl Counter {
    #[in_vivo(pre = method_pre, post = method_post, probability = 0)]
    fn add(&self, x: u32) -> u32 {
        self.0 + x
    }

    #[in_vivo(pre = method_pre, probability = 0)]
    fn add_pre(&self, x: u32) -> u32 {
        self.0 + x
    }

    #[rustfmt::skip] // one line: the shape that met unused_braces

    #[in_vivo(pre = method_pre, probability = 0)]
    fn one_line(&self, x: u32) -> u32 { self.0 * x }
}

#[test]
fn single_expression_bodies_compile_without_warnings_and_keep_their_values() {
    assert_eq!(pre_only(1), 2);
    assert_eq!(post_only(1), 3);
    assert_eq!(pre_and_post(1), 4);
    assert_eq!(outermost(1), 5);
    assert_eq!(outermost_post(1), 5);
    assert_eq!(one_line_pre(1), 7);
    assert_eq!(one_line_pre_post(1), 8);
    assert_eq!(one_line_unsafe(9), 9);
    unit_body(1);
    let c = Counter(10);
    assert_eq!(c.add(1), 11);
    assert_eq!(c.add_pre(2), 12);
    assert_eq!(c.one_line(3), 30);
    use std::future::Future;
    let mut fut = std::pin::pin!(async_body(1));
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Noop));
    let mut cx = std::task::Context::from_waker(&waker);
    assert_eq!(fut.as_mut().poll(&mut cx), std::task::Poll::Ready(6));
    let mut fut = std::pin::pin!(one_line_async(1));
    assert_eq!(fut.as_mut().poll(&mut cx), std::task::Poll::Ready(9));
}
