#include "analysis/bit_budget.h"

#include "quant/attention.h"
#include "quant/quantizer.h"
#include "quant/session.h"
#include "runtime/input_shapes.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <set>

namespace qs {
namespace {

// The role an operand point ("<MatMul>:K") or its sensitivity op ("MatMul:K") ends with.
std::optional<OperandRole> pointRole(const std::string& name)
{
    const auto colon = name.rfind(':');
    if (colon == std::string::npos || colon + 2 != name.size())
        return std::nullopt;
    for (OperandRole r : {OperandRole::Q, OperandRole::K, OperandRole::V, OperandRole::P})
        if (name.back() == operandRoleName(r)[0])
            return r;
    return std::nullopt;
}

} // namespace

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

int64_t ModelSizeTable::operandElements(const OperandShape& o) const
{
    return o.cached ? kvContext * o.tokenElements : 0;
}

int64_t ModelSizeTable::operandBits(const OperandShape& o, const OperandSpec& spec) const
{
    const int64_t elements = operandElements(o);
    if (elements == 0)
        return 0;
    if (spec.isFloat())
        return elements * 32;
    const int64_t headDim = std::max<int64_t>(1, o.tokenElements / std::max<int64_t>(1, o.heads));
    int64_t ranges = 1;
    switch (spec.granularity) {
    case OperandGranularity::Tensor:
        ranges = 1;
        break;
    case OperandGranularity::Head:
        ranges = o.heads;
        break;
    case OperandGranularity::Channel:
        ranges = headDim;
        break;
    case OperandGranularity::Token:
        ranges = kvContext * o.heads;
        break;
    }
    QuantSpec q;
    q.bits = spec.bits;
    q.symmetric = spec.symmetric;
    return storedBits(elements, ranges, q);
}

namespace {

// One token's share of an operand of shape `s` (unknown dims -1): every axis but the
// batch (leading, rank >= 3) and the token axis; 0 when one of them is unknown.
OperandShape operandShape(const AttentionPoint& p, const std::optional<Shape>& s, int64_t& staticTokens)
{
    OperandShape o;
    o.point = p.name;
    o.role = p.role;
    o.cached = p.role == OperandRole::K || p.role == OperandRole::V;
    if (!s)
        return o;
    const int rank = int(s->size());
    const OperandAxes a = operandAxes(p.role, rank);
    if (a.token < 0)
        return o;
    auto dim = [&](int i) { return (*s)[std::size_t(i)]; };
    int64_t per = 1;
    for (int i = rank >= 3 ? 1 : 0; i < rank; ++i)
        if (i != a.token)
            per = dim(i) > 0 && per > 0 ? per * dim(i) : 0;
    o.tokenElements = per;
    o.heads = a.head >= 0 && dim(a.head) > 0 ? dim(a.head) : 1;
    if (o.cached && dim(a.token) > 0)
        staticTokens = std::max(staticTokens, dim(a.token));
    return o;
}

std::optional<Shape> graphShape(const Graph& g, const std::string& value)
{
    auto vi = g.valueInfo.find(value);
    if (vi == g.valueInfo.end() || !vi->second.dims)
        return std::nullopt;
    return vi->second.shape();
}

} // namespace

namespace {

// The operands' shapes from a plan of `g` for `inputShapes` (every operand value kept).
void resolveOperandsFromPlan(ModelSizeTable& t, const Graph& g, const std::vector<AttentionPoint>& points,
    CompileOptions co)
{
    for (const AttentionPoint& p : points)
        co.keepValues.insert(p.value);
    const std::unique_ptr<Plan> plan = compilePlan(g, co);
    int64_t tokens = 0;
    t.operands.clear();
    for (const AttentionPoint& p : points)
        t.operands.push_back(operandShape(p, plan->shapeOf(p.value), tokens));
    if (t.kvContext == 0)
        t.kvContext = tokens;
}

// The table of graph `g` whose quantized layers are `layers` and attention operands
// `points`; `compileOptions` gives a plan's options for input shapes (operands whose
// per-token size the graph leaves symbolic).
ModelSizeTable sizeTableOf(const Graph& g, const std::vector<SessionLayer>& layers,
    const std::vector<AttentionPoint>& points,
    const std::function<CompileOptions(const std::map<std::string, Shape>&)>& compileOptions)
{
    ModelSizeTable t;
    for (const AttentionPoint& p : points)
        t.operands.push_back(operandShape(p, graphShape(g, p.value), t.kvContext));
    if (t.kvContext == 0)
        if (auto it = g.metadata.find("quantstudio.context"); it != g.metadata.end()) {
            char* end = nullptr;
            const long long n = std::strtoll(it->second.c_str(), &end, 10);
            t.kvContext = n > 0 && *end == 0 ? n : 0;
        }
    // Heads and head dim an export computes with Shape ops stay symbolic in the graph: a
    // plan for one token of one sequence (every unknown input dim 1) gives them. The
    // context is not taken from it. A model that does not compile so keeps them unknown.
    const bool unknown = std::any_of(
        t.operands.begin(), t.operands.end(), [](const OperandShape& o) { return o.cached && o.tokenElements == 0; });
    if (unknown) {
        std::map<std::string, Shape> shapes;
        for (const ValueInfo& in : g.inputs) {
            Shape s = in.shape();
            for (int64_t& d : s)
                d = d > 0 ? d : 1;
            shapes[in.name] = s;
        }
        ModelSizeTable resolved = t;
        try {
            resolveOperandsFromPlan(resolved, g, points, compileOptions(shapes));
            resolved.kvContext = t.kvContext;
            t = std::move(resolved);
        } catch (const Error&) {
        }
    }
    std::set<std::string> layerWeights;
    for (const auto& l : layers) {
        const Tensor* w = g.constant(l.weight);
        if (!w || !layerWeights.insert(l.weight).second)
            continue; // a weight shared by two layers is stored once
        t.layers.push_back({l.name, w->shape, l.outAxis, l.inAxis, w->numel()});
    }
    for (const auto& [name, tensor] : g.initializers) {
        if (tensor.dtype == DType::String)
            continue;
        const int64_t bits = tensor.numel() * int64_t(elementSize(tensor.dtype)) * 8;
        t.floatBits += bits;
        if (!layerWeights.count(name))
            t.otherBits += bits;
    }
    return t;
}

// Whether a session's working graph of `g` differs from `g` in its initializers: a
// BatchNormalization after a Conv (folded), an Identity of an initializer (inlined).
bool sessionRewrites(const Graph& g)
{
    for (const Node& n : g.nodes) {
        if (n.opType == "Identity" && n.inputs.size() == 1 && g.initializers.count(n.inputs[0]))
            return true;
        if (n.opType == "BatchNormalization") {
            const int p = g.producerOf(n.input(0));
            if (p >= 0 && g.nodes[std::size_t(p)].opType == "Conv")
                return true;
        }
    }
    return false;
}

} // namespace

ModelSizeTable modelSizeTable(const QuantSession& session)
{
    return sizeTableOf(session.graph(), session.layers(), session.attentionPatterns().points,
        [&session](const std::map<std::string, Shape>& shapes) { return session.compileOptions(false, shapes); });
}

ModelSizeTable modelSizeTable(const Graph& graph)
{
    // BatchNorm folding and inlined Identities change the initializers: those models
    // (CNNs, small) are counted on a session's working copy. Any other model from its
    // shapes alone, in place: a session of the default configuration quantizes every
    // quantizable layer and leaves the graph as it is.
    if (sessionRewrites(graph))
        return modelSizeTable(QuantSession(graph, QuantizeOptions{}));
    std::vector<SessionLayer> layers;
    for (int idx : graph.quantizableLayers())
        if (const Node& n = graph.nodes[std::size_t(idx)]; isSessionLayer(n))
            layers.push_back(sessionLayerOf(graph, n));
    return sizeTableOf(graph, layers, findAttentionOperands(graph).points,
        [&graph](const std::map<std::string, Shape>& shapes) {
            CompileOptions co;
            InputShapes(shapes).into(co, graph);
            return co;
        });
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
    // Attention operands the sensitivity swept (op "MatMul:K"), at the bits the
    // configuration gives them; float ones add nothing.
    for (const LayerSensitivity& l : sensitivity.layers) {
        const auto role = l.op.rfind("MatMul:", 0) == 0 ? pointRole(l.op) : std::nullopt;
        if (!role)
            continue;
        auto spec = config.forOperand(l.layer, *role);
        if (!spec)
            continue;
        const double n = layerNoise(l, spec->bits);
        if (n < 0) {
            ++p.layersMissing;
            continue;
        }
        ++p.layersPredicted;
        if (!l.byBits.count(spec->bits))
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

void resolveOperandShapes(
    ModelSizeTable& t, const QuantSession& session, const std::map<std::string, Shape>& inputShapes)
{
    const auto& points = session.attentionPatterns().points;
    if (!points.empty())
        resolveOperandsFromPlan(t, session.graph(), points, session.compileOptions(false, inputShapes));
}

std::vector<LayerOptions> mixedOperandOptions(const ModelSizeTable& sizes, const SensitivityResult& sensitivity,
    const std::vector<int>& bits, const QuantConfig& base, bool byAverageBits)
{
    std::vector<LayerOptions> out;
    for (const OperandShape& op : sizes.operands) {
        auto ls = std::find_if(sensitivity.layers.begin(), sensitivity.layers.end(),
            [&](const LayerSensitivity& l) { return l.layer == op.point; });
        if (ls == sensitivity.layers.end() || ls->byBits.empty())
            continue;
        auto over = base.attention.points.find(op.point);
        const OperandSpec spec0 = over != base.attention.points.end() ? over->second : base.attention.role(op.role);
        LayerOptions lo;
        lo.layer = op.point;
        lo.elements = sizes.operandElements(op);
        lo.operand = true;
        auto option = [&](int b, double noise) {
            OperandSpec spec = spec0;
            spec.bits = b;
            BitOption o;
            o.bits = b;
            o.sizeBits = sizes.operandBits(op, spec);
            o.cost = byAverageBits ? lo.elements * b : o.sizeBits;
            o.noise = noise;
            lo.options.push_back(o);
        };
        for (int b : bits) {
            // As for layers: an unmeasured width counts as full noise (SQNR 0 dB).
            auto m = ls->byBits.find(b);
            const double sq = m != ls->byBits.end() ? m->second.sqnrDb : 0;
            option(b, std::isfinite(sq) ? std::pow(10.0, -sq / 10) : 0);
        }
        option(32, 0);
        out.push_back(std::move(lo));
    }
    return out;
}

QuantConfig withOperandBits(QuantConfig config, const std::map<std::string, int>& operandBits)
{
    for (const auto& [point, b] : operandBits) {
        const auto role = pointRole(point);
        if (!role)
            fail("attention operand ", quoted(point), ": expected a point named <MatMul>:Q, :K, :V or :P");
        auto over = config.attention.points.find(point);
        OperandSpec spec = over != config.attention.points.end() ? over->second : config.attention.role(*role);
        spec.bits = b >= 16 ? 32 : b;
        config.attention.points[point] = spec;
    }
    return config;
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
