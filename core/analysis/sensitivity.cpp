#include "analysis/sensitivity.h"

#include "data/input_binding.h"
#include "measure/activations.h"
#include "measure/fidelity.h"
#include "quant/session.h"
#include "runtime/plan_shared.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

namespace qs {

const char* sensitivityModeName(SensitivityMode m)
{
    switch (m) {
    case SensitivityMode::Weights:
        return "weights";
    case SensitivityMode::Activations:
        return "activations";
    case SensitivityMode::Both:
        return "both";
    }
    return "weights";
}

const char* sensitivityMethodName(SensitivityMethod m)
{
    switch (m) {
    case SensitivityMethod::OneShot:
        return "oneshot";
    case SensitivityMethod::Local:
        return "local";
    case SensitivityMethod::Hessian:
        return "hessian";
    }
    return "oneshot";
}

SensitivityMode parseSensitivityMode(const std::string& s)
{
    if (s == "weights")
        return SensitivityMode::Weights;
    if (s == "activations")
        return SensitivityMode::Activations;
    if (s == "both")
        return SensitivityMode::Both;
    fail("--mode ", quoted(s), ": expected weights, activations or both");
}

SensitivityMethod parseSensitivityMethod(const std::string& s)
{
    if (s == "oneshot")
        return SensitivityMethod::OneShot;
    if (s == "local")
        return SensitivityMethod::Local;
    if (s == "hessian")
        return SensitivityMethod::Hessian;
    fail("--method ", quoted(s), ": expected oneshot, local or hessian");
}

double spearmanCorrelation(const std::vector<double>& a, const std::vector<double>& b)
{
    const std::size_t n = a.size();
    if (n != b.size() || n < 2)
        return 0;
    auto ranks = [n](const std::vector<double>& v) {
        std::vector<std::size_t> idx(n);
        std::iota(idx.begin(), idx.end(), 0);
        std::sort(idx.begin(), idx.end(), [&](std::size_t i, std::size_t j) { return v[i] < v[j]; });
        std::vector<double> r(n);
        for (std::size_t k = 0; k < n;) { // ties share their mean rank
            std::size_t m = k;
            while (m + 1 < n && v[idx[m + 1]] == v[idx[k]])
                ++m;
            for (std::size_t t = k; t <= m; ++t)
                r[idx[t]] = 0.5 * double(k + m);
            k = m + 1;
        }
        return r;
    };
    std::vector<double> ra = ranks(a), rb = ranks(b);
    double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / double(n);
    double mb = std::accumulate(rb.begin(), rb.end(), 0.0) / double(n);
    double sab = 0, saa = 0, sbb = 0;
    for (std::size_t i = 0; i < n; ++i) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0;
}

namespace {

// Where a layer's effect re-enters the FP32 plan. The plan keeps only layer inputs
// (and graph outputs), so it stays fused (Conv+ReLU, Conv+Add post-ops); a layer's
// segment is the layer plus the single-consumer chain after it up to the next kept
// value, run on its own from cached inputs, and its end is handed to runFrom().
struct Segment {
    std::vector<int> nodes;          // graph order, the layer first
    std::vector<std::string> inputs; // the layer's input, then other values the chain reads
    std::string end;                 // value given to the plan's runFrom()
    std::set<int> prelude;           // nodes computing from constants only what the chain reads
};

// A constant, also when exported behind Identity nodes (shared biases in torch exports).
const Tensor* constantOf(const Graph& g, std::string value)
{
    for (int hops = 0; hops < 16 && !value.empty(); ++hops) {
        if (const Tensor* t = g.constant(value))
            return t;
        const int p = g.producerOf(value);
        if (p < 0 || g.nodes[std::size_t(p)].opType != "Identity")
            return nullptr;
        value = g.nodes[std::size_t(p)].inputs.front();
    }
    return nullptr;
}

// Whether `value` is computed from constants only (tf2onnx's Pad amounts: Split and Concat of
// an initializer); its producing nodes are added to `nodes`. Operators that need a constant
// there (Pad, Reshape, Resize) then see one when the segment is compiled on its own.
bool constantExpression(const Graph& g, const std::string& value, std::set<int>& nodes, int depth = 0)
{
    if (constantOf(g, value))
        return true;
    const int p = g.producerOf(value);
    if (p < 0 || depth > 32)
        return false;
    const Node& n = g.nodes[std::size_t(p)];
    for (const auto& [name, a] : n.attrs)
        if (a.kind == Attribute::Kind::Graph || a.kind == Attribute::Kind::Graphs)
            return false;
    std::set<int> mine {p};
    for (const auto& in : n.inputs)
        if (!in.empty() && !constantExpression(g, in, mine, depth + 1))
            return false;
    nodes.insert(mine.begin(), mine.end());
    return true;
}

Segment segmentOf(const Graph& g, int layerNode, const std::string& input, const std::set<std::string>& kept)
{
    Segment seg;
    seg.nodes = {layerNode};
    seg.inputs = {input};
    std::set<std::string> produced;
    auto readsFrom = [&](const Node& n) { // values the segment needs from the FP32 plan
        for (const auto& in : n.inputs)
            if (!in.empty() && !produced.count(in) && !constantOf(g, in) &&
                std::find(seg.inputs.begin(), seg.inputs.end(), in) == seg.inputs.end() &&
                !constantExpression(g, in, seg.prelude))
                seg.inputs.push_back(in);
    };
    readsFrom(g.nodes[std::size_t(layerNode)]);
    seg.end = g.nodes[std::size_t(layerNode)].outputs.front();
    produced.insert(seg.end);
    while (!kept.count(seg.end)) {
        const auto& consumers = g.consumersOf(seg.end);
        if (consumers.size() != 1)
            break;
        const Node& n = g.nodes[std::size_t(consumers.front())];
        if (n.outputs.size() != 1 || g.layerKind(n) != LayerKind::None)
            break;
        readsFrom(n);
        seg.nodes.push_back(consumers.front());
        seg.end = n.outputs.front();
        produced.insert(seg.end);
    }
    return seg;
}

// One copy of a segment in a segment graph: its own weight for the layer (else the
// model's) and whether it reads its own (quantized) version of the layer's input.
struct SegmentCopy {
    const Tensor* weight = nullptr;
    bool ownInput = false;
};

std::string copyName(const std::string& value, std::size_t copy)
{
    return value + "#" + std::to_string(copy);
}

// A graph holding copies of a segment and its constants. Copy k names what it computes
// (its end too, a graph output) and its own weight or input with the suffix "#k"; the
// copies share the other inputs and constants, so one run computes a layer's
// configurations from one write of its inputs.
Graph segmentGraph(const Graph& g, const Segment& seg, const std::string& weight, const std::vector<SegmentCopy>& copies)
{
    Graph s;
    s.name = g.nodes[std::size_t(seg.nodes.front())].name;
    s.opsets = g.opsets;
    s.irVersion = g.irVersion;
    auto input = [&](const std::string& name, DType dtype) {
        ValueInfo vi;
        vi.name = name;
        vi.dtype = dtype;
        s.inputs.push_back(vi);
    };
    for (const auto& in : seg.inputs)
        input(in, DType::Float);
    for (int ni : seg.prelude) { // shared by the copies, folded when compiled
        const Node& n = g.nodes[std::size_t(ni)];
        for (const auto& in : n.inputs)
            if (const Tensor* t = in.empty() ? nullptr : constantOf(g, in))
                s.initializers[in] = *t;
        s.nodes.push_back(n);
    }
    for (std::size_t k = 0; k < copies.size(); ++k) {
        std::set<std::string> produced;
        for (int ni : seg.nodes) {
            Node n = g.nodes[std::size_t(ni)];
            n.outputs.resize(1);
            n.name = copyName(n.name, k);
            for (auto& in : n.inputs) {
                if (in.empty())
                    continue;
                if (produced.count(in)) {
                    in = copyName(in, k);
                } else if (copies[k].ownInput && in == seg.inputs.front()) {
                    in = copyName(in, k);
                } else if (copies[k].weight && in == weight && ni == seg.nodes.front()) {
                    in = copyName(in, k);
                    s.initializers[in] = *copies[k].weight;
                } else if (const Tensor* t = constantOf(g, in)) {
                    s.initializers[in] = *t;
                }
            }
            produced.insert(n.outputs.front());
            n.outputs.front() = copyName(n.outputs.front(), k);
            s.nodes.push_back(std::move(n));
        }
        if (copies[k].ownInput)
            input(copyName(seg.inputs.front(), k), DType::Float);
        ValueInfo out;
        out.name = copyName(seg.end, k);
        out.dtype = DType::Float;
        s.outputs.push_back(out);
    }
    s.sourcePath = g.sourcePath;
    s.index();
    return s;
}

// A sweep allocates and frees activation-sized buffers (segment inputs and outputs,
// runFrom's saved values) thousands of times. With glibc's defaults each comes from a
// fresh mmap and is paid again in page faults (a fifth of the time on ResNet-18);
// serving them from the heap and trimming less keeps the pages. Raised once per
// process, never lowered.
void keepLargeBuffersInHeap()
{
#ifdef __GLIBC__
    static std::once_flag once;
    std::call_once(once, [] {
        mallopt(M_MMAP_THRESHOLD, 32 << 20); // glibc's ceiling for this setting on 64-bit
        mallopt(M_TRIM_THRESHOLD, 1 << 30);  // the peak a sweep needed stays mapped
    });
#endif
}

struct Accum {
    FidelityMeter meter;
    double localSignal = 0, localNoise = 0;
    int64_t samples = 0;
    bool any = false;
    std::vector<BatchSums> batches; // when kept
};

// Adds the batch just accumulated into `a` (what changed since `before`).
void recordBatch(Accum& a, const Accum& before, int64_t n)
{
    BatchSums b;
    b.samples = n;
    b.klSum = a.meter.klSum() - before.meter.klSum();
    b.signal = a.meter.signal() - before.meter.signal();
    b.noise = a.meter.noise() - before.meter.noise();
    b.localSignal = a.localSignal - before.localSignal;
    b.localNoise = a.localNoise - before.localNoise;
    a.batches.push_back(b);
}

BitMeasure measureOf(const Accum& a, bool downstream)
{
    BitMeasure m;
    if (!downstream)
        m.localSqnrDb = sqnrDb(a.localSignal, a.localNoise);
    m.sqnrDb = downstream ? a.meter.sqnrDb() : *m.localSqnrDb;
    m.kl = a.meter.kl();
    m.top1Agreement = downstream ? a.meter.top1Agreement() : 1.0;
    m.top1 = a.meter.testTop1();
    m.samples = a.samples;
    m.batches = a.batches;
    return m;
}

void fakeQuantInPlace(Tensor& t, const QParams& q)
{
    for (float& x : t.data<float>())
        x = fakeQuant(x, q);
}

// One-at-a-time sweep of the attention operands: each batch's FP32 values are kept,
// the operand's value is replaced by its quantized version and the graph downstream
// re-run (runFrom); the local method compares the operand itself. --naive compiles a
// plan per configuration with the operand's transform instead.
std::vector<LayerSensitivity> measureOperands(const QuantSession& session, const Dataset& data,
    const SensitivityOptions& options, int64_t total, int64_t batch, Progress& progress, const CancelToken& cancel,
    bool& cancelled, const SensitivityCallback& onResult)
{
    const Graph& g = session.graph();
    const bool downstream = options.method != SensitivityMethod::Local;
    struct Entry {
        AttentionPoint point;
        OperandSpec spec;
    };
    std::vector<Entry> entries;
    std::map<std::string, OperandObserver> observers;
    for (const auto& p : session.attentionPatterns().points) {
        auto it = options.base.attention.points.find(p.name);
        Entry e {p, it != options.base.attention.points.end() ? it->second : options.base.attention.role(p.role)};
        observers.emplace(p.name, OperandObserver(p, e.spec.granularity));
        entries.push_back(std::move(e));
    }
    if (entries.empty())
        return {};
    {
        Progress observe = progress.sub(0, 0.1);
        runFp32Batches(
            g, data, total, batch, options.threads,
            [&](Plan& plan, int64_t) {
                for (auto& [name, obs] : observers) {
                    OperandObserver* o = &obs;
                    plan.addTap(o->point().value, [o](const std::string&, const Tensor& t) { o->observe(t); });
                }
            },
            cancel,
            [&](int64_t done) { observe.report(double(done) / double(total), "observing attention operands"); });
    }
    std::vector<std::vector<OperandQuant>> quant(entries.size()); // per entry, per bit width in options.bits order
    for (std::size_t e = 0; e < entries.size(); ++e)
        for (int bits : options.bits) {
            OperandSpec spec = entries[e].spec;
            spec.bits = bits;
            quant[e].push_back(chooseOperandQuant(entries[e].point, spec, &observers.at(entries[e].point.name)));
        }
    const bool perToken = data.targets.has_value();
    std::vector<std::vector<Accum>> acc(entries.size(), std::vector<Accum>(options.bits.size()));
    for (auto& row : acc)
        for (Accum& a : row)
            a.meter = FidelityMeter(perToken);
    auto labelsOf = [&data](int64_t start, int64_t n) {
        return data.labels ? std::vector<int64_t>(data.labels->begin() + start, data.labels->begin() + start + n)
                           : std::vector<int64_t>();
    };
    Progress sweep = progress.sub(0.1, 1.0);
    const double units = double((total + batch - 1) / batch) * double(entries.size() * options.bits.size());
    double done = 0;
    std::unique_ptr<Plan> fp;
    std::map<std::string, Shape> planShape;
    std::map<std::pair<std::size_t, std::size_t>, std::unique_ptr<Plan>> naivePlans;
    for (int64_t start = 0; start < total && !cancelled; start += batch) {
        const int64_t n = std::min(batch, total - start);
        const std::map<std::string, Shape> shape = data.inputShapes(n);
        if (shape != planShape) {
            CompileOptions co = session.compileOptions(false, shape);
            for (const auto& e : entries)
                co.keepValues.insert(e.point.value);
            fp = compileSharedPlan(std::shared_ptr<const Graph>(std::shared_ptr<const Graph> {}, &g), co);
            naivePlans.clear();
            planShape = shape;
        }
        const std::vector<Tensor> input = data.batch(start, n);
        const Tensor ref = fp->run(input).front();
        const std::vector<int64_t> labels = labelsOf(start, n);
        for (std::size_t e = 0; e < entries.size() && !cancelled; ++e) {
            const Tensor value = fp->valueOf(entries[e].point.value);
            for (std::size_t b = 0; b < options.bits.size(); ++b) {
                if (cancel.cancelled()) {
                    cancelled = true;
                    break;
                }
                Accum& a = acc[e][b];
                const Accum before =
                    options.keepBatches ? Accum {a.meter, a.localSignal, a.localNoise, 0, false, {}} : Accum {};
                Tensor q = value;
                fakeQuantOperand(q, quant[e][b]);
                if (!downstream) {
                    auto x = value.data<float>();
                    auto y = q.data<float>();
                    for (std::size_t i = 0; i < x.size(); ++i) {
                        a.localSignal += double(x[i]) * x[i];
                        a.localNoise += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
                    }
                } else if (options.naive) {
                    auto& plan = naivePlans[{e, b}];
                    if (!plan) {
                        CompileOptions co = session.compileOptions(false, shape);
                        const OperandQuant oq = quant[e][b];
                        co.valueTransforms[oq.point.value] = [oq](Tensor& t) { fakeQuantOperand(t, oq); };
                        plan = compilePlan(g, co);
                    }
                    a.meter.add(ref, plan->run(input).front(), data.labels ? &labels : nullptr);
                } else {
                    a.meter.add(ref, fp->runFrom({{entries[e].point.value, std::move(q)}}).front(),
                        data.labels ? &labels : nullptr);
                }
                a.samples += n;
                a.any = true;
                if (options.keepBatches)
                    recordBatch(a, before, n);
                done += 1;
                sweep.report(
                    done / units, str("sensitivity: ", entries[e].point.name, " at ", options.bits[b], " bits"));
            }
            if (downstream && !options.naive)
                fp->runFrom({{entries[e].point.value, value}}); // the plan's values back to FP32
        }
    }
    std::vector<LayerSensitivity> out;
    for (std::size_t e = 0; e < entries.size(); ++e) {
        LayerSensitivity ls;
        ls.layer = entries[e].point.name;
        ls.op = str("MatMul:", operandRoleName(entries[e].point.role));
        for (std::size_t b = 0; b < options.bits.size(); ++b)
            if (acc[e][b].any) {
                ls.byBits[options.bits[b]] = measureOf(acc[e][b], downstream);
                if (onResult) {
                    LayerSensitivity partial;
                    partial.layer = ls.layer;
                    partial.op = ls.op;
                    partial.byBits[options.bits[b]] = ls.byBits[options.bits[b]];
                    onResult(partial, options.bits[b]);
                }
            }
        out.push_back(std::move(ls));
    }
    return out;
}

} // namespace

SensitivityResult measureSensitivity(const Graph& graph, const Dataset& data, const SensitivityOptions& options,
    Progress& progress, const CancelToken& cancel, const SensitivityCallback& onResult)
{
    const auto t0 = std::chrono::steady_clock::now();
    keepLargeBuffersInHeap();
    if (options.bits.empty())
        fail("sensitivity: no bit widths given");
    if (options.naive && options.keepBatches)
        fail("sensitivity: per-batch sums are kept by the cached sweep only, not with --naive");
    if (options.naive && options.method == SensitivityMethod::Local)
        fail("sensitivity: --naive re-runs the whole model per configuration; the local method runs none");
    for (int b : options.bits)
        if (b < 2 || b > 8)
            fail("sensitivity: bit width ", b, " is not 2..8");
    if (options.attention && options.method == SensitivityMethod::Hessian)
        fail("sensitivity: the Hessian method perturbs weights; attention operands take the oneshot or local method");
    if (options.shardCount < 1 || options.shardIndex < 0 || options.shardIndex >= options.shardCount)
        fail("sensitivity: shard ", options.shardIndex, "/", options.shardCount, " is not I/N with 0 <= I < N");
    if (options.shardCount > 1 && options.method == SensitivityMethod::Hessian)
        fail("sensitivity: --shard splits one-shot and local sweeps; the Hessian method ranks every layer at once");

    QuantizeOptions qo;
    qo.config = options.base;
    qo.batch = options.batch;
    qo.calibLimit = options.limit;
    qo.threads = options.threads;
    QuantSession session(graph, qo);
    const Graph& g = session.graph();
    const auto& layers = session.layers();
    if (layers.empty())
        fail(graph.sourcePath, ": no quantizable layers (Conv, ConvTranspose, Gemm, MatMul with a constant)");

    const bool weights = options.mode != SensitivityMode::Activations;
    const bool acts = options.mode != SensitivityMode::Weights;
    const int64_t total = std::min(options.limit >= 0 ? options.limit : data.count(), data.count());
    if (total <= 0)
        fail("dataset ", quoted(data.path), " has no samples");
    const int64_t batch = std::max<int64_t>(1, std::min(batchFor(graph, options.batch), total));
    const std::vector<int>& bitList = options.bits;
    auto batchLabels = [&data](int64_t start, int64_t n) {
        return data.labels ? std::vector<int64_t>(data.labels->begin() + start, data.labels->begin() + start + n)
                           : std::vector<int64_t>();
    };
    const int refBits = std::count(bitList.begin(), bitList.end(), 4) ? 4 : bitList.front();

    // Activation ranges per layer input, chosen per bit width from one observation pass.
    std::map<std::string, ActivationObserver> observers;
    if (acts) {
        std::vector<std::string> inputs;
        for (const auto& l : layers)
            if (std::find(inputs.begin(), inputs.end(), l.input) == inputs.end())
                inputs.push_back(l.input);
        ProfileOptions po;
        po.batch = batch;
        po.limit = total;
        po.threads = options.threads;
        Progress p = progress.sub(0, 0.1);
        observers = observeActivations(g, data, inputs, po, p, cancel);
    }
    auto actParams = [&](const SessionLayer& l, int bits) {
        const QuantSpec& spec = l.spec.activation;
        const CalibratorInfo& c = calibrator(spec.calibrator);
        ClipRange r = c.choose(observers.at(l.input).calibration(), bits, spec.symmetric,
            spec.calibratorParam != 0 ? spec.calibratorParam : c.defaultParam);
        return qparamsFor(r.lo, r.hi, bits, spec.symmetric);
    };
    auto quantizedWeight = [&](const SessionLayer& l, int bits) {
        const Tensor* w = g.constant(l.weight);
        QuantSpec spec = l.spec.weight;
        spec.bits = bits;
        Tensor t = Tensor::fromVector(w->shape, fakeQuantWeight(w->toFloat(), w->shape, l.outAxis, l.inAxis, spec));
        t.name = l.weight;
        return t;
    };

    // Which (layer, bits) pairs to measure, and with which perturbation. A variant's
    // weight (quantized, or perturbed for the Hessian method) is made when its layer's
    // plans are compiled and dropped once they hold it (materializeWeights,
    // releaseWeights): a copy of every weight per bit width (or per Hutchinson direction)
    // would not fit beside a 1B-parameter model.
    struct Variant {
        std::size_t layer;
        int bits;
        bool perturbs = false;        // has a weight of its own
        std::optional<Tensor> weight; // replacement weight (weights mode) or perturbed weight (Hessian), when made
        std::optional<QParams> act;   // activation fake quant
        int sign = 0, sample = -1;    // Hessian: direction sample and sign
    };
    std::vector<Variant> variants;
    std::vector<double> hessianEps(layers.size(), 0);
    for (std::size_t li = 0; li < layers.size(); ++li) {
        const SessionLayer& l = layers[li];
        if (options.method == SensitivityMethod::Hessian) {
            const Tensor* w = g.constant(l.weight);
            double rms = 0;
            for (float v : w->toFloat())
                rms += double(v) * v;
            rms = std::sqrt(rms / double(std::max<int64_t>(w->numel(), 1)));
            hessianEps[li] = std::max(1e-6, 1e-2 * rms);
            for (int s = 0; s < options.hutchinsonSamples; ++s)
                for (int sign : {+1, -1})
                    variants.push_back({li, 0, true, std::nullopt, std::nullopt, sign, s});
            variants.push_back({li, refBits, true, std::nullopt, std::nullopt, 0, -1});
            continue;
        }
        for (std::size_t bi = 0; bi < bitList.size(); ++bi) {
            if (int64_t(li * bitList.size() + bi) % options.shardCount != options.shardIndex)
                continue; // another shard's pair
            const int bits = bitList[bi];
            Variant v {li, bits, weights, std::nullopt, std::nullopt, 0, -1};
            if (acts)
                v.act = actParams(l, bits);
            variants.push_back(std::move(v));
        }
    }
    // Variants come grouped by layer: [first, end) of each layer's.
    auto layerVariants = [&variants](std::size_t vi) {
        std::size_t first = vi, end = vi;
        while (first > 0 && variants[first - 1].layer == variants[vi].layer)
            --first;
        while (end < variants.size() && variants[end].layer == variants[vi].layer)
            ++end;
        return std::pair<std::size_t, std::size_t>(first, end);
    };
    // Makes the weights of the variants of vi's layer (the same values every time: the
    // Hessian directions come from a generator seeded by the layer).
    auto materializeWeights = [&](std::size_t vi) {
        const auto [first, end] = layerVariants(vi);
        const std::size_t li = variants[vi].layer;
        const SessionLayer& l = layers[li];
        if (options.method == SensitivityMethod::Hessian) {
            const Tensor* w = g.constant(l.weight);
            std::vector<float> base = w->toFloat();
            std::mt19937 rng(uint32_t(li * 7919 + 17));
            std::size_t at = first;
            for (int s = 0; s < options.hutchinsonSamples; ++s) {
                std::vector<float> dir(base.size());
                for (float& d : dir)
                    d = (rng() & 1) ? 1.f : -1.f;
                for (int sign : {+1, -1}) {
                    std::vector<float> pert(base.size());
                    for (std::size_t i = 0; i < base.size(); ++i)
                        pert[i] = base[i] + float(sign * hessianEps[li]) * dir[i];
                    Tensor t = Tensor::fromVector(w->shape, pert);
                    t.name = l.weight;
                    variants[at++].weight = std::move(t);
                }
            }
            variants[at].weight = quantizedWeight(l, refBits);
            return;
        }
        for (std::size_t vj = first; vj < end; ++vj)
            if (variants[vj].perturbs && !variants[vj].weight)
                variants[vj].weight = quantizedWeight(l, variants[vj].bits);
    };
    auto releaseWeights = [&](std::size_t vi) {
        const auto [first, end] = layerVariants(vi);
        for (std::size_t vj = first; vj < end; ++vj)
            variants[vj].weight.reset();
    };

    std::map<std::pair<std::size_t, int>, Accum> acc; // (layer, bits) -> meters; Hessian uses bits = -(sample*2+sign)
    std::vector<std::vector<double>> klBySample(layers.size());
    const bool downstream = options.method != SensitivityMethod::Local;
    SensitivityResult result;
    result.method = options.method;
    result.mode = options.mode;
    const bool perToken = data.targets.has_value(); // text: the meters compare per token
    FidelityMeter fp32Meter(perToken);
    auto accumOf = [&acc, perToken](std::pair<std::size_t, int> key) -> Accum& {
        auto it = acc.find(key);
        if (it == acc.end()) {
            Accum fresh;
            fresh.meter = FidelityMeter(perToken);
            it = acc.emplace(key, std::move(fresh)).first;
        }
        return it->second;
    };

    Progress sweep = progress.sub(acts ? 0.1 : 0, 1.0);
    const int64_t batches = (total + batch - 1) / batch;
    const double units = double(batches) * double(variants.size());
    double doneUnits = 0;
    bool cancelled = false;

    if (options.naive) {
        // Baseline for the benchmark: a full plan per configuration, run on every batch.
        std::vector<Tensor> refs;
        // Plans are keyed by the data's shapes, as the cached sweep's: a dataset input
        // may be unnamed (fed by position), so no model input name is looked up in them.
        std::unique_ptr<Plan> fp;
        std::map<std::string, Shape> fpShape;
        for (int64_t start = 0; start < total; start += batch) {
            const int64_t n = std::min(batch, total - start);
            const std::map<std::string, Shape> shape = data.inputShapes(n);
            if (!fp || shape != fpShape) {
                fp = session.compile(false, shape);
                fpShape = shape;
            }
            refs.push_back(fp->run(data.batch(start, n)).front());
            std::vector<int64_t> labels = batchLabels(start, n);
            fp32Meter.add(refs.back(), refs.back(), data.labels ? &labels : nullptr);
        }
        for (Variant& v : variants) {
            const SessionLayer& l = layers[v.layer];
            std::unique_ptr<Plan> q;
            std::map<std::string, Shape> qShape;
            int64_t bi = 0;
            for (int64_t start = 0; start < total; start += batch, ++bi) {
                if (cancel.cancelled()) {
                    cancelled = true;
                    break;
                }
                const int64_t n = std::min(batch, total - start);
                const std::map<std::string, Shape> shape = data.inputShapes(n);
                if (!q || shape != qShape) {
                    qShape = shape;
                    CompileOptions co = session.compileOptions(false, shape);
                    if (v.perturbs) {
                        const std::size_t vi = std::size_t(&v - variants.data());
                        materializeWeights(vi);
                        co.initializerOverrides[l.weight] = *v.weight;
                        releaseWeights(vi);
                    }
                    if (v.act) {
                        QParams qp = *v.act;
                        co.valueTransforms[l.input] = [qp](Tensor& t) { fakeQuantInPlace(t, qp); };
                    }
                    q = compilePlan(g, co);
                }
                Tensor out = q->run(data.batch(start, n)).front();
                std::vector<int64_t> labels = batchLabels(start, n);
                Accum& a = accumOf({v.layer, v.bits});
                a.meter.add(refs[std::size_t(bi)], out, data.labels ? &labels : nullptr);
                a.samples += n;
                a.any = true;
                doneUnits += 1;
                sweep.report(doneUnits / units, str("sensitivity (naive): ", l.name, " at ", v.bits, " bits"));
            }
            if (cancelled)
                break;
        }
    } else {
        // Cache each batch's FP32 layer inputs from one full run, then re-run one
        // layer's segment on its cached inputs and only the graph downstream of it.
        std::set<std::string> kept;
        for (const auto& l : layers)
            kept.insert(l.input);
        for (const auto& o : g.outputs)
            kept.insert(o.name);
        std::vector<Segment> segments;
        std::set<std::string> keep = kept;
        for (const auto& l : layers) {
            const int node = g.findNode(l.name);
            // The local method compares the layer's own output, so its segment is the layer alone.
            std::set<std::string> stop = kept;
            if (!downstream)
                stop.insert(g.nodes[std::size_t(node)].outputs.front());
            segments.push_back(segmentOf(g, node, l.input, stop));
            keep.insert(segments.back().inputs.begin(), segments.back().inputs.end());
            keep.insert(segments.back().end);
        }
        std::unique_ptr<Plan> fp;
        // Per layer, a plan with its segment once per configuration that changes it
        // (copyOf: a variant's copy there), and the FP32 segment alone (local method).
        std::map<std::size_t, std::unique_ptr<Plan>> minis;
        std::vector<std::unique_ptr<Plan>> fpMinis(layers.size());
        std::vector<std::size_t> copyOf(variants.size(), SIZE_MAX); // variant -> its copy in its layer's segment plan
        std::vector<std::vector<SegmentCopy>> copies(layers.size());
        // Whether a layer's input is read outside its segment (a skip connection) or is a
        // graph output: only then does its quantized version go to the FP32 plan too
        // when the segment plan already computed the layer from it.
        std::vector<char> inputElsewhere(layers.size(), 0);
        for (std::size_t li = 0; li < layers.size(); ++li) {
            const Segment& seg = segments[li];
            for (int c : g.consumersOf(layers[li].input))
                inputElsewhere[li] |= std::find(seg.nodes.begin(), seg.nodes.end(), c) == seg.nodes.end();
            for (const auto& o : g.outputs)
                inputElsewhere[li] |= o.name == layers[li].input;
        }
        for (std::size_t vi = 0; vi < variants.size(); ++vi) {
            const Variant& v = variants[vi];
            // Activation quantization alone leaves the layer as in the FP32 plan, which
            // then re-runs it from the quantized input: no segment of its own.
            if (!v.perturbs && downstream)
                continue;
            copyOf[vi] = copies[v.layer].size();
            copies[v.layer].push_back({nullptr, v.act.has_value()}); // weight: when compiled
        }
        Tensor refOut;            // FP32 output of the current layer (local method)
        std::vector<Tensor> ins;  // FP32 inputs of the current layer's segment, then its copies' own inputs
        std::vector<std::optional<Tensor>> quantizedIns(variants.size()); // the current layer's, by variant
        std::map<std::string, Shape> planShape;
        auto compileSegment = [&](std::size_t li, const std::vector<SegmentCopy>& with) {
            Graph one = segmentGraph(g, segments[li], layers[li].weight, with);
            CompileOptions co;
            co.threads = options.threads;
            const auto& shared = segments[li].inputs;
            for (auto& vi : one.inputs) { // a segment may read non-float values (e.g. a computed shape)
                // Inputs after the shared ones are copies' own versions of the layer's input.
                const std::string& base =
                    std::find(shared.begin(), shared.end(), vi.name) != shared.end() ? vi.name : shared.front();
                co.inputShapes[vi.name] = fp->shapeOf(base);
                vi.dtype = fp->dtypeOf(base);
            }
            return compilePlan(one, co);
        };
        // Segment plans kept between batches, within the budget (planCacheBytes).
        const int64_t cacheBudget = options.planCacheBytes >= 0
            ? options.planCacheBytes
            : int64_t(sysconf(_SC_PHYS_PAGES)) * int64_t(sysconf(_SC_PAGESIZE)) / 8;
        int64_t cachedBytes = 0;
        std::vector<char> cached(layers.size(), 0);
        auto finishLayer = [&](std::size_t li, bool lastBatch) {
            if (li == SIZE_MAX || cached[li])
                return;
            const int64_t bytes = g.constant(layers[li].weight)->numel() * int64_t(sizeof(float))
                * int64_t(copies[li].size() + (fpMinis[li] ? 1 : 0));
            if (!lastBatch && cachedBytes + bytes <= cacheBudget) {
                cached[li] = 1;
                cachedBytes += bytes;
                return;
            }
            minis.erase(li);
            fpMinis[li].reset();
        };
        for (int64_t start = 0; start < total && !cancelled; start += batch) {
            const int64_t n = std::min(batch, total - start);
            const bool lastBatch = start + n >= total;
            const std::map<std::string, Shape> shape = data.inputShapes(n);
            if (shape != planShape) {
                cachedBytes = 0;
                std::fill(cached.begin(), cached.end(), 0);
                CompileOptions co = session.compileOptions(false, shape);
                co.keepValues = keep;
                // Read the session's graph in place (the plan ends before the session).
                fp = compileSharedPlan(std::shared_ptr<const Graph>(std::shared_ptr<const Graph> {}, &g), co);
                minis.clear();
                for (auto& m : fpMinis)
                    m.reset();
                planShape = shape;
            }
            // The plan keeps this batch's FP32 values; every runFrom() below starts from them.
            Tensor ref = fp->run(data.batch(start, n)).front();
            std::vector<int64_t> labels = batchLabels(start, n);
            fp32Meter.add(ref, ref, data.labels ? &labels : nullptr);
            std::size_t refLayer = SIZE_MAX;

            for (std::size_t vi = 0; vi < variants.size(); ++vi) {
                if (cancel.cancelled()) {
                    cancelled = true;
                    break;
                }
                const Variant& v = variants[vi];
                const SessionLayer& l = layers[v.layer];
                const Segment& seg = segments[v.layer];
                if (refLayer != v.layer) { // variants come grouped by layer
                    finishLayer(refLayer, lastBatch);
                    ins.clear();
                    for (const auto& in : seg.inputs)
                        ins.push_back(fp->valueOf(in));
                    if (!downstream) {
                        if (!fpMinis[v.layer])
                            fpMinis[v.layer] = compileSegment(v.layer, {SegmentCopy {}});
                        refOut = fpMinis[v.layer]->run(ins).front();
                    }
                    // Each configuration's quantized input: a segment copy's own input (after the
                    // layer's FP32 inputs, in copy order), then given to the FP32 plan.
                    std::vector<std::size_t> ownInputs;
                    for (std::size_t vj = vi; vj < variants.size() && variants[vj].layer == v.layer; ++vj) {
                        quantizedIns[vj].reset();
                        if (!variants[vj].act)
                            continue;
                        Tensor q = ins.front();
                        fakeQuantInPlace(q, *variants[vj].act);
                        if (copyOf[vj] != SIZE_MAX) {
                            ins.push_back(std::move(q));
                            ownInputs.push_back(vj);
                        } else {
                            quantizedIns[vj] = std::move(q);
                        }
                    }
                    if (!copies[v.layer].empty()) {
                        auto& mini = minis[v.layer];
                        if (!mini) {
                            materializeWeights(vi);
                            const auto [first, end] = layerVariants(vi);
                            for (std::size_t vj = first; vj < end; ++vj)
                                if (copyOf[vj] != SIZE_MAX && variants[vj].weight)
                                    copies[v.layer][copyOf[vj]].weight = &*variants[vj].weight;
                            mini = compileSegment(v.layer, copies[v.layer]);
                            for (auto& c : copies[v.layer])
                                c.weight = nullptr;
                            releaseWeights(vi);
                        }
                        mini->compute(ins); // what each copy computed goes to the FP32 plan as stored
                    }
                    for (std::size_t k = 0; k < ownInputs.size(); ++k)
                        quantizedIns[ownInputs[k]] = std::move(ins[seg.inputs.size() + k]);
                    refLayer = v.layer;
                }
                const bool ownSegment = copyOf[vi] != SIZE_MAX;
                Tensor y;
                if (ownSegment && !downstream)
                    y = minis[v.layer]->valueOf(copyName(seg.end, copyOf[vi]));
                const int key = v.sample >= 0 ? -(v.sample * 2 + (v.sign > 0 ? 1 : 2)) : v.bits;
                Accum& a = accumOf({v.layer, key});
                const Accum before = options.keepBatches ? Accum{a.meter, a.localSignal, a.localNoise, 0, false, {}}
                                                         : Accum{};
                if (!downstream) {
                    auto yr = refOut.data<float>();
                    auto yq = y.data<float>();
                    for (std::size_t i = 0; i < yr.size(); ++i) {
                        a.localSignal += double(yr[i]) * yr[i];
                        double d = double(yr[i]) - yq[i];
                        a.localNoise += d * d;
                    }
                }
                if (downstream) {
                    // Activation quantization acts on the value, so every consumer of the
                    // layer's input sees it (a skip connection too), as in quantizeModel.
                    std::map<std::string, Tensor> given;
                    if (v.act && (!ownSegment || inputElsewhere[v.layer]))
                        given[l.input] = std::move(*quantizedIns[vi]);
                    Tensor out = ownSegment
                                     ? fp->runFrom(given, *minis[v.layer], {{seg.end, copyName(seg.end, copyOf[vi])}})
                                           .front()
                                     : fp->runFrom(given).front();
                    a.meter.add(ref, out, data.labels ? &labels : nullptr);
                }
                a.samples += n;
                a.any = true;
                if (options.keepBatches)
                    recordBatch(a, before, n);
                doneUnits += 1;
                sweep.report(doneUnits / units,
                    str("sensitivity: ", l.name, v.sample >= 0 ? " (Hessian)" : "",
                        v.sample >= 0 ? std::string() : str(" at ", v.bits, " bits")));
                if (onResult && v.sample < 0 && start + n >= total) {
                    // Last batch of this (layer, bits): report the final numbers.
                    LayerSensitivity partial;
                    partial.layer = l.name;
                    partial.op = l.op;
                    partial.byBits[v.bits] = measureOf(a, downstream);
                    onResult(partial, v.bits);
                }
            }
            finishLayer(refLayer, lastBatch);
        }
    }
    std::vector<LayerSensitivity> operandResults;
    if (options.attention && !cancelled) {
        Progress part = progress.sub(0.9, 1.0);
        operandResults = measureOperands(session, data, options, total, batch, part, cancel, cancelled, onResult);
    }
    if (cancelled && acc.empty())
        throw Cancelled();

    result.complete = !cancelled;
    result.samples = fp32Meter.samples();
    result.fp32Top1 = fp32Meter.refTop1();
    for (std::size_t li = 0; li < layers.size(); ++li) {
        const SessionLayer& l = layers[li];
        LayerSensitivity ls;
        ls.layer = l.name;
        ls.op = l.op;
        ls.params = g.constant(l.weight)->numel();
        for (const auto& [key, a] : acc) {
            if (key.first != li || !a.any || key.second < 0)
                continue;
            ls.byBits[key.second] = measureOf(a, downstream);
        }
        if (options.method == SensitivityMethod::Hessian) {
            // v^T H v ~ (KL(w + eps v) + KL(w - eps v)) / eps^2, since KL(w) = 0 and its
            // gradient vanishes at w; the mean over Rademacher v estimates tr(H).
            double sum = 0;
            int count = 0;
            for (int s = 0; s < options.hutchinsonSamples; ++s) {
                auto plus = acc.find({li, -(s * 2 + 1)}), minus = acc.find({li, -(s * 2 + 2)});
                if (plus == acc.end() || minus == acc.end() || !plus->second.any || !minus->second.any)
                    continue;
                sum += (plus->second.meter.kl() + minus->second.meter.kl()) / (hessianEps[li] * hessianEps[li]);
                ++count;
                if (options.keepBatches) {
                    ls.hessianPlus.push_back(plus->second.batches);
                    ls.hessianMinus.push_back(minus->second.batches);
                }
            }
            if (count > 0) {
                const double n = double(ls.params);
                ls.hessianTrace = sum / count / n;
                const Tensor* w = g.constant(l.weight);
                std::vector<float> a = w->toFloat();
                QuantSpec spec = l.spec.weight;
                spec.bits = refBits;
                std::vector<float> q = fakeQuantWeight(a, w->shape, l.outAxis, l.inAxis, spec);
                double err = 0;
                for (std::size_t i = 0; i < a.size(); ++i)
                    err += double(a[i] - q[i]) * (a[i] - q[i]);
                ls.hessianScore = *ls.hessianTrace * err; // HAWQ-V2: tr(H)/n * ||Q(W) - W||^2
                ls.hessianEps = hessianEps[li];
                ls.weightErrorSq = err;
            }
        }
        result.layers.push_back(std::move(ls));
    }
    for (auto& ls : operandResults)
        result.layers.push_back(std::move(ls));
    if (options.method == SensitivityMethod::Hessian) {
        std::vector<double> h, kl;
        for (const auto& ls : result.layers)
            if (ls.hessianScore && ls.byBits.count(refBits)) {
                h.push_back(*ls.hessianScore);
                kl.push_back(ls.byBits.at(refBits).kl);
            }
        if (h.size() >= 3)
            result.spearman = spearmanCorrelation(h, kl);
        result.estimator = str("HAWQ-V2 score tr(H)/n * ||Q(W)-W||^2 at ", refBits,
            " bits; tr(H) of the output KL w.r.t. the layer's weights by Hutchinson's method, ",
            options.hutchinsonSamples,
            " Rademacher directions, v'Hv by central finite differences of the KL (forward passes only); "
            "spearman compares its ranking with the one-shot KL at ",
            refBits, " bits");
    } else if (options.method == SensitivityMethod::Local) {
        result.estimator = "each layer's own output SQNR with that layer quantized, on cached FP32 inputs";
    } else {
        result.estimator =
            str("one layer quantized at a time (", sensitivityModeName(options.mode), "), model output vs FP32",
                options.naive ? ", full re-run per configuration"
                              : ", re-running only the graph downstream of the layer from cached inputs");
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
}

} // namespace qs
