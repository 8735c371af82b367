//! `invite`: reports from in vivo test journals, kept pods, and live checkpoints.
//!
//! The flow of `invite report`: `journal` (read lines into records, warn about the rest) →
//! `report` (aggregate per function and test) → `render` (table or JSON). `invite pods` reads the
//! kept-pod directories through `pods`. `invite checkpoints`, `branch` and `drop` talk to live
//! checkpoints through `live`. Each subcommand's arguments and entry point live in
//! `cmd/`.
//!
//! Exit status: 0 on success, 1 when `report --fail-on` found a listed outcome, 2 on an error
//! (a missing journal, a pod that does not exist, a usage error).

mod cmd;
mod error;
mod journal;
mod live;
mod pods;
mod render;
mod report;
#[cfg(test)]
mod vocab_check;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// One row per function and test: runs, outcomes, skipped, median and p99 duration.
    Report(cmd::report::Args),
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
        Command::Pods(args) => cmd::pods::run(args),
        Command::Checkpoints(args) => cmd::checkpoints::list(args),
        Command::Branch(args) => cmd::checkpoints::branch(args),
        Command::Drop(args) => cmd::checkpoints::drop(args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("invite: error: {e}");
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
