//! Outcomes over time, per process, in bounded memory.
//!
//! Time is bucketed by a prefix of the record's RFC 3339 `time` (its fixed width makes string
//! order time order): by second, and when any series would have more than [`MAX_BUCKETS`]
//! buckets, by minute, ten minutes, hour, day, month or year instead — every series at once, so they
//! line up.
//! At most [`MAX_SERIES`] series (one per host and process); later processes go to one more.

use std::collections::BTreeMap;

use crate::journal::Outcome;

pub const MAX_BUCKETS: usize = 120;
pub const MAX_SERIES: usize = 24;
/// Prefix lengths of `YYYY-MM-DDTHH:MM:SS`: second, minute, ten minutes, hour, day, month, year.
const LEVELS: [usize; 7] = [19, 16, 15, 13, 10, 7, 4];
/// The series that takes every process past [`MAX_SERIES`].
pub const OTHERS: &str = "(other processes)";

/// Runs per outcome, in [`Outcome::ALL`] order.
pub type Counts = [u64; 5];

#[derive(Clone, Debug, Default)]
pub struct Timeline {
    level: usize,
    series: BTreeMap<String, BTreeMap<String, Counts>>,
}

impl Timeline {
    pub fn add(&mut self, series: &str, time: Option<&str>, outcome: Outcome) {
        let Some(time) = time.filter(|t| t.is_ascii() && t.len() >= LEVELS[0]) else {
            return;
        };
        let name = if self.series.contains_key(series) || self.series.len() < MAX_SERIES {
            series
        } else {
            OTHERS
        };
        let buckets = self.series.entry(name.to_string()).or_default();
        let key = &time[..LEVELS[self.level]];
        let counts = match buckets.get_mut(key) {
            Some(c) => c,
            None => buckets.entry(key.to_string()).or_default(),
        };
        let slot = &mut counts[outcome as usize];
        *slot = slot.saturating_add(1);
        if buckets.len() > MAX_BUCKETS && self.level + 1 < LEVELS.len() {
            self.coarsen();
        }
    }

    fn coarsen(&mut self) {
        while self.level + 1 < LEVELS.len() && self.series.values().any(|b| b.len() > MAX_BUCKETS) {
            self.level += 1;
            let len = LEVELS[self.level];
            for buckets in self.series.values_mut() {
                let mut coarse: BTreeMap<String, Counts> = BTreeMap::new();
                for (key, counts) in std::mem::take(buckets) {
                    let c = coarse.entry(key[..len].to_string()).or_default();
                    for (a, b) in c.iter_mut().zip(counts) {
                        *a = a.saturating_add(b);
                    }
                }
                *buckets = coarse;
            }
        }
    }

    /// The bucket width in words: "minute", "hour", ...
    pub fn unit(&self) -> &'static str {
        [
            "second",
            "minute",
            "10 minutes",
            "hour",
            "day",
            "month",
            "year",
        ][self.level]
    }

    /// A bucket's key as a person reads it: `2026-05-01T10:00` for the ten minutes from 10:00.
    pub fn label(&self, key: &str) -> String {
        let tail = ["", "", "0", ":00", "", "", ""][self.level];
        format!("{key}{tail}").replacen('T', " ", 1)
    }

    /// Every bucket any series has, in time order.
    pub fn buckets(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .series
            .values()
            .flat_map(|b| b.keys().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    pub fn series(&self) -> &BTreeMap<String, BTreeMap<String, Counts>> {
        &self.series
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarsens_instead_of_growing() {
        let mut t = Timeline::default();
        for day in 1..=28 {
            for hour in 0..24 {
                let time = format!("2026-02-{day:02}T{hour:02}:30:00Z");
                t.add("web1 pid 1", Some(&time), Outcome::Pass);
            }
        }
        assert_eq!(
            t.unit(),
            "day",
            "28 days of hours: past 120 buckets by hour"
        );
        assert_eq!(t.buckets().len(), 28);
        let total: u64 = t.series()["web1 pid 1"].values().map(|c| c[0]).sum();
        assert_eq!(total, 28 * 24);
    }
}
