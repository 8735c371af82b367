//! Records as OpenTelemetry logs: OTLP JSON lines, the file exporter's format (one `LogsData` per
//! line), which the Collector's `otlpjsonfile` receiver reads.
//!
//! This format is drawn from the records themselves, not the aggregate: each record becomes one
//! `LogRecord`, parsed by the same reader as every other output. Severity follows the outcome;
//! the body is the message; every field is an attribute `invite.<field>`; the resource carries
//! `host.name`, `process.pid` and `service.name` — the record's `service`, else its `program`,
//! else `unknown_service` (the OpenTelemetry default).

use serde_json::{json, Map, Value};

use crate::journal::{Outcome, Record, Summary, TestRecord};

/// SeverityNumber and SeverityText (OpenTelemetry log data model).
fn severity(outcome: Outcome) -> (u8, &'static str) {
    match outcome {
        Outcome::Pass => (9, "INFO"),
        Outcome::Fail | Outcome::Timeout | Outcome::Error => (17, "ERROR"),
        Outcome::Crash => (21, "FATAL"),
    }
}

/// An OTLP `AnyValue` for a JSON value; `None` for null.
fn any(value: &Value) -> Option<Value> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!({ "intValue": i.to_string() }),
            None => json!({ "doubleValue": n.as_f64().unwrap_or(f64::NAN) }),
        },
        Value::String(s) => json!({ "stringValue": s }),
        Value::Array(a) => {
            json!({ "arrayValue": { "values": a.iter().filter_map(any).collect::<Vec<_>>() } })
        }
        Value::Object(o) => json!({ "kvlistValue": { "values": attributes(o, "") } }),
    })
}

/// `KeyValue`s for an object's fields, each key prefixed.
fn attributes(object: &Map<String, Value>, prefix: &str) -> Vec<Value> {
    object
        .iter()
        .filter_map(|(k, v)| any(v).map(|v| json!({ "key": format!("{prefix}{k}"), "value": v })))
        .collect()
}

/// Nanoseconds since 1970 of an RFC 3339 time (`2026-05-01T12:00:02.481337Z`, or with an offset).
pub fn unix_nanos(time: &str) -> Option<u64> {
    let b = time.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = time.get(from..from + len)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, s) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        for _ in (i - start).min(9)..9 {
            nanos *= 10;
        }
    }
    let offset = match time.get(i..)? {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (num(i + 1, 2)? * 3600 + num(i + 4, 2)? * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset;
    u64::try_from(secs.checked_mul(1_000_000_000)?.checked_add(nanos)?).ok()
}

fn resource(host: Option<&str>, pid: Option<u64>, service: Option<&str>) -> Value {
    let mut attrs = vec![
        json!({ "key": "service.name", "value": { "stringValue": service.unwrap_or("unknown_service") } }),
    ];
    if let Some(host) = host {
        attrs.push(json!({ "key": "host.name", "value": { "stringValue": host } }));
    }
    if let Some(pid) = pid {
        attrs.push(json!({ "key": "process.pid", "value": { "intValue": pid.to_string() } }));
    }
    json!({ "attributes": attrs })
}

fn logs_data(resource: Value, mut log: Map<String, Value>, time: Option<&str>) -> String {
    if let Some(nanos) = time.and_then(unix_nanos) {
        log.insert("timeUnixNano".into(), json!(nanos.to_string()));
        log.insert("observedTimeUnixNano".into(), json!(nanos.to_string()));
    }
    let data = json!({ "resourceLogs": [{
        "resource": resource,
        "scopeLogs": [{
            "scope": { "name": "invite", "version": env!("CARGO_PKG_VERSION") },
            "logRecords": [Value::Object(log)],
        }],
    }]});
    let mut line = data.to_string();
    line.push('\n');
    line
}

fn test_line(t: &TestRecord) -> String {
    let mut fields = match serde_json::to_value(t) {
        Ok(Value::Object(o)) => o,
        _ => Map::new(),
    };
    for (k, v) in &t.extra {
        fields.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let (number, text) = severity(t.outcome);
    let body = t
        .message
        .clone()
        .unwrap_or_else(|| format!("{} / {}: {}", t.function, t.test, t.outcome));
    let mut log = Map::new();
    log.insert("severityNumber".into(), json!(number));
    log.insert("severityText".into(), json!(text));
    log.insert("body".into(), json!({ "stringValue": body }));
    fields.insert("kind".into(), json!("test"));
    log.insert("attributes".into(), json!(attributes(&fields, "invite.")));
    let service = t.service.as_deref().or(t.program.as_deref());
    logs_data(
        resource(t.host.as_deref(), t.pid, service),
        log,
        t.time.as_deref(),
    )
}

fn summary_line(s: &Summary) -> String {
    let sites: Vec<Value> = s
        .sites
        .iter()
        .map(|site| {
            json!({
                "function": site.function, "test": site.test, "site": site.site,
                "calls": site.calls, "sampled": site.sampled, "started": site.started,
                "skipped": site.skipped.0,
            })
        })
        .collect();
    let mut fields = Map::new();
    fields.insert("kind".into(), json!("summary"));
    fields.insert("sites".into(), json!(sites));
    if let Some(lost) = s.lost {
        fields.insert("lost".into(), json!(lost));
    }
    if !s.settings.is_empty() {
        fields.insert("settings".into(), json!(s.settings));
    }
    let mut log = Map::new();
    log.insert("severityNumber".into(), json!(9));
    log.insert("severityText".into(), json!("INFO"));
    log.insert(
        "body".into(),
        json!({ "stringValue": format!("invite summary: {} sites", s.sites.len()) }),
    );
    log.insert("attributes".into(), json!(attributes(&fields, "invite.")));
    logs_data(
        resource(s.host.as_deref(), s.pid, s.service.as_deref()),
        log,
        s.time.as_deref(),
    )
}

/// One record as one line of OTLP JSON.
pub fn line(record: &Record) -> String {
    match record {
        Record::Test(t) => test_line(t),
        Record::Summary(s) => summary_line(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(unix_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_nanos("2026-05-01T12:00:02.481337Z"),
            Some(1_777_636_802_481_337_000)
        );
        assert_eq!(
            unix_nanos("2026-05-01T14:00:02.481337+02:00"),
            unix_nanos("2026-05-01T12:00:02.481337Z")
        );
        assert_eq!(unix_nanos("yesterday"), None);
        assert_eq!(unix_nanos("2026-13-01T12:00:02Z"), None);
    }
}
