#!/usr/bin/env bash
# Sets up everything, builds, and runs the whole test suite through CTest
# (including a bounded fuzzing run of the importers and the runtime with clang's
# libFuzzer, and the tests labelled `sanitize` built with ASan + UBSan in that tree).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
export QS_CMAKE_ARGS="-DQS_WERROR=ON ${QS_CMAKE_ARGS:-}"
start=$SECONDS
phase() { echo "test.sh: $1 done at $((SECONDS - start)) s"; }
"$here/tools/setup.sh" "$here/build"
phase "setup and build"
"$here/tools/fuzz.sh" "$here/build-fuzz" "${QS_FUZZ_SECONDS:-60}"
phase "fuzz build and runs"
# The sanitizer subset: a memory error or undefined behaviour ends the test with a report.
cmake --build "$here/build-fuzz" -j "$(nproc)" --target qs_sanitize_tests
ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir "$here/build-fuzz" -L sanitize --output-on-failure --timeout 900 -j "$(nproc)"
phase "sanitizer subset"
cd "$here/build"
ctest --output-on-failure --timeout 900 -j "$(nproc)"
phase "test suite"
