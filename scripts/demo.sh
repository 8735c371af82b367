#!/usr/bin/env bash
# Builds everything, then runs the demos: a C program instrumented from .c + .ic and a Rust
# program using #[invite::in_vivo], each with in vivo tests in pods, and prints the report.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
need gcc gcc
need_installed
root=$(pwd)
cargo build --release --workspace
bin="${CARGO_TARGET_DIR:-$root/target}/release"
work=$(mktemp -d /tmp/invite-demo.XXXXXX)
journal="$work/invite.jsonl"

echo
echo "== C: fixtures/c/legacy/bank.c with the in vivo tests of bank.ic (original Invite format)"
"$bin/invite-precompile" fixtures/c/legacy/bank.c fixtures/c/legacy/bank.ic -o "$work/bank.invite.c"
# shellcheck disable=SC2046 # the flags are words
gcc $("$bin/invite-precompile" --cflags) -o "$work/bank" "$work/bank.invite.c" $("$bin/invite-precompile" --libs)
(cd "$work" && INVITE_PROBABILITY=1 INVITE_MAX_OVERHEAD=off INVITE_MAX_CONCURRENT=16 INVITE_JOURNAL="$journal" ./bank)

echo
echo "== Rust: fixtures/rust/bank, #[invite::in_vivo] on an account's methods"
printf 'deposit 100\nwithdraw 30\nwithdraw 500\nbalance\n' |
  (cd "$work" && INVITE_PROBABILITY=1 INVITE_MAX_OVERHEAD=off INVITE_MAX_CONCURRENT=16 INVITE_JOURNAL="$journal" "$bin/bank")

echo
echo "== invite report $journal"
"$bin/invite" report "$journal"
echo
echo "(journal and binaries are in $work)"
