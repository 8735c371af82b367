//! Every kind of function `#[in_vivo]` supports, and a scenario that calls each once with known
//! arguments and checks that the body kept its meaning (early `return`, `?`, labelled breaks,
//! closures, `.await`, recursion).
//!
//! The attributes say `probability = 0`: run directly, no test starts; the journal test runs the
//! same scenario in a child with `INVITE_PROBABILITY=1`, which overrides it.

use crate::checks;
use crate::settle;
use invite::in_vivo;

#[in_vivo(pre = checks::add_pre, post = checks::add_post, probability = 0)]
pub fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[in_vivo(pre = checks::largest_pre, post = checks::largest_post, probability = 0)]
pub fn largest<T>(xs: &[T]) -> T
where
    T: PartialOrd + Copy + Default + std::fmt::Debug,
{
    let mut best = T::default();
    for &x in xs {
        if x > best {
            best = x;
        }
    }
    best
}

#[in_vivo(post = checks::longest_post, probability = 0)]
pub fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[in_vivo(pre = checks::evens_pre, post = checks::evens_post, probability = 0)]
pub fn evens(limit: impl Into<u32>) -> impl Iterator<Item = u32> + Clone {
    (0..limit.into()).step_by(2)
}

#[in_vivo(test = checks::swap_pre, post = checks::swap_post, probability = 0)]
pub fn swap((a, b): (u8, u8), _: String) -> (u8, u8) {
    (b, a)
}

pub struct Counter {
    pub n: u32,
    pub name: String,
}

impl Counter {
    #[in_vivo(post = checks::get_post, probability = 0)]
    pub fn get(&self) -> u32 {
        self.n
    }

    #[in_vivo(pre = checks::bump_pre, post = checks::bump_post, probability = 0)]
    pub fn bump(&mut self, by: u32) -> u32 {
        self.n += by;
        self.n
    }

    #[in_vivo(post = checks::name_post, probability = 0)]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns a reborrow of `&mut self`: only pre tests fit (a post test would need both).
    #[in_vivo(pre = checks::slot_pre, probability = 0)]
    pub fn slot(&mut self) -> &mut u32 {
        &mut self.n
    }

    #[in_vivo(pre = checks::doubled_pre, post = checks::doubled_post, probability = 0)]
    pub fn into_doubled(mut self) -> u32 {
        self.n *= 2;
        self.n
    }

    #[in_vivo(pre = checks::unbox_pre, probability = 0)]
    pub fn unbox(self: Box<Self>) -> String {
        self.name
    }

    #[in_vivo(pre = checks::fetch_pre, post = checks::fetch_post, probability = 0)]
    pub async fn fetch(&self, key: u32) -> Result<u32, String> {
        if key == 0 {
            return Err("no key".to_string());
        }
        let v: u32 = std::future::ready("10".parse::<u32>())
            .await
            .map_err(|e| e.to_string())?;
        Ok(v)
    }
}

pub trait Shape {
    fn area(&self) -> f64;

    #[in_vivo(post = checks::describe_post, probability = 0)]
    fn describe(&self) -> String {
        "a square".to_string()
    }
}

pub struct Square {
    pub side: f64,
}

impl Shape for Square {
    #[in_vivo(pre = checks::area_pre, post = checks::area_post, probability = 0)]
    fn area(&self) -> f64 {
        self.side * self.side
    }
}

/// # Safety
/// `p` must point at a live `u32`.
#[in_vivo(pre = checks::read_pre, post = checks::read_post, probability = 0)]
pub unsafe fn read(p: *const u32) -> u32 {
    *p
}

#[in_vivo(pre = checks::twice_pre, post = checks::twice_post, probability = 0)]
pub extern "C" fn twice(x: i32) -> i32 {
    x * 2
}

#[in_vivo(pre = checks::fact_pre, post = checks::fact_post, probability = 0)]
pub fn fact(n: u64) -> u64 {
    if n <= 1 {
        return 1;
    }
    n * fact(n - 1)
}

/// Early return, `?`, a labelled break and a closure, all inside the body.
#[in_vivo(pre = checks::parse_pre, post = checks::parse_post, probability = 0)]
pub fn parse_sum(s: &str) -> Result<u32, std::num::ParseIntError> {
    if s.is_empty() {
        return Ok(0);
    }
    let double = |x: u32| x * 2;
    let mut sum = 0;
    'words: for word in s.split(' ') {
        if word == "x" {
            break 'words;
        }
        sum += word.parse::<u32>()?;
    }
    Ok(double(sum) / 2)
}

#[in_vivo(test = checks::unit_pre, post = checks::unit_post, probability = 0)]
pub fn log(label: &str) {
    let _ = label;
}

#[in_vivo(
    post = checks::half_is_exact,
    post = checks::half_is_err,
    post = checks::half_panics,
    probability = 0
)]
pub fn half(x: u32) -> u32 {
    x / 2
}

/// Calls each function once (`fact` recursively) and checks what the host got back. `settle(k)`
/// waits, in the journal test's child only, for the `k` tests the call started.
pub fn scenario() {
    assert_eq!(add(2, 3), 5);
    settle(2);
    assert_eq!(largest(&[3, 9, 4]), 9);
    settle(2);
    assert_eq!(longest("kiwi", "banana"), "banana");
    settle(1);
    assert_eq!(evens(10u8).collect::<Vec<_>>(), [0, 2, 4, 6, 8]);
    settle(2);
    assert_eq!(swap((1, 2), "kept".to_string()), (2, 1));
    settle(2);

    let mut c = Counter {
        n: 1,
        name: "hits".to_string(),
    };
    assert_eq!(c.bump(2), 3, "a pre test's changes stay in its pod");
    settle(2);
    assert_eq!(c.get(), 3);
    settle(1);
    assert_eq!(c.name(), "hits");
    settle(1);
    *c.slot() += 0;
    settle(1);
    assert_eq!(block_on(c.fetch(7)), Ok(10));
    settle(2);
    assert_eq!(block_on(c.fetch(0)), Err("no key".to_string()));
    settle(2);
    assert_eq!(c.into_doubled(), 6);
    settle(2);
    let boxed = Box::new(Counter {
        n: 0,
        name: "boxed".to_string(),
    });
    assert_eq!(boxed.unbox(), "boxed");
    settle(1);

    let sq = Square { side: 3.0 };
    assert_eq!(sq.area(), 9.0);
    settle(2);
    assert_eq!(sq.describe(), "a square");
    settle(1);

    let x = 42u32;
    // SAFETY: `x` is a live u32.
    assert_eq!(unsafe { read(&x) }, 42);
    settle(2);
    assert_eq!(twice(-4), -8);
    settle(2);
    assert_eq!(fact(5), 120);
    settle(10);
    assert_eq!(parse_sum("4 5 x 6"), Ok(9));
    settle(2);
    assert_eq!(parse_sum(""), Ok(0), "early return");
    settle(2);
    assert!(parse_sum("4 y").is_err(), "`?` returns the error");
    settle(2);
    log("twice");
    settle(2);
    assert_eq!(half(7), 3);
    settle(3);
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
    fn raw() -> RawWaker {
        RawWaker::new(std::ptr::null(), &VTABLE)
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(|_| raw(), |_| {}, |_| {}, |_| {});
    // SAFETY: every vtable function ignores the (null) data pointer.
    let waker = unsafe { Waker::from_raw(raw()) };
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
