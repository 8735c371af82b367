//! `invite checkpoints`, `invite branch NAME [-n K]`, `invite drop NAME`: the live checkpoints
//! of running processes (`invite_checkpoint()`), over their sockets (`crate::live`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use crate::error::Error;
use crate::live::{self, Fields, Refused, Socket};
use crate::render::{Align, Table};
use crate::term;

/// The deadline of an `INFO` or `DROP` exchange, answer included.
const INFO_TIMEOUT: Duration = Duration::from_secs(5);
/// The deadline of a `BRANCH`, which waits while `INVITE_MAX_CONCURRENT` of the checkpoint's pods
/// run (each bounded by `INVITE_TIMEOUT_MS`).
const BRANCH_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(clap::Args)]
pub struct ListArgs {
    /// Where the sockets are [default: $INVITE_CHECKPOINT_DIR, else this user's (root: everyone's)]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// List as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct BranchArgs {
    /// The checkpoint's name, as `invite checkpoints` lists it.
    name: String,

    /// How many pods to start, one after another.
    #[arg(short = 'n', value_name = "K", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    count: u32,

    /// The process, when several have a checkpoint of that name.
    #[arg(long)]
    pid: Option<u32>,

    /// Where the sockets are [default: as for `invite checkpoints`]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct DropArgs {
    /// The checkpoint's name, as `invite checkpoints` lists it.
    name: String,

    /// The process, when several have a checkpoint of that name.
    #[arg(long)]
    pid: Option<u32>,

    /// Where the sockets are [default: as for `invite checkpoints`]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct Row {
    name: String,
    pid: u32,
    parked_pid: Option<u64>,
    uid: Option<u64>,
    age_ms: Option<u64>,
    rss_kb: Option<u64>,
    private_kb: Option<u64>,
    branches: Option<u64>,
    running: Option<u64>,
    socket: String,
}

pub fn list(args: ListArgs) -> Result<ExitCode, Error> {
    let (sockets, warnings) = live::scan(&live::dirs(args.dir));
    for warning in &warnings {
        eprintln!("{}", term::cell(warning));
    }
    let mut rows = Vec::new();
    for s in &sockets {
        match live::request(s, invite_vocab::live::INFO, INFO_TIMEOUT) {
            Ok(f) => rows.push(row(s, &f)),
            Err(Refused::Stale) => {}
            Err(e) => {
                let warning = format!("{}: warning: {e}", s.path.display());
                eprintln!("{}", term::cell(&warning));
            }
        }
    }
    let out = if args.json {
        let mut t = serde_json::to_string_pretty(&rows).expect("rows serialize");
        t.push('\n');
        term::json(&t).into_owned()
    } else if rows.is_empty() {
        "no live checkpoints\n".to_string()
    } else {
        let mut table = Table::new(&[
            ("NAME", Align::Left),
            ("PID", Align::Right),
            ("AGE", Align::Right),
            ("RESIDENT", Align::Right),
            ("PRIVATE", Align::Right),
            ("BRANCHES", Align::Right),
            ("RUNNING", Align::Right),
        ]);
        let n = |v: Option<u64>| v.map_or("?".into(), |v| v.to_string());
        for r in &rows {
            table.push(vec![
                r.name.clone(),
                r.pid.to_string(),
                r.age_ms.map_or("?".into(), age),
                r.rss_kb.map_or("?".into(), size),
                r.private_kb.map_or("?".into(), size),
                n(r.branches),
                n(r.running),
            ]);
        }
        let mut out = String::new();
        table.render(&mut out);
        out
    };
    super::write_stdout(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

pub fn branch(args: BranchArgs) -> Result<ExitCode, Error> {
    let s = find(&args.name, args.pid, args.dir)?;
    let mut out = String::new();
    for _ in 0..args.count {
        let f = live::request(&s, invite_vocab::live::BRANCH, BRANCH_TIMEOUT)
            .map_err(|e| refused(&s, "branch", e))?;
        let pod = f.get("pod").map_or("?", String::as_str);
        out.push_str(&format!(
            "started pod {} of process {}\n",
            term::cell(pod),
            s.pid
        ));
    }
    super::write_stdout(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

pub fn drop(args: DropArgs) -> Result<ExitCode, Error> {
    let s = find(&args.name, args.pid, args.dir)?;
    live::request(&s, invite_vocab::live::DROP, INFO_TIMEOUT)
        .map_err(|e| refused(&s, "drop", e))?;
    let out = format!("dropped checkpoint {} of process {}\n", s.name, s.pid);
    super::write_stdout(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn refused(s: &Socket, what: &str, e: Refused) -> Error {
    Error::Live(format!(
        "cannot {what} checkpoint {} of process {} ({}): {e}",
        s.name,
        s.pid,
        s.path.display()
    ))
}

/// The one socket of checkpoint `name` (of process `pid`).
fn find(name: &str, pid: Option<u32>, dir: Option<PathBuf>) -> Result<Socket, Error> {
    let dirs = live::dirs(dir);
    let (sockets, warnings) = live::scan(&dirs);
    let mut matching: Vec<Socket> = sockets
        .into_iter()
        .filter(|s| s.name == name && pid.unwrap_or(s.pid) == s.pid)
        .collect();
    if matching.len() > 1 {
        // Leave out sockets whose process is gone before calling it ambiguous.
        matching.retain(|s| {
            !matches!(
                live::request(s, invite_vocab::live::INFO, INFO_TIMEOUT),
                Err(Refused::Stale)
            )
        });
    }
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => {
            let of = pid.map_or(String::new(), |p| format!(" of process {p}"));
            let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            let mut m = format!(
                "no live checkpoint {name:?}{of} (looked in {}; `invite checkpoints` lists them)",
                looked.join(", ")
            );
            for warning in warnings {
                m.push_str(&format!("; {warning}"));
            }
            Err(Error::Live(m))
        }
        _ => {
            let pids: Vec<String> = matching.iter().map(|s| s.pid.to_string()).collect();
            Err(Error::Live(format!(
                "several processes have a checkpoint {name:?} (pids {}): give --pid",
                pids.join(", ")
            )))
        }
    }
}

fn row(s: &Socket, f: &Fields) -> Row {
    let num = |k: &str| f.get(k).and_then(|v| v.parse().ok());
    Row {
        name: f.get("name").cloned().unwrap_or_else(|| s.name.clone()),
        pid: s.pid,
        parked_pid: num("parked"),
        uid: num("uid"),
        age_ms: num("age_ms"),
        rss_kb: num("rss_kb"),
        private_kb: num("private_kb"),
        branches: num("branches"),
        running: num("running"),
        socket: s.path.display().to_string(),
    }
}

/// `42 s`, `3 min 5 s`, `2 h 10 min`.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s / 60 % 60),
    }
}

/// `640 KiB`, `12.5 MiB`, `1.20 GiB`.
fn size(kb: u64) -> String {
    match kb {
        0..1024 => format!("{kb} KiB"),
        1024..1_048_576 => format!("{:.1} MiB", kb as f64 / 1024.0),
        _ => format!("{:.2} GiB", kb as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_read_well() {
        assert_eq!(age(42_500), "42 s");
        assert_eq!(age(185_000), "3 min 5 s");
        assert_eq!(age(7_800_000), "2 h 10 min");
        assert_eq!(size(640), "640 KiB");
        assert_eq!(size(12_800), "12.5 MiB");
        assert_eq!(size(1_258_291), "1.20 GiB");
    }
}
