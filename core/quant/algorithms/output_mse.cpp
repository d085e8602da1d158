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
#include <vector>

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
    // Candidates per block: ranges; the incumbent (the best so far) is always the first.
    std::vector<QParams> best(blocks);
    std::vector<std::pair<float, float>> bestRange(blocks);
    for (std::size_t b = 0; b < blocks; ++b)
        bestRange[b] = {lo[b], hi[b]};
    std::vector<double> d(static_cast<std::size_t>(k));
    auto search = [&](auto&& candidatesOf) {
        std::vector<std::vector<std::pair<float, float>>> ranges(blocks);
        std::vector<std::vector<QParams>> cand(blocks);
        for (std::size_t b = 0; b < blocks; ++b) {
            ranges[b] = candidatesOf(b);
            ranges[b].insert(ranges[b].begin(), bestRange[b]);
            for (const auto& [l, u] : ranges[b])
                cand[b].push_back(qparamsFor(l, u, spec.bits, spec.symmetric));
        }
        std::vector<std::vector<double>> err(blocks);
        for (std::size_t b = 0; b < blocks; ++b)
            err[b].assign(cand[b].size(), 0.0);
        for (int64_t r = 0; r < L.rows; ++r)
            for (const auto& [offset, cols] : pattern) {
                const auto b = std::size_t(L.blockOf(r, cols.front()));
                for (std::size_t s = 0; s < cand[b].size(); ++s) {
                    const QParams& q = cand[b][s];
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
                    err[b][s] += e;
                }
            }
        for (std::size_t b = 0; b < blocks; ++b) {
            const auto s = std::size_t(std::min_element(err[b].begin(), err[b].end()) - err[b].begin());
            bestRange[b] = ranges[b][s];
            best[b] = cand[b][s];
        }
    };
    // Shared factor: 1 down to 0.2 by 0.02, then by 0.002 within 0.02 of the best.
    std::vector<float> shared(blocks, 1.f);
    search([&](std::size_t b) {
        std::vector<std::pair<float, float>> c;
        for (int i = 1; i <= 40; ++i)
            c.emplace_back(lo[b] * (1.f - 0.02f * float(i)), hi[b] * (1.f - 0.02f * float(i)));
        return c;
    });
    for (std::size_t b = 0; b < blocks; ++b)
        shared[b] = hi[b] != 0 ? bestRange[b].second / hi[b] : lo[b] != 0 ? bestRange[b].first / lo[b] : 1.f;
    search([&](std::size_t b) {
        std::vector<std::pair<float, float>> c;
        for (int i = -9; i <= 9; ++i) {
            const float f = std::min(1.f, shared[b] + 0.002f * float(i));
            c.emplace_back(lo[b] * f, hi[b] * f);
        }
        return c;
    });
    if (!spec.symmetric) {
        // Each end alone, 1 down to 0.1 of it by 0.02, the other end fixed at its best.
        for (int side = 0; side < 2; ++side)
            search([&](std::size_t b) {
                std::vector<std::pair<float, float>> c;
                for (int i = 0; i <= 45; ++i) {
                    auto r = bestRange[b];
                    (side == 0 ? r.first : r.second) = (side == 0 ? lo[b] : hi[b]) * (1.f - 0.02f * float(i));
                    c.push_back(r);
                }
                return c;
            });
    }
    return best;
}

} // namespace qs::algo
