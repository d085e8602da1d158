#!/usr/bin/env bash
# Sets up everything (plus the Python packages the benchmark models are made with),
# builds, and runs every benchmark; each prints medians and ratios against a baseline
# measured in the same run. Usage: tools/bench.sh [runtime|memory|int8|export|sensitivity|mixed|quality|algos|ui|whatif|lmquant|lmattn|data|tokenizer|qat|cluster ...]
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="$here/build"

# ResNet-18 / MobileNetV2 / the algorithms' MLP are exported with Debian's torch; qat trains
# on Debian's Fashion-MNIST.
packages=(python3-torch python3-torchvision python3-onnx python3-numpy dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
"$here/tools/setup.sh" "$build"

py=/usr/bin/python3 # Debian's, which has torch; not the first python3 on PATH
which=("$@")
[ ${#which[@]} -gt 0 ] || which=(runtime memory int8 export sensitivity mixed quality algos ui whatif lmquant lmattn data tokenizer qat)
for b in "${which[@]}"; do
  echo "== bench: $b"
  case "$b" in
    runtime)     $py "$here/bench/run_runtime_bench.py" --build "$build" ;;
    memory)      $py "$here/bench/memory/run_memory_bench.py" --build "$build" ;;
    int8)        $py "$here/bench/int8/run_int8_bench.py" --build "$build" ;;
    export)      $py "$here/bench/run_export_bench.py" --build "$build" ;;
    sensitivity) $py "$here/bench/sensitivity/run_sensitivity_bench.py" --build "$build" ;;
    mixed)       $py "$here/bench/sensitivity/run_mixed_quality.py" --build "$build" ;;
    quality)     $py "$here/bench/int8/quality_table.py" --build "$build" ;;
    algos)       $py "$here/bench/algos/run_algos_bench.py" --cli "$build/app/quantstudio-cli" --work "$build/bench/algos" ;;
    ui)          QT_QPA_PLATFORM=offscreen "$build/bench/ui/bench_inspector"
                 QT_QPA_PLATFORM=offscreen "$build/bench/ui/bench_graph_view"
                 $py "$here/bench/ui/run_open_bench.py" --build "$build" ;;
    cluster)     $py "$here/bench/cluster/run_cluster_bench.py" --build "$build" ;; # root: starts a local Slurm
    whatif)      "$build/bench/whatif/qs_bench_whatif" "$here/resources/demo/fashion_cnn.onnx" \
                   "$here/resources/demo/fashion1k-images-idx3-ubyte.gz" --limit 1000 --batch 100 ;;
    lmquant)     $py "$here/bench/lm/run_lm_quant_bench.py" --cli "$build/app/quantstudio-cli" --work "$build/bench/lmquant" ;;
    lmattn)      $py "$here/bench/lm/run_lm_attention_bench.py" --cli "$build/app/quantstudio-cli" --work "$build/bench/lmattn" ;;
    data)        "$build/bench/data/qs_bench_data" --count 256 --batch 32 ;;
    tokenizer)   corpus="$(sed -n 's/^QS_CORPUS_DIR:PATH=//p' "$build/CMakeCache.txt")"
                 "$build/bench/lm/qs_bench_tokenizer" "$here/resources/demo/byte_gpt_val.txt" \
                   "hf:$corpus/gpt2.tokenizer.json" "hf:$here/tests/data/tokenizers/bpe.json" \
                   "spm:$here/tests/data/tokenizers/spm_unigram.model" "spm:$here/tests/data/tokenizers/spm_bpe.model" ;;
    qat)         $py "$here/bench/qat/run_qat_bench.py" --cli "$build/app/quantstudio-cli" ;;
    *) echo "bench: unknown benchmark $b" >&2; exit 2 ;;
  esac
done
