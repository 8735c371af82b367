//! The C header this precompiler writes and points `--cflags` at comes from the runtime package
//! it is built with (`DEP_INVITE_INCLUDE`, from the runtime's build script): one copy of
//! `invite.h`, in the runtime, whether built in the workspace or from crates.io.

fn main() {
    let dir = std::env::var("DEP_INVITE_INCLUDE")
        .expect("the runtime's build script sets DEP_INVITE_INCLUDE (links = \"invite\")");
    println!("cargo:rustc-env=INVITE_INCLUDE_DIR_BUILT={dir}");
    println!("cargo:rustc-env=INVITE_HEADER={dir}/invite.h");
    println!("cargo:rerun-if-env-changed=DEP_INVITE_INCLUDE");
}
