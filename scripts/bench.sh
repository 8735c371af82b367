#!/usr/bin/env bash
# The benchmark suite (issue 7): every performance figure against its baseline, measured in the
# same run, printed as one Markdown table. Timings never gate anything.
#
#   scripts/bench.sh            the full suite (about 4 minutes on 2 cores)
#   scripts/bench.sh --quick    each benchmark for a moment: checks that every row is produced
#   scripts/bench.sh --no-build use what is already built in $CARGO_TARGET_DIR/release (or
#                               $INVITE_BENCH_PROFILE_DIR); the Rust fast-path row needs cargo
#                               bench, so it is "not run" in this mode
#
# Harnesses are in bench/c (see bench/README.md); the Rust fast path is the macro crate's
# criterion bench (macros/usage/benches/fast_path.rs) and the precompiler figure is the instrumenter's
# precompile_bench example. Pods need root (or unprivileged user namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QUICK=0 BUILD=1
for a in "$@"; do
    case "$a" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
    esac
done

PROFILE=${INVITE_BENCH_PROFILE_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
if [ "$BUILD" = 1 ]; then
    cargo build --release -q -p invite-clib
    cargo build --release -q -p invite-instrumenter --bin invite-precompile --example precompile_bench
fi
for f in libinvite.a invite-precompile examples/precompile_bench; do
    [ -e "$PROFILE/$f" ] || { echo "bench.sh: $PROFILE/$f is missing (build first)" >&2; exit 1; }
done

W=$(mktemp -d /tmp/invite-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
chmod 755 "$W"
CC=${CC:-gcc}
CFLAGS="-O2 -Wall -Wextra -Werror -I$ROOT/runtime/include -I$ROOT/bench/c"
LIBS="$PROFILE/libinvite.a -lgcc_s -lutil -lrt -lpthread -lm -ldl"
PRE=$PROFILE/invite-precompile
S=$ROOT/bench/c

# ---- build the harnesses ------------------------------------------------------------------------
"$PRE" "$S/fastpath_target.c" "$S/fastpath_target.ic" -o "$W/fastpath_target.invite.c"
$CC $CFLAGS -c "$W/fastpath_target.invite.c" -o "$W/fp_wrapped.o"
$CC $CFLAGS -Dfp_work=fp_plain -c "$S/fastpath_target.c" -o "$W/fp_plain.o"
$CC $CFLAGS "$S/fastpath.c" "$W/fp_wrapped.o" "$W/fp_plain.o" $LIBS -o "$W/fastpath"
for h in pause latency throughput openfile; do $CC $CFLAGS "$S/$h.c" $LIBS -o "$W/$h"; done
"$PRE" "$S/e2e_work.c" "$S/e2e_work.ic" -o "$W/e2e_work.invite.c"
$CC $CFLAGS "$S/e2e.c" "$W/e2e_work.invite.c" $LIBS -o "$W/e2e_instrumented"
$CC $CFLAGS "$S/e2e.c" "$S/e2e_work.c" -o "$W/e2e_plain"
"$PRE" "$S/e2e_work.c" "$S/idle_work.ic" -o "$W/idle_work.invite.c"
$CC $CFLAGS "$S/idle.c" "$W/idle_work.invite.c" $LIBS -o "$W/idle_instrumented"
$CC $CFLAGS "$S/idle.c" "$S/e2e_work.c" -o "$W/idle_plain"

# ---- run ----------------------------------------------------------------------------------------
if [ "$QUICK" = 1 ]; then
    FIRST3_PROCS=3 FP="3 1000000" PAUSE_RUNS="3 3 3" LAT_RUNS=5 TPUT_S=0.5 TPUT_Q=0.5 QUEUE_PAIRS=1 E2E_RUNS=1 E2E_S=0.3 PRE_RUNS=1 OPEN_RUNS=3
    IDLE_RUNS=1 IDLE_REQUESTS=20
else
    FIRST3_PROCS=45 FP="41 20000000" PAUSE_RUNS="101 51 21" LAT_RUNS=201 TPUT_S=10 TPUT_Q=5 QUEUE_PAIRS=3 E2E_RUNS=7 E2E_S=3 PRE_RUNS=7 OPEN_RUNS=501
    IDLE_RUNS=5 IDLE_REQUESTS=150
fi

R=$W/results
: >"$R"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# Every harness runs in the scratch dir with a clean invite environment and its own journal.
clean_env() { env $(env | sed -n 's/^\(INVITE[A-Z_]*\)=.*/-u \1/p') "$@"; }
inv() { (cd "$W" && clean_env INVITE_JOURNAL="$W/journal.jsonl" "$@"); }
step() { echo "== $*" >&2; }
median() { sort -g | awk '{v[NR]=$1} END{print (NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2}'; }

step "fast path, C wrapper vs plain"
inv "$W/fastpath" $FP | tee -a "$R" >&2

step "parent pause, ckpt() vs fork()"
set -- $PAUSE_RUNS
for mb_runs in "0 $1" "100 $2" "1024 $3"; do
    rm -f "$W/journal.jsonl"
    inv INVITE_MAX_OVERHEAD=off INVITE_MAX_POD_CPU=off INVITE_MAX_CONCURRENT=64 "$W/pause" $mb_runs | tee -a "$R" >&2
done
# The worst of the first three is one figure per process: one process's is a single sample. The
# row is the median over FIRST3_PROCS fresh processes of the worst of their first three ckpt(),
# against the median of the worst of the same processes' first three raw forks (like for like);
# the one from the 101-run process above stays as an extra figure, and the worst of three
# ckpt() against the median fork of the 101-run process (the row's baseline before) as another.
sed -i 's/^row pause_0mb_first3 \([^ ]*\) .*/info pause_0mb_first3_one_process \1 us 1/' "$R"
first3=() first3_fork=()
for _ in $(seq "$FIRST3_PROCS"); do
    rm -f "$W/journal.jsonl"
    set -- $(inv INVITE_MAX_OVERHEAD=off INVITE_MAX_POD_CPU=off INVITE_MAX_CONCURRENT=64 "$W/pause" 0 3 |
        awk '/^row pause_0mb_first3 / { print $3, $4 }')
    [ $# = 2 ] && first3+=("$1") first3_fork+=("$2")
done
[ "${#first3[@]}" -gt 0 ] && {
    worst=$(printf '%s\n' "${first3[@]}" | median)
    echo "row pause_0mb_first3 $worst $(printf '%s\n' "${first3_fork[@]}" | median) us ${#first3[@]}"
    awk -v w="$worst" '/^row pause_0mb / { printf "info pause_0mb_first3_vs_median_fork %.3f x (%s / %s us)\n", w / $4, w, $4 }' "$R"
} | tee -a "$R" >&2

step "ckpt() to the pod's code vs raw fork vs naive unshare"
rm -f "$W/journal.jsonl"
inv INVITE_MAX_OVERHEAD=off INVITE_MAX_POD_CPU=off INVITE_MAX_CONCURRENT=64 "$W/latency" $LAT_RUNS | tee -a "$R" >&2
# The same with cold pods only (what rootless hosts get): an extra figure.
rm -f "$W/journal.jsonl"
inv INVITE_WARM=off INVITE_MAX_OVERHEAD=off INVITE_MAX_POD_CPU=off INVITE_MAX_CONCURRENT=64 "$W/latency" $LAT_RUNS |
    awk '/^row latency_ckpt_vs_fork /{print "info latency_cold_pods", $3, "us", $6}' | tee -a "$R" >&2

step "ckpt() to the pod's code, a 1 GiB file open for writing vs none"
rm -f "$W/journal.jsonl"
inv INVITE_MAX_OVERHEAD=off INVITE_MAX_POD_CPU=off INVITE_MAX_CONCURRENT=64 "$W/openfile" $OPEN_RUNS "$W/open.dat" |
    tee -a "$R" >&2

step "sustained pod tests per second"
rm -f "$W/journal.jsonl"
# Capacity: no budget and no wait queue (past the cap a sampled call is turned away, as in #3).
inv INVITE_MAX_OVERHEAD=off INVITE_MAX_POD_CPU=off INVITE_MAX_QUEUE=0 \
    INVITE_MAX_CONCURRENT=${INVITE_BENCH_CONCURRENT:-8} INVITE_DRAIN_MS=60000 \
    "$W/throughput" $TPUT_S | tee -a "$R" >&2
# The same with the default queue (#14): past the cap every sampled call takes its snapshot and
# waits. Its baseline is the rate without the queue, interleaved with it (QUEUE_PAIRS runs of each,
# alternating: a shared machine's load moves from one run to the next); medians of each.
tput() { # QUEUE-SETTING...: one run's pod rate
    rm -f "$W/journal.jsonl"
    inv INVITE_MAX_OVERHEAD=off INVITE_MAX_POD_CPU=off "$@" \
        INVITE_MAX_CONCURRENT=${INVITE_BENCH_CONCURRENT:-8} INVITE_DRAIN_MS=60000 \
        "$W/throughput" $TPUT_Q | awk '/^row throughput /{print $3}'
}
with_q=() without_q=()
for pair in $(seq "$QUEUE_PAIRS"); do
    without_q+=("$(tput INVITE_MAX_QUEUE=0)")
    with_q+=("$(tput)")
    echo "info throughput_queue_pair_$pair ${with_q[-1]}/${without_q[-1]} tests/s" | tee -a "$R" >&2
done
echo "row throughput_queue $(printf '%s\n' "${with_q[@]}" | median)" \
    "$(printf '%s\n' "${without_q[@]}" | median) tests/s $QUEUE_PAIRS" | tee -a "$R" >&2
rm -f "$W/journal.jsonl"
inv INVITE_WARM=off INVITE_MAX_OVERHEAD=off INVITE_MAX_POD_CPU=off INVITE_MAX_QUEUE=0 \
    INVITE_MAX_CONCURRENT=${INVITE_BENCH_CONCURRENT:-8} INVITE_DRAIN_MS=60000 "$W/throughput" $TPUT_S |
    awk '/^row throughput /{print "info throughput_cold_pods", $3, "tests/s", $6}' | tee -a "$R" >&2

step "end to end, INVITE_MAX_OVERHEAD=5 vs uninstrumented"
# KEY RUNS FIELD UNIT [VAR=VALUE...] -- PROG ARGS...: PROG's instrumented and plain builds,
# interleaved, RUNS times each; the medians of FIELD make the row, the journals count the pods and
# the sampled calls that started one.
versus() {
    local key=$1 runs=$2 field=$3 unit=$4 envs=() plain=() inst=() pods=0 sampled=0 started=0 i s t
    shift 4
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    local prog=$1; shift
    one_inst() { inv "${envs[@]}" "$W/${prog}_instrumented" "$@" | awk -v f=$field '$1 == f {print $2}'; }
    one_plain() { inv "$W/${prog}_plain" "$@" | awk -v f=$field '$1 == f {print $2}'; }
    for ((i = 0; i < runs; i++)); do
        rm -f "$W/journal.jsonl"
        if ((i % 2)); then inst+=("$(one_inst "$@")"); plain+=("$(one_plain "$@")")
        else plain+=("$(one_plain "$@")"); inst+=("$(one_inst "$@")"); fi
        pods=$((pods + $(grep -c '"kind":"test"' "$W/journal.jsonl" || true)))
        read -r s t < <(grep '"kind":"summary"' "$W/journal.jsonl" | tail -1 |
            sed -n 's/.*"sampled":\([0-9]*\),"started":\([0-9]*\).*/\1 \2/p') || true
        sampled=$((sampled + ${s:-0})) started=$((started + ${t:-0}))
    done
    echo "# $key: instrumented ${inst[*]}; plain ${plain[*]}; $pods pod tests, $started of $sampled sampled calls started, in all runs" >&2
    echo "row $key $(printf '%s\n' "${inst[@]}" | median) $(printf '%s\n' "${plain[@]}" | median) $unit $runs" >>"$R"
    echo "info ${key}_pods_per_run $(awk -v p=$pods -v n=$runs 'BEGIN{print p/n}') pods $runs" >>"$R"
    [ "$sampled" -gt 0 ] && echo "info ${key}_started_pct $(awk -v s=$started -v n=$sampled 'BEGIN{print 100*s/n}') % $runs" >>"$R"
    return 0
}
e2e() { versus "$1" $E2E_RUNS calls_per_s calls/s INVITE_MAX_OVERHEAD=5 -- e2e $E2E_S "${@:2}"; }
e2e e2e 0
e2e e2e_heap64 64
step "every core CPU-bound, INVITE_MAX_OVERHEAD=5 vs uninstrumented"
e2e e2e_allcores 0 0

step "idle server (95 % asleep), default settings vs uninstrumented"
versus idle $IDLE_RUNS wall_s s -- idle $IDLE_REQUESTS 19

step "precompiler vs gcc -fsyntax-only"
# The example takes [FILE.c [FILE.ic] [RUNS]]; without a file it generates an 8 MB one and runs 7
# times. Quick mode gives it a small fixture instead, once.
if [ "$QUICK" = 1 ]; then PRE_ARGS=("$ROOT/fixtures/c/legacy/bank.c" 1); else PRE_ARGS=(); fi
"$PROFILE/examples/precompile_bench" "${PRE_ARGS[@]}" | tee "$W/pre.txt" >&2
awk 'function after(w) { for (i = 1; i < NF; i++) if ($i == w) return $(i + 1) }
     /^invite-precompile: median/ { o = after("median") } /^gcc -fsyntax-only: median/ { g = after("median") } END{if (o && g) print "row precompile", o, g, "ms", '"$PRE_RUNS"'}' "$W/pre.txt" >>"$R"

step "precompiler on the SQLite amalgamation vs gcc -fsyntax-only (one function; its --skeleton)"
# sqlite3.c ships in the libsqlite3-sys package; cargo fetches it through a scratch crate.
SQ=$W/sqlite-fetch
mkdir -p "$SQ/src" && : >"$SQ/src/lib.rs"
printf '[package]\nname = "fetch-sqlite"\nversion = "0.0.0"\nedition = "2021"\n[workspace]\n[dependencies]\nlibsqlite3-sys = "=0.30.1"\n' >"$SQ/Cargo.toml"
SQDIR=$(cd "$SQ" && cargo metadata --format-version 1 2>/dev/null |
    grep -o '"manifest_path":"[^"]*/libsqlite3-sys-[^"]*"' | head -1 | sed 's/^"manifest_path":"//; s/Cargo.toml"$//') || true
if [ -n "$SQDIR" ] && [ -f "$SQDIR/sqlite3/sqlite3.c" ]; then
    cp "$SQDIR/sqlite3/sqlite3.c" "$W/sqlite3.c"
    printf 'int sqlite3_open(const char *zFilename, sqlite3 **ppDb) pre\nvoid open_ok(const char *zFilename, sqlite3 **ppDb) .01 { }\n' >"$W/sqlite3_one.ic"
    "$PRE" --skeleton "$W/sqlite3.c" -o "$W/sqlite3_all.ic" 2>"$W/skeleton.txt"
    awk '{ for (i = 2; i <= NF; i++) if ($i == "instrumented,") print "info precompile_sqlite_all_functions", $(i - 1), "instrumented" }' "$W/skeleton.txt" | tee -a "$R" >&2
    for v in one all; do
        "$PROFILE/examples/precompile_bench" "$W/sqlite3.c" "$W/sqlite3_$v.ic" "$PRE_RUNS" | tee "$W/pre_$v.txt" >&2
        awk 'function after(w) { for (i = 1; i < NF; i++) if ($i == w) return $(i + 1) }
             /^invite-precompile: median/ { o = after("median") } /^gcc -fsyntax-only: median/ { g = after("median") }
             END { if (o && g) print "row precompile_sqlite_'"$v"'", o, g, "ms", '"$PRE_RUNS"' }' "$W/pre_$v.txt" >>"$R"
    done
fi
for v in one all; do
    grep -q "^row precompile_sqlite_$v " "$R" || echo "row precompile_sqlite_$v nan nan ms 0" >>"$R"
done

step "fast path, Rust #[in_vivo] vs plain (macros/usage/benches/fast_path.rs)"
if [ "$BUILD" = 1 ]; then
    CRIT=()
    [ "$QUICK" = 1 ] && CRIT=(--warm-up-time 0.2 --measurement-time 0.5 --sample-size 10)
    cargo bench -q -p invite-macros-tests --bench fast_path -- "${CRIT[@]}" 2>&1 | tee "$W/crit.txt" >&2 || true
    # The bench ends with "criterion: NAME T ns per call, plain B ns: ..." lines (and the same as
    # "paired, best batch: ..."): the figure is the function with one pre test.
    awk '/^criterion: in_vivo_pre / { print "row fastpath_rust", $3, $8, "ns", 100 }
         /^criterion: in_vivo_pre_post / { print "info fastpath_rust_pre_post_delta", $3 - $8, "ns", 100 }
         /^paired, best batch: in_vivo_pre / { print "info fastpath_rust_paired_best_delta", $5 - $10, "ns", 100 }' "$W/crit.txt" >>"$R"
fi
grep -q '^row fastpath_rust ' "$R" || echo "row fastpath_rust nan nan ns 0" >>"$R"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table ------------------------------------------------------------------------------------
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), Linux $(uname -r), THP $(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo '?')"
echo "load average (1/5/15 min): before $LOAD_BEFORE, after $LOAD_AFTER$([ "$QUICK" = 1 ] && echo '; QUICK MODE: figures are not meaningful')"
echo
awk '
BEGIN {
    label["fastpath_c"]              = "fast path per call, p = 0: C wrapper | uninstrumented C function"
    label["fastpath_rust"]           = "fast path per call, p = 0: Rust #[in_vivo] | plain Rust function"
    label["pause_0mb"]               = "parent pause per ckpt(), tiny | raw fork(), child lives on"
    label["pause_100mb"]             = "parent pause per ckpt(), 100 MiB resident | raw fork(), child lives on"
    label["pause_1024mb"]            = "parent pause per ckpt(), 1 GiB resident | raw fork(), child lives on"
    label["pause_0mb_vs_reaped"]     = "parent pause per ckpt(), tiny, steady state | raw fork(), previous child reaped"
    label["pause_0mb_first3"]        = "worst pause of the first three ckpt(), tiny | worst of the first three raw forks (child lives on), same fresh processes"
    label["pause_1024mb_first3"]     = "worst pause of the first three ckpt(), 1 GiB resident | worst of the first three raw forks (child lives on), same process"
    label["latency_ckpt_vs_fork"]    = "ckpt() to code in the pod, tiny | raw fork() to the child"
    label["latency_ckpt_vs_unshare"] = "ckpt() to code in the pod, tiny | naive unshare of every ns + fresh netns, to the grandchild"
    label["latency_open_1g"]         = "ckpt() to code in the pod, a 1 GiB file open for writing | the same, no file open"
    label["throughput"]              = "pod tests per second, 2 cores, trivial test | raw fork() tests per second"
    label["throughput_queue"]        = "pod tests per second, default wait queue (32), same harness | the same, INVITE_MAX_QUEUE=0, interleaved"
    label["e2e"]                     = "CPU-bound program, INVITE_MAX_OVERHEAD=5 (calls/s) | same program uninstrumented"
    label["e2e_heap64"]              = "same, writing a 64 MiB heap (calls/s) | same program uninstrumented"
    label["e2e_allcores"]            = "same, a thread per core, INVITE_MAX_OVERHEAD=5 (calls/s) | same program uninstrumented"
    label["idle"]                    = "idle server, 95 % asleep, default settings (wall s) | same program uninstrumented"
    label["precompile"]              = "invite-precompile, 8 MB generated C file | gcc -fsyntax-only on it"
    label["precompile_sqlite_one"]   = "invite-precompile, SQLite amalgamation (9 MB), one function | gcc -fsyntax-only on it"
    label["precompile_sqlite_all"]   = "invite-precompile, SQLite amalgamation, its --skeleton (every function) | gcc -fsyntax-only on it"
    order = "fastpath_c fastpath_rust pause_0mb pause_100mb pause_1024mb pause_0mb_vs_reaped pause_0mb_first3 pause_1024mb_first3 latency_ckpt_vs_fork latency_ckpt_vs_unshare latency_open_1g throughput throughput_queue e2e e2e_heap64 e2e_allcores idle precompile precompile_sqlite_one precompile_sqlite_all"
    print "| figure | value | baseline | value | ratio | goal (issue) | met |"
    print "|---|---:|---|---:|---:|---|---|"
}
$1 == "row" { fig[$2] = $3; base[$2] = $4; unit[$2] = $5; n[$2] = $6 }
$1 == "info" { extra[++ninfo] = $2 ": " $3 " " $4 }
function fmt(v, u) { return v == "nan" ? "not run" : (v >= 100 ? sprintf("%.0f", v) : v >= 10 ? sprintf("%.1f", v) : sprintf("%.2f", v)) " " u }
END {
    k = split(order, keys, " ")
    for (i = 1; i <= k; i++) {
        key = keys[i]; split(label[key], l, " \\| ")
        if (!(key in fig)) { print "| " l[1] " | MISSING | " l[2] " | | | | |"; continue }
        f = fig[key]; b = base[key]; r = (f == "nan" || b == 0) ? "" : sprintf("%.2f", f / b)
        goal = ""; met = ""
        if (key ~ /^fastpath/) { goal = "<= +1 ns per call (#3, #5)"; if (f != "nan") { d = f - b; met = (d <= 1 ? "yes" : "no") sprintf(" (%+.2f ns)", d) } }
        else if (key ~ /_first3$/) { goal = "<= 1.3 x fork (#13)"; met = (f / b <= 1.3) ? "yes" : "no" }
        else if (key ~ /_vs_reaped$/) { goal = "<= 1.2 x fork (#13)"; met = (f / b <= 1.2) ? "yes" : "no" }
        else if (key ~ /^pause/) { goal = "<= 1.2 x fork (#2)"; met = (f / b <= 1.2) ? "yes" : "no" }
        else if (key == "latency_open_1g") { goal = "<= 1.1 x no file (#20)"; met = (f / b <= 1.1) ? "yes" : "no" }
        else if (key ~ /^latency/) { goal = "<= 300 us (#2)"; met = (f <= 300) ? "yes" : "no" }
        else if (key == "throughput_queue") { goal = ">= 0.9 x no queue (#14)"; met = (f / b >= 0.9) ? "yes" : "no" }
        else if (key == "throughput") { goal = ">= 1,500/s (#3)"; met = (f >= 1500) ? "yes" : "no" }
        else if (key == "e2e_allcores") { goal = "loss <= 5 % (#14)"; loss = 100 * (1 - f / b); met = ((loss <= 5) ? "yes" : "no") sprintf(" (%.1f %% loss)", loss) }
        else if (key ~ /^e2e/) { goal = "loss within 5 +- 1 % (#3)"; loss = 100 * (1 - f / b); met = ((loss <= 6) ? "yes" : "no") sprintf(" (%.1f %% loss)", loss) }
        else if (key == "idle") { goal = "wall <= +2 %, >= 80 % of samples started (#14)"; met = ((f / b <= 1.02) ? "yes" : "no") sprintf(" (%+.1f %%)", 100 * (f / b - 1)) }
        else if (key == "precompile") { goal = "<= 0.25 x gcc (#4)"; met = (f / b <= 0.25) ? "yes" : "no" }
        else if (key ~ /^precompile_sqlite/) { goal = "<= 0.25 x gcc (#16)"; met = (f == "nan") ? "" : (f / b <= 0.25) ? "yes" : "no" }
        print "| " l[1] " | " fmt(f, unit[key]) " | " l[2] " | " fmt(b, unit[key]) " | " r " | " goal " | " met " |"
    }
    print ""
    for (i = 1; i <= ninfo; i++) print "- " extra[i]
}' "$R"
