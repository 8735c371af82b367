//! Inline SVG charts: the distribution of durations, and outcomes over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::h;
use crate::journal::Outcome;
use crate::model::timeline::Timeline;
use crate::render::duration;

/// Runs per power of two of the duration, as bars on a log scale.
pub fn durations(octaves: &BTreeMap<i32, u64>) -> String {
    let (Some(&lo), Some(&hi)) = (octaves.keys().next(), octaves.keys().next_back()) else {
        return "<p class=\"empty\">no runs</p>".into();
    };
    let n = (hi - lo + 1) as usize;
    let max = octaves.values().copied().max().unwrap_or(1).max(1) as f64;
    let (w, bar_h, top) = (1000.0, 150.0, 18.0);
    let step = w / n as f64;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"test durations\">",
        bar_h + top + 30.0
    );
    for (i, k) in (lo..=hi).enumerate() {
        let count = octaves.get(&k).copied().unwrap_or(0);
        let height = (count as f64 / max * bar_h).max(if count > 0 { 1.5 } else { 0.0 });
        let x = i as f64 * step;
        let from = if k < 0 { 0 } else { 1u64 << k };
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{height:.1}\" rx=\"2\" fill=\"#4c7fe0\">\
             <title>{} runs from {}</title></rect>",
            x + 1.0,
            top + bar_h - height,
            (step - 2.0).max(1.0),
            count,
            h(&duration(from))
        );
        let every = n.div_ceil(8).max(1);
        if i % every == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + 1.0,
                top + bar_h + 18.0,
                h(&duration(from))
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"12\">{} runs at most per bar</text></svg>",
        max as u64
    );
    svg
}

fn color(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "#2f9e5b",
        Outcome::Fail => "#d64545",
        Outcome::Crash => "#8b3fd1",
        Outcome::Timeout => "#e58a1f",
        Outcome::Error => "#6b7280",
    }
}

/// One stacked bar chart of outcomes per time bucket for each series (host and process).
pub fn timeline(t: &Timeline) -> String {
    let buckets = t.buckets();
    if buckets.is_empty() {
        return "<p class=\"empty\">no times in the records</p>".into();
    }
    let index: BTreeMap<&str, usize> = buckets.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let mut out = String::from("<div class=\"charts\">");
    for (name, series) in t.series() {
        let max = series
            .values()
            .map(|c| c.iter().sum::<u64>())
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let (w, bar_h) = (600.0, 110.0);
        let step = w / buckets.len() as f64;
        let _ = write!(
            out,
            "<div class=\"chart panel\"><h3>{}</h3><svg viewBox=\"0 0 {w} {}\" role=\"img\" \
             aria-label=\"outcomes over time\">",
            h(name),
            bar_h + 30.0
        );
        for (bucket, counts) in series {
            let x = index[bucket.as_str()] as f64 * step;
            let mut y = bar_h;
            let total: u64 = counts.iter().sum();
            for o in Outcome::ALL {
                let n = counts[o as usize];
                if n == 0 {
                    continue;
                }
                let height = n as f64 / max * bar_h;
                y -= height;
                let _ = write!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{height:.1}\" fill=\"{}\">\
                     <title>{}: {n} {o} of {total}</title></rect>",
                    x + 0.5,
                    (step - 1.0).max(0.5),
                    color(o),
                    h(&t.label(bucket))
                );
            }
        }
        let (first, last) = (buckets[0], buckets[buckets.len() - 1]);
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{}\">{}</text><text x=\"{w}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             </svg></div>",
            bar_h + 16.0,
            h(&t.label(first)),
            bar_h + 16.0,
            h(&t.label(last))
        );
    }
    out.push_str("</div>");
    out
}
