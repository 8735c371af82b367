//! Sampling: a site's fast path (a countdown), and its slow path: registration on first use,
//! the geometric countdown, and the hand-off to admission when a call is sampled.
//!
//! Sampling by countdown (as allocation samplers do): instead of a random draw per call, draw the
//! number of calls until the next sample from a geometric distribution with the site's
//! probability. The fast path only decrements. Each thread counts down its own countdown per
//! site (`counts`), so no call is lost and a thread's calls are sampled as a single thread's
//! would be. Draws use a per-thread generator, seeded from `INVITE_SEED` when it is set, so runs
//! are reproducible.

use crate::admit;
use crate::config::Config;
use crate::counts;
use crate::inside::{self, Inside};
use crate::registry;
use crate::runtime;
use crate::site::Site;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::LocalKey;

/// Countdown of a site that never samples (probability 0, testing off). Calls still count down.
pub const NEVER: i64 = counts::NEVER;

/// The fast path: one relaxed load and store of the calling thread's countdown for the site
/// decide "not this time".
impl Site {
    /// The fast path: true when this call should start a pod (admission already granted).
    #[inline(always)]
    pub fn sample(&'static self) -> bool {
        self.due() && sample_slow(self, None, None)
    }

    /// The fast path of a method's site: `owner` names the `Self` type (called on the slow path
    /// only), so the summary names `module::Type::method` as the test records do.
    #[inline(always)]
    pub fn sample_with_owner(&'static self, owner: fn() -> &'static str) -> bool {
        self.due() && sample_slow(self, Some(owner), None)
    }

    /// Count this call down on the calling thread's countdowns; true when the slow path must
    /// look (the thread's first call of the site, or this call is sampled). No other thread
    /// writes the countdown, so no call is lost (`counts`).
    #[inline(always)]
    fn due(&self) -> bool {
        // Indices are below `SLOTS` (`registry::slot`): the mask only spares a bounds check.
        let slot = self.index.load(Ordering::Relaxed) as usize % counts::SLOTS;
        let countdown = &counts::COUNTDOWNS.with(Cell::get)[slot];
        let c = countdown.load(Ordering::Relaxed);
        if c > 1 {
            countdown.store(c - 1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

/// The calling thread's depth in one function, for the sites of `#[in_vivo(outermost)]`: made at
/// the start of each call, it lowers the depth again when the call ends (by unwinding too). Only
/// such functions keep a depth (a `const`-initialized thread-local `Cell`: no allocation, no
/// destructor to register); the other sites pay nothing.
pub struct Outermost {
    depth: &'static LocalKey<Cell<u32>>,
    outer: bool,
}

impl Outermost {
    /// Enter a call of the function whose depth `depth` keeps.
    #[inline(always)]
    pub fn enter(depth: &'static LocalKey<Cell<u32>>) -> Outermost {
        let outer = depth
            .try_with(|d| {
                let n = d.get();
                d.set(n.saturating_add(1));
                n == 0
            })
            .unwrap_or(false);
        Outermost { depth, outer }
    }

    /// Whether this is the thread's outermost call of the function (its sites may sample it).
    #[inline(always)]
    pub fn is_outermost(&self) -> bool {
        self.outer
    }
}

impl Drop for Outermost {
    #[inline(always)]
    fn drop(&mut self) {
        let _ = self.depth.try_with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Called by `Site::sample` when the countdown is 0 (unregistered) or 1 (this call is sampled).
///
/// Up to "not this time" nothing here allocates, the first call included (registration takes
/// pages of the runtime's own; the configuration was read at load time): a wrapped function may
/// be called from inside the program's allocator. With `INVITE=off` nothing happens but one read
/// of the switch per process.
#[cold]
#[inline(never)]
pub fn sample_slow(
    site: &'static Site,
    owner: Option<fn() -> &'static str>,
    c_var: Option<counts::CVar>,
) -> bool {
    // No in vivo tests start inside a pod. Touch no lock here: a host thread may have held it at
    // the fork.
    if runtime::in_pod() || !runtime::switched_on() {
        counts::never(site, c_var);
        return false;
    }
    // A call made by the runtime's own work (its allocations through an instrumented allocator,
    // on any thread, or in a supervisor or a pod's setup): counted, never tested, and no lock
    // touched: it would wait for the work it is part of. The countdown is left as it is, so the
    // thread's next call from outside takes the sample.
    if inside::now() {
        if let Some(entry) = registry::register_nowait(site) {
            entry.stats.calls.fetch_add(1, Ordering::Relaxed);
        }
        return false;
    }
    let _inside = Inside::enter();
    let Some(entry) = registry::register(site) else {
        counts::never(site, c_var);
        return false;
    };
    let stats = &entry.stats;
    if let Some(owner) = owner {
        stats.owner.get_or_init(owner);
    }
    let Some(config) = runtime::settings() else {
        // The configuration is being read (its allocations called this site): count the call,
        // and let a later one draw the countdown.
        stats.calls.fetch_add(1, Ordering::Relaxed);
        return false;
    };
    let p = probability(config.as_ref(), site);
    let sampled = match counts::count(site, c_var, || draw(p)) {
        counts::Count::Counted(sampled) => sampled,
        // No block for this thread (it is exiting, or no memory): counted here, sampled by a
        // draw of its own (a countdown of 1 is a sample with probability p).
        counts::Count::NoBlock => {
            stats.calls.fetch_add(1, Ordering::Relaxed);
            draw(p) == 1
        }
    };
    // Until the runtime is built (by the library's constructor) a sampled call is not tested:
    // building allocates, and the allocator may be the caller, with its lock held (a call from
    // an earlier constructor, or from the allocator's own start-up).
    let rt = match runtime::built() {
        Some(rt) if sampled && p > 0.0 && !runtime::initializing() => rt,
        _ => return false,
    };
    stats.sampled.fetch_add(1, Ordering::Relaxed);
    rt.adopt_fork();
    if rt.config.is_none() || rt.journal_failed() {
        // A bad configuration or journal: testing is off (said once, when the runtime was built
        // or the journal first written).
        counts::never(site, c_var);
        return false;
    }
    let admitted = admit::admit(rt, site, stats);
    if !admitted {
        // The runtime's thread, if it is wanted before any pod (a pod starts it after its fork).
        crate::reap::start_wanted();
    }
    admitted
}

fn probability(config: Option<&Config>, site: &Site) -> f64 {
    match config {
        Some(c) => c.probability_for(site.file(), site.function(), site.test(), site.probability),
        None => 0.0,
    }
}

/// Calls until the next sample (>= 1): geometric with success probability `p`, drawn from this
/// thread's generator.
pub fn draw(p: f64) -> i64 {
    RNG.with(|r| {
        let mut rng = r.get().unwrap_or_else(|| Rng::for_thread(seed_base()));
        let k = geometric(p, &mut rng);
        r.set(Some(rng));
        k
    })
}

/// Calls until the next sample (>= 1) with success probability `p`: `NEVER` for `p <= 0`.
pub fn geometric(p: f64, rng: &mut Rng) -> i64 {
    if p.is_nan() || p <= 0.0 {
        return NEVER;
    }
    if p >= 1.0 {
        return 1;
    }
    // u in (0, 1]
    let u = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let k = (u.ln() / (1.0 - p).ln()).floor();
    if !k.is_finite() || k >= (NEVER / 2) as f64 {
        return NEVER / 2;
    }
    k as i64 + 1
}

static THREADS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static RNG: Cell<Option<Rng>> = const { Cell::new(None) };
}

/// A xorshift64* generator: each thread's draws follow from the seed and the thread's ordinal.
#[derive(Clone, Copy, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The generator of the `ordinal`-th thread (1, 2, ...) of a run seeded with `base`.
    pub fn new(base: u64, ordinal: u64) -> Rng {
        Rng(splitmix(base ^ ordinal.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn for_thread(base: u64) -> Rng {
        Rng::new(base, THREADS.fetch_add(1, Ordering::Relaxed) + 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// `INVITE_SEED`, or the clock and pid when it is not set.
fn seed_base() -> u64 {
    runtime::settings()
        .and_then(|c| c.as_ref())
        .and_then(|c| c.seed)
        .unwrap_or_else(|| crate::sys::monotonic_ns() ^ ((crate::sys::getpid() as u64) << 32))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_has_the_right_mean() {
        let mut rng = Rng::new(42, 1);
        assert_eq!(geometric(0.0, &mut rng), NEVER);
        assert_eq!(geometric(f64::NAN, &mut rng), NEVER);
        assert_eq!(geometric(1.0, &mut rng), 1);
        for p in [0.5, 0.1, 0.01] {
            let n = 20_000;
            let sum: f64 = (0..n).map(|_| geometric(p, &mut rng) as f64).sum();
            let mean = sum / n as f64;
            let expected = 1.0 / p;
            assert!(
                (mean - expected).abs() < expected * 0.1,
                "p={p} mean={mean}"
            );
            assert!((0..1000).all(|_| geometric(p, &mut rng) >= 1));
        }
    }

    #[test]
    fn a_seed_gives_the_same_draws_and_threads_differ() {
        let draws = |base, ordinal| {
            let mut rng = Rng::new(base, ordinal);
            (0..50)
                .map(|_| geometric(0.1, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            draws(7, 1),
            draws(7, 1),
            "same seed, same thread: same draws"
        );
        assert_ne!(draws(7, 1), draws(7, 2), "another thread: other draws");
        assert_ne!(draws(7, 1), draws(8, 1), "another seed: other draws");
    }
}
