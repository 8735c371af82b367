//! Step 3: the dependency file (`-MD`/`-MMD`) names the original `x.c` and its `x.ic` instead of
//! the scratch copy the compiler read, so editing only the `.ic` rebuilds the object and no rule
//! points at a file that no longer exists.

use crate::args::{ic_of, Invocation};
use crate::error::{Error, Result};
use crate::instrument::Instrumented;
use std::path::{Path, PathBuf};

/// Where the compiler wrote the dependency file of `source` (gcc and clang agree): `-MF`, else
/// the `-o` file with the suffix `.d`, else the source's file name with `.d` in the working
/// directory.
pub fn path_for(inv: &Invocation, source: &Path) -> PathBuf {
    if let Some(f) = &inv.dep_file {
        return f.clone();
    }
    if let Some(o) = &inv.output {
        return o.with_extension("d");
    }
    PathBuf::from(source.file_name().unwrap_or_default()).with_extension("d")
}

/// A path as make reads it in a rule.
fn escape(p: &Path) -> String {
    let mut out = String::new();
    for c in p.to_string_lossy().chars() {
        match c {
            ' ' => out.push_str("\\ "),
            '#' => out.push_str("\\#"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

/// Replace the scratch copy by the original and its `.ic` in the text of a dependency file.
pub fn rewrite_text(text: &str, source: &Instrumented) -> String {
    let replacement = format!(
        "{} {}",
        escape(&source.original),
        escape(&ic_of(&source.original))
    );
    text.replace(&escape(&source.generated), &replacement)
}

pub fn rewrite(inv: &Invocation, source: &Instrumented) -> Result<()> {
    let path = path_for(inv, &source.original);
    let io = |what, source| Error::Io {
        what,
        path: path.clone(),
        source,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| io("cannot read", e))?;
    let new = rewrite_text(&text, source);
    if new == text {
        return Err(Error::Setup(format!(
            "{} does not name {}: cannot add {} to it",
            path.display(),
            source.generated.display(),
            ic_of(&source.original).display()
        )));
    }
    std::fs::write(&path, new).map_err(|e| io("cannot write", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn the_scratch_copy_becomes_the_source_and_its_ic() {
        let s = Instrumented {
            original: "src dir/x.c".into(),
            generated: "/tmp/invite-cc.ab/0/x.c".into(),
        };
        let d = "x.o: /tmp/invite-cc.ab/0/x.c x.h \\\n y.h\nx.h:\n";
        assert_eq!(
            rewrite_text(d, &s),
            "x.o: src\\ dir/x.c src\\ dir/x.ic x.h \\\n y.h\nx.h:\n"
        );
    }

    #[test]
    fn where_the_compiler_puts_it() {
        let inv = |l: &str| Invocation::parse(l.split_whitespace().map(OsString::from).collect());
        let x = Path::new("src/x.c");
        assert_eq!(
            path_for(&inv("-MMD -MF a.d -c src/x.c"), x),
            Path::new("a.d")
        );
        assert_eq!(
            path_for(&inv("-MMD -c src/x.c -o o/x.o"), x),
            Path::new("o/x.d")
        );
        assert_eq!(path_for(&inv("-MMD -c src/x.c"), x), Path::new("x.d"));
    }
}
