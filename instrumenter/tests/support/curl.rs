//! curl's configuration, as curl-sys's build.rs gives it to the `cc` crate: the source files
//! and defines of a Linux build with no optional feature (no TLS, HTTP/2, NTLM or FTP), read from
//! its `.file(...)`, `.define(...)` and `.include(...)` calls.

/// `(sources, flags)` from the text of curl-sys's build.rs.
pub fn from_build_rs(build_rs: &str) -> (Vec<String>, Vec<String>) {
    let lines: Vec<&str> = build_rs.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("curl-sys's build.rs has no `{needle}`"))
    };
    // The calls every build makes, then the non-Windows defines, then the non-Apple ones.
    let mut parts =
        lines[at("let mut cfg = cc::Build::new();")..at("if cfg!(feature = \"ntlm\")")].to_vec();
    parts.extend(&lines[at("cfg.define(\"RECV_TYPE_ARG1\"")..=at(".define(\"SIZEOF_SHORT\"")]);
    parts.extend(
        &lines
            [at("cfg.define(\"HAVE_CLOCK_GETTIME_MONOTONIC\"")..=at(".define(\"HAVE_POLL_FINE\"")],
    );
    let mut sources = Vec::new();
    let mut flags = Vec::new();
    for line in parts {
        let code = line.split(" //").next().unwrap_or(line).trim();
        let Some((call, rest)) = code.trim_start_matches("cfg").split_once('(') else {
            continue;
        };
        let args: Vec<&str> = rest
            .trim_end_matches(';')
            .trim_end_matches(')')
            .splitn(2, ", ")
            .map(str::trim)
            .collect();
        let unquote = |s: &str| {
            let inner = s.strip_prefix('"').and_then(|s| s.strip_suffix('"'));
            inner.unwrap_or(s).replace("\\\"", "\"")
        };
        match (call, args.as_slice()) {
            (".file", [f]) => sources.push(unquote(f)),
            (".include", [d]) => flags.push(format!("-I{}", unquote(d))),
            (".define", [name, "None"]) => flags.push(format!("-D{}", unquote(name))),
            (".define", [name, value]) => {
                flags.push(format!("-D{}={}", unquote(name), unquote(value)))
            }
            _ => {}
        }
    }
    // What the rest of build.rs sets on a 64-bit Linux build without features.
    for f in [
        "-DSIZEOF_SSIZE_T=8",
        "-DSIZEOF_SIZE_T=8",
        "-DSIZEOF_LONG=8",
        "-DCURL_DISABLE_NTLM",
        "-DCURL_DISABLE_FTP",
        "-fvisibility=hidden",
    ] {
        flags.push(f.to_string());
    }
    (sources, flags)
}
