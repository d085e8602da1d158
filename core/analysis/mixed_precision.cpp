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
            const bool allowed = (c.allowedBits.count(o.bits) && o.bits >= c.minBits && o.bits <= c.maxBits) ||
                (l.operand && o.bits >= 16);
            if (pin != c.pinned.end() ? o.bits == pin->second : allowed)
                k.options.push_back(o);
        }
        if (k.options.empty())
            fail("layer ", quoted(l.layer), ": no bit width is left by the constraints",
                 pin != c.pinned.end() ? str(" (pinned to ", pin->second, " bits, which was not measured)") : "");
        out.push_back(std::move(k));
    }
    return out;
}

namespace {

int64_t cheapest(const LayerOptions& l)
{
    int64_t lo = INT64_MAX;
    for (const auto& o : l.options)
        lo = std::min(lo, o.cost);
    return lo;
}

// Boundary cost of layer `li` taking an option of class `int8` after class `prevInt8`.
int64_t crossing(const std::vector<LayerOptions>& layers, std::size_t li, bool prevInt8, bool int8)
{
    const bool joined = layers[li].linkedToPrevious && prevInt8 && int8;
    int64_t extra = 0;
    if (int8 && !joined)
        extra += layers[li].enterCost;
    if (li > 0 && prevInt8 && !joined)
        extra += layers[li - 1].exitCost;
    return extra;
}

} // namespace

std::vector<FrontPoint> paretoFront(const std::vector<LayerOptions>& layers, int resolution)
{
    if (layers.empty())
        return {};
    int64_t minCost = 0, maxCost = 0;
    for (const auto& l : layers) {
        if (l.options.empty())
            fail("layer ", quoted(l.layer), " has no options");
        int64_t hi = 0;
        for (const auto& o : l.options)
            hi = std::max(hi, o.cost);
        minCost += cheapest(l);
        maxCost += hi + l.enterCost + l.exitCost;
    }
    // Costs are measured above each layer's cheapest option, in buckets of `step`.
    int64_t span = maxCost - minCost;
    const double step = span > 0 ? double(span) / double(std::max(resolution, 1)) : 1.0;
    const int buckets = int(std::ceil(double(span) / step)) + 2 * int(layers.size()) + 2;
    const std::size_t B = std::size_t(buckets);
    auto toBuckets = [step](int64_t cost) { return int(std::lround(double(cost) / step)); };
    const double inf = std::numeric_limits<double>::infinity();
    // dp[c * B + b]: least noise with cost bucket b, the last layer of class c (1: int8).
    std::vector<double> dp(2 * B, inf), next;
    dp[0] = 0; // the graph input is float
    struct Step {
        int16_t option = -1;
        int8_t prevClass = 0;
        int32_t prevBucket = 0;
    };
    std::vector<std::vector<Step>> choice(layers.size(), std::vector<Step>(2 * B));
    for (std::size_t li = 0; li < layers.size(); ++li) {
        const auto& l = layers[li];
        const int64_t lo = cheapest(l);
        next.assign(2 * B, inf);
        for (int c = 0; c < 2; ++c)
            for (int b = 0; b < buckets; ++b) {
                const double here = dp[std::size_t(c) * B + std::size_t(b)];
                if (here == inf)
                    continue;
                for (std::size_t oi = 0; oi < l.options.size(); ++oi) {
                    const auto& o = l.options[oi];
                    const int k = o.int8 ? 1 : 0;
                    const int nb = b + toBuckets(o.cost - lo + crossing(layers, li, c != 0, o.int8));
                    if (nb >= buckets)
                        continue;
                    const std::size_t at = std::size_t(k) * B + std::size_t(nb);
                    if (here + o.noise < next[at]) {
                        next[at] = here + o.noise;
                        choice[li][at] = {int16_t(oi), int8_t(c), int32_t(b)};
                    }
                }
            }
        dp.swap(next);
    }
    // The last layer's exit back to float, then the best state per final bucket.
    std::vector<double> fin(B, inf);
    std::vector<std::pair<int, int>> finFrom(B, {0, 0});
    for (int c = 0; c < 2; ++c)
        for (int b = 0; b < buckets; ++b) {
            const double v = dp[std::size_t(c) * B + std::size_t(b)];
            const int fb = b + (c ? toBuckets(layers.back().exitCost) : 0);
            if (v < inf && fb < buckets && v < fin[std::size_t(fb)]) {
                fin[std::size_t(fb)] = v;
                finFrom[std::size_t(fb)] = {c, b};
            }
        }
    std::vector<FrontPoint> front;
    double bestNoise = inf;
    for (int fb = 0; fb < buckets; ++fb) {
        if (fin[std::size_t(fb)] == inf || fin[std::size_t(fb)] >= bestNoise)
            continue;
        // Backtrack the choices.
        auto [c, b] = finFrom[std::size_t(fb)];
        std::vector<const BitOption*> picked(layers.size(), nullptr);
        bool ok = true;
        for (std::size_t li = layers.size(); li-- > 0;) {
            const Step& st = choice[li][std::size_t(c) * B + std::size_t(b)];
            if (st.option < 0) {
                ok = false;
                break;
            }
            picked[li] = &layers[li].options[std::size_t(st.option)];
            c = st.prevClass;
            b = st.prevBucket;
        }
        if (!ok || b != 0 || c != 0)
            continue;
        FrontPoint p;
        int64_t elements = 0;
        double bitSum = 0;
        bool prevInt8 = false;
        for (std::size_t li = 0; li < layers.size(); ++li) {
            const auto& l = layers[li];
            const BitOption& o = *picked[li];
            (l.operand ? p.operandBits : p.bits)[l.layer] = o.bits;
            if (l.operand)
                p.kvCacheBits += o.sizeBits;
            p.cost += o.cost + crossing(layers, li, prevInt8, o.int8);
            p.sizeBits += o.sizeBits;
            p.predictedNoise += o.noise;
            elements += l.elements;
            bitSum += double(l.elements) * o.bits;
            prevInt8 = o.int8;
        }
        if (prevInt8)
            p.cost += layers.back().exitCost;
        p.predictedSqnrDb = p.predictedNoise > 0 ? -10 * std::log10(p.predictedNoise) : INFINITY;
        p.averageBits = elements > 0 ? bitSum / double(elements) : 0;
        bestNoise = fin[std::size_t(fb)];
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
