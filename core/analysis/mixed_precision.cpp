#include "analysis/mixed_precision.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qs {

std::vector<LayerOptions> constrain(const std::vector<LayerOptions>& layers, const MixedConstraints& c)
{
    std::vector<LayerOptions> out;
    for (const auto& l : layers) {
        LayerOptions k = l;
        k.options.clear();
        auto pin = c.pinned.find(l.layer);
        for (const auto& o : l.options) {
            if (pin != c.pinned.end() ? o.bits == pin->second
                                      : (c.allowedBits.count(o.bits) && o.bits >= c.minBits && o.bits <= c.maxBits))
                k.options.push_back(o);
        }
        if (k.options.empty())
            fail("layer ", quoted(l.layer), ": no bit width is left by the constraints",
                 pin != c.pinned.end() ? str(" (pinned to ", pin->second, " bits, which was not measured)") : "");
        out.push_back(std::move(k));
    }
    return out;
}

std::vector<FrontPoint> paretoFront(const std::vector<LayerOptions>& layers, int resolution)
{
    if (layers.empty())
        return {};
    int64_t minCost = 0, maxCost = 0;
    for (const auto& l : layers) {
        if (l.options.empty())
            fail("layer ", quoted(l.layer), " has no options");
        int64_t lo = INT64_MAX, hi = 0;
        for (const auto& o : l.options) {
            lo = std::min(lo, o.cost);
            hi = std::max(hi, o.cost);
        }
        minCost += lo;
        maxCost += hi;
    }
    // Costs are measured above each layer's cheapest option, in buckets of `step`.
    int64_t span = maxCost - minCost;
    const double step = span > 0 ? double(span) / double(std::max(resolution, 1)) : 1.0;
    const int buckets = int(std::ceil(double(span) / step)) + int(layers.size()) + 1;
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<double> dp(std::size_t(buckets), inf), next;
    dp[0] = 0;
    // choice[l][b]: option index taken at layer l to reach bucket b.
    std::vector<std::vector<int16_t>> choice(layers.size(), std::vector<int16_t>(std::size_t(buckets), -1));
    for (std::size_t li = 0; li < layers.size(); ++li) {
        const auto& l = layers[li];
        int64_t lo = INT64_MAX;
        for (const auto& o : l.options)
            lo = std::min(lo, o.cost);
        next.assign(std::size_t(buckets), inf);
        for (int b = 0; b < buckets; ++b) {
            if (dp[std::size_t(b)] == inf)
                continue;
            for (std::size_t oi = 0; oi < l.options.size(); ++oi) {
                const auto& o = l.options[oi];
                int nb = b + int(std::lround(double(o.cost - lo) / step));
                if (nb >= buckets)
                    continue;
                double v = dp[std::size_t(b)] + o.noise;
                if (v < next[std::size_t(nb)]) {
                    next[std::size_t(nb)] = v;
                    choice[li][std::size_t(nb)] = int16_t(oi); // predecessor = nb - delta(oi)
                }
            }
        }
        dp.swap(next);
    }
    std::vector<FrontPoint> front;
    double bestNoise = inf;
    for (int b = 0; b < buckets; ++b) {
        if (dp[std::size_t(b)] == inf || dp[std::size_t(b)] >= bestNoise)
            continue;
        // Backtrack the choices.
        FrontPoint p;
        int bucket = b;
        int64_t elements = 0;
        double bitSum = 0;
        bool ok = true;
        for (std::size_t li = layers.size(); li-- > 0;) {
            int oi = choice[li][std::size_t(bucket)];
            if (oi < 0) {
                ok = false;
                break;
            }
            const auto& l = layers[li];
            const auto& o = l.options[std::size_t(oi)];
            int64_t lo = INT64_MAX;
            for (const auto& x : l.options)
                lo = std::min(lo, x.cost);
            bucket -= int(std::lround(double(o.cost - lo) / step));
            p.bits[l.layer] = o.bits;
            p.cost += o.cost;
            p.sizeBits += o.sizeBits;
            p.predictedNoise += o.noise;
            elements += l.elements;
            bitSum += double(l.elements) * o.bits;
        }
        if (!ok || bucket != 0)
            continue;
        p.predictedSqnrDb = p.predictedNoise > 0 ? -10 * std::log10(p.predictedNoise) : INFINITY;
        p.averageBits = elements > 0 ? bitSum / double(elements) : 0;
        bestNoise = dp[std::size_t(b)];
        front.push_back(std::move(p));
    }
    // Exact costs can reorder neighbours within a bucket: keep the true Pareto set.
    std::sort(front.begin(), front.end(), [](const auto& a, const auto& b) {
        return a.cost != b.cost ? a.cost < b.cost : a.predictedNoise < b.predictedNoise;
    });
    std::vector<FrontPoint> pareto;
    for (auto& p : front)
        if (pareto.empty() || p.predictedNoise < pareto.back().predictedNoise)
            pareto.push_back(std::move(p));
    return pareto;
}

std::optional<FrontPoint> bestWithin(const std::vector<FrontPoint>& front, int64_t budget)
{
    std::optional<FrontPoint> best;
    for (const auto& p : front)
        if (p.cost <= budget && (!best || p.predictedNoise < best->predictedNoise))
            best = p;
    return best;
}

} // namespace qs
