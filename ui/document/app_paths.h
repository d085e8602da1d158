// Where the studio finds its bundled files: the demo model and its data slice.
#pragma once

#include <QString>

namespace qs::ui {

// The folder holding fashion_cnn.onnx and its IDX data: $QS_DEMO_DIR, next to an
// installed binary (share/quantstudio/demo), or the source tree it was built from.
QString demoDir();
QString demoModelPath();
// A calibration data file beside `modelPath` (an IDX images file), or "" when none.
QString dataBesideModel(const QString& modelPath);

} // namespace qs::ui
