#include "quant/quantizer.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>
#include <utility>

namespace qs {

QParams qparamsFor(float lo, float hi, int bits, bool symmetric)
{
    if (bits < 2 || bits > 16)
        fail("quantization to ", bits, " bits is not supported (2..16)");
    QParams q;
    if (symmetric) {
        q.qmax = (1 << (bits - 1)) - 1;
        q.qmin = -q.qmax;
        float m = std::max(std::abs(lo), std::abs(hi));
        q.scale = m > 0 && std::isfinite(m) ? m / float(q.qmax) : 1.f;
        q.zeroPoint = 0;
    } else {
        q.qmin = 0;
        q.qmax = (1 << bits) - 1;
        lo = std::min(lo, 0.f);
        hi = std::max(hi, 0.f);
        float span = hi - lo;
        q.scale = span > 0 && std::isfinite(span) ? span / float(q.qmax) : 1.f;
        q.zeroPoint = std::clamp(int32_t(std::nearbyint(-lo / q.scale)), q.qmin, q.qmax);
    }
    return q;
}

int64_t weightBlockCount(const Shape& shape, int outAxis, int inAxis, const QuantSpec& spec)
{
    const int rank = int(shape.size());
    if (spec.granularity == Granularity::Tensor || rank == 0)
        return 1;
    outAxis = (outAxis % rank + rank) % rank;
    inAxis = (inAxis % rank + rank) % rank;
    const int64_t outDim = shape[std::size_t(outAxis)];
    if (spec.granularity != Granularity::Group || inAxis == outAxis)
        return outDim;
    const int64_t inDim = shape[std::size_t(inAxis)];
    const int64_t group = std::max<int64_t>(1, std::min<int64_t>(spec.groupSize, inDim));
    return outDim * ((inDim + group - 1) / group);
}

WeightQuantization planWeightQuantization(std::span<const float> w, const Shape& shape, int outAxis, int inAxis,
                                          const QuantSpec& spec)
{
    const int rank = int(shape.size());
    if (rank > 0) {
        outAxis = (outAxis % rank + rank) % rank;
        inAxis = (inAxis % rank + rank) % rank;
    }
    WeightQuantization plan;
    plan.blockOf.assign(w.size(), 0);
    const int64_t blocks = weightBlockCount(shape, outAxis, inAxis, spec);
    if (spec.granularity != Granularity::Tensor && rank > 0) {
        // Strides of the row-major layout.
        std::vector<int64_t> stride(std::size_t(rank), 1);
        for (int i = rank - 2; i >= 0; --i)
            stride[std::size_t(i)] = stride[std::size_t(i + 1)] * shape[std::size_t(i + 1)];
        const int64_t outDim = shape[std::size_t(outAxis)];
        const int64_t groupsPerChannel = blocks / std::max<int64_t>(outDim, 1);
        const int64_t inDim = groupsPerChannel > 1 ? shape[std::size_t(inAxis)] : 1;
        const int64_t group = groupsPerChannel > 1 ? std::max<int64_t>(1, std::min<int64_t>(spec.groupSize, inDim)) : 1;
        for (std::size_t e = 0; e < w.size(); ++e) {
            int64_t o = (int64_t(e) / stride[std::size_t(outAxis)]) % outDim;
            int64_t g = groupsPerChannel > 1 ? ((int64_t(e) / stride[std::size_t(inAxis)]) % inDim) / group : 0;
            plan.blockOf[e] = int32_t(o * groupsPerChannel + g);
        }
    }
    std::vector<float> lo(std::size_t(blocks), INFINITY), hi(std::size_t(blocks), -INFINITY);
    for (std::size_t e = 0; e < w.size(); ++e) {
        float v = w[e];
        if (!std::isfinite(v))
            fail("weight has a non-finite value (", v, ") at element ", e);
        auto b = std::size_t(plan.blockOf[e]);
        lo[b] = std::min(lo[b], v);
        hi[b] = std::max(hi[b], v);
    }
    plan.params.resize(std::size_t(blocks));
    for (std::size_t b = 0; b < std::size_t(blocks); ++b) {
        float l = spec.range ? spec.range->first : (std::isfinite(lo[b]) ? lo[b] : 0.f);
        float h = spec.range ? spec.range->second : (std::isfinite(hi[b]) ? hi[b] : 0.f);
        plan.params[b] = qparamsFor(l, h, spec.bits, spec.symmetric);
    }
    // "output-mse" chooses by the layer's output error, which needs calibration data
    // (QuantSession::chooseWeightGrids); from the weight alone it is "mse".
    if ((spec.calibrator == "mse" || spec.calibrator == "output-mse") && !spec.range && !spec.isFloat()) {
        // Weight range by MSE: per block, the clipping of [lo, hi] by a factor in
        // [0.5, 1] with the least squared quantization error (a grid search, as in
        // Banner et al. 2019's MSE baseline). An affine grid then refines each end
        // alone, down to 0.1 of it, with the other fixed (one coordinate-descent
        // round): the two tails of a channel are rarely equally long, and one
        // outlier should not cost the other end its range.
        auto factor = [](int k) { return 1.f - 0.02f * float(k); };
        std::vector<float> bestLo(lo), bestHi(hi);
        auto search = [&](int kSteps, auto&& rangeOf) {
            std::vector<std::vector<double>> err(std::size_t(blocks), std::vector<double>(kSteps, 0.0));
            std::vector<std::vector<QParams>> cand(static_cast<std::size_t>(blocks));
            for (std::size_t b = 0; b < std::size_t(blocks); ++b)
                for (int k = 0; k < kSteps; ++k) {
                    auto [l, h] = rangeOf(b, factor(k));
                    cand[b].push_back(qparamsFor(l, h, spec.bits, spec.symmetric));
                }
            for (std::size_t e = 0; e < w.size(); ++e) {
                const auto b = std::size_t(plan.blockOf[e]);
                for (int k = 0; k < kSteps; ++k) {
                    const double d = double(w[e]) - fakeQuant(w[e], cand[b][std::size_t(k)]);
                    err[b][std::size_t(k)] += d * d;
                }
            }
            for (std::size_t b = 0; b < std::size_t(blocks); ++b) {
                const auto k = int(std::min_element(err[b].begin(), err[b].end()) - err[b].begin());
                std::tie(bestLo[b], bestHi[b]) = rangeOf(b, factor(k));
                plan.params[b] = cand[b][std::size_t(k)];
            }
        };
        search(26, [&](std::size_t b, float f) { return std::pair(lo[b] * f, hi[b] * f); });
        if (!spec.symmetric) {
            const std::vector<float> hi1(bestHi);
            search(46, [&](std::size_t b, float f) { return std::pair(lo[b] * f, hi1[b]); });
            const std::vector<float> lo2(bestLo);
            search(46, [&](std::size_t b, float f) { return std::pair(lo2[b], hi[b] * f); });
        }
    } else if (spec.calibrator != "minmax" && spec.calibrator != "mse" && spec.calibrator != "output-mse" &&
               !spec.isFloat()) {
        fail("weight range ", quoted(spec.calibrator), ": weights take minmax, mse or output-mse");
    }
    return plan;
}

std::vector<float> fakeQuantWeight(std::span<const float> w, const Shape& shape, int outAxis, int inAxis,
                                   const QuantSpec& spec, uint64_t seed)
{
    if (spec.isFloat())
        return std::vector<float>(w.begin(), w.end());
    return fakeQuantWeight(w, planWeightQuantization(w, shape, outAxis, inAxis, spec), spec.rounding, seed);
}

std::vector<float> fakeQuantWeight(std::span<const float> w, const WeightQuantization& plan, Rounding rounding,
                                   uint64_t seed)
{
    std::vector<float> out(w.size());
    if (rounding == Rounding::Nearest) {
        for (std::size_t e = 0; e < w.size(); ++e)
            out[e] = fakeQuant(w[e], plan.params[std::size_t(plan.blockOf[e])]);
        return out;
    }
    // Stochastic rounding: round up with probability equal to the fractional part.
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> uni(0.f, 1.f);
    for (std::size_t e = 0; e < w.size(); ++e) {
        const QParams& q = plan.params[std::size_t(plan.blockOf[e])];
        float x = w[e] / q.scale;
        float f = std::floor(x);
        float v = f + (uni(rng) < x - f ? 1.f : 0.f) + float(q.zeroPoint);
        v = std::clamp(v, float(q.qmin), float(q.qmax));
        out[e] = (v - float(q.zeroPoint)) * q.scale;
    }
    return out;
}

int64_t storedBits(int64_t elements, int64_t blocks, const QuantSpec& spec)
{
    if (spec.isFloat())
        return elements * spec.bits;
    return elements * spec.bits + blocks * 32 + (spec.symmetric ? 0 : blocks * spec.bits);
}

} // namespace qs
