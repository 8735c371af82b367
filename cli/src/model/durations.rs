//! A distribution of test durations in bounded memory.
//!
//! Exact while a row has at most [`EXACT`] runs (the median and p99 are then the true ones); past
//! that, a log-linear histogram with 32 buckets per power of two, so a quantile is off by at most
//! 1/32 (about 3 %) of its value. Memory: at most `EXACT` values, or one counter per bucket in use
//! (at most 64 × 32).

use std::collections::BTreeMap;

/// Runs kept as exact values per row.
pub const EXACT: usize = 256;

/// Sub-buckets per power of two, as a number of bits.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

#[derive(Clone, Debug, Default)]
pub struct Durations {
    exact: Vec<u64>,
    buckets: Option<BTreeMap<u16, u64>>,
    count: u64,
    min: u64,
    max: u64,
    /// The sum of all values, stopping at u64::MAX.
    total: u64,
}

fn bucket(v: u64) -> u16 {
    if v < SUB {
        return v as u16;
    }
    let octave = 63 - v.leading_zeros();
    let sub = (v >> (octave - SUB_BITS)) & (SUB - 1);
    (SUB + u64::from(octave - SUB_BITS) * SUB + sub) as u16
}

/// The smallest and largest value of a bucket.
fn bounds(b: u16) -> (u64, u64) {
    let b = u64::from(b);
    if b < SUB {
        return (b, b);
    }
    let shift = (b - SUB) / SUB;
    let sub = (b - SUB) % SUB;
    let low = (SUB + sub) << shift;
    (low, low + ((1u64 << shift) - 1))
}

impl Durations {
    pub fn add(&mut self, v: u64) {
        self.count = self.count.saturating_add(1);
        self.total = self.total.saturating_add(v);
        if self.count == 1 {
            (self.min, self.max) = (v, v);
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if let Some(buckets) = &mut self.buckets {
            let n = buckets.entry(bucket(v)).or_default();
            *n = n.saturating_add(1);
        } else if self.exact.len() < EXACT {
            self.exact.push(v);
        } else {
            let mut buckets = BTreeMap::new();
            for x in self.exact.drain(..).chain([v]) {
                *buckets.entry(bucket(x)).or_insert(0u64) += 1;
            }
            self.exact = Vec::new();
            self.buckets = Some(buckets);
        }
    }

    /// The sum of all durations (u64::MAX if it would be more).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether quantiles are exact.
    pub fn is_exact(&self) -> bool {
        self.buckets.is_none()
    }

    /// The median: for exact values, the middle one, or the mean of the two middle ones.
    pub fn median(&self) -> Option<u64> {
        match &self.buckets {
            None => {
                let mut sorted = self.exact.clone();
                sorted.sort_unstable();
                median(&sorted)
            }
            Some(_) => self.rank(self.count.div_ceil(2)),
        }
    }

    /// The nearest-rank percentile: the smallest value at or above `p` % of the runs.
    pub fn percentile(&self, p: u64) -> Option<u64> {
        match &self.buckets {
            None => {
                let mut sorted = self.exact.clone();
                sorted.sort_unstable();
                percentile(&sorted, p)
            }
            Some(_) => {
                let rank = (u128::from(p) * u128::from(self.count))
                    .div_ceil(100)
                    .max(1);
                self.rank(rank as u64)
            }
        }
    }

    /// The value of the `rank`-th smallest run (1-based), as the middle of its bucket.
    fn rank(&self, rank: u64) -> Option<u64> {
        let buckets = self.buckets.as_ref()?;
        let mut seen = 0u64;
        for (&b, &n) in buckets {
            seen = seen.saturating_add(n);
            if seen >= rank {
                let (low, high) = bounds(b);
                return Some((low / 2 + high / 2).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }

    /// Runs per power of two: `(k, n)` means `n` runs took from 2^k to 2^(k+1) - 1 µs (k = -1:
    /// 0 µs). For the HTML report's histogram.
    pub fn octaves(&self) -> BTreeMap<i32, u64> {
        let octave = |v: u64| {
            if v == 0 {
                -1
            } else {
                63 - v.leading_zeros() as i32
            }
        };
        let mut out = BTreeMap::new();
        match &self.buckets {
            None => {
                for &v in &self.exact {
                    *out.entry(octave(v)).or_insert(0u64) += 1;
                }
            }
            Some(buckets) => {
                for (&b, &n) in buckets {
                    let e = out.entry(octave(bounds(b).0)).or_insert(0u64);
                    *e = e.saturating_add(n);
                }
            }
        }
        out
    }
}

/// The median of sorted values; the mean of the two middle values for an even count.
pub fn median(sorted: &[u64]) -> Option<u64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => {
            let (a, b) = (sorted[n / 2 - 1], sorted[n / 2]);
            // Halves first, so two durations near u64::MAX do not overflow.
            Some(a / 2 + b / 2 + (a % 2 + b % 2) / 2)
        }
    }
}

/// The nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    let n = sorted.len() as u64;
    if n == 0 {
        return None;
    }
    let rank = (p * n).div_ceil(100).max(1);
    Some(sorted[(rank - 1) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p99() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7]), Some(7));
        assert_eq!(median(&[1, 2, 9]), Some(2));
        assert_eq!(median(&[10, 21]), Some(15));
        assert_eq!(median(&[u64::MAX, u64::MAX]), Some(u64::MAX));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 99), Some(99));
        assert_eq!(percentile(&hundred, 50), Some(50));
        let two_hundred: Vec<u64> = (1..=200).collect();
        assert_eq!(percentile(&two_hundred, 99), Some(198));
        assert_eq!(percentile(&[1, 2, 3, 1000], 99), Some(1000));
    }

    #[test]
    fn buckets_cover_every_value() {
        for v in [0, 1, 31, 32, 33, 1000, 12345, u64::MAX / 3, u64::MAX] {
            let (low, high) = bounds(bucket(v));
            assert!(low <= v && v <= high, "{v}: {low}..={high}");
            assert!(high - low <= v / 32, "{v}: bucket too wide");
        }
    }

    #[test]
    fn past_the_exact_limit_quantiles_stay_within_3_percent() {
        let mut d = Durations::default();
        for v in 1..=100_000u64 {
            d.add(v);
        }
        assert!(!d.is_exact());
        let median = d.median().unwrap() as f64;
        let p99 = d.percentile(99).unwrap() as f64;
        assert!((median / 50_000.0 - 1.0).abs() < 0.03, "{median}");
        assert!((p99 / 99_000.0 - 1.0).abs() < 0.03, "{p99}");
        assert_eq!(d.octaves().values().sum::<u64>(), 100_000);
    }
}
