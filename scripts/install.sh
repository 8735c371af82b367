#!/usr/bin/env bash
# Install invite for use by other projects:
#
#   scripts/install.sh [--prefix DIR] [--no-build]      (DIR defaults to /usr/local)
#
#   DIR/bin/invite-precompile, invite, invite-cc
#   DIR/lib/libinvite.a                 the C runtime, static (defines only the invite_* API and ckpt)
#   DIR/lib/libinvite.so.0              the C runtime, shared (+ libinvite.so -> libinvite.so.0)
#   DIR/include/invite.h
#   DIR/lib/pkgconfig/invite.pc
#   DIR/lib/cmake/invite/inviteConfig.cmake, inviteConfigVersion.cmake
#
# The installed tools find the header and the library relative to their own location
# (DIR/include, DIR/lib). DESTDIR=/stage puts the files under /stage/DIR (for packaging).
# --no-build installs what is already built in ${CARGO_TARGET_DIR:-target}/release.
# Needs cargo, and binutils (ld, objcopy, ar, nm) to pack the static library.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PREFIX=/usr/local BUILD=1
while (($#)); do
    case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done
case "$PREFIX" in /*) ;; *) PREFIX=$PWD/$PREFIX ;; esac
for tool in ld objcopy ar nm; do
    command -v "$tool" >/dev/null || { echo "install.sh: $tool is missing (apt-get install binutils)" >&2; exit 1; }
done

BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
if [ "$BUILD" = 1 ]; then
    cargo build --release -p invite-clib -p invite-instrumenter -p invite-cli -p invite-cc
fi
for f in invite-precompile invite invite-cc libinvite.a libinvite.so; do
    [ -e "$BIN/$f" ] || { echo "install.sh: $BIN/$f is missing (build first, or drop --no-build)" >&2; exit 1; }
done
VERSION=$("$BIN/invite-precompile" --version | awk '{print $2}')
D=${DESTDIR:-}$PREFIX

W=$(mktemp -d /tmp/invite-install.XXXXXX)
trap 'rm -rf "$W"' EXIT

# Cargo's libinvite.a holds the Rust standard library and compiler builtins as global symbols: a
# shared object that links it would export them all (and a C program could pick up __muldc3 from
# it). Pack it into one object whose only global symbols are the C API (the symbols libinvite.so
# exports): link everything reachable from them (ld -r --gc-sections), then make every other
# symbol local. Embedded LLVM bitcode is dropped (binutils' LLVM plugin cannot read it).
nm -D --defined-only "$BIN/libinvite.so" | awk '$2 == "T" {print $3}' >"$W/api"
grep -qx ckpt "$W/api" || { echo "install.sh: libinvite.so does not export ckpt" >&2; exit 1; }
ld -r --gc-sections $(sed 's/^/-u /' "$W/api") --whole-archive "$BIN/libinvite.a" -o "$W/merged.o"
objcopy --keep-global-symbols="$W/api" --remove-section=.llvmbc --remove-section=.llvmcmd \
    "$W/merged.o" "$W/invite.o"
ar rcs "$W/libinvite.a" "$W/invite.o"

install -d "$D/bin" "$D/lib/pkgconfig" "$D/lib/cmake/invite" "$D/include"
install -m 755 "$BIN/invite-precompile" "$BIN/invite" "$BIN/invite-cc" "$D/bin/"
install -m 644 "$W/libinvite.a" "$D/lib/libinvite.a"
install -m 755 "$BIN/libinvite.so" "$D/lib/libinvite.so.$VERSION"
ln -sfn "libinvite.so.$VERSION" "$D/lib/libinvite.so.0"
ln -sfn libinvite.so.0 "$D/lib/libinvite.so"
install -m 644 runtime/include/invite.h "$D/include/invite.h"
NATIVE=$("$BIN/invite-precompile" --libs 2>/dev/null | cut -d' ' -f2- || true)
[ -n "$NATIVE" ] || NATIVE="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
cat >"$D/lib/pkgconfig/invite.pc" <<PC
prefix=$PREFIX
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: invite
Description: In vivo testing for C: the invite runtime (static)
Version: $VERSION
Cflags: -I\${includedir}
Libs: \${libdir}/libinvite.a $NATIVE
PC
install -m 644 cmake/inviteConfig.cmake "$D/lib/cmake/invite/inviteConfig.cmake"
sed "s/@VERSION@/$VERSION/" cmake/inviteConfigVersion.cmake.in >"$D/lib/cmake/invite/inviteConfigVersion.cmake"
chmod 644 "$D/lib/cmake/invite/inviteConfigVersion.cmake"
echo "install.sh: invite $VERSION installed in $D"
