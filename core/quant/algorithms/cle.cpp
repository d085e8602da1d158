// Cross-layer equalization (Nagel et al. 2019, "Data-Free Quantization", sec. 4.1):
// for Conv -> ReLU -> Conv chains, rescale output channel i of the first conv by
// 1/s_i and input channel i of the second by s_i with s_i = sqrt(r1_i / r2_i), so
// both have equal per-channel ranges. ReLU(x/s) = ReLU(x)/s for s > 0, so the FP32
// function is unchanged. Runs on the session's BN-folded working graph.
#include "quant/session.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>

namespace qs {
namespace {

struct ConvPair {
    int first, second;
};

// Conv -> Relu -> Conv where every intermediate value has exactly one consumer.
std::vector<ConvPair> findPairs(const Graph& g)
{
    std::vector<ConvPair> pairs;
    for (int i = 0; i < int(g.nodes.size()); ++i) {
        const Node& a = g.nodes[std::size_t(i)];
        if (a.opType != "Conv" || a.attrInt("group", 1) != 1 || !g.constant(a.input(1)))
            continue;
        const auto& c1 = g.consumersOf(a.outputs[0]);
        if (c1.size() != 1 || g.nodes[std::size_t(c1[0])].opType != "Relu")
            continue;
        const Node& relu = g.nodes[std::size_t(c1[0])];
        const auto& c2 = g.consumersOf(relu.outputs[0]);
        if (c2.size() != 1)
            continue;
        const Node& b = g.nodes[std::size_t(c2[0])];
        if (b.opType != "Conv" || b.attrInt("group", 1) != 1 || b.input(0) != relu.outputs[0] ||
            !g.constant(b.input(1)))
            continue;
        bool isOutput = false;
        for (const auto& o : g.outputs)
            isOutput |= o.name == a.outputs[0] || o.name == relu.outputs[0];
        if (!isOutput)
            pairs.push_back({i, c2[0]});
    }
    return pairs;
}

void equalize(QuantSession& s, const nlohmann::json& params, Progress& progress, const CancelToken& cancel)
{
    Graph& g = s.graph();
    g.index();
    const int iterations = params.value("iterations", 3);
    std::vector<ConvPair> pairs = findPairs(g);
    for (int it = 0; it < iterations; ++it) {
        for (const ConvPair& p : pairs) {
            cancel.check();
            Node& a = g.nodes[std::size_t(p.first)];
            Node& b = g.nodes[std::size_t(p.second)];
            // Work on fresh initializers so shared weights elsewhere stay untouched.
            auto own = [&](Node& n, std::size_t input) {
                std::string name = n.input(input);
                std::string mine = n.name + (input == 1 ? ".weight_cle" : ".bias_cle");
                if (name != mine) {
                    Tensor t = *g.constant(name);
                    if (t.dtype != DType::Float)
                        t = Tensor::fromVector(t.shape, t.toFloat());
                    t.name = mine;
                    g.initializers[mine] = std::move(t);
                    n.inputs[input] = mine;
                }
                return &g.initializers[mine];
            };
            Tensor* w1 = own(a, 1);
            Tensor* b1 = a.input(2).empty() ? nullptr : own(a, 2);
            Tensor* w2 = own(b, 1);
            const int64_t channels = w1->shape[0];
            if (w2->shape.size() < 2 || w2->shape[1] != channels)
                continue;
            auto v1 = w1->data<float>();
            auto v2 = w2->data<float>();
            const int64_t per1 = w1->numel() / channels;
            const int64_t outs2 = w2->shape[0];
            const int64_t per2 = w2->numel() / (outs2 * channels);
            for (int64_t c = 0; c < channels; ++c) {
                float r1 = 0, r2 = 0;
                for (int64_t k = 0; k < per1; ++k)
                    r1 = std::max(r1, std::abs(v1[std::size_t(c * per1 + k)]));
                for (int64_t o = 0; o < outs2; ++o)
                    for (int64_t k = 0; k < per2; ++k)
                        r2 = std::max(r2, std::abs(v2[std::size_t((o * channels + c) * per2 + k)]));
                if (r1 <= 0 || r2 <= 0)
                    continue;
                const float scale = std::sqrt(r1 / r2);
                for (int64_t k = 0; k < per1; ++k)
                    v1[std::size_t(c * per1 + k)] /= scale;
                if (b1)
                    b1->data<float>()[std::size_t(c)] /= scale;
                for (int64_t o = 0; o < outs2; ++o)
                    for (int64_t k = 0; k < per2; ++k)
                        v2[std::size_t((o * channels + c) * per2 + k)] *= scale;
            }
        }
        progress.report(double(it + 1) / iterations, "cross-layer equalization");
    }
    g.index();
}

const bool cleRegistered = registerAlgorithm({"cle", "cross-layer equalization of Conv-ReLU-Conv chains (DFQ)",
                                           AlgorithmInfo::Stage::BeforeCalibration,
                                           [](QuantSession& s, const Dataset&, const nlohmann::json& params,
                                              Progress& p, const CancelToken& c) { equalize(s, params, p, c); }});

} // namespace
} // namespace qs
