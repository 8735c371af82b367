#!/usr/bin/env bash
# The whole test suite: installs what the tests need when it is missing (as root; otherwise it
# stops and prints the command to run), builds every crate (the C library included) and runs all
# tests. To add a tool a test calls: one more `need TOOL PACKAGE` line below.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
need gcc gcc
need clang clang
need make make
need pkg-config pkg-config
need cmake cmake
need nm binutils
need setpriv util-linux
need strace strace   # the order of a host's start-up steps (warm_helper.rs)
need valgrind valgrind   # testing is off under valgrind (inert.rs)
need /bin/kill procps   # not the shell builtin: a test runs the program
need chromium chromium
need dpkg-deb dpkg
need /etc/ssl/certs/ca-certificates.crt ca-certificates   # the bzip2 test fetches a crate
need /usr/include/sqlite3.h libsqlite3-dev   # SQLite hosts (tests/tests/files.rs)
need mkfs.xfs xfsprogs       # a loop-mounted XFS image: files cloned with reflinks
need mkfs.btrfs btrfs-progs  # and a btrfs one
need_installed
cargo build --release --workspace --all-targets
cargo test --release --workspace --no-fail-fast
# Every public item of the published crates is documented, and their docs build (as on docs.rs).
RUSTDOCFLAGS="-D warnings -D missing_docs" cargo doc --quiet --no-deps -p invite-rt -p invite-macros \
    -p invite-vocab -p invite-instrumenter -p invite-cli -p invite-cc
# The published crates pack, and build from their packages alone, as crates.io and docs.rs get them.
# Cargo verifies a package against its sibling packages as if they came from crates.io, and takes a
# registry crate's build as fresh by name and version alone: a build left in target/debug by an
# earlier run would stand in for a changed sibling of the same version. Drop those first.
# Cargo also unpacks those packages under $CARGO_HOME/registry/src/-<hash of the local registry>/
# and never unpacks a name and version again: sources left there by an earlier run of this
# worktree would be built instead of today's. Drop our own crates' copies (the crates.io
# registry's directory does not start with '-').
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/invite-*
cargo clean --quiet --profile dev -p invite-vocab -p invite-macros -p invite-rt -p invite-instrumenter \
    -p invite-cc -p invite-cli
cargo package --quiet --workspace --allow-dirty --exclude invite-tests --exclude invite-macros-tests --exclude bank --exclude service \
    --exclude invite-clib
