//! Tells dependents where the C header is: with `links = "invite"`, a dependent's build script
//! reads `DEP_INVITE_INCLUDE` (the precompiler embeds the header it was built with this way).

fn main() {
    let dir = std::path::Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("include");
    println!("cargo:rerun-if-changed=include/invite.h");
    println!("cargo:include={}", dir.display());
}
