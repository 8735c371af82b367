//! The client side of live checkpoints: find the sockets of running processes' checkpoints and
//! speak their line protocol (docs/live-checkpoints.md). The runtime's `live` module is the server.
//!
//! Where to look: `--dir`, else `$INVITE_CHECKPOINT_DIR`, else the places the runtime uses for this
//! user — `$XDG_RUNTIME_DIR/invite` and `/tmp/invite-<uid>` — and, for root, every user's.

use invite_vocab::live;
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A checkpoint socket found in a directory: `<pid>.<name>.sock`.
#[derive(Clone, Debug)]
pub struct Socket {
    pub path: PathBuf,
    pub pid: u32,
    pub name: String,
}

/// The fields of an `OK` answer.
pub type Fields = BTreeMap<String, String>;

/// Why a request got no `OK`.
#[derive(Debug)]
pub enum Refused {
    /// Nobody listens: the process was killed and left its socket behind.
    Stale,
    /// Connecting or talking failed (permission denied: another user's checkpoint).
    Io(io::Error),
    /// The parked copy answered `ERR message`.
    Answer(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Stale => f.write_str("nobody answers (its process is gone)"),
            Refused::Io(e) => write!(f, "{e}"),
            Refused::Answer(m) => f.write_str(m),
        }
    }
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// The directories to look in.
pub fn dirs(flag: Option<PathBuf>) -> Vec<PathBuf> {
    if let Some(d) = flag.or_else(|| std::env::var_os("INVITE_CHECKPOINT_DIR").map(PathBuf::from)) {
        return vec![d];
    }
    let uid = euid();
    let mut v = Vec::new();
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR") {
        v.push(Path::new(&run).join("invite"));
    }
    v.push(PathBuf::from(format!("/tmp/invite-{uid}")));
    if uid == 0 {
        let users = |parent: &str, prefix: &str, child: &str| -> Vec<PathBuf> {
            let Ok(rd) = std::fs::read_dir(parent) else {
                return Vec::new();
            };
            let mut found: Vec<PathBuf> = rd
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path().join(child))
                .collect();
            found.sort();
            found
        };
        v.extend(users("/tmp", "invite-", ""));
        v.extend(users("/run/user", "", "invite"));
    }
    let mut seen = Vec::new();
    v.retain(|d| {
        let d = d.components().collect::<PathBuf>();
        let new = !seen.contains(&d);
        seen.push(d);
        new
    });
    v
}

/// The sockets in `dirs`, and the directories that exist but could not be read.
pub fn scan(dirs: &[PathBuf]) -> (Vec<Socket>, Vec<(PathBuf, io::Error)>) {
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    for dir in dirs {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                unreadable.push((dir.clone(), e));
                continue;
            }
        };
        for entry in rd.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = file.strip_suffix(".sock") else {
                continue;
            };
            let Some((pid, name)) = stem.split_once('.') else {
                continue;
            };
            if let Ok(pid) = pid.parse() {
                found.push(Socket {
                    path: entry.path(),
                    pid,
                    name: name.to_string(),
                });
            }
        }
    }
    found.sort_by(|a, b| (a.pid, &a.name).cmp(&(b.pid, &b.name)));
    (found, unreadable)
}

/// Send one request line and read the one-line answer. `timeout` bounds the wait for it
/// (`None`: a branch may wait for a free slot).
pub fn request(socket: &Path, line: &str, timeout: Option<Duration>) -> Result<Fields, Refused> {
    let mut conn = UnixStream::connect(socket).map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Refused::Stale,
        _ => Refused::Io(e),
    })?;
    conn.set_read_timeout(timeout).map_err(Refused::Io)?;
    // A refusal may come before the request is read: look for the answer even if writing fails.
    let sent = conn.write_all(format!("{line}\n").as_bytes());
    let mut answer = String::new();
    let read = BufReader::new(&conn).read_line(&mut answer);
    match (sent, read) {
        (Err(e), _) if answer.is_empty() => Err(Refused::Io(e)),
        (_, Err(e)) if answer.is_empty() => Err(Refused::Io(e)),
        _ => parse_answer(&answer),
    }
}

fn parse_answer(answer: &str) -> Result<Fields, Refused> {
    let answer = answer.trim_end();
    if let Some(m) = answer
        .strip_prefix(live::ERR)
        .and_then(|a| a.strip_prefix(' '))
    {
        return Err(Refused::Answer(m.to_string()));
    }
    let Some(rest) = answer.strip_prefix(live::OK) else {
        let shown = if answer.is_empty() {
            "no answer (the connection closed)".to_string()
        } else {
            format!("an answer that is not OK or ERR: {answer:?}")
        };
        return Err(Refused::Answer(shown));
    };
    Ok(rest
        .split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let f = parse_answer("OK id=3 pod=demo/3\n").unwrap();
        assert_eq!(f["id"], "3");
        assert_eq!(f["pod"], "demo/3");
        assert!(parse_answer("OK dropped\n")
            .unwrap()
            .contains_key("dropped"));
        match parse_answer("ERR permission denied: uid 65534\n") {
            Err(Refused::Answer(m)) => assert_eq!(m, "permission denied: uid 65534"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse_answer(""), Err(Refused::Answer(_))));
    }

    #[test]
    fn sockets_are_found_by_name() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "42.demo.sock",
            "7.warm-1.sock",
            "junk",
            "x.demo.sock",
            "9.sock",
        ] {
            std::fs::write(d.path().join(f), "").unwrap();
        }
        let (found, bad) = scan(&[d.path().to_path_buf(), d.path().join("missing")]);
        assert!(bad.is_empty());
        let got: Vec<(u32, &str)> = found.iter().map(|s| (s.pid, s.name.as_str())).collect();
        assert_eq!(got, [(7, "warm-1"), (42, "demo")]);
    }
}
