// Per-layer parity of the simulated and the deployed (INT8) execution of one model.
#include "export/parity.h"

#include "data/input_binding.h"
#include "measure/fidelity.h"
#include "quant/quantizer.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace qs {
namespace {

// The value a layer's fused region ends in: through single-consumer activations and
// a residual Add, as runtime/ops/int8.cpp fuses them; `residual` gets the Add's other
// operand ("" without one).
std::string tailOf(const Graph& g, const Node& n, std::string& residual)
{
    residual.clear();
    static const std::set<std::string> fusable = {
        "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Add"};
    std::string v = n.outputs[0];
    bool added = false;
    for (;;) {
        bool isOutput = false;
        for (const auto& o : g.outputs)
            isOutput = isOutput || o.name == v;
        const auto& users = g.consumersOf(v);
        if (isOutput || users.size() != 1)
            return v;
        const Node& c = g.nodes[std::size_t(users[0])];
        if (!c.domain.empty() || !fusable.count(c.opType) || c.outputs.size() != 1)
            return v;
        if (c.opType == "Add") {
            if (added || c.inputs.size() != 2 || c.inputs[0] == c.inputs[1] || g.constant(c.inputs[0]) ||
                g.constant(c.inputs[1]))
                return v;
            added = true;
            residual = c.inputs[0] == v ? c.inputs[1] : c.inputs[0];
        } else if (c.inputs[0] != v) {
            return v;
        }
        v = c.outputs[0];
    }
}

// The integer codes of `t` on `q`'s grid (uint8 or int8): an 8-bit copy as the INT8
// plan holds it ("<value>#q8").
Tensor codesOf(const Tensor& t, const QParams& q)
{
    const bool sgn = q.qmin < 0;
    Tensor out;
    out.dtype = sgn ? DType::Int8 : DType::UInt8;
    out.shape = t.shape;
    out.bytes.resize(std::size_t(t.numel()));
    const std::vector<float> v = t.toFloat();
    for (std::size_t i = 0; i < v.size(); ++i) {
        const auto k = int32_t(quantCode(v[i], q));
        out.bytes[i] = std::byte(sgn ? uint8_t(int8_t(k)) : uint8_t(k));
    }
    return out;
}

bool hasValue(const Plan& plan, const std::string& value)
{
    try {
        plan.shapeOf(value);
        return true;
    } catch (const Error&) {
        return false;
    }
}

std::vector<float> quantized(const Tensor& t, const QParams* q)
{
    std::vector<float> v = t.toFloat();
    if (q)
        for (float& x : v)
            x = fakeQuant(x, *q);
    return v;
}

void compareParams(const QuantSession& s, const SessionLayer& l, const QdqLowered& e, LayerParity& p)
{
    if (auto a = s.activationParams.find(l.input); a != s.activationParams.end()) {
        auto b = e.activations.find(l.input);
        if (b == e.activations.end())
            p.paramDiffs.push_back(str("input ", quoted(l.input), " is not quantized in the export"));
        else if (b->second.scale != a->second.scale || b->second.zeroPoint != a->second.zeroPoint)
            p.paramDiffs.push_back(str("input ", quoted(l.input), ": scale ", b->second.scale, " zero point ",
                b->second.zeroPoint, ", simulated ", a->second.scale, " / ", a->second.zeroPoint));
    }
    auto ws = s.weightScales.find(l.weight);
    if (ws == s.weightScales.end())
        return;
    auto w = e.weights.find(l.weight);
    if (w == e.weights.end()) {
        p.paramDiffs.push_back(str("weight ", quoted(l.weight), " is not quantized in the export"));
        return;
    }
    int scales = 0;
    for (std::size_t i = 0; i < ws->second.size() && i < w->second.scales.size(); ++i)
        scales += ws->second[i] != w->second.scales[i];
    if (scales || ws->second.size() != w->second.scales.size())
        p.paramDiffs.push_back(str("weight ", quoted(l.weight), ": ", scales, " of ", ws->second.size(),
            " scales differ from the simulation's"));
    const auto ref = s.weightOverrides.at(l.weight).toFloat();
    const auto got = e.graph.initializers.at(l.weight).toFloat();
    int64_t differ = 0;
    double maxDiff = 0;
    for (std::size_t i = 0; i < ref.size() && i < got.size(); ++i)
        if (ref[i] != got[i]) {
            ++differ;
            maxDiff = std::max(maxDiff, std::abs(double(ref[i]) - got[i]));
        }
    if (differ)
        p.paramDiffs.push_back(str("weight ", quoted(l.weight), ": ", differ,
            " elements differ from the simulated "
            "weight (max |diff| ",
            maxDiff, ")"));
}

// Each INT8 layer alone, on the current batch: fed the simulation's own input (and
// residual operand), as the 8-bit copy its kernel reads where the plan has one, so what
// it adds is told apart from what it inherits. Layers are fed in groups, one runFrom()
// each, where no layer of a group writes a value another one is fed (a kernel writing a
// given value is skipped); their outputs come through taps (valueOf() gives the full
// run's values).
template <class Track>
void isolateLayers(const std::vector<LayerParity>& layers, std::vector<Track>& tracks, const QuantSession& reference,
    Plan& sim, Plan& int8)
{
    std::vector<std::vector<std::size_t>> groups;
    std::vector<std::set<std::string>> fedIn, writtenIn;
    for (std::size_t i = 0; i < layers.size(); ++i) {
        if (!layers[i].int8)
            continue;
        std::set<std::string> fed {reference.layers()[i].input};
        if (!tracks[i].residual.empty())
            fed.insert(tracks[i].residual);
        const std::string& out = layers[i].output;
        std::size_t gi = 0;
        for (; gi < groups.size(); ++gi) {
            bool clash = fedIn[gi].count(out) != 0;
            for (const auto& f : fed)
                clash = clash || writtenIn[gi].count(f);
            if (!clash)
                break;
        }
        if (gi == groups.size()) {
            groups.emplace_back();
            fedIn.emplace_back();
            writtenIn.emplace_back();
        }
        groups[gi].push_back(i);
        fedIn[gi].insert(fed.begin(), fed.end());
        writtenIn[gi].insert(out);
    }
    std::map<std::string, Tensor> seen;
    for (const auto& l : layers)
        int8.addTap(l.output, [&seen](const std::string& v, const Tensor& t) { seen[v] = t; });
    for (const auto& group : groups) {
        std::map<std::string, Tensor> feed;
        for (std::size_t i : group)
            for (const auto& [value, q] : {std::pair {reference.layers()[i].input, tracks[i].inQ},
                     std::pair {tracks[i].residual, tracks[i].residualQ}}) {
                if (value.empty() || feed.count(value) || feed.count(value + "#q8"))
                    continue;
                const Tensor v = sim.valueOf(value);
                if (q && hasValue(int8, value + "#q8"))
                    feed[value + "#q8"] = codesOf(v, *q);
                else
                    feed[value] = v;
            }
        seen.clear();
        int8.runFrom(feed);
        for (std::size_t i : group) {
            const std::string& out = layers[i].output;
            auto it = seen.find(out);
            if (it == seen.end())
                fail("parity: layer ", quoted(layers[i].layer), ": its output ", quoted(out),
                    " was not recomputed from its input");
            tracks[i].alone.add(quantized(sim.valueOf(out), tracks[i].outQ), quantized(it->second, tracks[i].outQ));
        }
    }
    int8.clearTaps();
}

} // namespace

ParityResult checkParity(const QuantSession& reference, const QdqLowered& exported, const Dataset& data,
    const ParityOptions& options, Progress& progress, const CancelToken& cancel)
{
    ParityResult r;
    r.thresholdDb = options.thresholdDb;
    r.maxSteps = options.maxSteps;
    r.isa = detectCpuIsa();
    const Graph& g = reference.graph();
    struct Track {
        const QParams* outQ = nullptr; // quantization at (or right after a MaxPool on) the output
        const QParams* inQ = nullptr;
        std::string residual;          // the residual Add's other operand, fused into the layer
        const QParams* residualQ = nullptr;
        SignalNoise out, qdq, in, alone;
    };
    std::vector<Track> tracks;
    std::set<std::string> keep;
    auto quantOf = [&](const std::string& v) -> const QParams* {
        if (auto it = exported.activations.find(v); it != exported.activations.end())
            return &it->second;
        const auto& users = exported.graph.consumersOf(v);
        if (users.size() == 1) {
            const Node& c = exported.graph.nodes[std::size_t(users[0])];
            if (c.opType == "MaxPool" && c.outputs.size() == 1)
                if (auto it = exported.activations.find(c.outputs[0]); it != exported.activations.end())
                    return &it->second; // max commutes with the quantization
        }
        return nullptr;
    };
    if (exported.activations.empty() && exported.weights.empty())
        fail("the exported model has no QuantizeLinear or DequantizeLinear: not a QDQ export (run `export --format "
             "qdq`)");
    for (const auto& l : reference.layers()) {
        auto it = std::find_if(
            exported.layers.begin(), exported.layers.end(), [&](const QdqLayer& q) { return q.name == l.name; });
        if (it == exported.layers.end())
            fail("layer ", quoted(l.name), " of the reference is not a layer of the exported model");
        LayerParity p;
        p.layer = l.name;
        p.op = l.op;
        Track t;
        p.output = tailOf(g, g.nodes[std::size_t(g.findNode(l.name))], t.residual);
        compareParams(reference, l, exported, p);
        r.layers.push_back(p);
        t.outQ = quantOf(p.output);
        if (auto a = exported.activations.find(l.input); a != exported.activations.end())
            t.inQ = &a->second;
        if (auto a = exported.activations.find(t.residual); a != exported.activations.end())
            t.residualQ = &a->second;
        tracks.push_back(t);
        keep.insert(p.output);
        keep.insert(l.input);
        if (!t.residual.empty())
            keep.insert(t.residual);
    }
    const int64_t total = options.limit >= 0 ? std::min(options.limit, data.count()) : data.count();
    if (total <= 0)
        fail("parity: the data has no samples");
    const int64_t batch = std::max<int64_t>(1, std::min(batchFor(reference.graph(), options.batch), total));
    std::unique_ptr<Plan> sim, qdq, int8;
    int64_t planBatch = -1;
    SignalNoise output;
    int64_t agree = 0;
    for (int64_t start = 0; start < total; start += batch) {
        cancel.check();
        const int64_t n = std::min(batch, total - start);
        if (n != planBatch) {
            const std::map<std::string, Shape> shape = data.inputShapes(n);
            std::map<std::string, std::string> notInt8;
            CompileOptions cs = reference.compileOptions(true, shape), cq = exported.simulated(shape),
                           ci = exported.int8(shape, &notInt8);
            for (CompileOptions* co : {&cs, &cq, &ci}) {
                co->keepValues = keep;
                co->threads = options.threads;
            }
            sim = compilePlan(g, cs);
            qdq = compilePlan(exported.graph, cq);
            int8 = compilePlan(exported.graph, ci);
            planBatch = n;
            if (r.int8Kernels.empty()) {
                for (const auto& line : int8->kernelSummary())
                    for (const auto& [layer, L] : ci.int8Layers)
                        if (line.find(layer) != std::string::npos) {
                            r.int8Kernels.push_back(line);
                            break;
                        }
                for (auto& p : r.layers) {
                    p.int8 = ci.int8Layers.count(p.layer) != 0;
                    if (auto it = notInt8.find(p.layer); it != notInt8.end())
                        p.notInt8 = it->second;
                }
            }
        }
        const std::vector<Tensor> x = data.batch(start, n);
        const Tensor ys = sim->run(x).front();
        qdq->run(x);
        const Tensor yi = int8->run(x).front();
        const auto ref = ys.toFloat(), got = yi.toFloat();
        output.add(ref, got);
        const int64_t classes = int64_t(ref.size()) / n;
        for (int64_t s = 0; s < n; ++s) {
            auto rb = ref.begin() + s * classes, gb = got.begin() + s * classes;
            agree += (std::max_element(rb, rb + classes) - rb) == (std::max_element(gb, gb + classes) - gb);
        }
        for (std::size_t i = 0; i < r.layers.size(); ++i) {
            Track& t = tracks[i];
            const std::string& out = r.layers[i].output;
            const auto so = quantized(sim->valueOf(out), t.outQ);
            t.out.add(so, quantized(int8->valueOf(out), t.outQ));
            t.qdq.add(so, quantized(qdq->valueOf(out), t.outQ));
            const std::string& in = reference.layers()[i].input;
            t.in.add(quantized(sim->valueOf(in), t.inQ), quantized(int8->valueOf(in), t.inQ));
        }
        // Each INT8 layer alone, on the first batch: fed the simulation's own input (and
        // residual operand), as the 8-bit copy its kernel reads where the plan has one, so
        // what it adds is told apart from what it inherits.
        if (start == 0)
            isolateLayers(r.layers, tracks, reference, *sim, *int8);
        progress.report(double(start + n) / double(total), "parity: INT8 vs simulated");
    }
    r.samples = total;
    r.outputSqnrDb = output.sqnrDb();
    r.top1Agreement = double(agree) / double(total);
    for (std::size_t i = 0; i < r.layers.size(); ++i) {
        LayerParity& p = r.layers[i];
        const Track& t = tracks[i];
        p.sqnrDb = t.out.sqnrDb();
        p.maxAbsDiff = t.out.maxAbs;
        p.maxDiffSteps = t.outQ ? t.out.maxAbs / t.outQ->scale : -1;
        p.qdqSqnrDb = t.qdq.sqnrDb();
        p.inputSqnrDb = t.in.sqnrDb();
        p.inputMaxDiffSteps = t.inQ ? t.in.maxAbs / t.inQ->scale : -1;
        const double carried = std::max(1.0, p.inputMaxDiffSteps);
        p.drifting = p.sqnrDb < options.thresholdDb ||
            (p.maxDiffSteps > options.maxSteps && p.maxDiffSteps > ParityOptions::kStepGrowth * carried);
        if (p.int8) {
            p.aloneSqnrDb = t.alone.sqnrDb();
            p.aloneMaxDiffSteps = t.outQ ? t.alone.maxAbs / t.outQ->scale : -1;
            p.introduced = p.aloneSqnrDb < options.thresholdDb || p.aloneMaxDiffSteps > options.maxSteps;
        } else {
            p.introduced = p.drifting && !(p.inputSqnrDb < options.thresholdDb);
        }
        if (p.introduced)
            r.flagged.push_back(p.layer);
    }
    return r;
}

} // namespace qs
