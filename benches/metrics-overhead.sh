#!/usr/bin/env bash
# Cost of Prometheus metrics on replay throughput: replays the benchmark trace
# (benches/gen_trace.rs; 10 M packets, 1 M flows by default, shared with vs-softflowd.sh)
# RUNS times each, alternating,
#   A: mirrorflow -r trace.pcap $OUTPUT
#   B: mirrorflow -r trace.pcap $OUTPUT --metrics-listen 127.0.0.1:0 --exit-at-eof
# and prints the median wall time, packet rate and CPU time of both and B's overhead in
# percent.
# Exits 1 when the overhead exceeds MAX_OVERHEAD percent (default 5).
#
#   benches/metrics-overhead.sh
#   PACKETS=1000000 FLOWS=100000 RUNS=3 benches/metrics-overhead.sh     # quick run
#
# Environment: PACKETS, FLOWS, SEED, RUNS (default 5), BENCH_DIR (default target/bench),
# MAX_OVERHEAD, OUTPUT (the sink flags of both runs, default "--json /dev/null"; empty: no
# sink), CARGO_TARGET_DIR, SKIP_BUILD=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PACKETS="${PACKETS:-10000000}"
FLOWS="${FLOWS:-1000000}"
SEED="${SEED:-1}"
RUNS="${RUNS:-5}"
MAX_OVERHEAD="${MAX_OVERHEAD:-5}"
BENCH_DIR="${BENCH_DIR:-target/bench}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUTPUT="${OUTPUT---json /dev/null}"

log() { printf '[metrics-overhead] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building mirrorflow + gen_trace (release)"
    cargo build --release -p mirrorflow --bins --example gen_trace
fi
BIN="$TARGET_DIR/release/mirrorflow"
GEN="$TARGET_DIR/release/examples/gen_trace"
[[ -x "$BIN" && -x "$GEN" ]] || die "release binaries not found under $TARGET_DIR"

mkdir -p "$BENCH_DIR"
TRACE="$(cd "$BENCH_DIR" && pwd)/trace.pcap"
TRUTH="$TRACE.truth.json"
truth() { sed -n "s/^ *\"$1\": *\([0-9.]*\),\{0,1\}\$/\1/p" "$TRUTH"; }
trace_ok() {
    [[ -f "$TRACE" && -f "$TRUTH" ]] || return 1
    [[ "$(truth packets)" == "$PACKETS" && "$(truth flows)" == "$FLOWS" \
        && "$(truth seed)" == "$SEED" ]] || return 1
    [[ "$(stat -c %s "$TRACE")" == "$(truth file_bytes)" ]]
}
if ! trace_ok; then
    log "generating $TRACE ($PACKETS packets, $FLOWS flows, seed $SEED)"
    rm -f "$TRACE" "$TRUTH"
    "$GEN" --packets "$PACKETS" --flows "$FLOWS" --seed "$SEED" -o "$TRACE"
    trace_ok || die "generated trace does not match its truth sidecar"
fi
cat "$TRACE" >/dev/null # page cache

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# run NAME ARGS... -> appends the wall time to $TMP/NAME and the CPU time (user + system,
# all threads) to $TMP/NAME.cpu, in seconds
run() {
    local name="$1" t0 t1
    shift
    t0="$EPOCHREALTIME"
    # shellcheck disable=SC2086  # OUTPUT is a word list on purpose
    /usr/bin/time -f '%U %S' -o "$TMP/time" "$BIN" -r "$TRACE" $OUTPUT "$@" \
        >"$TMP/out" 2>&1 || {
        cat "$TMP/out" >&2
        die "$name failed"
    }
    t1="$EPOCHREALTIME"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }' >>"$TMP/$name"
    awk '{ printf "%.4f\n", $1 + $2 }' "$TMP/time" >>"$TMP/$name.cpu"
}
[[ -x /usr/bin/time ]] || die "needs GNU time (/usr/bin/time, Debian package time)"

for ((i = 1; i <= RUNS; i++)); do
    run plain
    run metrics --metrics-listen 127.0.0.1:0 --exit-at-eof
    log "run $i/$RUNS: plain $(tail -n1 "$TMP/plain") s, metrics $(tail -n1 "$TMP/metrics") s"
done

median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
A="$(median "$TMP/plain")"
B="$(median "$TMP/metrics")"
CA="$(median "$TMP/plain.cpu")"
CB="$(median "$TMP/metrics.cpu")"
# Overhead of each (plain, metrics) pair run back to back; the median of those is less
# sensitive to a machine whose speed drifts than the ratio of the two medians.
paste "$TMP/plain" "$TMP/metrics" | awk '{ printf "%.6f\n", ($2 - $1) / $1 * 100 }' >"$TMP/pairs"
P="$(median "$TMP/pairs")"
awk -v a="$A" -v b="$B" -v ca="$CA" -v cb="$CB" -v p="$P" -v n="$PACKETS" -v runs="$RUNS" \
    -v max="$MAX_OVERHEAD" -v out="${OUTPUT:-none}" 'BEGIN {
    printf "trace: %d packets, median of %d runs, output: %s\n", n, runs, out
    printf "%-24s %8.3f s wall %12.0f packets/s %8.3f s CPU\n", "without metrics", a, n / a, ca
    printf "%-24s %8.3f s wall %12.0f packets/s %8.3f s CPU\n", "with --metrics-listen", b, n / b, cb
    printf "overhead: %.1f %% wall (medians), %.1f %% CPU, %.1f %% wall (median of pairs; limit %s %%)\n",
        (b - a) / a * 100, (cb - ca) / ca * 100, p, max
    exit (p > max) ? 1 : 0
}'
