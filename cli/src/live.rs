//! The client side of live checkpoints: find the sockets of running processes' checkpoints and
//! speak their line protocol (docs/live-checkpoints.md). The runtime's `live` module is the server.
//!
//! Where to look: `--dir`, else `$INVITE_CHECKPOINT_DIR`, else the places the runtime uses for this
//! user — `$XDG_RUNTIME_DIR/invite` and `/tmp/invite-<uid>` — and, for root, every user's.
//!
//! Whom to believe: a socket is used only if it, its directory and the process serving it belong
//! to one user, and that user is the caller (root may talk to every user's). An answer is one line
//! of at most [`MAX_ANSWER`] bytes that must arrive whole before the exchange's deadline: a socket
//! that trickles a byte at a time or never ends its line cannot hang the command or grow it.

use invite_vocab::live;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest answer line read, in bytes.
pub const MAX_ANSWER: usize = 4096;

/// A checkpoint socket found in a directory: `<pid>.<name>.sock`.
#[derive(Clone, Debug)]
pub struct Socket {
    pub path: PathBuf,
    pub pid: u32,
    pub name: String,
    /// The user the socket file, its directory and (checked on connect) its server belong to.
    pub uid: u32,
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
    /// No whole answer before the deadline.
    Timeout(Duration),
    /// An answer line longer than [`MAX_ANSWER`].
    TooLong,
    /// The process behind the socket is not the user the socket belongs to.
    Impostor { expected: u32, found: u32 },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Stale => f.write_str("nobody answers (its process is gone)"),
            Refused::Io(e) => write!(f, "{e}"),
            Refused::Answer(m) => f.write_str(m),
            Refused::Timeout(d) => write!(f, "no answer within {} s", d.as_secs_f64()),
            Refused::TooLong => write!(f, "an answer line longer than {MAX_ANSWER} bytes"),
            Refused::Impostor { expected, found } => write!(
                f,
                "served by a process of uid {found}, not of uid {expected} who owns the socket"
            ),
        }
    }
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
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

/// The sockets in `dirs` that can be trusted, and a warning for each directory that could not be
/// read and each socket that was not trusted.
pub fn scan(dirs: &[PathBuf]) -> (Vec<Socket>, Vec<String>) {
    let me = euid();
    let mut found = Vec::new();
    let mut warnings = Vec::new();
    for dir in dirs {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                warnings.push(format!("{}: warning: cannot read: {e}", dir.display()));
                continue;
            }
        };
        let Ok(dir_owner) = std::fs::metadata(dir).map(|m| m.uid()) else {
            continue;
        };
        for entry in rd.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = file.strip_suffix(".sock") else {
                continue;
            };
            let Some((pid, name)) = stem.split_once('.') else {
                continue;
            };
            let Ok(pid) = pid.parse() else {
                continue;
            };
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let uid = meta.uid();
            let why = if !meta.file_type().is_socket() {
                Some("not a socket".to_string())
            } else if uid != dir_owner {
                Some(format!(
                    "owned by uid {uid}, its directory by uid {dir_owner}"
                ))
            } else if me != 0 && uid != me {
                Some(format!("owned by uid {uid}, not by you (uid {me})"))
            } else {
                None
            };
            match why {
                Some(why) => warnings.push(format!("{}: warning: {why}; ignored", path.display())),
                None => found.push(Socket {
                    path,
                    pid,
                    name: name.to_string(),
                    uid,
                }),
            }
        }
    }
    found.sort_by(|a, b| (a.pid, &a.name).cmp(&(b.pid, &b.name)));
    (found, warnings)
}

/// Sends one request line and reads the one-line answer, all within `timeout`.
pub fn request(socket: &Socket, line: &str, timeout: Duration) -> Result<Fields, Refused> {
    let deadline = Instant::now() + timeout;
    let mut conn = UnixStream::connect(&socket.path).map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => Refused::Stale,
        _ => Refused::Io(e),
    })?;
    let peer = rustix::net::sockopt::socket_peercred(&conn)
        .map_err(|e| Refused::Io(e.into()))?
        .uid
        .as_raw();
    if peer != socket.uid {
        return Err(Refused::Impostor {
            expected: socket.uid,
            found: peer,
        });
    }
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(Refused::Timeout(timeout))
    };
    conn.set_write_timeout(Some(left()?)).map_err(Refused::Io)?;
    // A refusal may come before the request is read: look for the answer even if writing fails.
    let sent = conn.write_all(format!("{line}\n").as_bytes());
    let mut answer = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    let read = loop {
        conn.set_read_timeout(Some(left()?)).map_err(Refused::Io)?;
        match conn.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                answer.extend_from_slice(&chunk[..n]);
                if let Some(end) = answer.iter().position(|&b| b == b'\n') {
                    answer.truncate(end + 1);
                    break Ok(());
                }
                if answer.len() > MAX_ANSWER {
                    return Err(Refused::TooLong);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Refused::Timeout(timeout))
            }
            Err(e) => break Err(e),
        }
    };
    let answer = String::from_utf8_lossy(&answer);
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
        let (found, warnings) = scan(&[d.path().to_path_buf(), d.path().join("missing")]);
        assert_eq!(found.len(), 0, "plain files are not sockets");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        for f in ["42.demo.sock", "7.warm-1.sock"] {
            std::fs::remove_file(d.path().join(f)).unwrap();
            std::os::unix::net::UnixListener::bind(d.path().join(f)).unwrap();
        }
        let (found, _) = scan(&[d.path().to_path_buf()]);
        let got: Vec<(u32, &str)> = found.iter().map(|s| (s.pid, s.name.as_str())).collect();
        assert_eq!(got, [(7, "warm-1"), (42, "demo")]);
    }
}
