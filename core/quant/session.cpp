#include "quant/session.h"

#include "data/input_binding.h"
#include "graph/subgraphs.h"
#include "measure/fidelity.h"
#include "measure/layers.h"
#include "measure/perplexity.h"
#include "quant/algorithms/linear_layer.h"
#include "quant/int8_lowering.h"
#include "runtime/plan_shared.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <utility>

namespace qs {

// ---- algorithm registry ----------------------------------------------------

static std::vector<AlgorithmInfo>& algorithmTable()
{
    static std::vector<AlgorithmInfo> t;
    return t;
}

bool registerAlgorithm(AlgorithmInfo info)
{
    algorithmTable().push_back(std::move(info));
    return true;
}

const std::vector<AlgorithmInfo>& algorithms()
{
    return algorithmTable();
}

const AlgorithmInfo& algorithm(const std::string& name)
{
    for (const auto& a : algorithmTable())
        if (a.name == name)
            return a;
    std::string known;
    for (const auto& a : algorithmTable())
        known += (known.empty() ? "" : ", ") + a.name;
    fail("unknown algorithm ", quoted(name), " (known: ", known, ")");
}

// ---- BatchNorm folding -----------------------------------------------------

int foldBatchNorms(Graph& g)
{
    g.index();
    std::set<int> removed;
    int folded = 0;
    std::set<std::string> outputs;
    for (const auto& o : g.outputs)
        outputs.insert(o.name);
    for (int i = 0; i < int(g.nodes.size()); ++i) {
        Node& bn = g.nodes[std::size_t(i)];
        if (bn.opType != "BatchNormalization" || !bn.domain.empty() || bn.outputs.size() != 1)
            continue;
        int p = g.producerOf(bn.input(0));
        if (p < 0 || g.nodes[std::size_t(p)].opType != "Conv" || removed.count(p))
            continue;
        Node& conv = g.nodes[std::size_t(p)];
        if (g.consumersOf(conv.outputs[0]).size() != 1 || outputs.count(conv.outputs[0]))
            continue;
        const Tensor* w = g.constant(conv.input(1));
        const Tensor* scale = g.constant(bn.input(1));
        const Tensor* beta = g.constant(bn.input(2));
        const Tensor* mean = g.constant(bn.input(3));
        const Tensor* var = g.constant(bn.input(4));
        if (!w || !scale || !beta || !mean || !var || !isFloating(w->dtype) || w->shape.empty())
            continue;
        const int64_t outCh = w->shape[0];
        // Both nodes' vectors must hold one value per output channel: the fold indexes them so.
        const std::string where = str(g.sourcePath, ": node ", quoted(bn.name), " (BatchNormalization)");
        for (std::size_t k = 1; k <= 4; ++k)
            if (const int64_t n = g.constant(bn.input(k))->numel(); n != outCh)
                fail(where, ": input ", quoted(bn.input(k)), " has ", n, " values, the Conv ", quoted(conv.name),
                    " has ", outCh, " output channels");
        const float eps = bn.attrFloat("epsilon", 1e-5f);
        std::vector<float> wv = w->toFloat(), sv = scale->toFloat(), bv = beta->toFloat(), mv = mean->toFloat(),
                           vv = var->toFloat();
        std::vector<float> bias(std::size_t(outCh), 0.f);
        if (const Tensor* b = g.constant(conv.input(2))) {
            if (b->numel() != outCh)
                fail(g.sourcePath, ": node ", quoted(conv.name), " (Conv): bias ", quoted(conv.input(2)), " has ",
                    b->numel(), " values, expected ", outCh, " (one per output channel)");
            bias = b->toFloat();
        }
        const int64_t per = int64_t(wv.size()) / outCh;
        for (int64_t c = 0; c < outCh; ++c) {
            const float a = sv[std::size_t(c)] / std::sqrt(vv[std::size_t(c)] + eps);
            for (int64_t k = 0; k < per; ++k)
                wv[std::size_t(c * per + k)] *= a;
            bias[std::size_t(c)] = (bias[std::size_t(c)] - mv[std::size_t(c)]) * a + bv[std::size_t(c)];
        }
        Tensor nw = Tensor::fromVector(w->shape, wv);
        nw.name = conv.name + ".weight_bnfolded";
        Tensor nb = Tensor::fromVector(Shape{outCh}, bias);
        nb.name = conv.name + ".bias_bnfolded";
        conv.inputs.resize(3);
        conv.inputs[1] = nw.name;
        conv.inputs[2] = nb.name;
        g.initializers[nw.name] = std::move(nw);
        g.initializers[nb.name] = std::move(nb);
        conv.outputs[0] = bn.outputs[0];
        removed.insert(i);
        ++folded;
    }
    if (!folded)
        return 0;
    std::vector<Node> kept;
    for (int i = 0; i < int(g.nodes.size()); ++i)
        if (!removed.count(i))
            kept.push_back(std::move(g.nodes[std::size_t(i)]));
    g.nodes = std::move(kept);
    // Drop initializers nothing uses any more (old weights, BN parameters).
    std::set<std::string> used;
    for (const Node& n : g.nodes)
        for (const auto& in : n.inputs)
            used.insert(in);
    for (const auto& o : g.outputs)
        used.insert(o.name);
    for (auto it = g.initializers.begin(); it != g.initializers.end();)
        it = used.count(it->first) ? std::next(it) : g.initializers.erase(it);
    g.index();
    return folded;
}

// Identity of an initializer (exporters deduplicate equal tensors that way) -> an
// initializer of its own, so every layer's weight and bias are plain constants.
static int inlineConstantIdentities(Graph& g)
{
    std::set<std::string> outputs;
    for (const auto& o : g.outputs)
        outputs.insert(o.name);
    int inlined = 0;
    std::vector<Node> kept;
    for (Node& n : g.nodes) {
        auto it = n.inputs.size() == 1 ? g.initializers.find(n.inputs[0]) : g.initializers.end();
        if (n.opType == "Identity" && n.domain.empty() && n.outputs.size() == 1 && it != g.initializers.end() &&
            !outputs.count(n.outputs[0]) && !g.initializers.count(n.outputs[0])) {
            Tensor t = it->second;
            t.name = n.outputs[0];
            g.initializers[t.name] = std::move(t);
            ++inlined;
            continue;
        }
        kept.push_back(std::move(n));
    }
    g.nodes = std::move(kept);
    g.index();
    return inlined;
}

// ---- session -----------------------------------------------------------------

// The x Q MatMul that rotation's "online" mode inserts (quant/algorithms/rotation.cpp)
// is no layer of the model: Q stays exact, quantizing it would break its orthogonality.
static bool isOnlineRotation(const Node& n)
{
    static const std::string suffix = ".rot_online";
    return n.opType == "MatMul" && n.name.size() > suffix.size() &&
        n.name.compare(n.name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Group-wise scales on a linear layer (Gemm, MatMul, embedding table) are a storage
// format of whole groups along the input dimension (as in GPTQ/AWQ checkpoints): a
// dimension the group size does not divide is refused rather than given a ragged last
// group. Conv keeps ragged groups (a 3-channel stem conv has no whole group of 8).
static void checkGroups(const Graph& g, const Node& n, const SessionLayer& l)
{
    const QuantSpec& w = l.spec.weight;
    const LayerKind kind = g.layerKind(n);
    if (w.isFloat() || w.granularity != Granularity::Group ||
        (kind != LayerKind::Gemm && kind != LayerKind::MatMul && kind != LayerKind::Embedding))
        return;
    const Tensor* t = g.constant(l.weight);
    const int rank = int(t->shape.size());
    if (rank == 0)
        return;
    const int64_t in = t->shape[std::size_t((l.inAxis % rank + rank) % rank)];
    const char* what = kind == LayerKind::Embedding ? "embedding dimension" : "input dimension";
    if (in < w.groupSize)
        fail("layer ", quoted(n.name), " (", n.opType, "): weight ", quoted(l.weight), ": ", what, " ", in,
            " is smaller than the group size ", w.groupSize, " (choose group:N with N dividing ", in,
            ", or per-channel)");
    if (in % w.groupSize != 0)
        fail("layer ", quoted(n.name), " (", n.opType, "): weight ", quoted(l.weight), ": ", what, " ", in,
            " is not a multiple of the group size ", w.groupSize);
}

namespace {

// The algorithms (BN folding, CLE, bias correction, INT8 lowering) index a Conv's
// constant weights and bias per output channel before anything compiles the graph.
void checkConvShapes(const Graph& g)
{
    for (const Node& n : g.nodes) {
        if ((n.opType != "Conv" && n.opType != "ConvTranspose") || !n.domain.empty())
            continue;
        const Tensor* w = g.constant(n.input(1));
        const Tensor* b = g.constant(n.input(2));
        if (!w || !b)
            continue;
        const int64_t group = n.attrInt("group", 1);
        const int64_t outCh = w->shape.size() < 2 ? -1 : n.opType == "Conv" ? w->shape[0] : w->shape[1] * group;
        if (b->shape.size() != 1 || b->numel() != outCh)
            fail(g.sourcePath, ": node ", quoted(n.name), " (", n.opType, "): bias ", quoted(n.input(2)), " has shape ",
                shapeString(b->shape), ", expected [", outCh, "] for the weights ", shapeString(w->shape));
    }
}

} // namespace

QuantSession::QuantSession(const Graph& source, QuantizeOptions options)
    : QuantSession(Graph(source), std::move(options))
{
}

QuantSession::QuantSession(Graph&& source, QuantizeOptions options)
    : options_(std::move(options)), graph_(std::move(source))
{
    std::map<std::string, std::string> convWeights; // Conv node -> its weight input, as given
    for (const Node& n : graph_.nodes)
        if (n.opType == "Conv" && n.inputs.size() > 1)
            convWeights.emplace(n.name, n.inputs[1]); // the first of a name, as findNode
    inlineConstantIdentities(graph_);
    checkConvShapes(graph_);
    foldBatchNorms(graph_);
    for (const Node& n : graph_.nodes)
        if (n.opType == "Conv" && n.inputs.size() > 1 && n.inputs[1] == n.name + ".weight_bnfolded")
            if (auto w = convWeights.find(n.name); w != convWeights.end())
                foldedWeights_[w->second] = n.inputs[1];
    // The working copy shares the source's weights (sealed by import) until an algorithm
    // writes one; what the steps above made is sealed too, so plans share it.
    sealTensors(graph_);
    refreshLayers();
    // Layers inside an If branch chosen at run time, or a Loop body, are not quantized yet;
    // an If with a constant condition was inlined at import, one decided by --input-value by
    // the command (inlineIfsForInputs).
    for (const NestedNode& nn : nestedNodes(graph_))
        if (nn.scope->layerKind(nn.node()) != LayerKind::None && options_.config.forLayer(nn.node().name))
            fail(graph_.sourcePath, ": layer ", quoted(nn.node().name), " (", nn.node().opType, ") inside ", nn.path,
                 " cannot be quantized: only layers of an If whose condition is a constant are (it is ",
                 "inlined at import), or follows from inputs given by --input-value NAME=V; exclude it in the ",
                 "configuration or fix the condition");
}

void QuantSession::checkRanges() const
{
    for (const auto& [name, r] : options_.config.ranges) {
        bool found = false;
        for (const auto& l : layers_)
            found = found || (name == l.input && !l.spec.activation.isFloat()) ||
                    (name == l.weight && !l.spec.weight.isFloat());
        if (found)
            continue;
        if (auto f = foldedWeights_.find(name); f != foldedWeights_.end())
            fail("ranges.", name, ": this weight is folded with its BatchNormalization before quantization; give the "
                 "range for the folded weight ", quoted(f->second));
        const bool known = graph_.initializers.count(name) || graph_.producerOf(name) >= 0 ||
                           std::any_of(graph_.inputs.begin(), graph_.inputs.end(),
                                       [&tensor = name](const ValueInfo& v) { return v.name == tensor; });
        fail("ranges.", name, ": ",
             known ? "the configuration quantizes no layer input or weight of that name (it is kept in float)"
                   : "the model has no tensor of that name",
             "; ranges apply to the inputs and weights of quantized layers");
    }
}

std::optional<LayerQuant> QuantSession::specFor(const Node& n, const QuantConfig& config) const
{
    auto spec = config.forLayer(n.name);
    if (spec && graph_.layerKind(n) == LayerKind::Embedding)
        spec->activation.bits = 32; // the input is token indices: nothing to quantize
    return spec;
}

SessionLayer sessionLayerOf(const Graph& g, const Node& n)
{
    SessionLayer l;
    l.name = n.name;
    l.op = n.opType;
    l.weight = g.weightOf(n);
    if ((n.opType == "Conv" || n.opType == "ConvTranspose" || n.opType == "Gemm") && g.constant(n.input(2)))
        l.bias = n.input(2);
    l.input = layerInputOf(g, n);
    l.outAxis = weightChannelAxis(g, n);
    const int rank = int(g.constant(l.weight)->shape.size());
    switch (g.layerKind(n)) {
    case LayerKind::Conv: l.inAxis = 1; break;
    case LayerKind::ConvTranspose: l.inAxis = 0; break;
    case LayerKind::Gemm: l.inAxis = n.attrInt("transB", 0) ? 1 : 0; break;
    case LayerKind::MatMul: l.inAxis = l.outAxis == rank - 1 ? rank - 2 : rank - 1; break;
    default: l.inAxis = 1; break;
    }
    return l;
}

bool isSessionLayer(const Node& n)
{
    return !isOnlineRotation(n);
}

void QuantSession::refreshLayers()
{
    graph_.index();
    layers_.clear();
    for (int idx : graph_.quantizableLayers()) {
        const Node& n = graph_.nodes[std::size_t(idx)];
        auto spec = specFor(n, options_.config);
        if (!spec || !isSessionLayer(n))
            continue;
        SessionLayer l = sessionLayerOf(graph_, n);
        l.spec = *spec;
        checkGroups(graph_, n, l);
        layers_.push_back(l);
    }
    attention_ = findAttentionOperands(graph_);
    operands_.clear();
    for (const auto& p : attention_.points)
        if (auto spec = options_.config.forOperand(p.name, p.role))
            operands_.push_back({p, *spec});
    for (const auto& entry : options_.config.attention.points) { // clang 14 cannot capture a structured binding
        const std::string& name = entry.first;
        if (std::any_of(attention_.points.begin(), attention_.points.end(),
                [&](const AttentionPoint& p) { return p.name == name; }))
            continue;
        const std::string node = name.substr(0, name.rfind(':'));
        for (const auto& u : attention_.unmapped)
            if (u.node == node)
                fail("attention.points.", name, ": node ", quoted(node), " (", u.op, "): ", u.reason);
        std::string known;
        for (const auto& p : attention_.points)
            known += (known.empty() ? "" : ", ") + p.name;
        fail("attention.points.", name,
            ": the model has no attention operand of that name (found: ", known.empty() ? "none" : known, ")");
    }
    nlohmann::json found = nlohmann::json::array(), unmapped = nlohmann::json::array();
    for (const auto& p : attention_.points)
        found.push_back({{"point", p.name}, {"value", p.value}, {"cache", p.cache}});
    for (const auto& u : attention_.unmapped)
        unmapped.push_back({{"node", u.node}, {"op", u.op}, {"reason", u.reason}});
    if (!(options_.config.attention == AttentionQuant {}))
        notes["attention"] = {{"points", found}, {"unmapped", unmapped}};
}

std::map<std::string, OperandObserver> QuantSession::observeOperands(
    const Dataset& calib, int64_t limit, Progress& progress, const CancelToken& cancel) const
{
    std::map<std::string, OperandObserver> observers;
    for (const auto& o : operands_)
        observers.emplace(o.point.name, OperandObserver(o.point, o.spec.granularity));
    const int64_t total = std::min(limit >= 0 ? limit : calib.count(), calib.count());
    if (observers.empty() || total <= 0)
        return observers;
    progress.report(0, "observing attention operands");
    runBatches(
        calib, total, false,
        [&](Plan& plan) {
            for (auto& [name, obs] : observers) {
                OperandObserver* o = &obs;
                plan.addTap(o->point().value, [o](const std::string&, const Tensor& t) { o->observe(t); });
            }
        },
        cancel,
        [&](int64_t done) {
            progress.report(double(done) / double(total), str("observing attention operands: ", done, " of ", total));
        });
    return observers;
}

void QuantSession::setOperandQuantization(const std::map<std::string, OperandObserver>& observers)
{
    operandQuant.clear();
    for (const auto& o : operands_) {
        auto it = observers.find(o.point.name);
        OperandQuant q = chooseOperandQuant(o.point, o.spec, it == observers.end() ? nullptr : &it->second);
        if (auto r = options_.config.attention.ranges.find(o.point.name); r != options_.config.attention.ranges.end()) {
            if (r->second.size() != q.params.size()) // also per token: nothing to fix
                fail("attention.ranges.", o.point.name, ": ", r->second.size(), " ranges, but the operand has ",
                    q.params.size(), " slices (", operandGranularityName(o.spec.granularity), ")");
            for (std::size_t k = 0; k < q.params.size(); ++k) {
                q.ranges[k] = {r->second[k].first, r->second[k].second};
                q.params[k] = qparamsFor(q.ranges[k].lo, q.ranges[k].hi, o.spec.bits, o.spec.symmetric);
            }
        }
        operandQuant[o.point.name] = std::move(q);
    }
    for (const auto& [name, r] : options_.config.attention.ranges)
        if (!operandQuant.count(name))
            fail("attention.ranges.", name, ": the configuration quantizes no attention operand of that name");
}

void QuantSession::runBatches(const Dataset& calib, int64_t total, bool quantized,
    const std::function<void(Plan&)>& attach, const CancelToken& cancel, const std::function<void(int64_t)>& done) const
{
    runInBatches(
        calib, total, batchFor(graph_, options_.batch),
        [&](const std::map<std::string, Shape>& shapes) { return compile(quantized, shapes); },
        [&](Plan& plan, int64_t) { attach(plan); }, cancel, done);
}

std::vector<std::string> QuantSession::activationValues() const
{
    std::vector<std::string> values;
    for (const auto& l : layers_)
        if (!l.spec.activation.isFloat() && std::find(values.begin(), values.end(), l.input) == values.end())
            values.push_back(l.input);
    return values;
}

void QuantSession::calibrate(const Dataset& calib, Progress& progress, const CancelToken& cancel)
{
    dataPreprocess = calib.preprocess;
    const std::vector<std::string> values = activationValues();
    if (values.empty()) {
        setActivationQuantization({});
        setOperandQuantization(observeOperands(calib, options_.calibLimit, progress, cancel));
        return;
    }
    ProfileOptions po;
    po.batch = options_.batch;
    po.limit = options_.calibLimit;
    po.threads = options_.threads;
    Progress layerPart = progress.sub(0, operands_.empty() ? 1.0 : 0.7);
    setActivationQuantization(observeActivations(graph_, calib, values, po, layerPart, cancel));
    Progress operandPart = progress.sub(0.7, 1.0);
    setOperandQuantization(observeOperands(calib, options_.calibLimit, operandPart, cancel));
}

std::map<std::string, ActivationQuant> chooseActivationQuantization(const std::vector<SessionLayer>& layers,
    const QuantConfig& config, const std::map<std::string, ActivationObserver>& observers)
{
    std::map<std::string, ActivationQuant> out;
    for (const auto& l : layers) {
        const QuantSpec& spec = l.spec.activation;
        if (spec.isFloat() || out.count(l.input))
            continue;
        auto obs = observers.find(l.input);
        if (obs == observers.end())
            fail("activation ", quoted(l.input), " of layer ", quoted(l.name), " was not observed");
        ClipRange r;
        if (auto o = config.ranges.find(l.input); o != config.ranges.end()) {
            r = {o->second.first, o->second.second};
        } else if (spec.range) {
            r = {spec.range->first, spec.range->second};
        } else {
            const CalibratorInfo& c = calibrator(spec.calibrator);
            double param = spec.calibratorParam != 0 ? spec.calibratorParam : c.defaultParam;
            r = c.choose(obs->second.calibration(), spec.bits, spec.symmetric, param);
        }
        out[l.input] = {r, qparamsFor(r.lo, r.hi, spec.bits, spec.symmetric)};
    }
    return out;
}

void QuantSession::setActivationQuantization(const std::map<std::string, ActivationObserver>& observers)
{
    activationParams.clear();
    activationRanges.clear();
    activationStats.clear();
    activationHistograms.clear();
    for (const auto& [value, q] : chooseActivationQuantization(layers_, options_.config, observers)) {
        activationRanges[value] = q.range;
        activationParams[value] = q.params;
        activationStats[value] = observers.at(value).stats();
        activationHistograms[value] = observers.at(value).calibration().histogram;
    }
}

QuantSpec QuantSession::weightSpec(const SessionLayer& l, const QuantConfig& config)
{
    QuantSpec spec = l.spec.weight;
    if (auto o = config.ranges.find(l.weight); o != config.ranges.end())
        spec.range = o->second;
    return spec;
}

WeightQuantization QuantSession::weightPlan(const SessionLayer& l, const QuantConfig& config) const
{
    const Tensor* w = graph_.constant(l.weight);
    const QuantSpec spec = weightSpec(l, config);
    WeightQuantization plan = planWeightQuantization(w->toFloat(), w->shape, l.outAxis, l.inAxis, spec);
    if (auto g = weightGrids.find(l.weight);
        g != weightGrids.end() && g->second.spec == spec && g->second.params.size() == plan.params.size())
        plan.params = g->second.params;
    return plan;
}

void QuantSession::chooseWeightGrids(const Dataset& calib, Progress& progress, const CancelToken& cancel)
{
    weightGrids.clear();
    std::vector<algo::LinearLayer> chosen;
    int64_t samples = options_.calibLimit;
    for (const algo::LinearLayer& L : algo::linearLayers(*this)) {
        const QuantSpec spec = weightSpec(L.info);
        if (spec.calibrator != "output-mse" || spec.range || spec.isFloat())
            continue;
        if (spec.calibratorParam > 0)
            samples = int64_t(spec.calibratorParam);
        chosen.push_back(L);
    }
    if (chosen.empty())
        return;
    Progress observe = progress.sub(0.0, 0.6);
    std::vector<algo::LayerGram> grams = algo::layerGrams(*this, calib, chosen, samples, observe, cancel);
    nlohmann::json report = nlohmann::json::array();
    for (std::size_t i = 0; i < chosen.size(); ++i) {
        cancel.check();
        const algo::LinearLayer& L = chosen[i];
        const QuantSpec spec = weightSpec(L.info);
        const std::vector<float> m = algo::toMatrix(L, graph_.constant(L.info.weight)->toFloat());
        WeightGrid grid{spec, algo::outputMseGrid(L, m, grams[i].h, spec)};
        const double errMse = algo::outputError(m, algo::roundToNearest(L, m, weightPlan(L.info).params), L.rows,
                                                L.cols, grams[i].h);
        const double errOut = algo::outputError(m, algo::roundToNearest(L, m, grid.params), L.rows, L.cols, grams[i].h);
        const double rows = double(std::max<int64_t>(grams[i].rows, 1));
        report.push_back({{"layer", L.info.name}, {"rows_seen", grams[i].rows},
                          {"output_mse_weight_mse_grid", errMse / rows}, {"output_mse", errOut / rows}});
        weightGrids[L.info.weight] = std::move(grid);
        progress.report(0.6 + 0.4 * double(i + 1) / double(chosen.size()), str("output-MSE weight range: ", L.info.name));
    }
    notes["output_mse_weights"] = {{"samples", samples}, {"layers", report}};
}

Tensor QuantSession::quantizedWeight(const SessionLayer& l, const QuantConfig& config) const
{
    const Tensor* w = graph_.constant(l.weight);
    std::vector<float> q;
    try {
        q = fakeQuantWeight(w->toFloat(), weightPlan(l, config), weightSpec(l, config).rounding,
                            options_.seed + std::hash<std::string>{}(l.name));
    } catch (const Error& e) {
        fail("layer ", quoted(l.name), ": weight ", quoted(l.weight), ": ", e.what());
    }
    Tensor t = Tensor::fromVector(w->shape, q);
    t.name = l.weight;
    return t;
}

void QuantSession::quantizeWeights()
{
    for (const auto& l : layers_) {
        if (l.spec.weight.isFloat())
            continue;
        weightOverrides[l.weight] = quantizedWeight(l).seal(); // plans and graph copies share it
        std::vector<float>& scales = weightScales[l.weight];
        scales.clear();
        for (const QParams& p : weightPlan(l).params)
            scales.push_back(p.scale);
    }
}

CompileOptions QuantSession::compileOptions(bool quantized, const InputShapes& inputShape) const
{
    if (quantized)
        return compileOptions(inputShape, weightOverrides, activationParams);
    CompileOptions co;
    inputShape.into(co, graph_);
    co.threads = options_.threads;
    return co;
}

CompileOptions QuantSession::compileOptions(const InputShapes& inputShape, const std::map<std::string, Tensor>& weights,
    const std::map<std::string, QParams>& activations) const
{
    CompileOptions co;
    inputShape.into(co, graph_);
    co.threads = options_.threads;
    co.initializerOverrides = weights;
    for (const auto& [value, q] : activations) {
        QParams qp = q;
        co.valueTransforms[value] = [qp](Tensor& t) {
            for (float& x : t.data<float>())
                x = fakeQuant(x, qp);
        };
    }
    for (const auto& entry : operandQuant) { // clang 14 cannot capture a structured binding
        const auto& q = entry.second;
        // A value both a layer input and an operand: the layer's grid first, then the operand's.
        ValueTransform before = co.valueTransforms.count(q.point.value) ? co.valueTransforms[q.point.value] : nullptr;
        co.valueTransforms[q.point.value] = [q, before](Tensor& t) {
            if (before)
                before(t);
            fakeQuantOperand(t, q);
        };
    }
    return co;
}

std::unique_ptr<Plan> QuantSession::compile(bool quantized, const InputShapes& inputShape) const
{
    // The plan reads the working graph in place (no copy of its weights): it must not
    // outlive the session or see the graph change.
    return compileSharedPlan(std::shared_ptr<const Graph>(std::shared_ptr<const Graph> {}, &graph_),
        compileOptions(quantized, inputShape));
}

int64_t QuantSession::layerSizeBits(const SessionLayer& l) const
{
    const Tensor* w = graph_.constant(l.weight);
    if (l.spec.weight.isFloat())
        return w->numel() * l.spec.weight.bits;
    auto outliers = floatOutliers.find(l.weight);
    return storedBits(w->numel(), weightBlockCount(w->shape, l.outAxis, l.inAxis, l.spec.weight), l.spec.weight) +
        (outliers != floatOutliers.end() ? outliers->second * kFloatOutlierBits : 0);
}

// Initializers some node reads: an algorithm that gave a layer a weight of its own
// (".weight_awq", ".weight_rot") leaves the original behind unused, and it is not stored.
static std::set<std::string> usedInitializers(const Graph& g)
{
    std::set<std::string> used;
    for (const Node& n : g.nodes)
        for (const auto& in : n.inputs)
            if (g.initializers.count(in))
                used.insert(in);
    for (const auto& o : g.outputs)
        if (g.initializers.count(o.name))
            used.insert(o.name);
    return used;
}

int64_t QuantSession::sizeBits() const
{
    std::map<std::string, const SessionLayer*> byWeight;
    for (const auto& l : layers_)
        byWeight[l.weight] = &l;
    const std::set<std::string> used = usedInitializers(graph_);
    int64_t bits = 0;
    for (const auto& [name, t] : graph_.initializers) {
        if (t.dtype == DType::String || !used.count(name))
            continue;
        auto it = byWeight.find(name);
        bits += it != byWeight.end() ? layerSizeBits(*it->second) : t.numel() * int64_t(elementSize(t.dtype)) * 8;
    }
    return bits;
}

int64_t QuantSession::floatSizeBits() const
{
    const std::set<std::string> used = usedInitializers(graph_);
    int64_t bits = 0;
    for (const auto& [name, t] : graph_.initializers)
        if (t.dtype != DType::String && used.count(name))
            bits += t.numel() * int64_t(elementSize(t.dtype)) * 8;
    return bits;
}

// ---- the whole flow ------------------------------------------------------------

namespace {

constexpr int storedHistogramBins = 128;

Histogram emptyHistogram(double lo, double hi)
{
    if (!(hi > lo)) { // one value: a bin around it
        const double pad = std::max(std::abs(lo) * 1e-3, 1e-6);
        lo -= pad;
        hi += pad;
    }
    Histogram h;
    h.lo = lo;
    h.hi = hi;
    h.counts.assign(storedHistogramBins, 0);
    return h;
}

void addCount(Histogram& h, double x, uint64_t count)
{
    if (x < h.lo) {
        h.below += count;
    } else if (x > h.hi) {
        h.above += count;
    } else {
        const int b = int((x - h.lo) * double(h.bins()) / (h.hi - h.lo));
        h.counts[std::size_t(std::clamp(b, 0, h.bins() - 1))] += count;
    }
}

// FP32 and quantized weights on the same bins, spanning both.
void fillWeightHistograms(const std::vector<float>& fp, std::span<const float> q, LayerQuantResult& r)
{
    auto [fpLo, fpHi] = std::minmax_element(fp.begin(), fp.end());
    auto [qLo, qHi] = std::minmax_element(q.begin(), q.end());
    if (fpLo == fp.end() || qLo == q.end())
        return;
    r.weightHist = emptyHistogram(std::min(*fpLo, *qLo), std::max(*fpHi, *qHi));
    r.quantizedWeightHist = r.weightHist;
    r.weightHist.add(fp);
    r.quantizedWeightHist.add(q);
}

// The quantized input's distribution from the FP32 calibration histogram: each fine bin's
// count moves to the quantized value of its centre (exact up to the fine bin width).
void fillActivationHistograms(const Histogram& fine, const QParams& qp, LayerQuantResult& r)
{
    const double w = fine.binWidth();
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < fine.bins(); ++i)
        if (fine.counts[std::size_t(i)] > 0) {
            const double x = fine.lo + (i + 0.5) * w, q = fakeQuant(float(x), qp);
            lo = std::min({lo, x, q});
            hi = std::max({hi, x, q});
        }
    if (!(lo <= hi))
        return;
    r.actHist = emptyHistogram(lo, hi);
    r.quantizedActHist = r.actHist;
    for (int i = 0; i < fine.bins(); ++i)
        if (const uint64_t c = fine.counts[std::size_t(i)]) {
            const double x = fine.lo + (i + 0.5) * w;
            addCount(r.actHist, x, c);
            addCount(r.quantizedActHist, double(fakeQuant(float(x), qp)), c);
        }
}

} // namespace

QuantizeResult quantizeModel(const Graph& source, const Dataset& calib, const Dataset& eval,
                             const QuantizeOptions& options, Progress& progress, const CancelToken& cancel)
{
    QuantSession session(source, options);
    QuantizeResult result;
    result.config = options.config.toJson();

    // Checked up front so a typo fails before minutes of calibration.
    for (const auto& use : options.config.algorithms) {
        (void)algorithm(use.name);
        if (std::string why = int8AlgorithmObstacle(use.name); options.int8 && !why.empty())
            fail("--int8: ", why);
    }

    Progress pre = progress.sub(0.0, 0.1);
    for (const auto& use : options.config.algorithms) {
        const AlgorithmInfo& a = algorithm(use.name);
        if (a.stage == AlgorithmInfo::Stage::BeforeCalibration) {
            cancel.check();
            a.apply(session, calib, use.params, pre, cancel);
            result.applied.push_back(a.name);
        }
    }
    session.refreshLayers();
    session.checkRanges();
    Progress cal = progress.sub(0.1, 0.4);
    session.calibrate(calib, cal, cancel);
    Progress grids = progress.sub(0.4, 0.45);
    session.chooseWeightGrids(calib, grids, cancel);
    session.quantizeWeights();
    Progress post = progress.sub(0.45, 0.6);
    for (const auto& use : options.config.algorithms) {
        const AlgorithmInfo& a = algorithm(use.name);
        if (a.stage == AlgorithmInfo::Stage::AfterWeights) {
            cancel.check();
            a.apply(session, calib, use.params, post, cancel);
            result.applied.push_back(a.name);
        }
    }

    // Nothing writes the weights from here on: copies of them (the quantized graph, plans) share.
    sealTensors(session.graph());
    sealTensors(session.weightOverrides);

    // Evaluate FP32 and quantized side by side, batch by batch, with per-layer taps.
    Progress ev = progress.sub(0.6, 1.0);
    const Graph& g = session.graph();
    const int64_t total = options.evalLimit >= 0 ? std::min(options.evalLimit, eval.count()) : eval.count();
    if (total <= 0)
        fail("evaluation dataset ", quoted(eval.path), " has no samples");
    const int64_t batch = std::max<int64_t>(1, std::min(batchFor(g, options.batch), total));
    // Each batch's sums start from zero and are added up in batch order afterwards
    // (combineEvalBatches), as a merge of evaluation shards adds them.
    const BatchRange range = options.evalShards > 0
        ? shardBatches(total, batch, options.evalShard, options.evalShards)
        : BatchRange{0, (total + batch - 1) / batch};
    result.evalBatchCount = (total + batch - 1) / batch;
    // Layer output values and attention operands, each once (two layers may share one): a
    // batch's per-layer sums.
    std::map<std::string, std::size_t> layerAt;
    std::vector<std::size_t> slotOf; // per session layer
    for (const auto& l : session.layers()) {
        const std::string& out = g.nodes[std::size_t(g.findNode(l.name))].outputs.front();
        slotOf.push_back(layerAt.emplace(out, layerAt.size()).first->second);
    }
    for (const auto& o : session.operands()) // then each attention operand, as a layer after them
        slotOf.push_back(layerAt.emplace(o.point.value, layerAt.size()).first->second);
    struct SlotSums {
        std::vector<double> signal, noise;
    } slotSums;
    SlotSums* current = nullptr;
    std::map<std::string, Tensor> fpBatch;   // this batch's FP32 layer outputs (sharing the tap's bytes)
    // Timed plans have no taps (taps keep values and so prevent fusion); the tapped
    // pair measures per-layer SQNR. The four share two graphs instead of copying one
    // each: the working graph, and one copy with the quantized weights in place of the
    // float ones (simulated quantization). That copy's tensors share their bytes with
    // the working graph and weightOverrides (sealed above): it costs no weight bytes.
    const std::shared_ptr<const Graph> fpGraph(std::shared_ptr<const Graph> {}, &g); // not owned
    std::shared_ptr<const Graph> qGraph;
    if (!options.int8) {
        auto copy = std::make_shared<Graph>(g);
        for (const auto& [name, t] : session.weightOverrides)
            if (auto it = copy->initializers.find(name); it != copy->initializers.end())
                it->second = t;
        qGraph = std::move(copy);
    }
    // Batches are never split over per-thread programs (CompileOptions::splitBatch): a
    // plan's third and later runs at one shape would go through them, an ulp away from the
    // whole program, and a shard starting mid-evaluation must compute each batch as the
    // whole run does. So one plan of each kind serves every batch of a size.
    auto evalOptions = [&](bool quantized, const std::map<std::string, Shape>& shape) {
        CompileOptions co = quantized ? session.compileOptions(shape, {}, session.activationParams)
                                      : session.compileOptions(false, shape);
        co.splitBatch = false;
        return co;
    };
    auto compileQuantized = [&](const std::map<std::string, Shape>& shape) {
        if (options.int8) {
            CompileOptions co = session.int8CompileOptions(shape);
            co.splitBatch = false;
            return compilePlan(g, co);
        }
        return compileSharedPlan(qGraph, evalOptions(true, shape));
    };
    std::unique_ptr<Plan> fp, q, fpTapped, qTapped;
    int64_t planBatch = -1;
    for (int64_t bi = range.first; bi < range.last; ++bi) {
        const int64_t start = bi * batch;
        cancel.check();
        const int64_t n = std::min(batch, total - start);
        if (n != planBatch) {
            planBatch = n;
            const std::map<std::string, Shape> shape = eval.inputShapes(n);
            for (auto* plan : {&fp, &q, &fpTapped, &qTapped}) // one set of plans at a time
                plan->reset();
            fp = compileSharedPlan(fpGraph, evalOptions(false, shape));
            q = compileQuantized(shape);
            fpTapped = compileSharedPlan(fpGraph, evalOptions(false, shape));
            qTapped = compileQuantized(shape);
            for (const auto& entry : layerAt) {
                const std::string& out = entry.first;
                const std::size_t at = entry.second;
                fpTapped->addTap(out, [&fpBatch](const std::string& v, const Tensor& t) { fpBatch[v] = t; });
                qTapped->addTap(out, [&fpBatch, &current, at](const std::string& v, const Tensor& t) {
                    auto it = fpBatch.find(v);
                    if (it == fpBatch.end() || !current) // no sums of a warm-up run
                        return;
                    auto a = std::as_const(it->second).data<float>(); // shares the tap's batch
                    auto b = t.data<float>();
                    double& signal = current->signal[at];
                    double& noise = current->noise[at];
                    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
                        signal += double(a[i]) * a[i];
                        double d = double(a[i]) - b[i];
                        noise += d * d;
                    }
                });
            }
        }
        EvalBatch& eb = result.evalBatches.emplace_back();
        eb.index = bi;
        slotSums.signal.assign(layerAt.size(), 0.0);
        slotSums.noise.assign(layerAt.size(), 0.0);
        current = &slotSums;
        const std::vector<Tensor> input = eval.batch(start, n);
        fpTapped->run(input);
        qTapped->run(input);
        auto t0 = std::chrono::steady_clock::now();
        std::vector<Tensor> ref = fp->run(input);
        auto t1 = std::chrono::steady_clock::now();
        std::vector<Tensor> out = q->run(input);
        auto t2 = std::chrono::steady_clock::now();
        eb.fp32Ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
        eb.ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
        std::vector<int64_t> labels;
        if (eval.labels)
            labels.assign(eval.labels->begin() + start, eval.labels->begin() + start + n);
        FidelityMeter meter(eval.targets.has_value()); // text: per token, as perplexity
        meter.add(ref.front(), out.front(), eval.labels ? &labels : nullptr);
        eb.fidelity = meter.sums();
        if (eval.targets) {
            const Tensor targets = eval.targetBatch(start, n);
            PerplexityMeter pplFp32, pplQuant;
            pplFp32.add(ref.front(), targets);
            pplQuant.add(out.front(), targets);
            eb.nllFp32 = pplFp32.nllSum();
            eb.nllQuant = pplQuant.nllSum();
            eb.tokens = pplQuant.tokens();
        }
        for (std::size_t slot : slotOf) { // per session layer, then per operand
            eb.layerSignal.push_back(slotSums.signal[slot]);
            eb.layerNoise.push_back(slotSums.noise[slot]);
        }
        current = nullptr;
        fpBatch.clear();
        ev.report(double(bi + 1 - range.first) / double(std::max<int64_t>(1, range.last - range.first)),
            str("evaluating: ", start + n, " of ", total, " samples"));
    }

    for (auto* plan : {&fp, &q, &fpTapped, &qTapped})
        plan->reset();
    qGraph.reset();

    const EvalTotals totals =
        combineEvalBatches(result.evalBatches, eval.targets.has_value(),
                           session.layers().size() + session.operands().size());
    const FidelityMeter& meter = totals.meter;
    result.top1 = meter.testTop1();
    result.perplexity = totals.perplexity;
    result.fp32Perplexity = totals.fp32Perplexity;
    result.fp32Top1 = meter.refTop1();
    result.top1Agreement = meter.top1Agreement();
    result.sqnrDb = meter.sqnrDb();
    result.cosine = meter.cosine();
    result.kl = meter.kl();
    result.evalSamples = meter.samples();
    result.latencyMs = totals.latencyMs;
    result.fp32LatencyMs = totals.fp32LatencyMs;
    result.sizeBits = session.sizeBits();
    result.fp32SizeBits = session.floatSizeBits();
    result.algorithmNotes = session.notes;
    result.compression = result.sizeBits > 0 ? double(result.fp32SizeBits) / double(result.sizeBits) : 1;

    for (const auto& l : session.layers()) {
        LayerQuantResult r;
        r.name = l.name;
        r.op = l.op;
        r.wbits = l.spec.weight.bits;
        r.abits = l.spec.activation.bits;
        r.granularity = l.spec.weight.granularity == Granularity::Group
                            ? str("group:", l.spec.weight.groupSize)
                            : granularityName(l.spec.weight.granularity);
        const Tensor* w = g.constant(l.weight);
        r.params = w->numel();
        r.sizeBits = session.layerSizeBits(l);
        const std::map<std::string, Tensor>& overrides = session.weightOverrides; // read, never copied on write
        if (auto it = overrides.find(l.weight); it != overrides.end()) {
            std::vector<float> a = w->toFloat();
            r.weightSqnrDb = sqnrDb(a.data(), it->second.data<float>().data(), a.size());
            fillWeightHistograms(a, it->second.data<float>(), r);
            auto plan = session.weightPlan(l);
            r.scaleMin = INFINITY;
            r.scaleMax = 0;
            for (const auto& p : plan.params) {
                r.scaleMin = std::min(r.scaleMin, p.scale);
                r.scaleMax = std::max(r.scaleMax, p.scale);
            }
        } else {
            r.weightSqnrDb = INFINITY;
        }
        if (auto it = session.activationRanges.find(l.input); it != session.activationRanges.end())
            r.activationRange = it->second;
        auto fine = session.activationHistograms.find(l.input);
        auto qp = session.activationParams.find(l.input);
        if (fine != session.activationHistograms.end() && qp != session.activationParams.end())
            fillActivationHistograms(fine->second, qp->second, r);
        if (const QuantSpec ws = session.weightSpec(l); ws.range && !ws.isFloat())
            r.weightRange = ClipRange{ws.range->first, ws.range->second};
        r.outputSqnrDb = totals.layerSqnrDb[result.layers.size()];
        result.layers.push_back(r);
    }
    for (const auto& o : session.operands()) {
        OperandQuantResult r;
        r.name = o.point.name;
        r.node = o.point.node;
        r.value = o.point.value;
        r.role = operandRoleName(o.point.role);
        r.bits = o.spec.bits;
        r.granularity = operandGranularityName(o.spec.granularity);
        r.cache = o.point.cache;
        r.sqnrDb = totals.layerSqnrDb[session.layers().size() + result.operands.size()];
        if (auto q = session.operandQuant.find(o.point.name);
            q != session.operandQuant.end() && !q->second.ranges.empty()) {
            ClipRange u = q->second.ranges.front();
            for (const ClipRange& c : q->second.ranges)
                u = {std::min(u.lo, c.lo), std::max(u.hi, c.hi)};
            r.range = u;
        }
        result.operands.push_back(r);
    }
    return result;
}

} // namespace qs
