#!/usr/bin/env bash
# A pod harness (bench/c/latency.c, throughput.c or openfile.c, today's source) before and after
# a change, in one session: built against OLD (a tree of the earlier commit with
# `cargo build --release -p invite-clib` done in it, which makes its target/release/libinvite.a;
# `-p invite` in trees before the C library had a crate of its own) and against this tree, and run alternately RUNS times, each with the
# settings scripts/bench.sh gives it. Prints each run's summary line.
#
#   bench/pod_ab.sh OLD_TREE latency|throughput|openfile [RUNS]
set -euo pipefail
NEW=$(cd "$(dirname "$0")/.." && pwd)
OLD=${1:?usage: bench/pod_ab.sh OLD_TREE latency|throughput|openfile [RUNS]}
H=${2:?usage: bench/pod_ab.sh OLD_TREE latency|throughput|openfile [RUNS]}
RUNS=${3:-4}
case "$H" in
latency) ARGS=(101) SET=(INVITE_MAX_CONCURRENT=64) ;;
throughput) ARGS=(5) SET=(INVITE_MAX_QUEUE=0 INVITE_MAX_CONCURRENT=8 INVITE_DRAIN_MS=60000) ;;
openfile) ARGS=(501 open.dat 64) SET=(INVITE_MAX_CONCURRENT=64) ;;
*) echo "pod_ab.sh: no harness $H (latency, throughput, openfile)" >&2; exit 2 ;;
esac
for T in "$OLD" "$NEW"; do
    [ -e "$T/target/release/libinvite.a" ] || {
        echo "pod_ab.sh: $T/target/release/libinvite.a is missing (cd $T && cargo build --release -p invite-clib)" >&2
        exit 1
    }
done
W=$(mktemp -d /tmp/invite-pod-ab.XXXXXX)
trap 'rm -rf "$W"' EXIT
chmod 755 "$W"
for v in old new; do
    if [ $v = old ]; then T=$OLD; else T=$NEW; fi
    gcc -O2 -Wall -Wextra -Werror -I"$T/runtime/include" -I"$NEW/bench/c" "$NEW/bench/c/$H.c" \
        "$T/target/release/libinvite.a" -lgcc_s -lutil -lrt -lpthread -lm -ldl -o "$W/${H}_$v"
done
cd "$W"
for _ in $(seq "$RUNS"); do
    for v in old new; do
        rm -f "$W/j.jsonl"
        line=$(env $(env | sed -n 's/^\(INVITE[A-Z_]*\)=.*/-u \1/p') INVITE_JOURNAL="$W/j.jsonl" \
            INVITE_MAX_OVERHEAD=off INVITE_MAX_POD_CPU=off "${SET[@]}" "./${H}_$v" "${ARGS[@]}" |
            grep '^#' | head -1)
        echo "$v: $line"
    done
done
