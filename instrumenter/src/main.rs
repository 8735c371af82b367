//! `invite-precompile`: the command line of the C precompiler. See the library docs and
//! docs/ic-format.md.

use clap::{CommandFactory, Parser};
use invite_instrumenter::{
    docgen, instrument_dir_report, instrument_file, instrument_to_writer, skeleton_file,
    skeleton_of, Error, Runtime,
};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Rewrite FILE.c so the functions named in FILE.ic run in vivo tests.
#[derive(Parser, Debug)]
#[command(name = "invite-precompile", version, about, long_about = None)]
struct Args {
    /// The C file to instrument.
    #[arg(required_unless_present_any = ["dir", "cflags", "libs", "pkg_config"], conflicts_with = "dir")]
    file: Option<PathBuf>,
    /// The tests (default: FILE.c with the extension .ic).
    #[arg(conflicts_with = "skeleton")]
    ic: Option<PathBuf>,
    /// Write the output here (atomically; only a regular file, or /dev/null) instead of to stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Write a starter .ic for FILE.c instead: a pre block and an empty test per function.
    #[arg(long, requires = "file")]
    skeleton: bool,
    /// Instrument every x.c under SRC that has an x.ic beside it ...
    #[arg(long, value_name = "SRC", requires = "out")]
    dir: Option<PathBuf>,
    /// ... into the same relative path under DST.
    #[arg(long, value_name = "DST", requires = "dir")]
    out: Option<PathBuf>,
    /// Print the flags that compile instrumented C against the runtime.
    #[arg(long)]
    cflags: bool,
    /// Print the flags that link against the runtime (static; put them after the objects).
    #[arg(long)]
    libs: bool,
    /// Print an invite.pc for pkg-config (`> DIR/invite.pc`, then PKG_CONFIG_PATH=DIR).
    #[arg(long)]
    pkg_config: bool,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, kind] = &argv[..] {
        if flag == "--generate" {
            // For packagers (scripts/deb.sh): the man page or a completion script.
            return match docgen::generate(Args::command(), kind, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("invite-precompile: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn stdout(bytes: &[u8]) -> Result<(), Error> {
    std::io::stdout().write_all(bytes).map_err(|e| Error::Io {
        path: "<stdout>".into(),
        what: "cannot write",
        source: e,
    })
}

fn run(args: Args) -> Result<(), Error> {
    if args.cflags || args.libs || args.pkg_config {
        let mut rt = Runtime::locate()?;
        if args.libs || args.pkg_config {
            rt.build_library()?;
        }
        let mut line = Vec::new();
        if args.pkg_config {
            print!("{}", rt.pkg_config()?);
            return Ok(());
        }
        if args.cflags {
            line.push(rt.cflags());
        }
        if args.libs {
            line.push(rt.libs()?);
        }
        println!("{}", line.join(" "));
        return Ok(());
    }
    if let (Some(src), Some(dst)) = (&args.dir, &args.out) {
        let report = instrument_dir_report(src, dst)?;
        for (path, why) in &report.skipped {
            eprintln!("{}: note: skipped: {why}", path.display());
        }
        return Ok(());
    }
    let file = args.file.expect("clap requires FILE");
    if args.skeleton {
        let sk = match &args.output {
            Some(out) => skeleton_file(&file, out)?,
            None => {
                let sk = skeleton_of(&file)?;
                stdout(&sk.text)?;
                sk
            }
        };
        eprintln!("{}: {}", file.display(), sk.summary());
        return Ok(());
    }
    match &args.output {
        Some(out) => instrument_file(&file, args.ic.as_deref(), out),
        None => instrument_to_writer(
            &file,
            args.ic.as_deref(),
            &mut std::io::stdout().lock(),
            "<stdout>",
        ),
    }
}
