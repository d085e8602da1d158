#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each from the seed
# corpus in tests/fuzz/corpus for a fixed number of inputs with a fixed seed, so a run
# is reproducible: what passes here passes in CI (SECONDS only caps a slow machine).
# fuzz_runtime compiles and runs each model, so it gets fewer inputs (QS_FUZZ_RUNTIME_RUNS), and
# fuzz_tokenizer parses a tokenizer.json of up to 64 KB per input (QS_FUZZ_TOKENIZER_RUNS).
# Usage: tools/fuzz.sh BUILD_DIR SECONDS [RUNS]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build-fuzz}"
seconds="${2:-30}"
runs="${3:-${QS_FUZZ_RUNS:-150000}}"
runtimeRuns="${QS_FUZZ_RUNTIME_RUNS:-3000}"
tokenizerRuns="${QS_FUZZ_TOKENIZER_RUNS:-2000}"
# Line tables only and -O1: the sanitizer reports keep file:line, and the tree builds
# about a fifth faster than RelWithDebInfo's -O2 -g.
CC=clang CXX=clang++ cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DQS_FUZZ=ON -DQS_BUILD_GUI=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target fuzz_onnx_import fuzz_data_readers fuzz_precision_import fuzz_runtime \
  fuzz_tokenizer

# One fuzzer per core at a time (each is single-threaded); a failure stops the script
# after its group with the crashing input named.
fuzz_one() {
  local target="$1" n="$runs" corpus log status=0
  [ "$target" = fuzz_runtime ] && n="$runtimeRuns"
  [ "$target" = fuzz_tokenizer ] && n="$tokenizerRuns"
  corpus="$(mktemp -d)"
  cp -r "$here/tests/fuzz/corpus/$target/." "$corpus/" 2>/dev/null || true
  log="$build/$target.log"
  ASAN_OPTIONS=detect_leaks=0 "$build/tests/fuzz/$target" -runs="$n" -max_total_time="$seconds" -max_len=65536 \
    -rss_limit_mb=4096 -seed=1 -print_final_stats=1 -artifact_prefix="$build/$target-" "$corpus" >"$log" 2>&1 || status=$?
  rm -rf "$corpus"
  echo "$status" >"$build/$target.status"
}
# The slowest first; a pool of one fuzzer per core: the next starts as soon as one ends
# (in groups, a short fuzzer left its core idle until its partner hit the time cap).
targets=(fuzz_precision_import fuzz_runtime fuzz_onnx_import fuzz_data_readers fuzz_tokenizer)
jobs="$(nproc)"
running=0
for target in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
  echo "fuzz: $target (at most ${seconds}s)"
  fuzz_one "$target" &
  running=$((running + 1))
done
wait
failed=0
for target in "${targets[@]}"; do
  status="$(cat "$build/$target.status")"
  echo "fuzz: $target: $(grep -E "stat::number_of_executed_units|stat::average_exec_per_sec" "$build/$target.log" | tr '\n' ' ')"
  grep -E "ERROR|SUMMARY|Test unit written" "$build/$target.log" || true
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $target FAILED (exit $status); the crashing input is in $build/$target-*" >&2
    tail -n 40 "$build/$target.log" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] || exit 1
