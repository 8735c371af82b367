#!/usr/bin/env bash
# The C fast-path row (bench/c/fastpath.c, as scripts/bench.sh builds it) before and after a
# change, in one session: the harness is built against OLD (a tree of the earlier commit, with
# `cargo build --release -p invite-rt -p invite-instrumenter` done in it) and against this tree,
# and the two are run alternately RUNS times.
#
#   bench/fastpath_ab.sh OLD_TREE [RUNS] [ROUNDS CALLS]
set -euo pipefail
NEW=$(cd "$(dirname "$0")/.." && pwd)
OLD=${1:?usage: bench/fastpath_ab.sh OLD_TREE [RUNS] [ROUNDS CALLS]}
RUNS=${2:-6}
FP=(${3:-21} ${4:-10000000})
W=$(mktemp -d /tmp/invite-fp-ab.XXXXXX)
trap 'rm -rf "$W"' EXIT
S=$NEW/bench/c
for v in old new; do
    if [ $v = old ]; then T=$OLD; else T=$NEW; fi
    P=$T/target/release
    CFLAGS="-O2 -Wall -Wextra -Werror -I$T/runtime/include -I$S"
    LIBS="$P/libinvite.a -lgcc_s -lutil -lrt -lpthread -lm -ldl"
    "$P/invite-precompile" "$S/fastpath_target.c" "$S/fastpath_target.ic" -o "$W/$v.invite.c"
    gcc $CFLAGS -c "$W/$v.invite.c" -o "$W/$v.wrapped.o"
    gcc $CFLAGS -Dfp_work=fp_plain -c "$S/fastpath_target.c" -o "$W/$v.plain.o"
    gcc $CFLAGS "$S/fastpath.c" "$W/$v.wrapped.o" "$W/$v.plain.o" $LIBS -o "$W/fastpath_$v"
done
if cmp -s <(grep -v '^#line' "$W/old.invite.c") <(grep -v '^#line' "$W/new.invite.c"); then
    echo "the generated wrapper is the same before and after"
fi
cd "$W"
for _ in $(seq "$RUNS"); do
    for v in old new; do
        echo "$v: $(env -u INVITE -u INVITE_PROBABILITY INVITE_JOURNAL="$W/j.jsonl" "./fastpath_$v" "${FP[@]}" | head -1)"
    done
done
