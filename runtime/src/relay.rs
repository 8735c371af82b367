//! Records of nested pods. A pod may start pods of its own (`ckpt()` inside a pod); their
//! supervisors run inside the outer pod, where no journal descriptor exists, so they send each
//! finished record to the outer pod's supervisor as an `R` frame on the status pipe.
//!
//! That pipe is written by the pod, so whatever arrives on it is only the pod's word. The
//! relaying supervisor therefore never copies bytes into the journal: it decodes the frame into
//! fields (length-prefixed, not JSON), checks each one (vocabulary, types, sizes), keeps it only if
//! its `pod` lies below the relaying pod's path, renders the record itself with its own `time`,
//! `host` and `pid`, marks it `"relayed": true`, and relays at most `MAX_RELAYED` per pod. Frames
//! that fail are counted in the relaying pod's `notes`. A hostile pod can thus make up records of
//! pods below itself, marked as such, but cannot speak for any other pod or process, nor fill
//! the journal.

use crate::journal::{TestRecord, MAX_LINE};

/// Records of nested pods one pod may relay (its own nested pods and theirs, all counted).
pub const MAX_RELAYED: usize = 64;

/// Longest relayed string field, in bytes (longer ones make the frame malformed).
const MAX_FIELD: usize = MAX_LINE;

/// Longest list (`changed`, `notes`) in a relayed record.
const MAX_LIST: usize = 4096;

/// A relayed record, decoded and checked, owning its fields.
pub struct Relayed {
    pod: String,
    site: String,
    function: String,
    test: String,
    phase: &'static str,
    outcome: &'static str,
    duration_us: u64,
    pod_us: u64,
    exit_code: Option<i32>,
    signal: Option<String>,
    message: Option<String>,
    output: String,
    changed: Vec<String>,
    isolation: &'static str,
    notes: Vec<String>,
}

/// The frame payload for `rec` (sent by a supervisor inside a pod).
pub fn encode(rec: &TestRecord) -> Vec<u8> {
    let mut b = Vec::with_capacity(256 + rec.output.len());
    let opt = |b: &mut Vec<u8>, v: Option<&str>| match v {
        Some(v) => {
            b.push(1);
            put(b, v.as_bytes());
        }
        None => b.push(0),
    };
    for f in [
        rec.pod,
        rec.site,
        rec.function,
        rec.test,
        rec.phase,
        rec.outcome,
    ] {
        put(&mut b, f.as_bytes());
    }
    put(&mut b, rec.duration_us.to_string().as_bytes());
    put(&mut b, rec.pod_us.to_string().as_bytes());
    opt(&mut b, rec.exit_code.map(|c| c.to_string()).as_deref());
    opt(&mut b, rec.signal);
    opt(&mut b, rec.message);
    put(&mut b, rec.output.as_bytes());
    put_list(&mut b, rec.changed);
    put(&mut b, rec.isolation.as_bytes());
    put_list(&mut b, rec.notes);
    b
}

fn put(b: &mut Vec<u8>, v: &[u8]) {
    b.extend_from_slice(&(v.len() as u32).to_le_bytes());
    b.extend_from_slice(v);
}

fn put_list(b: &mut Vec<u8>, v: &[String]) {
    b.extend_from_slice(&(v.len() as u32).to_le_bytes());
    for s in v {
        put(b, s.as_bytes());
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn len(&mut self) -> Option<usize> {
        let (h, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*h) as usize)
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        if n > MAX_FIELD || n > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        std::str::from_utf8(s).ok()
    }

    fn opt(&mut self) -> Option<Option<&'a str>> {
        let (&flag, rest) = self.0.split_first()?;
        self.0 = rest;
        match flag {
            0 => Some(None),
            1 => self.str().map(Some),
            _ => None,
        }
    }

    fn list(&mut self) -> Option<Vec<String>> {
        let n = self.len()?;
        if n > MAX_LIST {
            return None;
        }
        (0..n).map(|_| self.str().map(String::from)).collect()
    }
}

fn one_of(v: &str, allowed: &[&'static str]) -> Option<&'static str> {
    allowed.iter().copied().find(|a| *a == v)
}

/// `k(/k)*` with each k a decimal pod id.
fn is_pod_path(p: &str) -> bool {
    !p.is_empty()
        && p.split('/')
            .all(|k| !k.is_empty() && k.len() <= 10 && k.bytes().all(|b| b.is_ascii_digit()))
}

/// Decode and check a relayed record; `below`: the relaying pod's path, under which its `pod`
/// must lie. `None` when any field fails.
pub fn decode(payload: &[u8], below: &str) -> Option<Relayed> {
    if payload.len() > 4 * MAX_LINE {
        return None;
    }
    let mut r = Reader(payload);
    let pod = r.str()?;
    let nested = pod.strip_prefix(below)?.strip_prefix('/')?;
    if !is_pod_path(nested) {
        return None;
    }
    let (site, function, test) = (r.str()?, r.str()?, r.str()?);
    let phase = one_of(r.str()?, &["pre", "post", "manual"])?;
    let outcome = one_of(r.str()?, &["pass", "fail", "crash", "timeout", "error"])?;
    let duration_us = r.str()?.parse().ok()?;
    let pod_us = r.str()?.parse().ok()?;
    let exit_code = match r.opt()? {
        Some(c) => Some(c.parse().ok()?),
        None => None,
    };
    let signal = r.opt()?;
    if let Some(s) = signal {
        let plain = s.len() <= 16 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+');
        if !s.starts_with("SIG") || !plain {
            return None;
        }
    }
    let message = r.opt()?;
    let output = r.str()?;
    let changed = r.list()?;
    let isolation = one_of(r.str()?, &["pod", "fork"])?;
    let notes = r.list()?;
    if !r.0.is_empty() {
        return None;
    }
    Some(Relayed {
        pod: pod.to_string(),
        site: site.to_string(),
        function: function.to_string(),
        test: test.to_string(),
        phase,
        outcome,
        duration_us,
        pod_us,
        exit_code,
        signal: signal.map(String::from),
        message: message.map(String::from),
        output: output.to_string(),
        changed,
        isolation,
        notes,
    })
}

impl Relayed {
    /// The record as the relaying supervisor writes it: its own time, host and pid.
    pub fn record<'a>(&'a self, time_ns: u128, host: &'a str, pid: i32) -> TestRecord<'a> {
        TestRecord {
            time_ns,
            host,
            pid,
            pod: &self.pod,
            site: &self.site,
            function: &self.function,
            test: &self.test,
            phase: self.phase,
            outcome: self.outcome,
            duration_us: self.duration_us,
            pod_us: self.pod_us,
            exit_code: self.exit_code,
            signal: self.signal.as_deref(),
            message: self.message.as_deref(),
            output: &self.output,
            changed: &self.changed,
            isolation: self.isolation,
            notes: &self.notes,
            relayed: true,
            unreliable: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(pod: &'a str, changed: &'a [String]) -> TestRecord<'a> {
        TestRecord {
            time_ns: 1,
            host: "h",
            pid: 7,
            pod,
            site: "a.c:1",
            function: "f",
            test: "t",
            phase: "manual",
            outcome: "crash",
            duration_us: 42,
            pod_us: 7,
            exit_code: None,
            signal: Some("SIGSEGV"),
            message: Some("m"),
            output: "out",
            changed,
            isolation: "fork",
            notes: &[],
            relayed: false,
            unreliable: false,
        }
    }

    #[test]
    fn a_record_survives_the_trip_and_is_marked() {
        let changed = vec!["/x".to_string()];
        let b = encode(&rec("3/1/2", &changed));
        let r = decode(&b, "3").expect("decoded");
        let line = r.record(9, "me", 11).to_line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["pod"], "3/1/2");
        assert_eq!(v["pid"], 11);
        assert_eq!(v["host"], "me");
        assert_eq!(v["relayed"], true);
        assert_eq!(v["signal"], "SIGSEGV");
        assert_eq!(v["changed"][0], "/x");
    }

    #[test]
    fn anything_else_is_refused() {
        let b = encode(&rec("3/1", &[]));
        assert!(decode(&b, "4").is_none(), "another pod's path");
        assert!(decode(&b, "3/1").is_none(), "its own path");
        assert!(decode(&encode(&rec("3", &[])), "3").is_none());
        assert!(decode(&encode(&rec("3/x", &[])), "3").is_none());
        for cut in 0..b.len() {
            assert!(decode(&b[..cut], "3").is_none(), "cut at {cut}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(decode(&longer, "3").is_none());
        let json = br#"{"schema":1,"kind":"test","pod":"3/1"}"#;
        assert!(decode(json, "3").is_none());
        let mut bad = rec("3/1", &[]);
        bad.outcome = "passed";
        assert!(decode(&encode(&bad), "3").is_none());
        let mut bad = rec("3/1", &[]);
        bad.signal = Some("\u{1b}[2J");
        assert!(decode(&encode(&bad), "3").is_none());
    }
}
