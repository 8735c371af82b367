//! Real C code with its own test suite, from Debian's source packages: the `-sys` crates ship a
//! library's sources but not its tests (zstd, pcre2, curl) or not a build that runs them (xz).
//! Fetched with `apt-get source` through a private apt configuration (nothing on the machine is
//! changed: the lists and the download live under the cache directory), then the upstream
//! tarball (`*.orig.tar.*`) is unpacked. Kept between runs in `cache`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The machine's Debian archive as `deb-src` entries (both list formats): the same mirror the
/// machine installs binary packages from, the release's own suite only (the mirror need not
/// serve the sources of the security and update pockets; the release's are enough).
fn source_entries() -> String {
    let mut out = String::new();
    let dir = Path::new("/etc/apt/sources.list.d");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.push("/etc/apt/sources.list".into());
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let name = f.to_string_lossy();
        if name.ends_with(".sources") {
            for stanza in text.split("\n\n") {
                let field = |name: &str| {
                    stanza
                        .lines()
                        .find_map(|l| l.trim().strip_prefix(name).map(str::trim))
                };
                if field("Types:") != Some("deb") {
                    continue;
                }
                let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) else {
                    continue;
                };
                let suite = suites.split_whitespace().next().unwrap_or("");
                if !suite.contains('-') {
                    out.push_str(&format!(
                        "Types: deb-src\nURIs: {uris}\nSuites: {suite}\nComponents: {}\n{}\n",
                        field("Components:").unwrap_or("main"),
                        field("Signed-By:").map_or(String::new(), |k| format!("Signed-By: {k}\n"))
                    ));
                }
            }
        } else if name.ends_with(".list") {
            for (uri, suite, components) in text.lines().filter_map(deb_line) {
                if !suite.contains('-') {
                    out.push_str(&format!(
                        "Types: deb-src\nURIs: {uri}\nSuites: {suite}\nComponents: {components}\n\n"
                    ));
                }
            }
        }
    }
    out
}

/// `deb [opts] URI SUITE COMPONENTS...`: the URI, the suite, the components.
fn deb_line(line: &str) -> Option<(&str, &str, String)> {
    let mut words: Vec<&str> = line.split_whitespace().skip(1).collect();
    if words.first().is_some_and(|w| w.starts_with('[')) {
        let end = words.iter().position(|w| w.ends_with(']'))?;
        words.drain(..=end);
    }
    match words.as_slice() {
        [uri, suite, components @ ..] => Some((uri, suite, components.join(" "))),
        _ => None,
    }
}

fn apt(cache: &Path, args: &[&str], dir: &Path) {
    let parts = cache.join("sources.d");
    let out = Command::new("apt-get")
        .arg("-q")
        .args(["-o", "Dir::Etc::SourceList=/dev/null"])
        .arg("-o")
        .arg(format!("Dir::Etc::SourceParts={}", parts.display()))
        .arg("-o")
        .arg(format!(
            "Dir::State::Lists={}",
            cache.join("lists").display()
        ))
        .arg("-o")
        .arg(format!("Dir::Cache={}", cache.join("apt-cache").display()))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run apt-get");
    assert!(
        out.status.success(),
        "apt-get {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The upstream source tree of Debian source package `package` (unpacked from its `.orig`
/// tarball), fetched into `cache` unless it is already there.
pub fn upstream(cache: &Path, package: &str) -> PathBuf {
    let unpacked = cache.join("unpacked").join(package);
    if let Some(tree) = only_dir(&unpacked) {
        return tree;
    }
    std::fs::create_dir_all(cache.join("sources.d")).unwrap();
    std::fs::create_dir_all(cache.join("lists/partial")).unwrap();
    std::fs::create_dir_all(cache.join("apt-cache/archives/partial")).unwrap();
    std::fs::write(cache.join("sources.d/src.sources"), source_entries()).unwrap();
    let download = cache.join("download").join(package);
    std::fs::create_dir_all(&download).unwrap();
    apt(cache, &["update"], cache);
    apt(cache, &["source", "--download-only", package], &download);
    let tarball = std::fs::read_dir(&download)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.contains(".orig.tar.") && !n.ends_with(".asc")
        })
        .unwrap_or_else(|| panic!("no upstream tarball for {package} in {download:?}"));
    let partial = cache.join("unpacked").join(format!("{package}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .current_dir(&partial)
        .status()
        .expect("run tar");
    assert!(st.success(), "tar -xf {}", tarball.display());
    std::fs::rename(&partial, &unpacked).unwrap();
    only_dir(&unpacked).unwrap_or_else(|| panic!("{tarball:?} holds more than one directory"))
}

/// The one directory inside `dir`, if `dir` exists and holds exactly one.
fn only_dir(dir: &Path) -> Option<PathBuf> {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    match entries.as_slice() {
        [one] if one.is_dir() => Some(one.clone()),
        _ => None,
    }
}
