// Min-max: the exact observed range. Safe, but one outlier stretches the grid.
#include "quant/calibrator.h"

namespace qs {
namespace {
const bool minmaxRegistered = registerCalibrator({
    "minmax", "observed minimum and maximum",
    [](const CalibrationData& d, int, bool, double) { return ClipRange{float(d.min), float(d.max)}; }, 0});
} // namespace
} // namespace qs
