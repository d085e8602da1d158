// SmoothQuant, Xiao et al. 2022, sec. 4: migrate activation outliers into the
// weights with a per-input-channel s_j = max|X_j|^alpha / max|W_j|^(1-alpha)
// (alpha default 0.5); W_j *= s_j and the layer input is divided by s_j, folded into
// the producing Conv/Gemm (through a ReLU) or as an explicit Mul. The FP32 function
// is unchanged; activations become easier to quantize. Stage BeforeCalibration. Block
// by block (algo::forEachBlockBackwards, "blockwise": true, the default): one block
// compiled at a time, the last first, each layer on the FP32 model's inputs.
#include "quant/algorithms/linear_layer.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qs {
namespace {

// max_j r_j / mean_j r_j: how much the worst channel sticks out.
double spread(const std::vector<double>& r)
{
    double m = 0, sum = 0;
    for (double v : r) {
        m = std::max(m, v);
        sum += v;
    }
    return sum > 0 ? m * double(r.size()) / sum : 1;
}

void smoothQuant(
    QuantSession& s, const Dataset& calib, const nlohmann::json& params, Progress& progress, const CancelToken& cancel)
{
    const double alpha = params.value("alpha", 0.5);
    const int64_t samples = params.value("samples", int64_t(128));
    if (!(alpha >= 0 && alpha <= 1) || samples < 1)
        fail("smoothquant: alpha must be in [0, 1] and samples at least 1");
    const bool blockwise = params.value("blockwise", true);
    std::vector<algo::LinearLayer> layers = algo::linearLayers(s);
    std::vector<algo::ChannelAbs> act(layers.size());
    std::vector<nlohmann::json> reports(layers.size());
    std::size_t done = 0;
    // Last layer first, so a producer's max|W_j| is taken after it absorbed its consumer's 1/s.
    auto smooth = [&](const std::vector<std::size_t>& block) {
        for (auto it = block.rbegin(); it != block.rend(); ++it) {
            const std::size_t i = *it;
            cancel.check();
            const algo::LinearLayer& L = layers[i];
            const std::vector<float> w = algo::currentMatrix(s, L);
            const int64_t ch = L.inputChannels();
            act[i].max.resize(std::size_t(ch), 0.0);
            std::vector<double> wmax(std::size_t(ch), 0.0);
            for (int64_t r = 0; r < L.rows; ++r)
                for (int64_t c = 0; c < L.cols; ++c)
                    wmax[std::size_t(c / L.spatial())] =
                        std::max(wmax[std::size_t(c / L.spatial())], double(std::abs(w[std::size_t(r * L.cols + c)])));
            std::vector<double> sc(std::size_t(ch), 1.0), after(static_cast<std::size_t>(ch));
            for (int64_t c = 0; c < ch; ++c) {
                const double x = act[i].max[std::size_t(c)], m = wmax[std::size_t(c)];
                if (x > 0 && m > 0)
                    sc[std::size_t(c)] = std::clamp(std::pow(x, alpha) / std::pow(m, 1 - alpha), 1e-5, 1e5);
                after[std::size_t(c)] = x / sc[std::size_t(c)];
            }
            const std::string where = algo::scaleInputChannels(s, L, sc, "smooth");
            reports[i] = {{"layer", L.info.name}, {"act_channel_spread_before", spread(act[i].max)},
                {"act_channel_spread_after", spread(after)}, {"scales", where}};
            progress.report(0.8 + 0.2 * double(++done) / double(layers.size()), "SmoothQuant");
        }
    };
    auto observe = [&](std::size_t i, const Tensor& x) { act[i].add(layers[i], x); };
    Progress pass = progress.sub(0.0, 0.8);
    std::size_t blocks = 1;
    if (blockwise) { // algo::forEachBlockBackwards: one block compiled at a time
        blocks = algo::forEachBlockBackwards(s, calib, layers, samples, observe, smooth, pass, cancel);
    } else { // every layer observed at once
        algo::streamLayerInputs(s, calib, layers, samples, observe, pass, cancel);
        std::vector<std::size_t> all(layers.size());
        std::iota(all.begin(), all.end(), std::size_t(0));
        smooth(all);
    }
    nlohmann::json report = nlohmann::json::array();
    for (std::size_t i = layers.size(); i-- > 0;) // last layer first, as smoothed
        report.push_back(std::move(reports[i]));
    s.refreshLayers();
    s.notes["smoothquant"] = {{"params", {{"alpha", alpha}, {"samples", samples}, {"blockwise", blockwise}}},
        {"blocks", blocks}, {"layers", report}};
}

const bool smoothquantRegistered =
    registerAlgorithm({"smoothquant", "SmoothQuant: migrate activation outliers into weights (Xiao 2022)",
        AlgorithmInfo::Stage::BeforeCalibration, smoothQuant});

} // namespace
} // namespace qs
