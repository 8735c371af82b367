//! The manual of `invite-cc` as a clap command, for `invite-cc --generate man` (packagers). The
//! wrapper itself parses no options of its own: every other argument is the compiler's.

use clap::{Arg, Command};

pub fn command() -> Command {
    Command::new("invite-cc")
        .version(env!("CARGO_PKG_VERSION"))
        .about("C compiler wrapper: compiles x.c with the in vivo tests of the x.ic beside it")
        .long_about(
            "invite-cc slips in vivo tests into any build system: make CC=invite-cc, \
             CC=invite-cc ./configure, cmake -DCMAKE_C_COMPILER=invite-cc. It runs $INVITE_CC \
             (default cc) with the same arguments, except that each x.c it compiles that has an \
             x.ic beside it is compiled instrumented (generated in a private temporary directory, \
             never beside the sources; #line keeps diagnostics pointing at x.c and x.ic), with \
             -MD/-MMD the dependency file names x.ic too, and every link gets the invite runtime \
             (libinvite.a; the linker takes it only when an object needs it). Preprocessing, -M, \
             --version, -x LANG, -r and commands without input files pass through unchanged. \
             Precompiler errors are printed as file:line:col: error: ... and fail the compile.",
        )
        .override_usage("invite-cc [COMPILER ARGUMENTS]...")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            Arg::new("arguments")
                .value_name("COMPILER ARGUMENTS")
                .num_args(0..)
                .help("Passed to the wrapped compiler, with the changes described above"),
        )
        .after_long_help(
            "Environment: INVITE_CC, the compiler to wrap, may hold words (e.g. \"ccache gcc\"); \
             INVITE_INCLUDE_DIR and INVITE_LIB_DIR override where invite.h and libinvite.a are \
             found (by default beside the installed tools: ../include, ../lib). The programs it \
             builds read the INVITE_* variables of the runtime (see invite-precompile(1) and the \
             README).",
        )
}
