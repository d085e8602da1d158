// AWQ, Lin et al. 2023 ("AWQ: Activation-aware Weight Quantization"), sec. 3.2: per
// layer, a per-input-channel scale s = mean|x|^alpha (normalized so max*min = 1);
// alpha is grid-searched in [0, 1] to minimize the output error of the weight-only
// quantized layer, sum_x ||Q(W diag(s)) diag(s)^-1 x - W x||^2, on calibration inputs
// (exactly, through their Gram matrix). s is multiplied into the weights and 1/s folded
// into the producing layer, or kept as an explicit Mul. alpha = 0 is plain RTN, so the
// search never does worse than RTN on the calibration data. Stage BeforeCalibration:
// activation ranges are then calibrated on the rescaled inputs. (AWQ's clipping search
// is not included.) Block by block (algo::forEachBlockBackwards, "blockwise": true):
// one block's Gram matrices at a time, the blocks last first, each layer on the FP32
// model's inputs as when every layer was observed at once ("blockwise": false).
#include "quant/algorithms/linear_layer.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qs {
namespace {

void awq(
    QuantSession& s, const Dataset& calib, const nlohmann::json& params, Progress& progress, const CancelToken& cancel)
{
    const int grid = params.value("grid", 20);
    const int64_t samples = params.value("samples", int64_t(128));
    if (grid < 1 || samples < 1)
        fail("awq: grid and samples must be at least 1");
    const bool blockwise = params.value("blockwise", true);
    std::vector<algo::LinearLayer> layers = algo::linearLayers(s);
    std::vector<algo::ChannelAbs> act(layers.size());
    std::vector<algo::LayerGram> grams(layers.size());
    std::vector<nlohmann::json> reports(layers.size());
    std::size_t done = 0;
    // Last layer first: folding 1/s into a producer rescales its rows, and the producer
    // then searches on its current (rescaled) weights.
    auto search = [&](const std::vector<std::size_t>& block) {
        for (auto it = block.rbegin(); it != block.rend(); ++it) {
            const std::size_t i = *it;
            cancel.check();
            const algo::LinearLayer& L = layers[i];
            grams[i].h.resize(std::size_t(L.cols * L.cols), 0.0);
            const std::vector<float> w = algo::currentMatrix(s, L);
            std::vector<double> mean = act[i].mean();
            mean.resize(std::size_t(L.inputChannels()), 0.0);
            const double meanMax = *std::max_element(mean.begin(), mean.end());
            for (double& m : mean)
                m = std::max(m, std::max(meanMax, 1e-30) * 1e-6); // dead channels: no blow-up
            const QuantSpec& spec = L.info.spec.weight;
            double bestErr = INFINITY, bestAlpha = 0, errRtn = 0;
            std::vector<double> best;
            for (int step = 0; step <= grid; ++step) {
                const double alpha = double(step) / grid;
                std::vector<double> sc(mean.size());
                double lo = INFINITY, hi = 0;
                for (std::size_t c = 0; c < mean.size(); ++c) {
                    sc[c] = std::pow(mean[c], alpha);
                    lo = std::min(lo, sc[c]);
                    hi = std::max(hi, sc[c]);
                }
                const double norm = std::sqrt(lo * hi);
                for (double& v : sc)
                    v /= norm;
                std::vector<float> ws = w;
                for (int64_t r = 0; r < L.rows; ++r)
                    for (int64_t c = 0; c < L.cols; ++c)
                        ws[std::size_t(r * L.cols + c)] *= float(sc[std::size_t(c / L.spatial())]);
                std::vector<float> q = algo::roundToNearest(L, ws, algo::blockParams(L, ws, spec));
                for (int64_t r = 0; r < L.rows; ++r)
                    for (int64_t c = 0; c < L.cols; ++c)
                        q[std::size_t(r * L.cols + c)] /= float(sc[std::size_t(c / L.spatial())]);
                const double err = algo::outputError(w, q, L.rows, L.cols, grams[i].h);
                if (step == 0)
                    errRtn = err;
                if (err < bestErr) {
                    bestErr = err;
                    bestAlpha = alpha;
                    best = sc;
                }
            }
            std::string where = "unchanged (alpha 0 is best)";
            if (bestAlpha > 0)
                where = algo::scaleInputChannels(s, L, best, "awq");
            reports[i] = {{"layer", L.info.name}, {"alpha", bestAlpha}, {"proxy_error_rtn", errRtn},
                {"proxy_error_awq", bestErr}, {"scales", where}};
            grams[i] = {}; // this layer's Gram matrix is done with
            progress.report(0.5 + 0.5 * double(++done) / double(layers.size()), str("AWQ: ", L.info.name));
        }
    };
    auto observe = [&](std::size_t i, const Tensor& x) { act[i].add(layers[i], x); };
    Progress pass = progress.sub(0.0, 0.5);
    std::size_t blocks = 1;
    if (blockwise) { // one block's Gram matrices at a time (algo::forEachBlockBackwards)
        std::vector<float> rows;
        blocks = algo::forEachBlockBackwards(
            s, calib, layers, samples,
            [&](std::size_t i, const Tensor& x) {
                rows.clear();
                algo::appendInputRows(layers[i], x, rows);
                algo::addGram(rows, layers[i].cols, grams[i].h);
                grams[i].rows += int64_t(rows.size()) / layers[i].cols;
                observe(i, x);
            },
            search, pass, cancel);
    } else { // every layer observed at once
        grams = algo::layerGrams(s, calib, layers, samples, pass, cancel, observe);
        std::vector<std::size_t> all(layers.size());
        std::iota(all.begin(), all.end(), std::size_t(0));
        search(all);
    }
    nlohmann::json report = nlohmann::json::array();
    for (std::size_t i = layers.size(); i-- > 0;) // last layer first, as searched
        report.push_back(std::move(reports[i]));
    s.refreshLayers();
    s.notes["awq"] = {{"params", {{"grid", grid}, {"samples", samples}, {"blockwise", blockwise}}},
        {"blocks", blocks}, {"layers", report}};
}

const bool awqRegistered = registerAlgorithm({"awq", "AWQ: activation-aware per-channel weight scaling (Lin 2023)",
    AlgorithmInfo::Stage::BeforeCalibration, awq});

} // namespace
} // namespace qs
