// Entropy calibration (TensorRT, Migacz 2017): choose the |x| threshold whose
// quantized distribution Q is closest to the clipped reference P in KL divergence.
#include "quant/calibrator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace qs {
namespace {

double klDivergence(const std::vector<double>& p, const std::vector<double>& q)
{
    double sp = 0, sq = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        sp += p[i];
        sq += q[i];
    }
    if (sp <= 0 || sq <= 0)
        return std::numeric_limits<double>::infinity();
    double kl = 0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (p[i] == 0)
            continue;
        if (q[i] == 0)
            return std::numeric_limits<double>::infinity();
        double pi = p[i] / sp, qi = q[i] / sq;
        kl += pi * std::log(pi / qi);
    }
    return kl;
}

ClipRange entropyRange(const CalibrationData& d, int bits, bool symmetric, double)
{
    const Histogram& h = d.histogram;
    const double maxAbs = std::max(std::abs(d.min), std::abs(d.max));
    if (maxAbs <= 0 || h.bins() == 0)
        return {float(d.min), float(d.max)};
    // Fold the signed histogram into one of |x| with 2048 bins over [0, maxAbs].
    const int nb = 2048;
    std::vector<double> absHist(nb, 0.0);
    const double w = h.binWidth();
    for (int i = 0; i < h.bins(); ++i) {
        double c = double(h.counts[std::size_t(i)]);
        if (c == 0)
            continue;
        double x = std::abs(h.lo + w * (i + 0.5));
        int b = std::min(nb - 1, int(x / maxAbs * nb));
        absHist[std::size_t(b)] += c;
    }
    const bool negative = d.min < 0;
    const int levels = negative ? (1 << (bits - 1)) : (1 << bits);
    double bestKl = std::numeric_limits<double>::infinity();
    int bestI = nb;
    for (int i = levels; i <= nb; ++i) {
        std::vector<double> p(absHist.begin(), absHist.begin() + i);
        double outliers = 0;
        for (int k = i; k < nb; ++k)
            outliers += absHist[std::size_t(k)];
        p.back() += outliers;
        // Q: merge the i reference bins into `levels` buckets, spread each bucket's
        // mass evenly over its non-empty bins.
        std::vector<double> q(std::size_t(i), 0.0);
        for (int l = 0; l < levels; ++l) {
            int start = int(int64_t(l) * i / levels), stop = int(int64_t(l + 1) * i / levels);
            double mass = 0;
            int nonEmpty = 0;
            for (int k = start; k < stop; ++k) {
                mass += absHist[std::size_t(k)];
                nonEmpty += absHist[std::size_t(k)] > 0;
            }
            for (int k = start; k < stop; ++k)
                if (absHist[std::size_t(k)] > 0)
                    q[std::size_t(k)] = mass / nonEmpty;
        }
        double kl = klDivergence(p, q);
        if (kl < bestKl) {
            bestKl = kl;
            bestI = i;
        }
    }
    float t = float(maxAbs * (bestI + 0.5) / nb);
    t = std::min(t, float(maxAbs));
    if (symmetric || negative)
        return {negative ? std::max(-t, float(d.min)) : float(d.min), std::min(t, float(d.max))};
    return {float(d.min), std::min(t, float(d.max))};
}

const bool registered = registerCalibrator({"entropy", "KL-divergence threshold (TensorRT style)", entropyRange, 0});
} // namespace
} // namespace qs
