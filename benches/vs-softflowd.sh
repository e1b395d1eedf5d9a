#!/usr/bin/env bash
# Side-by-side benchmark: mirrorflow vs softflowd on the same synthetic pcap.
#
#   benches/vs-softflowd.sh                      # 10 M packets / 1 M flows, 3 runs each
#   PACKETS=200000 FLOWS=20000 RUNS=1 benches/vs-softflowd.sh   # quick smoke run
#
# Steps: builds (release) the mirrorflow binary and the gen_trace example,
# generates ${BENCH_DIR:-target/bench}/trace.pcap unless one with the same
# parameters already exists (checked against its trace.pcap.truth.json
# sidecar), then runs, alternating, RUNS times each:
#   1. mirrorflow -r trace.pcap --json /dev/null
#   2. softflowd  -r trace.pcap -n 127.0.0.1:PORT $SOFTFLOWD_ARGS
#      (NetFlow to a discarding UDP sink on loopback; softflowd does not fork
#      with -r and exits at end of file)
#   3. taskset -c $ONE_CPU mirrorflow -r trace.pcap, twice: right after run 1 and
#      right after softflowd
#      (pinned to one CPU, no output: the core's packet rate on one core; on one
#      CPU mirrorflow reads the file on its flow thread. On a VM whose host takes
#      back the memory a guest frees, the run after softflowd, which frees 286 MiB,
#      pays for faulting fresh memory in again: both figures are printed)
# and prints median wall time, packets/s, peak RSS and the packet-rate ratios.
#
# Environment:
#   PACKETS, FLOWS, SEED   trace parameters (default 10000000, 1000000, 1)
#   RUNS                   runs per tool (default 3; the median is reported)
#   BENCH_DIR              where the trace and logs go (default target/bench)
#   CARGO_TARGET_DIR       honoured when locating the built binaries
#   MIRRORFLOW_CMD         shell snippet replacing the mirrorflow command;
#                          $TRACE is exported, e.g. MIRRORFLOW_CMD='cat "$TRACE" >/dev/null'
#                          (when set, only the gen_trace example is built)
#   SOFTFLOWD              softflowd binary (default: softflowd in PATH or /usr/sbin/softflowd)
#   SOFTFLOWD_ARGS         extra softflowd flags (default "-v 9 -m <2*FLOWS>": NetFlow v9
#                          so IPv6 flows are tracked, v5 would drop them as "non-IP";
#                          a flow table large enough that the default 8192 cap does
#                          not force evictions)
#   SOFTFLOWD_WAIT         seconds to wait for softflowd to appear (default 600)
#   ONE_CPU                the CPU the pinned run uses (default 0); ONE_CPU=none skips it
#   SKIP_BUILD=1           do not run cargo
#   SOFTFLOWD_RUNS         EXPORT=ipfix: softflowd runs in the first N rounds only (default
#                          RUNS; at least 1), for many core/ipfix pairs without 15 s of
#                          softflowd in every round
#   PY_SINK=1              use the Python UDP sink even when a C compiler is there (the
#                          default sink is benches/udp-sink.c, built with $CC / cc: it
#                          reads with recvmmsg and so takes far less of the CPU the tools
#                          under test share with it; Python's recv loop costs ~2 µs per
#                          datagram, more than the exporter's own send)
#   EXPORT=ipfix           export-overhead mode: per run, alternating,
#                            core:   mirrorflow -r trace.pcap            (no output)
#                            ipfix:  mirrorflow -r trace.pcap --ipfix 127.0.0.1:PORT
#                                    --export-rate 1000000 --stats-json …
#                            softflowd -r trace.pcap -n 127.0.0.1:PORT -v 10 -m …
#                          (SOFTFLOWD_ARGS default becomes "-v 10 -m <2*FLOWS>", IPFIX);
#                          IPFIX_ARGS adds flags to the ipfix run, e.g.
#                          IPFIX_ARGS="--export-max-datagram 8960" (jumbo frames),
#                          IPFIX_ARGS="--export-gso" (UDP segmentation offload);
#                          the UDP sink counts datagrams and bytes per run, and the
#                          report adds records/s, packets/s, bytes per record on the
#                          wire (UDP payload) and the export overhead over the core run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PACKETS="${PACKETS:-10000000}"
FLOWS="${FLOWS:-1000000}"
SEED="${SEED:-1}"
RUNS="${RUNS:-3}"
BENCH_DIR="${BENCH_DIR:-target/bench}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
EXPORT="${EXPORT:-}"
[[ -z "$EXPORT" || "$EXPORT" == ipfix ]] || { echo "EXPORT must be empty or ipfix" >&2; exit 1; }
SF_VERSION=9
[[ "$EXPORT" == ipfix ]] && SF_VERSION=10
SOFTFLOWD_ARGS="${SOFTFLOWD_ARGS:--v $SF_VERSION -m $((FLOWS * 2 > 8192 ? FLOWS * 2 : 8192))}"
SOFTFLOWD_WAIT="${SOFTFLOWD_WAIT:-600}"
SOFTFLOWD_RUNS="${SOFTFLOWD_RUNS:-$RUNS}"

log() { printf '[vs-softflowd] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"
[[ "$SOFTFLOWD_RUNS" =~ ^[1-9][0-9]*$ ]] || die "SOFTFLOWD_RUNS must be a positive integer"

# ------------------------------------------------------------------ build --
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    if [[ -n "${MIRRORFLOW_CMD:-}" ]]; then
        log "building gen_trace (MIRRORFLOW_CMD set, not building mirrorflow)"
        cargo build --release -p mirrorflow --example gen_trace
    else
        log "building mirrorflow + gen_trace (release)"
        cargo build --release -p mirrorflow --bins --example gen_trace
    fi
fi
GEN="$TARGET_DIR/release/examples/gen_trace"
MIRRORFLOW_BIN="$TARGET_DIR/release/mirrorflow"
[[ -x "$GEN" ]] || die "$GEN not found (build failed or CARGO_TARGET_DIR mismatch)"
if [[ -z "${MIRRORFLOW_CMD:-}" ]]; then
    [[ -x "$MIRRORFLOW_BIN" ]] || die "$MIRRORFLOW_BIN not found"
fi

# ------------------------------------------------------------------ trace --
mkdir -p "$BENCH_DIR"
BENCH_DIR="$(cd "$BENCH_DIR" && pwd)"
TRACE="$BENCH_DIR/trace.pcap"
TRUTH="$TRACE.truth.json"
export TRACE

# Value of a top-level numeric key in the (one key per line) truth sidecar.
truth() { sed -n "s/^ *\"$1\": *\([0-9.]*\),\{0,1\}\$/\1/p" "$TRUTH"; }

trace_ok() {
    [[ -f "$TRACE" && -f "$TRUTH" ]] || return 1
    [[ "$(truth packets)" == "$PACKETS" && "$(truth flows)" == "$FLOWS" \
        && "$(truth seed)" == "$SEED" ]] || return 1
    [[ "$(stat -c %s "$TRACE")" == "$(truth file_bytes)" ]]
}

if trace_ok; then
    log "reusing $TRACE ($PACKETS packets, $FLOWS flows, seed $SEED)"
else
    log "generating $TRACE ($PACKETS packets, $FLOWS flows, seed $SEED)"
    rm -f "$TRACE" "$TRUTH"
    "$GEN" --packets "$PACKETS" --flows "$FLOWS" --seed "$SEED" -o "$TRACE"
    trace_ok || die "generated trace does not match its truth sidecar"
fi
NPKTS="$(truth packets)"

# ------------------------------------------------------------- softflowd --
SOFTFLOWD="${SOFTFLOWD:-$(command -v softflowd || echo /usr/sbin/softflowd)}"
if [[ ! -x "$SOFTFLOWD" ]]; then
    log "waiting up to ${SOFTFLOWD_WAIT}s for $SOFTFLOWD to be installed"
    for ((i = 0; i < SOFTFLOWD_WAIT; i += 5)); do
        [[ -x "$SOFTFLOWD" ]] && break
        sleep 5
    done
    [[ -x "$SOFTFLOWD" ]] || die "$SOFTFLOWD not found"
fi

# ------------------------------------------------------- UDP sink + trap --
TMP="$(mktemp -d)"
SINK_PID=""
cleanup() {
    if [[ -n "$SINK_PID" ]]; then
        kill "$SINK_PID" 2>/dev/null || true
        wait "$SINK_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CC="${CC:-$(command -v cc || command -v gcc || true)}"
if [[ -n "$CC" && "${PY_SINK:-0}" != 1 ]] \
    && "$CC" -O2 "$ROOT/benches/udp-sink.c" -o "$TMP/udp-sink" 2>"$TMP/cc.log"; then
    # Counts datagrams and bytes with recvmmsg (little CPU taken from the exporter under
    # test); SIGUSR1 writes "datagrams bytes" to $TMP/sink.count.
    SINK_KIND="recvmmsg (benches/udp-sink.c)"
    "$TMP/udp-sink" "$TMP/sink.count" >"$TMP/sink.port" &
    SINK_PID=$!
    for _ in $(seq 100); do [[ -s "$TMP/sink.port" ]] && break; sleep 0.05; done
    PORT="$(cat "$TMP/sink.port")"
elif command -v python3 >/dev/null; then
    if [[ -n "$CC" && "${PY_SINK:-0}" != 1 ]]; then
        log "could not build benches/udp-sink.c ($(head -c 300 "$TMP/cc.log")); using the Python sink"
    fi
    # Counts datagrams and bytes; SIGUSR1 writes "datagrams bytes" to $TMP/sink.count.
    SINK_KIND="python3 recv loop"
    SINK_COUNT="$TMP/sink.count" python3 -u -c '
import os, signal, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind(("127.0.0.1", 0))
n = b = 0
def dump(*_):
    with open(os.environ["SINK_COUNT"] + ".tmp", "w") as f:
        f.write("%d %d\n" % (n, b))
    os.replace(os.environ["SINK_COUNT"] + ".tmp", os.environ["SINK_COUNT"])
signal.signal(signal.SIGUSR1, dump)
print(s.getsockname()[1])
buf = bytearray(65536)
while True:
    try:
        k = s.recv_into(buf)
    except InterruptedError:
        continue
    n += 1
    b += k
' >"$TMP/sink.port" &
    SINK_PID=$!
    for _ in $(seq 100); do [[ -s "$TMP/sink.port" ]] && break; sleep 0.05; done
    PORT="$(cat "$TMP/sink.port")"
elif [[ -n "$EXPORT" ]]; then
    die "EXPORT mode needs a C compiler or python3 for the counting UDP sink"
elif command -v socat >/dev/null; then
    PORT="${SINK_PORT:-29995}"
    SINK_KIND="socat"
    socat -u "UDP-RECV:$PORT,bind=127.0.0.1" /dev/null &
    SINK_PID=$!
    sleep 0.2
else
    die "need python3 or socat for the UDP sink"
fi
[[ -n "$PORT" ]] || die "UDP sink did not start"
log "UDP sink ($SINK_KIND) on 127.0.0.1:$PORT (pid $SINK_PID)"

# ---------------------------------------------------------------- timing --
HAVE_GNU_TIME=0
if [[ -x /usr/bin/time ]] && /usr/bin/time -f '%M' -o "$TMP/t" true 2>/dev/null; then
    HAVE_GNU_TIME=1
fi

# measure NAME LOGFILE CMD... -> appends "wall_s rss_kib" to $TMP/NAME.res
measure() {
    local name="$1" logf="$2"; shift 2
    local t0 t1 rss rc=0
    t0="$EPOCHREALTIME"
    if ((HAVE_GNU_TIME)); then
        /usr/bin/time -f '%M' -o "$TMP/rss" "$@" >"$logf" 2>&1 || rc=$?
        t1="$EPOCHREALTIME"
        rss="$(tail -n 1 "$TMP/rss")"
    else
        # Fallback: poll VmHWM of the (direct) child while it runs.
        "$@" >"$logf" 2>&1 &
        local pid=$! hwm=0 v
        while kill -0 "$pid" 2>/dev/null; do
            v="$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
            [[ -n "$v" && "$v" -gt "$hwm" ]] && hwm="$v"
            sleep 0.02
        done
        wait "$pid" || rc=$?
        t1="$EPOCHREALTIME"
        rss="$hwm"
    fi
    if ((rc != 0)); then
        log "$name exited with status $rc; last lines of $logf:"
        tail -n 20 "$logf" >&2
        exit 1
    fi
    awk -v a="$t0" -v b="$t1" -v r="$rss" 'BEGIN { printf "%.4f %s\n", b - a, r }' \
        >>"$TMP/$name.res"
}

run_mirrorflow() {
    if [[ -n "${MIRRORFLOW_CMD:-}" ]]; then
        measure mirrorflow "$1" bash -c "$MIRRORFLOW_CMD"
    else
        measure mirrorflow "$1" "$MIRRORFLOW_BIN" -r "$TRACE" --json /dev/null
    fi
}

run_softflowd() {
    # shellcheck disable=SC2086  # SOFTFLOWD_ARGS is a word list on purpose
    measure softflowd "$1" "$SOFTFLOWD" -r "$TRACE" -n "127.0.0.1:$PORT" $SOFTFLOWD_ARGS
}

ONE_CPU="${ONE_CPU:-0}"
if [[ -n "${MIRRORFLOW_CMD:-}" || "$ONE_CPU" == none ]]; then
    ONE_CPU=none
elif ! command -v taskset >/dev/null; then
    die "taskset (util-linux) is needed for the one-CPU run; ONE_CPU=none skips it"
fi
run_one_cpu() {
    measure "$1" "$2" taskset -c "$ONE_CPU" "$MIRRORFLOW_BIN" -r "$TRACE"
}

log "warming the page cache"
cat "$TRACE" >/dev/null

# median COLUMN FILE
median() {
    sort -g -k"$1","$1" "$2" | awk -v c="$1" '{ v[NR] = $c }
        END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
runs_list() { awk '{ printf "%s%.3f", (NR > 1 ? " " : ""), $1 }' "$1"; }

# ------------------------------------------------------- EXPORT=ipfix mode --
# "datagrams bytes" the sink has read so far, once its socket queue is empty.
sink_count() {
    local local_addr q
    local_addr="0100007F:$(printf '%04X' "$PORT")"
    for _ in $(seq 400); do
        q="$(awk -v a="$local_addr" '$2 == a { split($5, x, ":"); print x[2] }' /proc/net/udp)"
        [[ -z "$q" || "$q" == 00000000 ]] && break
        sleep 0.05
    done
    rm -f "$TMP/sink.count"
    kill -USR1 "$SINK_PID"
    for _ in $(seq 400); do [[ -s "$TMP/sink.count" ]] && break; sleep 0.01; done
    cat "$TMP/sink.count"
}

# Datagrams the kernel dropped on the sink's socket (its counts would be low).
sink_drops() {
    awk -v a="0100007F:$(printf '%04X' "$PORT")" '$2 == a { print $NF }' /proc/net/udp
}

# measure_wire NAME LOGFILE CMD...: measure, and append the sink's "datagrams bytes" for
# the run to $TMP/NAME.wire.
measure_wire() {
    local name="$1" before after
    before="$(sink_count)"
    measure "$@"
    after="$(sink_count)"
    echo "$before $after" | awk '{ print $3 - $1, $4 - $2 }' >>"$TMP/$name.wire"
}

export_mode() {
    local core_desc ipfix_desc r
    core_desc="$MIRRORFLOW_BIN -r $TRACE"
    ipfix_desc="$MIRRORFLOW_BIN -r $TRACE --ipfix 127.0.0.1:$PORT --export-rate 1000000 ${IPFIX_ARGS:-}"
    log "core:      $core_desc"
    log "ipfix:     $ipfix_desc"
    log "softflowd: $SF_DESC"
    for ((r = 1; r <= RUNS; r++)); do
        log "run $r/$RUNS: mirrorflow core"
        measure core "$BENCH_DIR/core.run$r.log" "$MIRRORFLOW_BIN" -r "$TRACE"
        log "run $r/$RUNS: mirrorflow ipfix"
        # shellcheck disable=SC2086  # ipfix_desc is a word list on purpose
        measure_wire ipfix "$BENCH_DIR/ipfix.run$r.log" $ipfix_desc \
            --stats-json "$BENCH_DIR/ipfix.run$r.json"
        if ((r <= SOFTFLOWD_RUNS)); then
            log "run $r/$RUNS: softflowd"
            # shellcheck disable=SC2086  # SOFTFLOWD_ARGS is a word list on purpose
            measure_wire softflowd "$BENCH_DIR/softflowd.run$r.log" \
                "$SOFTFLOWD" -r "$TRACE" -n "127.0.0.1:$PORT" $SOFTFLOWD_ARGS
        fi
    done
    local core_w ipfix_w sf_w mf_rec sf_rec drops pairs
    core_w="$(median 1 "$TMP/core.res")"
    ipfix_w="$(median 1 "$TMP/ipfix.res")"
    sf_w="$(median 1 "$TMP/softflowd.res")"
    mf_rec="$(sed -n 's/^ *"flow_records": *\([0-9]*\).*/\1/p' "$BENCH_DIR/ipfix.run1.json")"
    sf_rec="$(sed -n 's/^Flows exported: *\([0-9]*\).*/\1/p' "$BENCH_DIR/softflowd.run1.log" | head -n 1)"
    drops="$(sink_drops)"
    # Run r of core and of ipfix ran back to back: the median of their ratios is steadier
    # than the ratio of medians on a machine whose speed drifts.
    pairs="$(paste -d ' ' <(awk '{ print $1 }' "$TMP/core.res") <(awk '{ print $1 }' "$TMP/ipfix.res") |
        awk '{ print ($2 - $1) / $1 * 100 }' | sort -g |
        awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }')"
    echo
    echo "trace:     $TRACE"
    echo "           $NPKTS packets, $(truth flows) flows, seed $SEED, $(stat -c %s "$TRACE") bytes"
    echo "core:      $core_desc"
    echo "ipfix:     $ipfix_desc"
    echo "softflowd: $SF_DESC"
    echo "sink:      $SINK_KIND on 127.0.0.1:$PORT"
    echo "runs:      $RUNS each (softflowd $SOFTFLOWD_RUNS), alternating; medians shown; wire = UDP payload at the sink"
    echo
    awk -v n="$NPKTS" -v cw="$core_w" -v iw="$ipfix_w" -v sw="$sf_w" -v pairs="$pairs" \
        -v mrec="${mf_rec:-0}" -v srec="${sf_rec:-0}" \
        -v iwire="$(head -n 1 "$TMP/ipfix.wire")" -v swire="$(head -n 1 "$TMP/softflowd.wire")" \
        -v cruns="$(runs_list "$TMP/core.res")" -v iruns="$(runs_list "$TMP/ipfix.res")" \
        -v sruns="$(runs_list "$TMP/softflowd.res")" 'BEGIN {
        split(iwire, iw_, " "); split(swire, sw_, " ")
        printf "%-16s %8s %8s %10s %9s %10s %9s   %s\n", "run", "wall_s", "Mpkt/s", "records",
            "Mrec/s", "datagrams", "B/record", "wall_s per run"
        printf "%-16s %8.3f %8.3f %10s %9s %10s %9s   %s\n", "mirrorflow core", cw, n / cw / 1e6,
            "-", "-", "-", "-", cruns
        printf "%-16s %8.3f %8.3f %10d %9.3f %10d %9.1f   %s\n", "mirrorflow ipfix", iw,
            n / iw / 1e6, mrec, mrec / iw / 1e6, iw_[1], (mrec ? iw_[2] / mrec : 0), iruns
        printf "%-16s %8.3f %8.3f %10d %9.3f %10d %9.1f   %s\n", "softflowd -v 10", sw,
            n / sw / 1e6, srec, srec / sw / 1e6, sw_[1], (srec ? sw_[2] / srec : 0), sruns
        printf "\nexport overhead (ipfix vs core wall time): %+.1f %% (medians), %+.1f %% (median of run pairs)\n",
            (iw - cw) / cw * 100, pairs
        printf "ratio mirrorflow ipfix / softflowd (records/s): %.2fx\n",
            (srec && mrec) ? (mrec / iw) / (srec / sw) : 0
    }'
    [[ "${drops:-0}" == 0 ]] || log "warning: the sink dropped $drops datagrams: wire counts are low"
    echo "logs:      $BENCH_DIR/{core,ipfix,softflowd}.run*.log"
}

if [[ -n "${MIRRORFLOW_CMD:-}" ]]; then
    MF_DESC="$MIRRORFLOW_CMD  (MIRRORFLOW_CMD override)"
else
    MF_DESC="$MIRRORFLOW_BIN -r $TRACE --json /dev/null"
fi
SF_DESC="$SOFTFLOWD -r $TRACE -n 127.0.0.1:$PORT $SOFTFLOWD_ARGS"
if [[ -n "$EXPORT" ]]; then
    [[ -z "${MIRRORFLOW_CMD:-}" ]] || die "EXPORT mode runs the mirrorflow binary, not MIRRORFLOW_CMD"
    export_mode
    exit 0
fi
ONE_DESC="taskset -c $ONE_CPU $MIRRORFLOW_BIN -r $TRACE"
log "mirrorflow: $MF_DESC"
log "softflowd:  $SF_DESC"
[[ "$ONE_CPU" == none ]] || log "one CPU:    $ONE_DESC"

for ((r = 1; r <= RUNS; r++)); do
    log "run $r/$RUNS: mirrorflow"
    run_mirrorflow "$BENCH_DIR/mirrorflow.run$r.log"
    if [[ "$ONE_CPU" != none ]]; then
        log "run $r/$RUNS: mirrorflow on one CPU"
        run_one_cpu onecpu "$BENCH_DIR/onecpu.run$r.log"
    fi
    log "run $r/$RUNS: softflowd"
    run_softflowd "$BENCH_DIR/softflowd.run$r.log"
    if [[ "$ONE_CPU" != none ]]; then
        log "run $r/$RUNS: mirrorflow on one CPU, after softflowd"
        run_one_cpu onecpu_after_sf "$BENCH_DIR/onecpu-after-softflowd.run$r.log"
    fi
done

# --------------------------------------------------------------- report --

MF_WALL="$(median 1 "$TMP/mirrorflow.res")"
MF_RSS="$(median 2 "$TMP/mirrorflow.res")"
MF_RSS_MAX="$(sort -g -k2,2 "$TMP/mirrorflow.res" | tail -n 1 | awk '{print $2}')"
SF_WALL="$(median 1 "$TMP/softflowd.res")"
SF_RSS="$(median 2 "$TMP/softflowd.res")"

SF_SEEN="$(sed -n 's/^Packets processed: *\([0-9]*\).*/\1/p' "$BENCH_DIR/softflowd.run1.log" | head -n 1)"
SF_FLOWS="$(sed -n 's/^Flows exported: *\([0-9]*\).*/\1/p' "$BENCH_DIR/softflowd.run1.log" | head -n 1)"

echo
echo "trace:     $TRACE"
echo "           $NPKTS packets, $(truth flows) flows, seed $SEED, $(stat -c %s "$TRACE") bytes," \
    "ip_bytes $(truth ip_bytes), ipv6 $(truth ipv6_packets), vlan $(truth vlan_packets)"
echo "mirrorflow: $MF_DESC"
echo "softflowd:  $SF_DESC"
echo "           (softflowd run 1: ${SF_SEEN:-?} packets processed, ${SF_FLOWS:-?} flows exported)"
echo "runs:      $RUNS each, alternating; medians shown"
echo
awk -v n="$NPKTS" -v mw="$MF_WALL" -v mr="$MF_RSS" -v sw="$SF_WALL" -v sr="$SF_RSS" \
    -v mruns="$(runs_list "$TMP/mirrorflow.res")" -v sruns="$(runs_list "$TMP/softflowd.res")" \
    -v mmax="$MF_RSS_MAX" 'BEGIN {
    printf "%-11s %9s %10s %12s   %s\n", "tool", "wall_s", "Mpkt/s", "peak_RSS_MiB", "wall_s per run"
    printf "%-11s %9.3f %10.3f %12.1f   %s\n", "mirrorflow", mw, n / mw / 1e6, mr / 1024, mruns
    printf "%-11s %9.3f %10.3f %12.1f   %s\n", "softflowd", sw, n / sw / 1e6, sr / 1024, sruns
    printf "\nratio mirrorflow/softflowd (packets/s): %.2fx\n", (n / mw) / (n / sw)
    printf "mirrorflow peak RSS: %.1f MiB (median of runs; max %.1f MiB)\n", mr / 1024, mmax / 1024
}'
if [[ "$ONE_CPU" != none ]]; then
    printf "\none CPU:   %s\n" "$ONE_DESC"
    for which in onecpu onecpu_after_sf; do
        label="after mirrorflow"
        [[ "$which" == onecpu_after_sf ]] && label="after softflowd"
        awk -v n="$NPKTS" -v w="$(median 1 "$TMP/$which.res")" -v r="$(median 2 "$TMP/$which.res")" \
            -v sw="$SF_WALL" -v runs="$(runs_list "$TMP/$which.res")" -v l="$label" 'BEGIN {
            printf "1 CPU, %-16s %6.3f s %7.3f Mpkt/s %6.1f MiB  %5.2fx softflowd  runs: %s\n", \
                l, w, n / w / 1e6, r / 1024, (n / w) / (n / sw), runs
        }'
    done
fi
echo "logs:      $BENCH_DIR/{mirrorflow,softflowd,onecpu,onecpu-after-softflowd}.run*.log"
