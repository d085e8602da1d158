#include "analysis/bit_budget.h"

#include "quant/quantizer.h"
#include "quant/session.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace qs {

int64_t ModelSizeTable::layerBits(const LayerShape& l, const QuantSpec& weight) const
{
    return storedBits(l.elements, weightBlockCount(l.weightShape, l.outAxis, l.inAxis, weight), weight);
}

int64_t ModelSizeTable::sizeBits(const QuantConfig& config) const
{
    int64_t bits = otherBits;
    for (const auto& l : layers) {
        auto q = config.forLayer(l.layer);
        bits += q ? layerBits(l, q->weight) + (q->weight.isFloat() ? 0 : floatOutlierBits(config, l.elements))
                  : l.elements * 32;
    }
    return bits;
}

ModelSizeTable modelSizeTable(const QuantSession& session)
{
    ModelSizeTable t;
    std::set<std::string> layerWeights;
    for (const auto& l : session.layers()) {
        const Tensor* w = session.graph().constant(l.weight);
        if (!w || !layerWeights.insert(l.weight).second)
            continue; // a weight shared by two layers is stored once
        t.layers.push_back({l.name, w->shape, l.outAxis, l.inAxis, w->numel()});
    }
    for (const auto& [name, tensor] : session.graph().initializers) {
        if (tensor.dtype == DType::String)
            continue;
        const int64_t bits = tensor.numel() * int64_t(elementSize(tensor.dtype)) * 8;
        t.floatBits += bits;
        if (!layerWeights.count(name))
            t.otherBits += bits;
    }
    return t;
}

ModelSizeTable modelSizeTable(const Graph& graph)
{
    return modelSizeTable(QuantSession(graph, QuantizeOptions{}));
}

double layerNoise(const LayerSensitivity& layer, int bits)
{
    if (bits >= 16)
        return 0;
    if (layer.byBits.empty())
        return -1;
    auto noiseOf = [](double sqnrDb) { return std::isfinite(sqnrDb) ? std::pow(10.0, -sqnrDb / 10) : 0.0; };
    auto hi = layer.byBits.lower_bound(bits);
    if (hi != layer.byBits.end() && hi->first == bits)
        return noiseOf(hi->second.sqnrDb);
    if (hi == layer.byBits.begin())
        return noiseOf(hi->second.sqnrDb);
    auto lo = std::prev(hi);
    if (hi == layer.byBits.end())
        return noiseOf(lo->second.sqnrDb);
    const double a = lo->second.sqnrDb, b = hi->second.sqnrDb;
    if (!std::isfinite(a) || !std::isfinite(b))
        return noiseOf(std::isfinite(a) ? a : b); // the finite end is the conservative one
    const double t = double(bits - lo->first) / double(hi->first - lo->first);
    return noiseOf(a + t * (b - a));
}

int sensitivityBits(SensitivityMode mode, const LayerQuant& q)
{
    switch (mode) {
    case SensitivityMode::Weights: return q.weight.bits;
    case SensitivityMode::Activations: return q.activation.bits;
    case SensitivityMode::Both: return std::min(q.weight.bits, q.activation.bits);
    }
    return q.weight.bits;
}

ErrorPrediction predictError(const SensitivityResult& sensitivity, const QuantConfig& config,
    const std::vector<std::string>& layers)
{
    ErrorPrediction p;
    for (const auto& name : layers) {
        auto q = config.forLayer(name);
        if (!q)
            continue; // kept in float
        const int bits = sensitivityBits(sensitivity.mode, *q);
        if (bits >= 16)
            continue;
        auto it = std::find_if(sensitivity.layers.begin(), sensitivity.layers.end(),
            [&](const LayerSensitivity& l) { return l.layer == name; });
        const double n = it == sensitivity.layers.end() ? -1 : layerNoise(*it, bits);
        if (n < 0) {
            ++p.layersMissing;
            continue;
        }
        ++p.layersPredicted;
        if (!it->byBits.count(bits))
            ++p.interpolated;
        p.noise += n;
    }
    p.sqnrDb = p.noise > 0 ? -10 * std::log10(p.noise) : INFINITY;
    return p;
}

std::vector<LayerOptions> mixedLayerOptions(const ModelSizeTable& sizes, const SensitivityResult& sensitivity,
    const std::vector<int>& bits, const QuantConfig& base, bool byAverageBits)
{
    std::vector<LayerOptions> out;
    for (const auto& l : sizes.layers) {
        auto q = base.forLayer(l.layer);
        if (!q)
            continue;
        LayerOptions lo;
        lo.layer = l.layer;
        lo.elements = l.elements;
        const LayerSensitivity* ls = nullptr;
        for (const auto& x : sensitivity.layers)
            if (x.layer == l.layer)
                ls = &x;
        for (int b : bits) {
            QuantSpec spec = q->weight;
            spec.bits = b;
            BitOption o;
            o.bits = b;
            o.sizeBits = sizes.layerBits(l, spec);
            o.cost = byAverageBits ? l.elements * b : o.sizeBits;
            // An unmeasured bit width of a measured layer counts as full noise (SQNR 0 dB).
            double sq = 0;
            if (ls)
                if (auto m = ls->byBits.find(b); m != ls->byBits.end())
                    sq = m->second.sqnrDb;
            o.noise = std::isfinite(sq) ? std::pow(10.0, -sq / 10) : 0;
            lo.options.push_back(o);
        }
        out.push_back(std::move(lo));
    }
    return out;
}

QuantConfig configForBits(const QuantConfig& base, const std::map<std::string, int>& weightBits)
{
    QuantConfig cfg = base;
    for (const auto& [layer, b] : weightBits) {
        LayerQuant lq = base.forLayer(layer).value_or(base.defaults);
        lq.weight.bits = b;
        cfg.layers[layer] = lq;
    }
    return cfg;
}

} // namespace qs
