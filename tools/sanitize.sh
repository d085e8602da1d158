#!/usr/bin/env bash
# Builds the tests labelled `sanitize` in the ASan + UBSan tree of tools/fuzz.sh and runs
# them, plus the runtime fuzz target (a fuzzed model imported, compiled and run) for a
# fixed number of inputs. Usage: tools/sanitize.sh [BUILD_DIR] [RUNTIME_RUNS]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build-fuzz}"
runs="${2:-3000}"
CC=clang CXX=clang++ cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DQS_FUZZ=ON -DQS_BUILD_GUI=OFF ${QS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$(nproc)" --target qs_sanitize_tests fuzz_runtime
ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir "$build" -L sanitize --output-on-failure --timeout 900 -j "$(nproc)"
corpus="$(mktemp -d)"
cp -r "$here/tests/fuzz/corpus/fuzz_runtime/." "$corpus/"
ASAN_OPTIONS=detect_leaks=0 "$build/tests/fuzz/fuzz_runtime" -runs="$runs" -max_len=65536 -rss_limit_mb=4096 \
  -seed=1 -print_final_stats=1 -artifact_prefix="$build/fuzz_runtime-" "$corpus"
rm -rf "$corpus"
