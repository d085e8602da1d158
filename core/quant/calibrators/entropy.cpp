// Entropy calibration (TensorRT, Migacz 2017): choose the |x| threshold whose
// quantized distribution Q is closest to the clipped reference P in KL divergence.
//
// Over a histogram of |x| on [0, max|x|] (TensorRT: 2048 bins; here the
// observer's bins folded about zero, at most 2048), for every candidate i:
//   P = bins [0, i) with the clipped mass (bins >= i) added to P[i-1];
//   Q = bins [0, i) (without the clipped mass) merged into the quantizer's levels
//       and expanded back to i bins, each level's mass spread evenly over the
//       bins where P is non-zero; P and Q each normalised to 1;
// and the threshold is the upper edge of bin i - 1 for the i with the least KL(P||Q).
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

constexpr int kMaxBins = 2048;

// The signed histogram folded about zero into a histogram of magnitudes on the
// observer's own grid: bin 0 is the source bin holding zero, bin k the source
// bin(s) k places from it on the side(s) taken (+1: x >= 0, -1: x <= 0, 0: both,
// i.e. |x|). No resampling, so the zero spike stays in bin 0 (interpolating onto
// another grid smears it into bin 1, where it is no longer a level of its own,
// and aliases the grids into spurious KL minima). Values outside the
// histogram's range count in the last bin.
struct MagnitudeHistogram {
    std::vector<double> counts;
    double zeroEdge = 0; // outer edge of the zero bin, >= 0
    double width = 0;
    double edge(int bins) const { return zeroEdge + width * (bins - 1); } // outer edge of bins [0, bins)
};

MagnitudeHistogram magnitudeHistogram(const Histogram& h, double maxMagnitude, int side)
{
    MagnitudeHistogram a;
    a.width = h.binWidth();
    const int z = std::clamp(int(std::floor(-h.lo / a.width)), 0, h.bins() - 1);
    const double upper = std::max(0.0, h.lo + a.width * (z + 1)), lower = std::max(0.0, -(h.lo + a.width * z));
    a.zeroEdge = side < 0 ? lower : upper;
    // Bins up to the one holding maxMagnitude; with more than kMaxBins of them (a
    // finer histogram than the observer keeps) the rest are lumped into the last.
    int nb = 1 + std::max(0, int(std::ceil((maxMagnitude - a.zeroEdge) / a.width)));
    nb = std::min({nb, std::max(z + 1, h.bins() - z), kMaxBins});
    a.counts.assign(std::size_t(nb), 0.0);
    for (int i = 0; i < h.bins(); ++i)
        if (side == 0 || (i - z) * side >= 0)
            a.counts[std::size_t(std::min(std::abs(i - z), nb - 1))] += double(h.counts[std::size_t(i)]);
    a.counts.back() += double(side >= 0 ? h.above : 0) + double(side <= 0 ? h.below : 0);
    return a;
}

// KL(P||Q) for the candidate threshold at bin i (see the top of the file).
// Infinite when a bucket holds no mass below the threshold but P does (only
// clipped mass): that threshold cuts off data the levels below it never saw.
double candidateKl(const std::vector<double>& absHist, int i, int levels, std::vector<double>& p,
                   std::vector<double>& q)
{
    p.assign(absHist.begin(), absHist.begin() + i);
    for (std::size_t k = std::size_t(i); k < absHist.size(); ++k)
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

// The number of bins [0, i) of `counts` whose KL(P||Q) is least (all of them
// when there are fewer bins than levels: nothing is worth clipping then).
int bestBinCount(const std::vector<double>& counts, int64_t levels)
{
    const int nb = int(counts.size());
    double bestKl = std::numeric_limits<double>::infinity();
    int bestI = nb;
    std::vector<double> p, q;
    for (int i = int(std::max<int64_t>(levels, 2)); i <= nb; ++i) {
        double kl = candidateKl(counts, i, int(levels), p, q);
        if (kl < bestKl) {
            bestKl = kl;
            bestI = i;
        }
    }
    return bestI;
}

// The clipping magnitude chosen on one side (or both folded) of zero.
double sideThreshold(const Histogram& h, double maxMagnitude, int side, int64_t levels)
{
    const MagnitudeHistogram a = magnitudeHistogram(h, maxMagnitude, side);
    const int i = bestBinCount(a.counts, levels);
    return i >= int(a.counts.size()) ? maxMagnitude : std::min(a.edge(i), maxMagnitude);
}

ClipRange entropyRange(const CalibrationData& d, int bits, bool symmetric, double)
{
    const Histogram& h = d.histogram;
    const double maxAbs = std::max(std::abs(d.min), std::abs(d.max));
    if (maxAbs <= 0 || h.bins() == 0 || h.total() == 0 || h.binWidth() <= 0)
        return {float(d.min), float(d.max)};
    const bool negative = d.min < 0, positive = d.max > 0;
    if (symmetric || !negative || !positive) {
        // One threshold on |x| (TensorRT). Levels on [0, t], zero included: 2^(bits-1)
        // for a symmetric scheme (0..qmax), 2^bits for an affine one on one-signed
        // data (u8 after a ReLU: 0..255).
        const int64_t levels = int64_t(1) << (symmetric ? bits - 1 : bits);
        const float t = float(sideThreshold(h, maxAbs, 0, levels));
        return {std::max(-t, float(d.min)), std::min(t, float(d.max))};
    }
    // Affine on signed data: a single |x| threshold would clip the longer side at
    // the shorter side's length (a normalised image in [-0.8, 2.0] clipped to
    // [-0.8, 0.8]). Each side is searched on its own, with the share of the
    // 2^bits levels it has under the observed range.
    const double span = d.max - d.min;
    auto levelsFor = [&](double length) { return std::max<int64_t>(2, std::llround(double(int64_t(1) << bits) * length / span)); };
    const double lo = sideThreshold(h, -d.min, -1, levelsFor(-d.min));
    const double hi = sideThreshold(h, d.max, +1, levelsFor(d.max));
    return {std::max(-float(lo), float(d.min)), std::min(float(hi), float(d.max))};
}

const bool entropyRegistered = registerCalibrator({"entropy", "KL-divergence threshold (TensorRT style)", entropyRange, 0});
} // namespace
} // namespace qs
