#!/usr/bin/env bash
# Where a pod's CPU goes: the throughput harness (bench/c/throughput.c, this tree's libinvite.a)
# under `perf record -a -g`, its samples split by process and thread and by the outermost system
# call (or page fault) they were taken in, each divided by the pods the run made. Prints a table of
# microseconds of CPU per pod. As root, on an otherwise idle machine; needs perf and python3.
#
#   bench/pod_cpu.sh [SECONDS]     (default 5; cargo build --release -p invite-clib first)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_OF_PODS=${1:-5}
LIB=${CARGO_TARGET_DIR:-$ROOT/target}/release/libinvite.a
[ -e "$LIB" ] || { echo "pod_cpu.sh: $LIB is missing (cargo build --release -p invite-clib)" >&2; exit 1; }
command -v perf >/dev/null || { echo "pod_cpu.sh: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "pod_cpu.sh: python3 is missing (apt-get install python3)" >&2; exit 1; }
W=$(mktemp -d /tmp/invite-pod-cpu.XXXXXX)
trap 'rm -rf "$W"' EXIT
chmod 755 "$W"
gcc -O2 -Wall -Wextra -Werror -I"$ROOT/runtime/include" -I"$ROOT/bench/c" "$ROOT/bench/c/throughput.c" \
    "$LIB" -lgcc_s -lutil -lrt -lpthread -lm -ldl -o "$W/throughput"
cd "$W"
# The harness runs its raw-fork baseline first, then the pods; the split starts at the first
# `mount` a pod makes.
summary=$(env $(env | sed -n 's/^\(INVITE[A-Z_]*\)=.*/-u \1/p') INVITE_JOURNAL="$W/j.jsonl" \
    INVITE_MAX_OVERHEAD=off INVITE_MAX_POD_CPU=off INVITE_MAX_QUEUE=0 INVITE_MAX_CONCURRENT=8 \
    INVITE_DRAIN_MS=60000 perf record -q -e cpu-clock -F 4000 -a -g -o "$W/perf.data" \
    ./throughput "$SECONDS_OF_PODS" | grep '^#' | head -1)
echo "$summary"
pods=$(echo "$summary" | sed -n 's/^# \([0-9]*\) pod tests.*/\1/p')
[ -n "$pods" ] || { echo "pod_cpu.sh: the harness printed no '# N pod tests' line (see above)" >&2; exit 1; }
perf script -i "$W/perf.data" -F comm,pid,tid,time,ip,sym 2>/dev/null |
    python3 "$ROOT/bench/pod_cpu.py" "$pods" "$SECONDS_OF_PODS" 4000
