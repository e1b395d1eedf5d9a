#!/usr/bin/env bash
# Fuzzes the sFlow listener's datagram path for a bounded time; exits non-zero on any crash.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]      (default 45; FUZZ_SECONDS works too)
#
# Steps: install cargo-fuzz if missing; build both targets on the stable toolchain
# (`--sanitizer none` needs no nightly flag); write the seed corpus (hand-built datagrams
# and the sFlow payloads of ../shared/pcaps, PCAPS=DIR to change); replay every file of
# tests/fuzz/regressions/ in a process of its own; then fuzz each target. The targets run
# with a 2 MiB stack, the stack of the probe's sflow-in thread. A crash leaves its input
# in tests/fuzz/artifacts/<target>/ and is printed in hex.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
fuzz=$root/tests/fuzz
seconds=${1:-${FUZZ_SECONDS:-45}}
pcaps=${PCAPS:-$root/../shared/pcaps}
targets=(sflow_datagram sflow_structured)
captures=(ndpi__sflow.pcap tcpdump__sflow-print-v6.pcap tcpdump__sflow_multiple_counter_30_pdus.pcap)
target_dir=${CARGO_TARGET_DIR:-$fuzz/target}
host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=$target_dir/$host/release
stack_kib=2048
# sflow-parser allocates (zeroed) whatever length an inner opaque claims, up to 100 MB. With
# glibc's dynamic mmap threshold those buffers move to the heap and get memset, which cut
# the fuzzing rate four to seven times; a fixed threshold keeps them lazily zeroed mmaps.
export MALLOC_MMAP_THRESHOLD_=131072

say() { echo "fuzz: $*"; }
hexdump_file() { od -An -tx1 -v "$1" | tr -d ' \n' | fold -w 128; echo; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  say "installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi
cargo --version
cargo fuzz --version

# The fuzz workspace takes the main workspace's locked versions; cargo adds the fuzz-only
# crates (libfuzzer-sys, arbitrary) to its copy.
cp Cargo.lock "$fuzz/Cargo.lock"
seeds=$fuzz/corpus/seeds
rm -rf "$seeds"
capture_paths=()
for c in "${captures[@]}"; do
  [ -f "$pcaps/$c" ] || { say "$pcaps/$c is missing (set PCAPS=DIR)" >&2; exit 1; }
  capture_paths+=("$pcaps/$c")
done
cargo run --quiet --manifest-path "$fuzz/Cargo.toml" -p mirrorflow-fuzz-seeds \
  --target-dir "$target_dir" -- "$seeds" "${capture_paths[@]}"

cargo fuzz build --fuzz-dir "$fuzz" --sanitizer none --debug-assertions --target-dir "$target_dir"

# Runs a target binary with the probe's stack; prints the end of its log, and on failure
# the inputs it left. LABEL names the run in the failure message.
run_target() {
  local label=$1 name=$2 log=$3 art=$4
  shift 4
  mkdir -p "$art"
  local rc=0
  ( ulimit -s "$stack_kib" && exec "$bin_dir/$name" -artifact_prefix="$art/" "$@" ) \
    >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$log" | tail -n 60 >&2
    if [ "$rc" -eq 139 ]; then
      say "$name died of SIGSEGV: most likely a stack overflow, which leaves no crash file" >&2
    fi
    for f in "$art"/*; do
      [ -f "$f" ] || continue
      say "crash input $f ($(stat -c %s "$f") bytes):" >&2
      hexdump_file "$f" | head -c 8192 >&2
    done
    say "$label failed (exit $rc); full log: $log" >&2
    return 1
  fi
}

logs=$fuzz/artifacts/logs
mkdir -p "$logs"
failed=0
for f in "$fuzz"/regressions/*.bin; do
  [ -f "$f" ] || continue
  r=$(basename "$f")
  say "regression $r"
  run_target "regression $r (see tests/fuzz/regressions/README.md)" sflow_datagram \
    "$logs/regression-$r.log" "$fuzz/artifacts/regressions" "$f" || failed=$((failed + 1))
done
if [ "$failed" -ne 0 ]; then
  say "$failed regression input(s) still crash" >&2
  exit 1
fi

for t in "${targets[@]}"; do
  corpus=$fuzz/corpus/$t
  mkdir -p "$corpus"
  say "$t for ${seconds}s"
  run_target "$t" "$t" "$logs/$t.log" "$fuzz/artifacts/$t" \
    -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$corpus" "$seeds" || exit 1
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
    "$logs/$t.log" | sed "s/^/fuzz: $t: /"
done
say "no crash"
