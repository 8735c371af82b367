//! Build facts for the C side of the runtime (the library itself is built by `runtime/clib`):
//! with `links = "invite"`, a dependent's build script reads `DEP_INVITE_INCLUDE`, where the C
//! header is (the precompiler embeds the header it was built with this way).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=include/invite.h");
    let dir = std::path::Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("include");
    println!("cargo:include={}", dir.display());
}
