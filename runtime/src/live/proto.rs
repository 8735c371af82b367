//! The line protocol on a checkpoint's socket, version 1. One request per connection: the client
//! sends one line, the parked copy answers one line and closes.
//!
//! | request | answer |
//! |---|---|
//! | `INFO` | `OK name=N pid=P parked=Q uid=U age_ms=A rss_kb=R private_kb=V branches=B running=C` |
//! | `BRANCH` | `OK id=K pod=N/K` once the k-th pod is started (waits while `INVITE_MAX_CONCURRENT` of its pods run) |
//! | `DROP` | `OK dropped`; the socket is removed and the copy exits once its pods have ended |
//! | `PERSIST DIR` | `ERR ...` today: the seam for a CRIU backend (`backend`) |
//!
//! Any failure is `ERR message`. Values never contain spaces; unknown keys are to be ignored by
//! clients, so fields can be added.

use invite_vocab::live::{BRANCH, DROP, ERR, INFO, OK, PERSIST};
use std::fmt::Write as _;

/// Longest request line read.
pub const MAX_REQUEST: usize = 4096;

#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    Info,
    Branch,
    Drop,
    Persist(String),
}

pub fn parse(line: &str) -> Result<Request, String> {
    let line = line.trim_end_matches(['\n', '\r']);
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    match (verb, arg) {
        (INFO, "") => Ok(Request::Info),
        (BRANCH, "") => Ok(Request::Branch),
        (DROP, "") => Ok(Request::Drop),
        (PERSIST, dir) if dir.starts_with('/') => Ok(Request::Persist(dir.to_string())),
        _ => Err(format!(
            "unknown request {:?} (expected INFO, BRANCH, DROP or PERSIST /DIR)",
            line.chars().take(64).collect::<String>()
        )),
    }
}

/// What `INFO` reports.
pub struct Info<'a> {
    pub name: &'a str,
    pub host_pid: i32,
    pub parked_pid: i32,
    pub uid: u32,
    pub age_ms: u64,
    pub branches: u32,
    pub running: u32,
}

impl Info<'_> {
    pub fn line(&self) -> String {
        let (rss, private) = memory_kb();
        let mut s = String::from(OK);
        let _ = write!(
            s,
            " name={} pid={} parked={} uid={} age_ms={} rss_kb={rss} private_kb={private} \
             branches={} running={}",
            self.name,
            self.host_pid,
            self.parked_pid,
            self.uid,
            self.age_ms,
            self.branches,
            self.running
        );
        s.push('\n');
        s
    }
}

pub fn ok(fields: &str) -> String {
    format!("{OK} {fields}\n")
}

pub fn err(message: &str) -> String {
    format!("{ERR} {}\n", message.replace(['\n', '\r'], " "))
}

/// Resident size of the parked copy, and the part of it that is its own: pages that diverged
/// from the host (the host changed them after the checkpoint), which is what it costs.
fn memory_kb() -> (u64, u64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/smaps_rollup") else {
        return (0, 0);
    };
    let field = |name: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (
        field("Rss:"),
        field("Private_Clean:") + field("Private_Dirty:"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(parse("INFO\n"), Ok(Request::Info));
        assert_eq!(parse("BRANCH\r\n"), Ok(Request::Branch));
        assert_eq!(parse("DROP"), Ok(Request::Drop));
        assert_eq!(
            parse("PERSIST /var/tmp/x"),
            Ok(Request::Persist("/var/tmp/x".into()))
        );
        assert!(parse("PERSIST relative").is_err());
        assert!(parse("branch").is_err());
        assert!(parse("INFO extra").is_err());
    }

    #[test]
    fn answers_are_one_line() {
        assert_eq!(err("a\nb"), "ERR a b\n");
        let line = Info {
            name: "demo",
            host_pid: 10,
            parked_pid: 12,
            uid: 0,
            age_ms: 5,
            branches: 2,
            running: 1,
        }
        .line();
        assert!(line.starts_with("OK name=demo pid=10 parked=12 uid=0 age_ms=5 rss_kb="));
        assert!(line.ends_with(" branches=2 running=1\n"));
        assert_eq!(line.matches('\n').count(), 1);
    }
}
