// Range estimators for activations. Each reads what an observer collected over the
// calibration batches and chooses a clipping range. One file per calibrator in
// quant/calibrators/, each registering itself.
#pragma once

#include "measure/observer.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace qs {

struct ClipRange {
    float lo = 0, hi = 0;
};

struct CalibratorInfo {
    std::string name;
    std::string summary;
    // (data, bits, symmetric, param) -> range. `param` as in QuantSpec::calibratorParam.
    std::function<ClipRange(const CalibrationData&, int, bool, double)> choose;
    double defaultParam = 0;
};

bool registerCalibrator(CalibratorInfo info);
const std::vector<CalibratorInfo>& calibrators();
// Throws Error listing the known names when `name` is unknown.
const CalibratorInfo& calibrator(const std::string& name);

// Shared by calibrators: the value below which `fraction` of the histogram's mass lies.
double histogramQuantile(const Histogram& h, double fraction);
// Expected squared quantization error of the histogram's mass under a clip range.
double histogramQuantMse(const Histogram& h, float lo, float hi, int bits, bool symmetric);

} // namespace qs
