//! `invite pods`, `invite pods show POD`, `invite pods cat POD PATH`.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::error::Error;
use crate::pods::{self, KeptPod};
use crate::render::{self, Align, Table};
use crate::term;

/// The most of a changed file `pods cat` escapes for a terminal; to a pipe or file it is copied
/// whole.
const CAT_TERMINAL_MAX: u64 = 16 << 20;

#[derive(clap::Args)]
pub struct Args {
    /// Where the pods were kept [default: $INVITE_POD_DIR, else invite-pods]
    #[arg(long, value_name = "DIR", global = true)]
    dir: Option<PathBuf>,

    /// List the pods as JSON.
    #[arg(long)]
    json: bool,

    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Print a pod's record: test, outcome, message, changed files, output.
    Show {
        /// `<pid>.<pod>` as `invite pods` lists it, or just the pod path when it is unambiguous.
        pod: String,
        /// Print `record.json` as the runtime wrote it.
        #[arg(long)]
        json: bool,
    },
    /// Print one file as the pod left it.
    Cat {
        /// `<pid>.<pod>` as `invite pods` lists it, or just the pod path when it is unambiguous.
        pod: String,
        /// The file's absolute path, as the pod saw it.
        path: String,
    },
}

pub fn run(args: Args) -> Result<ExitCode, Error> {
    let dir = pods::pod_dir(args.dir);
    let kept = pods::list(&dir)?;
    if args.action.is_none() {
        for pod in &kept {
            if let Err(why) = &pod.record {
                let warning = format!("{}: warning: {why}", pod.record_path().display());
                eprintln!("{}", term::cell(&warning));
            }
        }
    }
    let out = match args.action {
        None if args.json => list_json(&kept),
        None => list_text(&kept, &dir),
        Some(Action::Show { pod, json }) => {
            let pod = pods::resolve(&kept, &dir, &pod)?;
            if let Err(why) = &pod.record {
                return Err(Error::BadRecord {
                    pod: pod.id.clone(),
                    why: why.clone(),
                });
            }
            if json {
                let bytes = pod.record_bytes()?;
                term::json(&String::from_utf8_lossy(&bytes))
                    .into_owned()
                    .into_bytes()
            } else {
                show_text(pod).into_bytes()
            }
        }
        Some(Action::Cat { pod, path }) => {
            let file = pods::resolve(&kept, &dir, &pod)?.cat(&path)?;
            return cat(file, &path).map(|()| ExitCode::SUCCESS);
        }
    };
    super::write_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// A changed file to standard output: byte for byte to a pipe or file, escaped on a terminal.
fn cat(mut file: std::fs::File, path: &str) -> Result<(), Error> {
    use std::io::{IsTerminal, Read};
    let read_error = |source| Error::Read {
        path: path.into(),
        source,
    };
    if !std::io::stdout().is_terminal() {
        let mut out = super::Output::stdout();
        std::io::copy(&mut file, &mut out).map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => out.error(e),
            _ => read_error(e),
        })?;
        return out.finish();
    }
    let mut bytes = Vec::new();
    file.take(CAT_TERMINAL_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > CAT_TERMINAL_MAX {
        return Err(Error::Usage(format!(
            "{} is larger than 16 MiB: redirect it to a file or a pager (`| less`)",
            term::cell(path)
        )));
    }
    super::write_stdout(term::bytes(&bytes).as_bytes())
}

fn list_text(kept: &[KeptPod], dir: &std::path::Path) -> Vec<u8> {
    if kept.is_empty() {
        let dir = dir.display().to_string();
        return format!("no kept pods in {}\n", term::cell(&dir)).into_bytes();
    }
    let mut table = Table::new(&[
        ("POD", Align::Left),
        ("OUTCOME", Align::Left),
        ("FUNCTION", Align::Left),
        ("TEST", Align::Left),
        ("CHANGED", Align::Left),
    ]);
    for pod in kept {
        let (outcome, function, test) = match &pod.record {
            Ok(r) => (r.outcome.to_string(), r.function.clone(), r.test.clone()),
            Err(_) => ("?".into(), "(unreadable record.json)".into(), String::new()),
        };
        let mut changes = pod.changes().into_iter().map(|c| {
            if c.removed {
                format!("{} (removed)", c.path)
            } else {
                c.path
            }
        });
        let first = changes.next().unwrap_or_else(|| "-".into());
        table.push(vec![pod.id.clone(), outcome, function, test, first]);
        for more in changes {
            let blank = String::new;
            table.push(vec![blank(), blank(), blank(), blank(), more]);
        }
    }
    let mut out = String::new();
    table.render(&mut out);
    out.into_bytes()
}

#[derive(Serialize)]
struct PodJson<'a> {
    pod: &'a str,
    pid: Option<u64>,
    path: &'a str,
    dir: String,
    outcome: Option<String>,
    function: Option<&'a str>,
    test: Option<&'a str>,
    changed: Vec<ChangeJson>,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct ChangeJson {
    path: String,
    removed: bool,
}

fn list_json(kept: &[KeptPod]) -> Vec<u8> {
    let pods: Vec<PodJson> = kept
        .iter()
        .map(|pod| PodJson {
            pod: &pod.id,
            pid: pod.pid,
            path: &pod.path,
            dir: pod.root.display().to_string(),
            outcome: pod.record.as_ref().ok().map(|r| r.outcome.to_string()),
            function: pod.record.as_ref().ok().map(|r| r.function.as_str()),
            test: pod.record.as_ref().ok().map(|r| r.test.as_str()),
            changed: pod
                .changes()
                .into_iter()
                .map(|c| ChangeJson {
                    path: c.path,
                    removed: c.removed,
                })
                .collect(),
            error: pod.record.as_ref().err().map(String::as_str),
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&pods).expect("pods serialize");
    text.push('\n');
    term::json(&text).into_owned().into_bytes()
}

fn show_text(pod: &KeptPod) -> String {
    let Ok(r) = &pod.record else {
        unreachable!("checked by the caller")
    };
    let mut fields: Vec<(&str, String)> =
        vec![("pod", format!("{} ({})", pod.id, pod.root.display()))];
    let mut field = |name, value: Option<String>| {
        if let Some(value) = value {
            fields.push((name, value));
        }
    };
    field("function", Some(r.function.clone()));
    field("test", Some(r.test.clone()));
    field("phase", r.phase.clone());
    let how = render::outcome_text(r.outcome, r.signal.as_deref(), r.exit_code);
    field("outcome", Some(how));
    field("site", r.site.clone());
    field("time", r.time.clone());
    field("host", r.host.clone());
    field("duration", Some(render::duration(r.duration_us)));
    field("pod time", r.pod_us.map(render::duration));
    field("isolation", r.isolation.clone());
    field("message", r.message.clone());

    let mut out = String::new();
    for (name, value) in &fields {
        let mut lines = value.lines().map(term::cell);
        let first = lines.next().unwrap_or_default();
        let _ = writeln!(out, "{name:<10} {first}");
        for line in lines {
            let _ = writeln!(out, "{:<10} {line}", "");
        }
    }
    let changes = pod.changes();
    if changes.is_empty() {
        let _ = writeln!(out, "{:<10} -", "changed");
    }
    for (i, change) in changes.iter().enumerate() {
        let name = if i == 0 { "changed" } else { "" };
        let removed = if change.removed { " (removed)" } else { "" };
        let _ = writeln!(out, "{name:<10} {}{removed}", term::cell(&change.path));
    }
    if r.output.is_empty() {
        let _ = writeln!(out, "{:<10} (none)", "output");
    } else {
        let cut = if r.truncated {
            " (cut to fit the journal)"
        } else {
            ""
        };
        let _ = writeln!(out, "output{cut}:");
        out.push_str(&term::lines(&r.output));
        if !r.output.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
