//! `--generate man|bash|zsh|fish|elvish|powershell`, for packagers (`scripts/deb.sh`): a tool's
//! man page or shell completion script, from its own argument definitions, on stdout.

use std::io::Write;

/// What `--generate` accepts.
pub const KINDS: &str = "man, bash, zsh, fish, elvish, powershell";

/// Write the man page or the completion script `kind` of `cmd` to `out`.
///
/// ```
/// let cmd = clap::Command::new("demo").about("A demo tool.");
/// let mut page = Vec::new();
/// invite_instrumenter::docgen::generate(cmd, "man", &mut page).unwrap();
/// assert!(String::from_utf8(page).unwrap().contains(".TH demo 1"));
/// ```
pub fn generate(mut cmd: clap::Command, kind: &str, out: &mut dyn Write) -> Result<(), String> {
    if kind == "man" {
        return clap_mangen::Man::new(cmd)
            .render(out)
            .map_err(|e| format!("cannot write the man page: {e}"));
    }
    let shell: clap_complete::Shell = kind
        .parse()
        .map_err(|_| format!("--generate: unknown kind '{kind}' (expected one of: {KINDS})"))?;
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}
