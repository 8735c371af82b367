//! The names a `.ic` file defines (tests, helper functions, helper variables and types) must not
//! collide with what they are compiled next to: the `.c` file's own top-level names and macros,
//! the identifiers the rewrite generates, `main`, or the C library's functions. Otherwise gcc
//! reports a redefinition somewhere confusing; here it is an error at the `.ic` line.

use crate::error::Diagnostic;
use crate::parse::fx::Names;
use crate::parse::ic::{IcFile, Item};
use crate::parse::scan::Scan;
use crate::parse::tokens::{lex, Kind};
use crate::parse::Source;

/// Functions of the C standard library (and the POSIX ones tests use most) that a test or helper
/// named the same would replace or clash with.
const LIBC: &[&str] = &[
    "abort",
    "abs",
    "assert",
    "atexit",
    "atof",
    "atoi",
    "atol",
    "bsearch",
    "calloc",
    "clock",
    "close",
    "exit",
    "fclose",
    "feof",
    "ferror",
    "fflush",
    "fgetc",
    "fgets",
    "fopen",
    "fork",
    "fprintf",
    "fputc",
    "fputs",
    "fread",
    "free",
    "fscanf",
    "fseek",
    "ftell",
    "fwrite",
    "getc",
    "getchar",
    "getenv",
    "getpid",
    "isalpha",
    "isdigit",
    "isspace",
    "labs",
    "malloc",
    "memchr",
    "memcmp",
    "memcpy",
    "memmove",
    "memset",
    "open",
    "perror",
    "printf",
    "putc",
    "putchar",
    "puts",
    "qsort",
    "raise",
    "rand",
    "read",
    "realloc",
    "remove",
    "rename",
    "scanf",
    "signal",
    "sleep",
    "snprintf",
    "sprintf",
    "srand",
    "sscanf",
    "strcat",
    "strchr",
    "strcmp",
    "strcpy",
    "strdup",
    "strerror",
    "strlen",
    "strncat",
    "strncmp",
    "strncpy",
    "strrchr",
    "strstr",
    "strtod",
    "strtok",
    "strtol",
    "strtoul",
    "system",
    "time",
    "tolower",
    "toupper",
    "ungetc",
    "vfprintf",
    "vprintf",
    "vsnprintf",
    "vsprintf",
    "write",
];

/// The identifiers the rewrite generates: `invite_site_N`, `invite_site_N_listed`, `invite_ret`, the renamed original
/// (`invite_original_NAME`, `INVITE_ORIGINAL_NAME`) and `INVITE_DEFINED_` markers.
fn generated(name: &str) -> bool {
    name == "invite_ret"
        || name
            .strip_prefix("invite_site_")
            .map(|n| n.strip_suffix("_listed").unwrap_or(n))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        || ["invite_original_", "INVITE_ORIGINAL_", "INVITE_DEFINED_"]
            .iter()
            .any(|p| name.starts_with(p))
}

/// Every `invite_`/`INVITE_` identifier and `ckpt` in the runtime's header the output includes.
fn runtime_names() -> &'static std::collections::HashSet<&'static str> {
    static NAMES: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        crate::runtime::HEADER
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("invite_") || w.starts_with("INVITE_") || *w == "ckpt")
            .collect()
    })
}

/// Every name the `.ic` defines at its top level, with its offset: tests, and the names that
/// helper code defines (`static int seen;`, `static int helper(int a) {...}`).
pub fn defined(ic_src: &Source, ic: &IcFile) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut seen = crate::parse::fx::FastMap::default();
    for item in &ic.items {
        match item {
            Item::Test(t) => {
                seen.insert(t.name.clone(), ());
                out.push((t.name.clone(), t.name_at))
            }
            Item::Code(range) => {
                let Ok(toks) = lex(&ic_src.text, range.clone()) else {
                    continue;
                };
                // Declarations of what exists elsewhere (`extern int n;`, `int f(int);`,
                // typedefs) may repeat a name; definitions may not.
                let first = toks.first().map(|t| &ic_src.text[t.start..t.end]);
                if matches!(first, Some(b"extern" | b"typedef")) {
                    continue;
                }
                let has_body = toks.last().is_some_and(|t| t.is(b'}'));
                let mut depth = 0usize;
                for (i, t) in toks.iter().enumerate() {
                    match t.kind {
                        Kind::Punct(b'(' | b'[' | b'{') => depth += 1,
                        Kind::Punct(b')' | b']' | b'}') => depth = depth.saturating_sub(1),
                        Kind::Ident if depth == 0 => {
                            let next = toks.get(i + 1).map(|n| n.kind);
                            let declares = match next {
                                Some(Kind::Punct(b'(')) => has_body,
                                Some(Kind::Punct(b'=' | b';' | b'[' | b',')) => !has_body,
                                _ => false,
                            };
                            let tag = i > 0
                                && matches!(
                                    &ic_src.text[toks[i - 1].start..toks[i - 1].end],
                                    b"struct" | b"union" | b"enum"
                                );
                            let word = ic_src.str(t.start..t.end);
                            let keyword = matches!(word.as_str(), "void" | "int" | "char");
                            if declares
                                && !tag
                                && !keyword
                                && seen.insert(word.clone(), ()).is_none()
                            {
                                out.push((word, t.start));
                            }
                        }
                        _ => {}
                    }
                }
            }
            Item::Block(_) => {}
        }
    }
    out
}

/// Refuse the first name in `names` that collides (see the module docs). `targets` are the
/// functions being wrapped (`_NAME` is generated for each).
pub fn check(
    c_src: &Source,
    ic_src: &Source,
    names: &[(String, usize)],
    targets: &[&str],
    scan: &Scan,
) -> Result<(), Diagnostic> {
    let targets: Names = targets.iter().map(|t| t.as_bytes()).collect();
    for (name, at) in names {
        let why = if generated(name) {
            Some("is reserved for the identifiers invite-precompile generates".to_string())
        } else if runtime_names().contains(name.as_str()) {
            Some("is a name of the invite runtime (invite.h)".to_string())
        } else if name
            .strip_prefix('_')
            .is_some_and(|t| targets.contains(t.as_bytes()))
        {
            Some(format!(
                "is the name the original `{}` gets in the output",
                &name[1..]
            ))
        } else if name == "main" {
            Some("is the program's entry point".into())
        } else if LIBC.contains(&name.as_str()) {
            Some("is a C library function".into())
        } else {
            None
        };
        if let Some(why) = why {
            return Err(ic_src.error(*at, format!("`{name}` {why}; choose another name")));
        }
        if let Some(&c_at) = scan.top_level.get(name.as_bytes()) {
            return Err(ic_src
                .error(
                    *at,
                    format!(
                        "`{name}` is already a name in {}; the tests are compiled in the same file, so choose another name",
                        c_src.name
                    ),
                )
                .note(c_src.location(c_at), format!("`{name}` is here")));
        }
    }
    Ok(())
}
