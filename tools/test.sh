#!/usr/bin/env bash
# Sets up everything, builds, and runs the whole test suite through CTest
# (including a bounded fuzzing run of the importers with clang's libFuzzer).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
export QS_CMAKE_ARGS="-DQS_WERROR=ON ${QS_CMAKE_ARGS:-}"
"$here/tools/setup.sh" "$here/build"
"$here/tools/fuzz.sh" "$here/build-fuzz" "${QS_FUZZ_SECONDS:-120}"
# The sanitizer subset (tests labelled `sanitize`, built in build-fuzz with ASan + UBSan)
# joins CI once it has run clean on a whole CI-sized machine: tools/sanitize.sh runs it.
cd "$here/build"
ctest --output-on-failure --timeout 900 -j "$(nproc)"
