//! The shared library gets a soname (`libinvite.so.0`), so programs linked against it record the
//! ABI version, not the file name; `scripts/install.sh` installs it under that name.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libinvite.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
