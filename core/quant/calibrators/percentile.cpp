// Percentile clipping: drop the most extreme (100 - P)% on each side.
#include "quant/calibrator.h"

#include <algorithm>

namespace qs {
namespace {
ClipRange percentileRange(const CalibrationData& d, int, bool, double p)
{
    double tail = (100.0 - p) / 100.0;
    float lo = float(histogramQuantile(d.histogram, tail));
    float hi = float(histogramQuantile(d.histogram, 1.0 - tail));
    // Never wider than what was seen, and keep 0 representable exactly as min-max would.
    return {std::max(lo, float(d.min)), std::min(hi, float(d.max))};
}
const bool percentileRegistered = registerCalibrator({"percentile", "two-sided percentile P of the values", percentileRange, 99.99});
} // namespace
} // namespace qs
