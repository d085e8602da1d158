// Entropy calibration (TensorRT, Migacz 2017): choose the |x| threshold whose
// quantized distribution Q is closest to the clipped reference P in KL divergence.
//
// Over a 2048-bin histogram of |x| on [0, max|x|], for every candidate i:
//   P = bins [0, i) with the clipped mass (bins >= i) added to P[i-1];
//   Q = bins [0, i) (without the clipped mass) merged into the quantizer's levels
//       and expanded back to i bins, each level's mass spread evenly over the
//       bins where P is non-zero; P and Q each normalised to 1;
// and the threshold is the upper edge of bin i for the i with the least KL(P||Q).
//
// The bin holding zero is a level of its own: zero is exactly representable
// (symmetric and affine alike), so the quantizer reproduces the spike of exact
// zeros after a ReLU. Merging that spike with its neighbours, as the textbook
// algorithm does, charges it a KL cost that only shrinks with the threshold and
// drives the search to clip far too hard on post-ReLU activations.
#include "quant/calibrator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace qs {
namespace {

constexpr int kAbsBins = 2048;

// The signed histogram folded into kAbsBins bins of |x| over [0, maxAbs]; each
// source bin's count is shared among the |x| bins it overlaps, in proportion.
// Values outside the histogram's range count in the last bin.
std::vector<double> absHistogram(const Histogram& h, double maxAbs)
{
    std::vector<double> out(kAbsBins, 0.0);
    const double scale = kAbsBins / maxAbs; // |x| -> bin coordinate
    auto spread = [&](double a, double b, double c) {
        // c spread uniformly over |x| in [a, b], 0 <= a <= b.
        // Snapped to whole bins when within rounding of one, so a source histogram on
        // the same grid is copied bin for bin.
        auto coord = [&](double x) {
            double u = std::min(x * scale, double(kAbsBins)), r = std::round(u);
            return std::abs(u - r) < 1e-9 * kAbsBins ? r : u;
        };
        const double ua = coord(a), ub = coord(b);
        if (ub - ua <= 0) {
            out[std::size_t(std::min(int(ua), kAbsBins - 1))] += c;
            return;
        }
        for (int k = int(ua); k < kAbsBins && k < ub; ++k) {
            double overlap = std::min(ub, double(k + 1)) - std::max(ua, double(k));
            if (overlap > 0)
                out[std::size_t(k)] += c * overlap / (ub - ua);
        }
    };
    const double w = h.binWidth();
    for (int i = 0; i < h.bins(); ++i) {
        const double c = double(h.counts[std::size_t(i)]);
        if (c == 0)
            continue;
        const double lo = h.lo + w * i, hi = lo + w;
        if (lo >= 0) {
            spread(lo, hi, c);
        } else if (hi <= 0) {
            spread(-hi, -lo, c);
        } else { // the bin straddles zero
            spread(0, -lo, c * -lo / w);
            spread(0, hi, c * hi / w);
        }
    }
    out.back() += double(h.below + h.above);
    return out;
}

// KL(P||Q) for the candidate threshold at bin i (see the top of the file).
// Infinite when a bucket holds no mass below the threshold but P does (only
// clipped mass): that threshold cuts off data the levels below it never saw.
double candidateKl(const std::vector<double>& absHist, int i, int levels, std::vector<double>& p,
                   std::vector<double>& q)
{
    p.assign(absHist.begin(), absHist.begin() + i);
    for (int k = i; k < kAbsBins; ++k)
        p.back() += absHist[std::size_t(k)];
    q.assign(std::size_t(i), 0.0);
    q[0] = absHist[0]; // the zero level
    // Bins [1, i) into levels - 1 buckets.
    const int64_t n = i - 1, m = levels - 1;
    for (int64_t l = 0; l < m; ++l) {
        const int start = 1 + int(l * n / m), stop = 1 + int((l + 1) * n / m);
        double mass = 0;
        int nonZero = 0;
        for (int k = start; k < stop; ++k) {
            mass += absHist[std::size_t(k)];
            nonZero += p[std::size_t(k)] > 0;
        }
        for (int k = start; k < stop; ++k)
            if (p[std::size_t(k)] > 0)
                q[std::size_t(k)] = mass / nonZero;
    }
    double sp = 0, sq = 0;
    for (int k = 0; k < i; ++k) {
        sp += p[std::size_t(k)];
        sq += q[std::size_t(k)];
    }
    double kl = 0;
    for (int k = 0; k < i; ++k) {
        const double pk = p[std::size_t(k)], qk = q[std::size_t(k)];
        if (pk <= 0)
            continue;
        if (qk <= 0)
            return std::numeric_limits<double>::infinity();
        kl += pk / sp * std::log((pk / sp) / (qk / sq));
    }
    return kl;
}

ClipRange entropyRange(const CalibrationData& d, int bits, bool symmetric, double)
{
    const Histogram& h = d.histogram;
    const double maxAbs = std::max(std::abs(d.min), std::abs(d.max));
    if (maxAbs <= 0 || h.bins() == 0 || h.total() == 0)
        return {float(d.min), float(d.max)};
    const std::vector<double> absHist = absHistogram(h, maxAbs);
    // Levels on [0, threshold], zero included: 2^(bits-1) for a signed range or a
    // symmetric scheme (0..qmax), 2^bits for an unsigned affine one (u8: 0..255).
    const bool negative = d.min < 0;
    const int64_t levels = (symmetric || negative) ? (int64_t(1) << (bits - 1)) : (int64_t(1) << bits);
    // A candidate needs at least one bin per level; with more levels than bins
    // (> 11 bits) nothing is worth clipping.
    double bestKl = std::numeric_limits<double>::infinity();
    int bestI = kAbsBins;
    std::vector<double> p, q;
    for (int i = int(std::min<int64_t>(levels, kAbsBins)); i <= kAbsBins; ++i) {
        double kl = candidateKl(absHist, i, int(levels), p, q);
        if (kl < bestKl) {
            bestKl = kl;
            bestI = i;
        }
    }
    const float t = std::min(float(maxAbs * bestI / kAbsBins), float(maxAbs));
    if (negative)
        return {std::max(-t, float(d.min)), std::min(t, float(d.max))};
    return {float(d.min), std::min(t, float(d.max))};
}

const bool registered = registerCalibrator({"entropy", "KL-divergence threshold (TensorRT style)", entropyRange, 0});
} // namespace
} // namespace qs
