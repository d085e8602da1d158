// Moving-average min-max (TensorFlow / AIMET style): batch minima and maxima
// averaged with momentum, so rare extreme batches weigh less.
#include "quant/calibrator.h"

namespace qs {
namespace {
ClipRange ema(const CalibrationData& d, int, bool, double momentum)
{
    if (d.batchRanges.empty())
        return {float(d.min), float(d.max)};
    double lo = d.batchRanges.front().first, hi = d.batchRanges.front().second;
    for (std::size_t i = 1; i < d.batchRanges.size(); ++i) {
        lo = momentum * lo + (1 - momentum) * d.batchRanges[i].first;
        hi = momentum * hi + (1 - momentum) * d.batchRanges[i].second;
    }
    return {float(lo), float(hi)};
}
const bool emaRegistered = registerCalibrator({"ema", "moving average of batch min/max (momentum)", ema, 0.9});
} // namespace
} // namespace qs
