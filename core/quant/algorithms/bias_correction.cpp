// Empirical bias correction (Nagel et al. 2019, sec. 4.2; AIMET's empirical
// variant): quantizing weights shifts each output channel's mean, E[W~x] != E[Wx].
// Layer by layer, measure the mean output of the FP32 model and of the quantized
// model (with the corrections made so far) on calibration data, and add the
// difference to the bias. Layers without a bias get one.
#include "quant/session.h"

#include "util/error.h"

namespace qs {
namespace {

// Per-channel (axis 1) mean of `value` over `calib`, for one compiled variant.
std::vector<double> channelMeans(QuantSession& s, const Dataset& calib, bool quantized, const std::string& value,
                                 int64_t limit, const CancelToken& cancel)
{
    const int64_t total = std::min(limit, calib.count());
    std::vector<double> sums;
    int64_t perChannel = 0;
    s.runBatches(calib, total, quantized, [&](Plan& plan) {
        plan.addTap(value, [&](const std::string&, const Tensor& t) {
            const int64_t c = t.shape.size() >= 2 ? t.shape[1] : 1;
            const int64_t inner = t.shape.size() >= 2 ? numelOf(Shape(t.shape.begin() + 2, t.shape.end())) : 1;
            if (sums.empty())
                sums.assign(std::size_t(c), 0.0);
            auto v = t.data<float>();
            for (int64_t b = 0; b < t.shape[0]; ++b)
                for (int64_t k = 0; k < c; ++k)
                    for (int64_t i = 0; i < inner; ++i)
                        sums[std::size_t(k)] += v[std::size_t((b * c + k) * inner + i)];
            perChannel += t.shape[0] * inner;
        });
    }, cancel);
    for (double& v : sums)
        v /= double(std::max<int64_t>(perChannel, 1)); // perChannel: values seen per channel
    return sums;
}

void correct(QuantSession& s, const Dataset& calib, const nlohmann::json& params, Progress& progress,
             const CancelToken& cancel)
{
    const int64_t limit = params.value("samples", int64_t(128));
    Graph& g = s.graph();
    const auto layers = s.layers();
    int done = 0;
    for (const auto& l : layers) {
        if (l.spec.weight.isFloat() || (l.op != "Conv" && l.op != "Gemm"))
            continue;
        Node& node = g.nodes[std::size_t(g.findNode(l.name))];
        const Tensor* w = g.constant(l.weight);
        const int64_t outCh = w->shape[std::size_t(l.outAxis)];
        std::string bias = l.bias;
        if (bias.empty()) {
            bias = l.name + ".bias_corrected";
            g.initializers[bias] = Tensor::fromVector(Shape{outCh}, std::vector<float>(std::size_t(outCh), 0.f));
            g.initializers[bias].name = bias;
            node.inputs.resize(3);
            node.inputs[2] = bias;
            g.index();
        }
        const std::string out = node.outputs.front();
        std::vector<double> ref = channelMeans(s, calib, false, out, limit, cancel);
        std::vector<double> got = channelMeans(s, calib, true, out, limit, cancel);
        if (ref.size() != std::size_t(outCh) || got.size() != std::size_t(outCh))
            continue; // output layout not [N, C, ...] (e.g. Gemm with a different shape)
        Tensor corrected = s.weightOverrides.count(bias) ? s.weightOverrides.at(bias) : *g.constant(bias);
        if (corrected.dtype != DType::Float)
            corrected = Tensor::fromVector(corrected.shape, corrected.toFloat());
        if (corrected.numel() == 1 && outCh != 1) // a Gemm's broadcast C: one value per channel from here
            corrected =
                Tensor::fromVector(Shape {outCh}, std::vector<float>(std::size_t(outCh), corrected.toFloat()[0]));
        if (corrected.numel() != outCh)
            fail("bias correction: layer ", quoted(l.name), ": bias ", quoted(bias), " has shape ",
                shapeString(corrected.shape), ", expected one value per output channel (", outCh, ")");
        auto b = corrected.data<float>();
        for (int64_t c = 0; c < outCh; ++c)
            b[std::size_t(c)] += float(ref[std::size_t(c)] - got[std::size_t(c)]);
        corrected.name = bias;
        s.weightOverrides[bias] = std::move(corrected);
        progress.report(double(++done) / double(layers.size()), str("bias correction: ", l.name));
    }
    s.refreshLayers();
}

const bool biasCorrectionRegistered = registerAlgorithm({"bias_correction", "empirical per-channel bias correction",
                                           AlgorithmInfo::Stage::AfterWeights, correct});

} // namespace
} // namespace qs
