// Weight ranges by layer output MSE (weight calibrator "output-mse"). Weight-space MSE
// treats every direction of the weight error alike; the layer's output error is
// d^T H d with H = sum_x x x^T, which is far from isotropic for image-like inputs: a
// 3x3 edge filter whose taps sum to ~0 gets a DC response of sum(d) * mean level from
// rounding, on every background pixel (the demo CNN's stem lost 10 points of top-1 to
// one such channel at 4 bits). Same grid and round-to-nearest as "mse"; only the
// criterion that picks each block's clipping differs (cf. the layer-wise output MSE
// range setting of Nagel et al. 2021, sec. 3.4, and Nahshan et al. 2019).
#include "quant/algorithms/linear_layer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

namespace qs::algo {

std::vector<QParams> outputMseGrid(
    const LinearLayer& L, const std::vector<float>& m, const std::vector<double>& h, const QuantSpec& spec)
{
    const int64_t k = L.cols;
    const auto blocks = std::size_t(L.blocks());
    std::vector<float> lo(blocks, INFINITY), hi(blocks, -INFINITY);
    // The columns of each block within a row (the same pattern in every row).
    std::map<int64_t, std::vector<int64_t>> pattern; // block offset within the row -> columns
    for (int64_t r = 0; r < L.rows; ++r)
        for (int64_t c = 0; c < k; ++c) {
            const auto b = std::size_t(L.blockOf(r, c));
            const float v = m[std::size_t(r * k + c)];
            lo[b] = std::min(lo[b], v);
            hi[b] = std::max(hi[b], v);
            if (r == 0)
                pattern[L.blockOf(0, c)].push_back(c);
        }
    for (std::size_t b = 0; b < blocks; ++b)
        if (!std::isfinite(lo[b]))
            lo[b] = hi[b] = 0;
    auto factor = [](int step) { return 1.f - 0.02f * float(step); };
    std::vector<QParams> best(blocks);
    std::vector<float> bestLo(lo), bestHi(hi);
    std::vector<double> d(static_cast<std::size_t>(k));
    auto search = [&](int steps, auto&& rangeOf) {
        std::vector<std::vector<QParams>> cand(blocks);
        for (std::size_t b = 0; b < blocks; ++b)
            for (int s = 0; s < steps; ++s) {
                auto [l, u] = rangeOf(b, factor(s));
                cand[b].push_back(qparamsFor(l, u, spec.bits, spec.symmetric));
            }
        std::vector<std::vector<double>> err(blocks, std::vector<double>(std::size_t(steps), 0.0));
        for (int64_t r = 0; r < L.rows; ++r)
            for (const auto& [offset, cols] : pattern) {
                const auto b = std::size_t(L.blockOf(r, cols.front()));
                for (int s = 0; s < steps; ++s) {
                    const QParams& q = cand[b][std::size_t(s)];
                    for (std::size_t i = 0; i < cols.size(); ++i) {
                        const float w = m[std::size_t(r * k + cols[i])];
                        d[i] = double(fakeQuant(w, q)) - double(w);
                    }
                    double e = 0;
                    for (std::size_t i = 0; i < cols.size(); ++i) {
                        if (d[i] == 0)
                            continue;
                        const double* hr = h.data() + cols[i] * k;
                        double dot = 0;
                        for (std::size_t j = 0; j < cols.size(); ++j)
                            dot += hr[cols[j]] * d[j];
                        e += d[i] * dot;
                    }
                    err[b][std::size_t(s)] += e;
                }
            }
        for (std::size_t b = 0; b < blocks; ++b) {
            const auto s = int(std::min_element(err[b].begin(), err[b].end()) - err[b].begin());
            std::tie(bestLo[b], bestHi[b]) = rangeOf(b, factor(s));
            best[b] = cand[b][std::size_t(s)];
        }
    };
    search(41, [&](std::size_t b, float f) { return std::pair(lo[b] * f, hi[b] * f); });
    if (!spec.symmetric) {
        // The shared optimum lies on both end grids (the same steps), so it stays a candidate.
        const std::vector<float> hi1(bestHi);
        search(46, [&](std::size_t b, float f) { return std::pair(lo[b] * f, hi1[b]); });
        const std::vector<float> lo2(bestLo);
        search(46, [&](std::size_t b, float f) { return std::pair(lo2[b], hi[b] * f); });
    }
    return best;
}

} // namespace qs::algo
