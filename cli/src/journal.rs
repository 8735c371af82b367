//! Reading journals: JSON Lines files into typed records, with a warning for every line that is not
//! one.
//!
//! This module owns the record types and is the one place lines are parsed: every output reads
//! the records it gives. It does not aggregate (that is [`crate::model`]) and does not print (the
//! caller decides where warnings go). A line that cannot
//! be used — torn, invalid JSON, not UTF-8, from another program or another schema — becomes a
//! [`Warning`] with its line number, and reading goes on: a journal is evidence, and one bad line
//! must not hide the rest.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use invite_vocab::{field, kind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::reader::{Event, Reader};

/// The only journal schema this version reads: the one the runtime writes.
pub const SCHEMA: u64 = invite_vocab::SCHEMA;

// What happened to one test in its pod (the contract's outcome table): the runtime's own word
// list; `crate::outcome` reads and writes it. (A doc comment with a link here, on a re-export of
// another crate's item, makes rustdoc 1.95 panic: "no resolutions for a doc link".)
pub use invite_vocab::Outcome;

/// A `kind: "test"` record: one finished test. Fields the report does not need are optional, so
/// a record from a runtime that leaves one out is still counted.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct TestRecord {
    #[serde(default)]
    pub time: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub pid: Option<u64>,
    #[serde(default)]
    pub pod: Option<String>,
    #[serde(default)]
    pub site: Option<String>,
    pub function: String,
    pub test: String,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(with = "crate::outcome")]
    pub outcome: Outcome,
    /// The test's own time.
    pub duration_us: u64,
    /// The rest of the pod's time (the fork, set-up, tear-down); absent from records of earlier
    /// versions, whose `duration_us` counted it.
    #[serde(default)]
    pub pod_us: Option<u64>,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub signal: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub changed: Vec<String>,
    #[serde(default)]
    pub isolation: Option<String>,
    #[serde(default)]
    pub truncated: bool,
    #[serde(default)]
    pub notes: Vec<String>,
    /// A failure that may be due to files the host wrote after the checkpoint (the notes name
    /// them), not to the code under test.
    #[serde(default)]
    pub unreliable: bool,
    /// The service the program is part of, when the runtime records one.
    #[serde(default)]
    pub service: Option<String>,
    /// The program's name, when the runtime records one.
    #[serde(default)]
    pub program: Option<String>,
    /// Fields this version does not know (later versions of schema 1 may add some).
    #[serde(skip)]
    pub extra: BTreeMap<String, Value>,
}

/// The fields of a test record [`TestRecord`] names; the others go to `extra`.
const TEST_FIELDS: [&str; 24] = [
    field::SCHEMA,
    field::KIND,
    field::TIME,
    field::HOST,
    field::PID,
    field::POD,
    field::SITE,
    field::FUNCTION,
    field::TEST,
    field::PHASE,
    field::OUTCOME,
    field::DURATION_US,
    field::POD_US,
    field::EXIT_CODE,
    field::SIGNAL,
    field::MESSAGE,
    field::OUTPUT,
    field::CHANGED,
    field::ISOLATION,
    field::TRUNCATED,
    field::NOTES,
    field::UNRELIABLE,
    // Not written by this runtime yet; read when a record carries them (OTLP's service.name).
    "service",
    "program",
];

/// Tests turned away at one site, by reason: `concurrency`, `budget`, `in_pod`, and any reason
/// a later runtime adds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Skipped(pub BTreeMap<String, u64>);

/// One entry of a summary's `sites`: the counters of one (function, test) site.
#[derive(Clone, Debug, Deserialize)]
pub struct SiteCounts {
    pub function: String,
    /// Absent in a runtime that counts per function only; the report then shows the skips on a
    /// row of their own with test `*`.
    #[serde(default)]
    pub test: Option<String>,
    #[serde(default)]
    pub site: Option<String>,
    #[serde(default)]
    pub calls: u64,
    #[serde(default)]
    pub sampled: u64,
    #[serde(default)]
    pub started: u64,
    #[serde(default)]
    pub skipped: Skipped,
}

/// A `kind: "summary"` record: a process's counters, cumulative since it started.
#[derive(Clone, Debug)]
pub struct Summary {
    pub time: Option<String>,
    pub host: Option<String>,
    pub pid: Option<u64>,
    pub sites: Vec<SiteCounts>,
    /// Records the process could not write to the journal (`lost`), when the runtime counts them.
    pub lost: Option<u64>,
    /// The settings the process ran with (`settings`: variable to value), when recorded.
    pub settings: BTreeMap<String, String>,
    /// `service`, else `program`, when the runtime records one.
    pub service: Option<String>,
}

/// Where a record came from: the journal and line, and its position among everything read.
#[derive(Clone, Debug)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: usize,
    /// Increases with every record read, across files: "later in the input".
    pub seq: u64,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A line that was not used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: warning: {}", self.file, self.line, self.message)
    }
}

/// One parsed record.
#[derive(Clone, Debug)]
pub enum Record {
    Test(Box<TestRecord>),
    Summary(Summary),
}

/// Why a line is not a record.
#[derive(Debug)]
pub enum LineError {
    NotUtf8,
    Json(serde_json::Error),
    Foreign(String),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::NotUtf8 => f.write_str("not UTF-8"),
            LineError::Json(e) => write!(f, "invalid JSON (torn or corrupt line): {e}"),
            LineError::Foreign(why) => f.write_str(why),
        }
    }
}

/// Parses one journal line.
pub fn parse_line(line: &[u8]) -> Result<Record, LineError> {
    let text = std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?;
    let value: Value = serde_json::from_str(text).map_err(LineError::Json)?;
    parse_value(value).map_err(LineError::Foreign)
}

/// Checks `schema` and `kind` and types the record. Also used for a kept pod's `record.json`.
pub fn parse_value(value: Value) -> Result<Record, String> {
    let Value::Object(object) = value else {
        return Err(format!(
            "not an invite record: a JSON {}, not an object",
            type_name(&value)
        ));
    };
    match object.get(field::SCHEMA) {
        None => return Err("not an invite record: no `schema` field".into()),
        Some(Value::Number(n)) if n.as_u64() == Some(SCHEMA) => {}
        Some(other) => {
            return Err(format!(
                "schema {other} is not supported (this invite reads schema {SCHEMA})"
            ))
        }
    }
    let kind = match object.get(field::KIND) {
        Some(Value::String(kind)) => kind.clone(),
        Some(other) => return Err(format!("`kind` is {other}, not a string")),
        None => return Err("no `kind` field".into()),
    };
    match kind.as_str() {
        kind::TEST => parse_test(object).map(|t| Record::Test(Box::new(t))),
        kind::SUMMARY => parse_summary(object).map(Record::Summary),
        other => Err(format!("unknown kind {other:?}")),
    }
}

fn parse_test(mut object: Map<String, Value>) -> Result<TestRecord, String> {
    let unknown: Vec<String> = object
        .keys()
        .filter(|k| !TEST_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    let extra = unknown
        .into_iter()
        .filter_map(|k| object.remove_entry(&k))
        .collect();
    let mut record: TestRecord =
        serde_json::from_value(Value::Object(object)).map_err(|e| format!("test record: {e}"))?;
    record.extra = extra;
    Ok(record)
}

fn parse_summary(mut object: Map<String, Value>) -> Result<Summary, String> {
    let string = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let time = string(object.get(field::TIME));
    let host = string(object.get(field::HOST));
    let pid = object.get(field::PID).and_then(Value::as_u64);
    let service = string(object.get("service")).or_else(|| string(object.get("program")));
    let lost = match object.get(field::LOST) {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| format!("summary record: `lost` is {v}, not a count"))?,
        ),
    };
    let settings = match object.get(field::SETTINGS) {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                (k.clone(), v)
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    // The runtime writes `sites` as an array of entries, each naming its site, function and test.
    // An object keyed by site is read too, a key holding one entry or an array of them.
    let mut entries = Vec::new();
    match object.remove(field::SITES) {
        Some(Value::Object(sites)) => {
            for (key, value) in sites {
                match value {
                    Value::Array(list) => {
                        entries.extend(list.into_iter().map(|v| (key.clone(), v)))
                    }
                    value => entries.push((key, value)),
                }
            }
        }
        Some(Value::Array(list)) => entries.extend(list.into_iter().map(|v| (String::new(), v))),
        None => {}
        Some(other) => {
            return Err(format!(
                "summary record: `sites` is a JSON {}",
                type_name(&other)
            ))
        }
    }
    let mut sites = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let mut counts: SiteCounts = serde_json::from_value(value)
            .map_err(|e| format!("summary record: site {key:?}: {e}"))?;
        if counts.site.is_none() && !key.is_empty() {
            counts.site = Some(key);
        }
        sites.push(counts);
    }
    Ok(Summary {
        time,
        host,
        pid,
        sites,
        lost,
        settings,
        service,
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Journal {
        tests: Vec<TestRecord>,
        summaries: Vec<Summary>,
        warnings: Vec<Warning>,
    }

    fn read(text: &str) -> Journal {
        let mut journal = Journal::default();
        let mut seq = 0;
        Reader::new("j", text.as_bytes())
            .read_all(&mut seq, &mut |event| match event {
                Event::Record(_, Record::Test(t)) => journal.tests.push(*t),
                Event::Record(_, Record::Summary(s)) => journal.summaries.push(s),
                Event::Warning(w) => journal.warnings.push(w),
            })
            .unwrap();
        journal
    }

    #[test]
    fn foreign_and_torn_lines_are_warnings_with_line_numbers() {
        let good = r#"{"schema":1,"kind":"test","function":"f","test":"t","outcome":"pass","duration_us":5}"#;
        let text = format!(
            "{good}\n[1,2]\n{{\"kind\":\"test\"}}\n{{\"schema\":2,\"kind\":\"test\"}}\n\
             {{\"schema\":1,\"kind\":\"metric\"}}\n\n{good}\n{{\"schema\":1,\"ki"
        );
        let journal = read(&text);
        assert_eq!(journal.tests.len(), 2);
        let lines: Vec<usize> = journal.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 8]);
        assert!(journal.warnings[4].message.starts_with("torn line"));
    }

    #[test]
    fn summary_sites_may_be_keyed_or_listed() {
        let journal = read(concat!(
            r#"{"schema":1,"kind":"summary","pid":1,"sites":{"a.c:3":{"function":"f","test":"t","skipped":{"budget":2}}}}"#,
            "\n",
            r#"{"schema":1,"kind":"summary","pid":2,"sites":[{"function":"f","test":"t","site":"a.c:3","skipped":{"in_pod":1}}]}"#,
            "\n"
        ));
        assert!(journal.warnings.is_empty(), "{:?}", journal.warnings);
        let sites: Vec<_> = journal
            .summaries
            .iter()
            .map(|s| {
                (
                    s.sites[0].site.clone(),
                    s.sites[0].skipped.0.values().sum::<u64>(),
                )
            })
            .collect();
        assert_eq!(
            sites,
            [(Some("a.c:3".into()), 2), (Some("a.c:3".into()), 1)]
        );
    }
}
