// SpQR-style outliers (Dettmers et al. 2023, "SpQR", sec. 4): per layer, the k% of
// weights with the largest round-to-nearest error (criterion "error") or magnitude
// ("magnitude") are kept in float; the block ranges are then taken over the
// remaining weights only, which quantize on that finer grid. Exactly
// round(k% x elements) weights per layer stay float. Stage AfterWeights.
// The stored size counts every weight at the spec's bits plus each outlier's 32-bit
// value and 32-bit index (QuantSession::floatOutliers, kFloatOutlierBits); the notes
// repeat the outliers' bits.
#include "quant/session.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qs {
namespace {

void spqr(QuantSession& s, const Dataset&, const nlohmann::json& params, Progress& progress, const CancelToken& cancel)
{
    const double percent = params.value("percent", 1.0);
    const std::string criterion = params.value("criterion", std::string("error"));
    if (!(percent >= 0 && percent <= 100))
        fail("spqr: percent must be in [0, 100], got ", percent);
    if (criterion != "error" && criterion != "magnitude")
        fail("spqr: criterion must be \"error\" or \"magnitude\", got ", quoted(criterion));
    nlohmann::json layers = nlohmann::json::array();
    int64_t extraBits = 0;
    int done = 0;
    for (const auto& l : s.layers()) {
        cancel.check();
        if (l.spec.weight.isFloat())
            continue;
        const Tensor* w = s.graph().constant(l.weight);
        const std::vector<float> v = w->toFloat();
        const std::vector<float> rtn = fakeQuantWeight(v, w->shape, l.outAxis, l.inAxis, l.spec.weight);
        std::vector<double> score(v.size());
        for (std::size_t e = 0; e < v.size(); ++e)
            score[e] = criterion == "error" ? std::abs(double(v[e]) - rtn[e]) : std::abs(double(v[e]));
        const auto keep = std::size_t(spqrOutlierCount(int64_t(v.size()), percent));
        std::vector<std::size_t> order(v.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
        std::vector<char> outlier(v.size(), 0);
        for (std::size_t i = 0; i < keep; ++i)
            outlier[order[i]] = 1;
        // Ranges over the inliers: outliers set to 0, which every range already covers
        // (symmetric grids are centred on 0; affine ranges always include 0).
        std::vector<float> inliers = v;
        for (std::size_t e = 0; e < v.size(); ++e)
            if (outlier[e])
                inliers[e] = 0;
        WeightQuantization plan = planWeightQuantization(inliers, w->shape, l.outAxis, l.inAxis, l.spec.weight);
        std::vector<float> q(v.size());
        for (std::size_t e = 0; e < v.size(); ++e)
            q[e] = outlier[e] ? v[e] : fakeQuant(v[e], plan.params[std::size_t(plan.blockOf[e])]);
        Tensor t = Tensor::fromVector(w->shape, q);
        t.name = l.weight;
        s.weightOverrides[l.weight] = std::move(t);
        s.floatOutliers[l.weight] = int64_t(keep);
        extraBits += int64_t(keep) * kFloatOutlierBits;
        layers.push_back({{"layer", l.name}, {"outliers", keep}, {"elements", v.size()}});
        progress.report(double(++done) / double(s.layers().size()), str("SpQR outliers: ", l.name));
    }
    s.notes["spqr"] = {
        {"params", {{"percent", percent}, {"criterion", criterion}}}, {"outlier_bits", extraBits}, {"layers", layers}};
}

} // namespace

int64_t spqrOutlierCount(int64_t elements, double percent)
{
    return std::llround(percent / 100.0 * double(elements));
}

int64_t floatOutlierBits(const QuantConfig& config, int64_t elements)
{
    int64_t bits = 0;
    for (const auto& use : config.algorithms)
        if (use.name == "spqr") {
            const nlohmann::json& p = use.params;
            const double percent = p.is_object() && p.contains("percent") && p["percent"].is_number()
                ? std::clamp(p["percent"].get<double>(), 0.0, 100.0)
                : 1.0; // spqr itself refuses a malformed percent
            bits = spqrOutlierCount(elements, percent) * kFloatOutlierBits;
        }
    return bits;
}

namespace {

const bool spqrRegistered = registerAlgorithm(
    {"spqr", "SpQR-style: keep the top k% weights (by RTN error) in float", AlgorithmInfo::Stage::AfterWeights, spqr});

} // namespace
} // namespace qs
