#!/usr/bin/env bash
# Usage: test_deb.sh BUILD_DIR
set -euo pipefail
build="$1"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
(cd "$build" && cpack -G DEB -B "$scratch/pkg" >"$scratch/cpack.log" 2>&1) || { cat "$scratch/cpack.log"; exit 1; }
deb="$(ls "$scratch"/pkg/*.deb)"
echo "package: $(basename "$deb") ($(stat -c %s "$deb") bytes)"
dpkg-deb --info "$deb" | grep -E "Package|Version|Depends|Architecture"
dpkg-deb --contents "$deb" | awk '{print $6}' > "$scratch/contents"
for f in ./usr/bin/quantstudio-cli ./usr/bin/quantstudio-spm ./usr/share/quantstudio/demo/fashion_cnn.onnx \
         ./usr/share/applications/io.github.quantstudio.QuantStudio.desktop \
         ./usr/share/metainfo/io.github.quantstudio.QuantStudio.metainfo.xml; do
  grep -qx "$f" "$scratch/contents" || { echo "missing from the package: $f"; exit 1; }
done
dpkg -x "$deb" "$scratch/root"
out="$("$scratch/root/usr/bin/quantstudio-cli" inspect "$scratch/root/usr/share/quantstudio/demo/fashion_cnn.onnx" --json)"
echo "$out" | grep -q '"params": 117210' || { echo "unexpected inspect output"; echo "$out" | head -20; exit 1; }
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$scratch/root/usr/share/applications/io.github.quantstudio.QuantStudio.desktop"
fi
echo "1 passed, 0 failed"
