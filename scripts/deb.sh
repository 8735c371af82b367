#!/usr/bin/env bash
# Build the Debian package of invite (the tools, the C library, header, pkg-config and CMake
# files, man pages and shell completions) from the layout scripts/install.sh makes:
#
#   scripts/deb.sh [--no-build] [-o DIR]      -> DIR/invite_VERSION_ARCH.deb (default DIR: target/debian)
#
# Install it with `apt install ./invite_VERSION_ARCH.deb`. --no-build packs what is already built in
# ${CARGO_TARGET_DIR:-target}/release. Needs dpkg-deb (Debian's dpkg) and what install.sh needs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

OUT=${CARGO_TARGET_DIR:-$ROOT/target}/debian INSTALL_ARGS=()
while (($#)); do
    case "$1" in
    --no-build) INSTALL_ARGS+=(--no-build); shift ;;
    -o) OUT=${2:?-o needs a directory}; shift 2 ;;
    -h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "deb.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
command -v dpkg-deb >/dev/null || { echo "deb.sh: dpkg-deb is missing (apt-get install dpkg)" >&2; exit 1; }

W=$(mktemp -d /tmp/invite-deb.XXXXXX)
trap 'rm -rf "$W"' EXIT
S=$W/root
DESTDIR=$S scripts/install.sh --prefix /usr "${INSTALL_ARGS[@]}" >/dev/null

BIN=$S/usr/bin
VERSION=$("$BIN/invite-precompile" --version | awk '{print $2}')
ARCH=$(dpkg --print-architecture)

# Man pages and completions, generated from each tool's own argument definitions (clap).
install -d "$S/usr/share/man/man1" "$S/usr/share/bash-completion/completions" \
    "$S/usr/share/zsh/vendor-completions" "$S/usr/share/fish/vendor_completions.d" \
    "$S/usr/share/doc/invite"
for tool in invite invite-precompile invite-cc; do
    "$BIN/$tool" --generate man >"$S/usr/share/man/man1/$tool.1"
    gzip -9n "$S/usr/share/man/man1/$tool.1"
done
for tool in invite invite-precompile; do
    "$BIN/$tool" --generate bash >"$S/usr/share/bash-completion/completions/$tool"
    "$BIN/$tool" --generate zsh >"$S/usr/share/zsh/vendor-completions/_$tool"
    "$BIN/$tool" --generate fish >"$S/usr/share/fish/vendor_completions.d/$tool.fish"
done
cat >"$S/usr/share/doc/invite/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: invite

Files: *
Copyright: The invite developers
License: MIT or Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF

# Depends: the newest glibc symbol version any installed ELF file needs, and libgcc_s.
GLIBC=$(for f in "$BIN"/* "$S"/usr/lib/libinvite.so.*.*; do objdump -T "$f"; done 2>/dev/null |
    grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
install -d "$S/DEBIAN"
cat >"$S/DEBIAN/control" <<EOF
Package: invite
Version: $VERSION
Architecture: $ARCH
Maintainer: The invite developers <invite@localhost>
Depends: libc6 (>= $GLIBC), libgcc-s1
Recommends: gcc | clang, pkg-config
Section: devel
Priority: optional
Installed-Size: $(du -sk --exclude=DEBIAN "$S" | cut -f1)
Description: in vivo testing for C and Rust
 invite runs tests inside a deployed program, against the live state it
 reached in real use: now and then an instrumented function checkpoints the
 process into an isolated pod (Linux namespaces and overlayfs), runs its test
 there, journals the outcome, and the program goes on as if nothing happened.
 .
 This package has invite-precompile (C instrumenter for .ic test files),
 invite-cc (a compiler wrapper for any build system), the invite command
 (reports, kept pods, live checkpoints), libinvite.a/.so, invite.h, and the
 pkg-config and CMake files.
EOF

mkdir -p "$OUT"
DEB=$OUT/invite_${VERSION}_$ARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$S" "$DEB" >/dev/null
echo "$DEB"
