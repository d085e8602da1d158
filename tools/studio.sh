#!/usr/bin/env bash
# Sets up everything, builds, and starts the studio on the bundled demo model.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/tools/setup.sh" "$here/build"
exec "$here/build/app/quantstudio" "$here/resources/demo/fashion_cnn.onnx" "$@"
