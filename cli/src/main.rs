//! The `invite` command line; everything it runs is in the `invite_cli` library (see its docs).

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use invite_cli::{cmd, term};

#[derive(Parser)]
#[command(
    name = "invite",
    version,
    about = "Reports from in vivo test journals, and the pods kept after tests.",
    after_help = "Exit status: 0 on success; 1 when `report --fail-on` found a listed outcome; \
                  2 on an error (a missing journal, an unknown pod, a usage error)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One row per function and test: runs, outcomes, skipped and why, median and p99 duration;
    /// also as HTML (--html), JUnit XML (--junit), or live (--follow).
    Report(cmd::report::Args),
    /// Export the journal for other tools: OpenTelemetry logs (OTLP JSON) or Prometheus metrics.
    Export(cmd::export::Args),
    /// Kept pods (INVITE_KEEP_PODS): their outcome and the files they changed.
    Pods(cmd::pods::Args),
    /// Live checkpoints of running processes: name, pid, age, memory, branches so far.
    Checkpoints(cmd::checkpoints::ListArgs),
    /// Start pods from a live checkpoint: each returns from invite_checkpoint() with its id.
    Branch(cmd::checkpoints::BranchArgs),
    /// Discard a live checkpoint (pods already started from it run to their end).
    Drop(cmd::checkpoints::DropArgs),
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, kind] = &argv[..] {
        if flag == "--generate" {
            return generate(kind);
        }
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Report(args) => cmd::report::run(args),
        Command::Export(args) => cmd::export::run(args),
        Command::Pods(args) => cmd::pods::run(args),
        Command::Checkpoints(args) => cmd::checkpoints::list(args),
        Command::Branch(args) => cmd::checkpoints::branch(args),
        Command::Drop(args) => cmd::checkpoints::drop(args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("invite: error: {}", term::cell(&e.to_string()));
        ExitCode::from(2)
    })
}

/// `invite --generate man|bash|zsh|fish|elvish|powershell`, for packagers (scripts/deb.sh): the
/// man page or a completion script, from the argument definitions above, on stdout.
fn generate(kind: &str) -> ExitCode {
    let mut cmd = Cli::command();
    let out = &mut std::io::stdout();
    let done = match kind {
        "man" => clap_mangen::Man::new(cmd)
            .render(out)
            .map_err(|e| e.to_string()),
        shell => match shell.parse::<clap_complete::Shell>() {
            Ok(shell) => {
                clap_complete::generate(shell, &mut cmd, "invite", out);
                Ok(())
            }
            Err(_) => Err(format!(
                "--generate: unknown kind '{kind}' (man, bash, zsh, fish, elvish, powershell)"
            )),
        },
    };
    done.map_or_else(
        |e| {
            eprintln!("invite: error: {e}");
            ExitCode::from(2)
        },
        |()| ExitCode::SUCCESS,
    )
}
