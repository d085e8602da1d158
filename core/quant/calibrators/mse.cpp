// MSE-optimal clipping: search shrunken ranges for the lowest expected squared
// quantization error over the calibration histogram (clipping vs rounding noise).
#include "quant/calibrator.h"

namespace qs {
namespace {
ClipRange mseRange(const CalibrationData& d, int bits, bool symmetric, double)
{
    ClipRange best{float(d.min), float(d.max)};
    double bestErr = histogramQuantMse(d.histogram, best.lo, best.hi, bits, symmetric);
    // 1-D search over a common shrink factor, then refine each side independently.
    for (int i = 1; i <= 100; ++i) {
        float f = 1.0f - 0.0099f * float(i);
        ClipRange r{float(d.min) * f, float(d.max) * f};
        double e = histogramQuantMse(d.histogram, r.lo, r.hi, bits, symmetric);
        if (e < bestErr) {
            bestErr = e;
            best = r;
        }
    }
    if (!symmetric) {
        for (int side = 0; side < 2; ++side)
            for (int i = 1; i <= 50; ++i) {
                ClipRange r = best;
                float f = 1.0f - 0.01f * float(i);
                (side == 0 ? r.lo : r.hi) *= f;
                double e = histogramQuantMse(d.histogram, r.lo, r.hi, bits, symmetric);
                if (e < bestErr) {
                    bestErr = e;
                    best = r;
                }
            }
    }
    return best;
}
const bool mseRegistered = registerCalibrator({"mse", "range minimizing expected quantization MSE", mseRange, 0});
} // namespace
} // namespace qs
