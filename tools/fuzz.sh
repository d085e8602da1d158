#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each from the seed
# corpus in tests/fuzz/corpus for a fixed number of inputs with a fixed seed, so a run
# is reproducible: what passes here passes in CI (SECONDS only caps a slow machine).
# fuzz_runtime compiles and runs each model, so it gets fewer inputs (QS_FUZZ_RUNTIME_RUNS).
# Usage: tools/fuzz.sh BUILD_DIR SECONDS [RUNS]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build-fuzz}"
seconds="${2:-30}"
runs="${3:-${QS_FUZZ_RUNS:-150000}}"
runtimeRuns="${QS_FUZZ_RUNTIME_RUNS:-3000}"
CC=clang CXX=clang++ cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DQS_FUZZ=ON -DQS_BUILD_GUI=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target fuzz_onnx_import fuzz_data_readers fuzz_precision_import fuzz_runtime
for target in fuzz_onnx_import fuzz_data_readers fuzz_precision_import fuzz_runtime; do
  n="$runs"
  [ "$target" = fuzz_runtime ] && n="$runtimeRuns"
  corpus="$(mktemp -d)"
  cp -r "$here/tests/fuzz/corpus/$target/." "$corpus/" 2>/dev/null || true
  echo "fuzz: $target, $n inputs (at most ${seconds}s)"
  log="$build/$target.log"
  status=0
  ASAN_OPTIONS=detect_leaks=0 "$build/tests/fuzz/$target" -runs="$n" -max_total_time="$seconds" -max_len=65536 \
    -rss_limit_mb=4096 -seed=1 -print_final_stats=1 -artifact_prefix="$build/$target-" "$corpus" >"$log" 2>&1 || status=$?
  grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Test unit written" "$log" || true
  rm -rf "$corpus"
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $target FAILED (exit $status); the crashing input is in $build/$target-*" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
done
