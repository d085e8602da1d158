// Latency-axis options for the mixed-precision DP, from a measured LatencyProfile.
#include "analysis/latency_front.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>

namespace qs {

std::map<std::string, double> inputNoiseAt8(const SensitivityResult& activations)
{
    std::map<std::string, double> out;
    for (const auto& l : activations.layers)
        out[l.layer] = std::max(0.0, layerNoise(l, 8));
    return out;
}

std::vector<LayerOptions> latencyLayerOptions(std::vector<LayerOptions> layers, const ModelSizeTable& sizes,
    const LatencyProfile& profile, const LayerLinks& links, const QuantConfig& base,
    const std::map<std::string, double>& inputNoise)
{
    auto ns = [](double ms) { return int64_t(std::llround(ms * kLatencyNsPerMs)); };
    for (std::size_t li = 0; li < layers.size(); ++li) {
        LayerOptions& lo = layers[li];
        const LayerLatency* lat = nullptr;
        for (const auto& x : profile.layers)
            if (x.layer == lo.layer)
                lat = &x;
        if (!lat)
            fail("layer ", quoted(lo.layer), " is not in the latency profile; measure again");
        if (!lat->int8Ms)
            lo.options.clear(); // no INT8 kernel: the layer stays float
        const auto noise = inputNoise.find(lo.layer);
        for (BitOption& o : lo.options) {
            o.cost = ns(*lat->int8Ms);
            o.noise += noise == inputNoise.end() ? 0.0 : noise->second;
            o.int8 = true;
        }
        QuantSpec floatSpec = base.forLayer(lo.layer).value_or(base.defaults).weight;
        floatSpec.bits = kFloatBits;
        BitOption f;
        f.bits = kFloatBits;
        for (const auto& shape : sizes.layers)
            if (shape.layer == lo.layer)
                f.sizeBits = sizes.layerBits(shape, floatSpec);
        f.cost = ns(lat->fp32Ms);
        lo.options.push_back(f);
        lo.enterCost = ns(lat->quantizeMs.value_or(0));
        lo.exitCost = ns(lat->dequantizeMs.value_or(0));
        lo.linkedToPrevious =
            li > 0 && li < links.producers.size() && links.producers[li].count(li - 1) && links.layers[li] == lo.layer;
    }
    return layers;
}

MixedConstraints withFloatOption(MixedConstraints c)
{
    c.allowedBits.insert(kFloatBits);
    return c;
}

std::vector<FrontPoint> latencyFront(const ModelSizeTable& sizes, const SensitivityResult& sensitivity,
    const std::vector<int>& bits, const QuantConfig& base, const LatencyProfile& profile, const LayerLinks& links,
    const std::map<std::string, double>& inputNoise, const MixedConstraints& constraints)
{
    std::vector<LayerOptions> layers = latencyLayerOptions(
        mixedLayerOptions(sizes, sensitivity, bits, base, false), sizes, profile, links, base, inputNoise);
    return paretoFront(constrain(layers, withFloatOption(constraints)));
}

double chainLatencyMs(const LatencyProfile& profile, const FrontPoint& p)
{
    return double(p.cost) / kLatencyNsPerMs + profile.otherMs;
}

int64_t latencyBudgetCost(const LatencyProfile& profile, double budgetMs)
{
    return int64_t(std::floor((budgetMs - profile.otherMs) * kLatencyNsPerMs));
}

std::set<std::string> int8Layers(const FrontPoint& p)
{
    std::set<std::string> out;
    for (const auto& [layer, bits] : p.bits)
        if (bits < 16)
            out.insert(layer);
    return out;
}

std::set<std::string> int8Layers(const QuantConfig& config, const std::vector<std::string>& layers)
{
    std::set<std::string> out;
    for (const auto& name : layers)
        if (auto q = config.forLayer(name); q && q->weight.bits < 16 && q->activation.bits <= 8)
            out.insert(name);
    return out;
}

QuantConfig configForPoint(const QuantConfig& base, const FrontPoint& p)
{
    std::map<std::string, int> intBits;
    for (const auto& [layer, bits] : p.bits)
        if (bits < 16)
            intBits[layer] = bits;
    QuantConfig cfg = configForBits(base, intBits);
    for (const auto& [layer, bits] : p.bits)
        if (bits >= 16)
            cfg.excluded.insert(layer);
    return withOperandBits(std::move(cfg), p.operandBits);
}

} // namespace qs
