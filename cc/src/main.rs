//! `invite-cc`: a C compiler wrapper that slips in vivo tests into any build system
//! (`make CC=invite-cc`, `CC=invite-cc ./configure`, `cmake -DCMAKE_C_COMPILER=invite-cc`).
//!
//! It runs `$INVITE_CC` (default `cc`; may hold words, e.g. `ccache gcc`) with the same
//! arguments, except that: each `x.c` it compiles that has an `x.ic` beside it is compiled
//! instrumented ([`instrument`]; not after `-x LANG`, where names no longer say the language);
//! with `-MD`/`-MMD` the dependency file names `x.c` and `x.ic` ([`depfile`]); links get the
//! runtime ([`link`]). Preprocessing, `-M`, `--version`, `-r` and commands without input files
//! pass through untouched ([`args`]). Precompiler errors are printed as
//! `file:line:col: error: ...` and fail the compile.

mod args;
mod depfile;
mod error;
mod instrument;
mod link;
mod manual;

use args::{Invocation, Mode};
use error::{Error, Result};
use invite_instrumenter::Runtime;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

/// Set for the wrapped compiler, so `INVITE_CC=invite-cc` is an error rather than a loop.
const ACTIVE: &str = "INVITE_CC_ACTIVE";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if let [flag, kind] = &args[..] {
        if flag == "--generate" {
            return generate(manual::command(), &kind.to_string_lossy());
        }
    }
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<OsString>) -> Result<ExitCode> {
    let mut compiler = compiler()?;
    let inv = Invocation::parse(args);
    if inv.mode == Mode::PassThrough {
        return Err(exec(compiler.args(&inv.args)));
    }
    let sources = inv.instrumentable();
    let runtime = Runtime::locate();
    if sources.is_empty() {
        let mut args = inv.args.clone();
        if let Ok(mut rt) = runtime {
            // Hand-written code may include invite.h; searched after everything else.
            args.push("-idirafter".into());
            args.push(rt.include_dir.clone().into());
            if inv.mode == Mode::Link {
                // Objects compiled instrumented earlier need it; a link that does not leaves it
                // unused. If it cannot be had, say why and link without it.
                match rt.build_library() {
                    Ok(lib) => args.extend(link::runtime_args(lib)),
                    Err(e) => eprintln!("invite-cc: warning: {e}"),
                }
            }
        }
        return Err(exec(compiler.args(&args)));
    }
    let mut rt = runtime?;
    let scratch = tempfile::Builder::new()
        .prefix("invite-cc.")
        .tempdir()
        .map_err(|source| Error::Io {
            what: "cannot create a scratch directory in",
            path: std::env::temp_dir(),
            source,
        })?;
    let (mut args, done) = instrument::instrument(&inv, scratch.path(), &rt.include_dir)?;
    if inv.mode == Mode::Link {
        args.extend(link::runtime_args(rt.build_library()?));
    }
    let status = compiler.args(&args).status().map_err(|source| Error::Io {
        what: "cannot run the compiler",
        path: compiler.get_program().into(),
        source,
    })?;
    if !status.success() {
        return Ok(ExitCode::from(
            status.code().unwrap_or(1).clamp(1, 255) as u8
        ));
    }
    if inv.writes_deps && inv.mode == Mode::Compile {
        for source in &done {
            depfile::rewrite(&inv, source)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `invite-cc --generate man|bash|...` (no compiler has that option): the man page.
fn generate(cmd: clap::Command, kind: &str) -> ExitCode {
    match invite_instrumenter::docgen::generate(cmd, kind, &mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("invite-cc: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The wrapped compiler: `$INVITE_CC`, default `cc`.
fn compiler() -> Result<Command> {
    if std::env::var_os(ACTIVE).is_some() {
        return Err(Error::Setup(
            "INVITE_CC runs invite-cc again; set it to the real compiler (e.g. INVITE_CC=gcc)"
                .into(),
        ));
    }
    let spec = std::env::var("INVITE_CC").unwrap_or_default();
    let mut words = spec.split_whitespace();
    let mut cmd = Command::new(words.next().unwrap_or("cc"));
    cmd.args(words).env(ACTIVE, "1");
    Ok(cmd)
}

/// Replace this process by the command; returns only on failure.
fn exec(cmd: &mut Command) -> Error {
    let source = cmd.exec();
    Error::Io {
        what: "cannot run the compiler",
        path: cmd.get_program().into(),
        source,
    }
}
