//! Step 1: what the compiler was asked to do, read from its command line (gcc and clang syntax).
//!
//! Only what the wrapper needs: the mode, the input files (told apart from the arguments of
//! options such as `-o FILE` or `-MF FILE`), the output and the dependency-file options.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// What the command does, as far as the wrapper cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run the compiler exactly as asked: `-E`, `-M`, `--version`, no input file, `-r`, `-###`.
    PassThrough,
    /// Compile without linking: `-c`, `-S`, `-fsyntax-only`.
    Compile,
    /// Compile (maybe) and link a program or a shared object.
    Link,
}

#[derive(Debug, Clone)]
pub struct Invocation {
    pub args: Vec<OsString>,
    pub mode: Mode,
    /// Indices into `args` of the input files (sources, objects, archives).
    pub inputs: Vec<usize>,
    /// `-o FILE`.
    pub output: Option<PathBuf>,
    /// `-MD` or `-MMD`: the compiler writes a dependency file as a side effect.
    pub writes_deps: bool,
    /// `-MF FILE`.
    pub dep_file: Option<PathBuf>,
    /// `-x LANG` was given: input names no longer say the language.
    pub explicit_language: bool,
}

/// Options whose argument is the next word when not attached (`-o FILE`, `-I DIR`, ...).
const TAKES_ARGUMENT: &[&str] = &[
    "-o",
    "-I",
    "-D",
    "-U",
    "-include",
    "-imacros",
    "-isystem",
    "-iquote",
    "-idirafter",
    "-isysroot",
    "-iprefix",
    "-iwithprefix",
    "-iwithprefixbefore",
    "-imultilib",
    "-MF",
    "-MT",
    "-MQ",
    "-MJ",
    "-x",
    "-L",
    "-l",
    "-Xlinker",
    "-Xassembler",
    "-Xpreprocessor",
    "-Xclang",
    "-mllvm",
    "-u",
    "-T",
    "-z",
    "-e",
    "-aux-info",
    "--param",
    "-dumpbase",
    "-dumpbase-ext",
    "-dumpdir",
    "-target",
    "-arch",
    "-B",
    "--sysroot",
    "-specs",
    "-A",
];

/// Options that make the command something other than compiling or linking.
const PASS_THROUGH: &[&str] = &["-E", "-M", "-MM", "-r", "-###"];

impl Invocation {
    pub fn parse(args: Vec<OsString>) -> Invocation {
        let mut inv = Invocation {
            args: Vec::new(),
            mode: Mode::Link,
            inputs: Vec::new(),
            output: None,
            writes_deps: false,
            dep_file: None,
            explicit_language: false,
        };
        let mut pass_through = false;
        let mut compile_only = false;
        let mut i = 0;
        while i < args.len() {
            let a = args[i].to_string_lossy();
            if TAKES_ARGUMENT.contains(&a.as_ref()) {
                let value = args.get(i + 1).map(PathBuf::from);
                match a.as_ref() {
                    "-o" => inv.output = value,
                    "-MF" => inv.dep_file = value,
                    "-x" => inv.explicit_language = true,
                    _ => {}
                }
                i += 2;
                continue;
            }
            match a.as_ref() {
                s if PASS_THROUGH.contains(&s) => pass_through = true,
                "-c" | "-S" | "-fsyntax-only" => compile_only = true,
                "-MD" | "-MMD" => inv.writes_deps = true,
                s if s.starts_with("-o") && s.len() > 2 => {
                    inv.output = Some(PathBuf::from(&s[2..]))
                }
                s if s.starts_with("-MF") && s.len() > 3 => {
                    inv.dep_file = Some(PathBuf::from(&s[3..]))
                }
                s if s.starts_with("-x") => inv.explicit_language = true,
                "-" => inv.inputs.push(i),
                s if !s.starts_with('-') && !s.starts_with('@') => inv.inputs.push(i),
                _ => {}
            }
            i += 1;
        }
        inv.mode = if pass_through || inv.inputs.is_empty() {
            Mode::PassThrough
        } else if compile_only {
            Mode::Compile
        } else {
            Mode::Link
        };
        inv.args = args;
        inv
    }

    /// The C sources this command compiles that have a `.ic` beside them, as indices into `args`.
    pub fn instrumentable(&self) -> Vec<usize> {
        if self.mode == Mode::PassThrough || self.explicit_language {
            return Vec::new();
        }
        self.inputs
            .iter()
            .copied()
            .filter(|&i| {
                let p = Path::new(&self.args[i]);
                p.extension() == Some(OsStr::new("c")) && ic_of(p).is_file()
            })
            .collect()
    }
}

/// The tests of `x.c`: `x.ic` beside it.
pub fn ic_of(c: &Path) -> PathBuf {
    c.with_extension("ic")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Invocation {
        Invocation::parse(line.split_whitespace().map(OsString::from).collect())
    }

    #[test]
    fn modes() {
        assert_eq!(parse("--version").mode, Mode::PassThrough);
        assert_eq!(parse("-E x.c").mode, Mode::PassThrough);
        assert_eq!(parse("-M x.c").mode, Mode::PassThrough);
        assert_eq!(parse("-r a.o b.o -o c.o").mode, Mode::PassThrough);
        assert_eq!(parse("-c x.c -o x.o").mode, Mode::Compile);
        assert_eq!(parse("-S x.c").mode, Mode::Compile);
        assert_eq!(parse("x.o y.o -o prog").mode, Mode::Link);
        assert_eq!(parse("-shared -fPIC x.c -o libx.so").mode, Mode::Link);
    }

    #[test]
    fn option_arguments_are_not_inputs() {
        let inv = parse("-MMD -MF dir/x.d -MT x.o -I inc -o out.o -c x.c");
        assert_eq!(inv.inputs, vec![10]);
        assert!(inv.writes_deps);
        assert_eq!(inv.dep_file.as_deref(), Some(Path::new("dir/x.d")));
        assert_eq!(inv.output.as_deref(), Some(Path::new("out.o")));
        let inv = parse("-ox.o -MFx.d -c x.c");
        assert_eq!(inv.output.as_deref(), Some(Path::new("x.o")));
        assert_eq!(inv.dep_file.as_deref(), Some(Path::new("x.d")));
        assert!(parse("-x c -c x.c").explicit_language);
        assert!(parse("-xc -c x.c").explicit_language);
    }
}
