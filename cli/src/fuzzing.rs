//! What the fuzz target (cli/fuzz) and its corpus replay in the test suite run: a journal's bytes
//! through the reader, the model and every renderer, checking what must hold for any input.

use crate::journal::{Event, Reader};
use crate::model::{Aggregate, Limits};
use crate::{render, term};

/// Reads `data` as a journal and draws every output from it. Panics if an output breaks its
/// promise: a control character from the input in the text table, JSON that does not parse.
///
/// ```
/// // A test whose output tries to move the terminal's cursor: the table must not carry it.
/// let line = br#"{"schema":1,"kind":"test","time":"2026-05-01T12:00:02.481337Z","host":"h","pid":1,"pod":"1","site":"a.c:1","function":"f","test":"t","phase":"pre","outcome":"fail","duration_us":5,"exit_code":0,"signal":null,"message":"\u001b[2J","output":"","changed":[],"isolation":"pod"}"#;
/// invite_cli::fuzzing::journal_reader(line);
/// ```
pub fn journal_reader(data: &[u8]) {
    let limits = Limits {
        failures: 3,
        output_lines: 5,
    };
    let mut aggregate = Aggregate::new(limits);
    let mut otlp = Vec::new();
    let mut seq = 0;
    let mut reader = Reader::new("fuzz.jsonl", data);
    reader
        .read_all(&mut seq, &mut |event| match event {
            Event::Record(origin, record) => {
                otlp.push(render::otlp::line(&record));
                aggregate.add(&origin, record);
            }
            Event::Warning(w) => {
                aggregate.add_warning();
                let shown = term::cell(&w.to_string()).into_owned();
                assert!(!shown.chars().any(term::is_dangerous), "{shown:?}");
            }
        })
        .expect("reading from memory does not fail");
    let report = aggregate.report();
    let text = render::text::report_text(&report);
    if let Some(c) = text.chars().find(|&c| c != '\n' && term::is_dangerous(c)) {
        panic!("{c:?} in the table:\n{text}");
    }
    let json = render::text::report_json(&report);
    serde_json::from_str::<serde_json::Value>(&json).expect("--json is JSON");
    for line in otlp {
        serde_json::from_str::<serde_json::Value>(&line).expect("an OTLP line is JSON");
    }
    let _ = render::html::page(&report, &["fuzz.jsonl".into()]);
    let _ = render::junit::document(&report);
    let _ = render::prometheus::metrics(&report);
}
