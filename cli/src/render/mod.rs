//! Output: every format the model is drawn in, one module each, and the small pieces they share
//! (aligned text tables, durations a person can read).
//!
//! Everything here returns a `String`; the commands write it out in one go.

pub mod html;
pub mod junit;
pub mod otlp;
pub mod prometheus;
pub mod text;

use crate::journal::Outcome;
use crate::term;

/// Column alignment.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A plain text table: a header row, then one line per row, columns two spaces apart.
pub struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; every cell is escaped for the terminal here, so no caller can forget it.
    pub fn push(&mut self, row: Vec<String>) {
        debug_assert_eq!(row.len(), self.columns.len());
        let row = row
            .into_iter()
            .map(|c| term::cell(&c).into_owned())
            .collect();
        self.rows.push(row);
    }

    pub fn render(&self, out: &mut String) {
        // Widths in characters, not bytes: "µs" is one column wide.
        let width = |s: &str| s.chars().count();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| width(&r[i]))
                    .chain([width(self.columns[i].0)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let headers: Vec<String> = self.columns.iter().map(|c| c.0.to_string()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - width(cell));
                match self.columns[i].1 {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

/// A duration in microseconds, in the unit that keeps it short: `850 µs`, `12.3 ms`, `2.50 s`.
pub fn duration(us: u64) -> String {
    fn scaled(value: f64, unit: &str) -> String {
        if value < 10.0 {
            format!("{value:.2} {unit}")
        } else if value < 100.0 {
            format!("{value:.1} {unit}")
        } else {
            format!("{value:.0} {unit}")
        }
    }
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        scaled(us as f64 / 1e3, "ms")
    } else {
        scaled(us as f64 / 1e6, "s")
    }
}

/// The id a kept pod goes by: `<pid>.<pod path with '/' as '.'>`, as in `invite pods`.
pub fn pod_id(pid: Option<u64>, pod: Option<&str>) -> Option<String> {
    let pod = pod?.replace('/', ".");
    Some(match pid {
        Some(pid) => format!("{pid}.{pod}"),
        None => pod,
    })
}

/// The outcome with what ended the pod: `crash (SIGSEGV)`, `error (exit 3)`. An exit status of 0
/// says nothing (a failing test's pod may still exit 0), so it is left out.
pub fn outcome_text(outcome: Outcome, signal: Option<&str>, exit_code: Option<i64>) -> String {
    match (signal, exit_code) {
        (Some(signal), _) => format!("{outcome} ({signal})"),
        (None, Some(code)) if code != 0 => format!("{outcome} (exit {code})"),
        _ => outcome.to_string(),
    }
}

/// The entity of a character that is markup in HTML and XML alike, in text and in quoted
/// attributes (`&`, `<`, `>`, `"`). The apostrophe's is each format's own (`&#39;`, `&apos;`).
pub fn markup_entity(c: char) -> Option<&'static str> {
    match c {
        '&' => Some("&amp;"),
        '<' => Some("&lt;"),
        '>' => Some("&gt;"),
        '"' => Some("&quot;"),
        _ => None,
    }
}

pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0), "0 µs");
        assert_eq!(duration(999), "999 µs");
        assert_eq!(duration(1_000), "1.00 ms");
        assert_eq!(duration(12_345), "12.3 ms");
        assert_eq!(duration(456_000), "456 ms");
        assert_eq!(duration(2_500_000), "2.50 s");
        assert_eq!(duration(125_000_000), "125 s");
    }

    #[test]
    fn table_aligns_by_characters() {
        let mut t = Table::new(&[("A", Align::Left), ("B", Align::Right)]);
        t.push(vec!["µµ".into(), "1".into()]);
        t.push(vec!["x".into(), "100".into()]);
        let mut out = String::new();
        t.render(&mut out);
        assert_eq!(out, "A     B\nµµ    1\nx   100\n");
    }
}
