//! Real C code from the cargo registry: `-sys` packages ship their library's sources. They are
//! fetched at test time through a scratch crate (never committed) and found with `cargo metadata`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The root directory of each `(package, exact version)` in the registry, downloading them if
/// needed (crates.io must be reachable, or the cargo cache hold them).
pub fn packages(scratch: &Path, wanted: &[(&str, &str)]) -> HashMap<String, PathBuf> {
    std::fs::create_dir_all(scratch.join("src")).unwrap();
    let deps: String = wanted
        .iter()
        .map(|(name, version)| format!("{name} = \"={version}\"\n"))
        .collect();
    std::fs::write(
        scratch.join("Cargo.toml"),
        format!("[package]\nname = \"fetch-c-sources\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[workspace]\n[dependencies]\n{deps}"),
    )
    .unwrap();
    std::fs::write(scratch.join("src/lib.rs"), "").unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(scratch)
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo could not fetch {wanted:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8(out.stdout).unwrap();
    let manifests: Vec<&str> = json
        .split("\"manifest_path\":\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    wanted
        .iter()
        .map(|(name, version)| {
            let dir = manifests
                .iter()
                .find(|p| p.contains(&format!("/{name}-{version}")))
                .map(|p| Path::new(p).parent().unwrap().to_path_buf())
                .unwrap_or_else(|| panic!("{name} {version} not in cargo metadata"));
            (name.to_string(), dir)
        })
        .collect()
}

/// `cp -a from to` (a library's tree, with its timestamps, so make does not rebuild).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}
