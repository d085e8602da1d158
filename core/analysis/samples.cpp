// Per-sample views of quantization error: output KL per sample with one layer
// quantized, the samples a quantized model flips, and one sample's error trace.
#include "analysis/samples.h"

#include "data/input_binding.h"
#include "measure/fidelity.h"
#include "quant/session.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <algorithm>

namespace qs {
namespace {

bool quantizesActivations(const SampleOptions& o)
{
    return o.mode != SensitivityMode::Weights;
}

QuantizeOptions sessionOptions(const SampleOptions& o, bool everyLayer)
{
    if (o.bits < 2 || o.bits > 8)
        fail("samples: bit width ", o.bits, " is not 2..8");
    QuantizeOptions qo;
    qo.config = o.base;
    if (everyLayer)
        qo.config.defaults.weight.bits = o.mode == SensitivityMode::Activations ? 8 : o.bits;
    qo.config.defaults.activation.bits = quantizesActivations(o) ? o.bits : 8;
    qo.calibLimit = o.calibLimit;
    qo.batch = o.batch;
    qo.threads = o.threads;
    return qo;
}

// Runs FP32 and a second plan over batches of `data`, handing each batch's outputs on.
void compareBatches(const QuantSession& session, const Dataset& data, int64_t total, int64_t batch,
    const std::function<CompileOptions(const std::map<std::string, Shape>&)>& testOptions,
    const std::function<void(int64_t start, const Tensor& ref, const Tensor& test)>& each, Progress& progress,
    const CancelToken& cancel)
{
    std::unique_ptr<Plan> fp, q;
    std::map<std::string, Shape> planShape;
    for (int64_t start = 0; start < total; start += batch) {
        cancel.check();
        const int64_t n = std::min(batch, total - start);
        const std::map<std::string, Shape> shape = data.inputShapes(n);
        if (shape != planShape) {
            fp = session.compile(false, shape);
            q = compilePlan(session.graph(), testOptions(shape));
            planShape = shape;
        }
        const std::vector<Tensor> x = data.batch(start, n);
        each(start, fp->run(x).front(), q->run(x).front());
        progress.report(double(start + n) / double(total), str("samples: ", start + n, " of ", total));
    }
}

int64_t examined(const Dataset& data, const SampleOptions& o)
{
    const int64_t total = o.limit >= 0 ? std::min(o.limit, data.count()) : data.count();
    if (total <= 0)
        fail("dataset ", quoted(data.path), " has no samples");
    return total;
}

// Per sample of a batch: (argmax ref, argmax test, KL). Language-model logits
// (perPosition, text data: [N, positions, vocabulary]) have one softmax per position:
// the KL is the mean over the window's positions, the classes its last position's
// next-token predictions.
template<class F>
void perSample(const Tensor& ref, const Tensor& test, bool perPosition, F&& f)
{
    const int64_t n = ref.shape.empty() ? 1 : ref.shape[0];
    const int64_t k = n > 0 ? ref.numel() / n : 0;
    const int64_t width = perPosition && ref.shape.size() >= 2 ? ref.shape.back() : k;
    const int64_t rows = width > 0 ? k / width : 1;
    auto r = ref.data<float>();
    auto t = test.data<float>();
    for (int64_t s = 0; s < n; ++s) {
        double kl = 0;
        for (int64_t row = 0; row < rows; ++row)
            kl += softmaxKl(r.data() + s * k + row * width, t.data() + s * k + row * width, width);
        const float* a = r.data() + s * k + (rows - 1) * width;
        const float* b = t.data() + s * k + (rows - 1) * width;
        f(s, argmax(a, width), argmax(b, width), kl / double(rows));
    }
}

std::optional<int64_t> labelOf(const Dataset& data, int64_t i)
{
    if (!data.labels || i >= int64_t(data.labels->size()))
        return std::nullopt;
    return (*data.labels)[std::size_t(i)];
}

// The session of the whole-model quantization (every layer at options.bits), calibrated.
QuantSession quantizedSession(const Graph& graph, const Dataset& data, const SampleOptions& o, Progress& progress,
    const CancelToken& cancel)
{
    QuantSession session(graph, sessionOptions(o, true));
    Progress cal = progress.sub(0, 0.8), grids = progress.sub(0.8, 1);
    session.calibrate(data, cal, cancel);
    session.chooseWeightGrids(data, grids, cancel); // "output-mse" weight ranges, as quantizeModel
    session.quantizeWeights();
    return session;
}

} // namespace

std::vector<SampleDivergence> divergentSamples(const Graph& graph, const Dataset& data, const std::string& layer,
    int64_t top, const SampleOptions& options, Progress& progress, const CancelToken& cancel)
{
    const int64_t total = examined(data, options);
    QuantSession session(graph, sessionOptions(options, false));
    const SessionLayer* l = nullptr;
    for (const auto& x : session.layers())
        if (x.name == layer)
            l = &x;
    if (!l) {
        std::string known;
        for (const auto& x : session.layers())
            known += (known.empty() ? "" : ", ") + x.name;
        fail("--layer ", quoted(layer), ": no quantizable layer of that name (the model has ", known, ")");
    }
    std::optional<QParams> act;
    if (quantizesActivations(options)) {
        Progress p = progress.sub(0, 0.2);
        session.calibrate(data, p, cancel);
        act = session.activationParams.at(l->input);
    }
    std::optional<Tensor> weight;
    if (options.mode != SensitivityMode::Activations) {
        const Tensor* w = session.graph().constant(l->weight);
        QuantSpec spec = l->spec.weight;
        spec.bits = options.bits;
        weight = Tensor::fromVector(w->shape, fakeQuantWeight(w->toFloat(), w->shape, l->outAxis, l->inAxis, spec));
        weight->name = l->weight;
    }
    std::vector<SampleDivergence> all;
    Progress p = progress.sub(quantizesActivations(options) ? 0.2 : 0, 1);
    compareBatches(
        session, data, total, std::max<int64_t>(1, batchFor(graph, options.batch)),
        [&](const std::map<std::string, Shape>& shape) {
            CompileOptions co = session.compileOptions(false, shape);
            if (weight)
                co.initializerOverrides[l->weight] = *weight;
            if (act) {
                const QParams q = *act;
                co.valueTransforms[l->input] = [q](Tensor& t) {
                    for (float& x : t.data<float>())
                        x = fakeQuant(x, q);
                };
            }
            return co;
        },
        [&](int64_t start, const Tensor& ref, const Tensor& test) {
            perSample(ref, test, data.targets.has_value(), [&](int64_t s, int64_t a, int64_t b, double kl) {
                all.push_back({start + s, kl, a, b, labelOf(data, start + s)});
            });
        },
        p, cancel);
    std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.kl > b.kl; });
    if (top >= 0 && int64_t(all.size()) > top)
        all.resize(std::size_t(top));
    return all;
}

std::vector<std::string> classNames(const Graph& graph)
{
    std::vector<std::string> names;
    const auto it = graph.metadata.find("quantstudio.classes");
    if (it == graph.metadata.end())
        return names;
    std::size_t from = 0;
    for (;;) {
        const std::size_t comma = it->second.find(',', from);
        std::string n = it->second.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
        const auto first = n.find_first_not_of(" \t"), last = n.find_last_not_of(" \t");
        names.push_back(first == std::string::npos ? std::string() : n.substr(first, last - first + 1));
        if (comma == std::string::npos)
            return names;
        from = comma + 1;
    }
}

std::string classLabel(const std::vector<std::string>& names, int64_t c)
{
    return c >= 0 && c < int64_t(names.size()) && !names[std::size_t(c)].empty() ? names[std::size_t(c)]
                                                                                   : std::to_string(c);
}

std::vector<SampleDivergence> flippedSamples(const Graph& graph, const Dataset& data, const SampleOptions& options,
    Progress& progress, const CancelToken& cancel)
{
    if (!data.labels)
        fail("dataset ", quoted(data.path), " has no labels: which samples are wrong needs them (--labels)");
    const int64_t total = examined(data, options);
    Progress cp = progress.sub(0, 0.3);
    QuantSession session = quantizedSession(graph, data, options, cp, cancel);
    std::vector<SampleDivergence> out;
    Progress p = progress.sub(0.3, 1);
    compareBatches(
        session, data, total, std::max<int64_t>(1, batchFor(graph, options.batch)),
        [&](const std::map<std::string, Shape>& shape) { return session.compileOptions(true, shape); },
        [&](int64_t start, const Tensor& ref, const Tensor& test) {
            perSample(ref, test, data.targets.has_value(), [&](int64_t s, int64_t a, int64_t b, double kl) {
                const int64_t label = *labelOf(data, start + s);
                if (a == label && b != label)
                    out.push_back({start + s, kl, a, b, label});
            });
        },
        p, cancel);
    return out;
}

SampleTrace traceSample(const Graph& graph, const Dataset& data, int64_t index, const SampleOptions& options,
    Progress& progress, const CancelToken& cancel)
{
    if (index < 0 || index >= data.count())
        fail("--trace ", index, ": dataset ", quoted(data.path), " has samples 0..", data.count() - 1);
    Progress cp = progress.sub(0, 0.8);
    QuantSession session = quantizedSession(graph, data, options, cp, cancel);
    const Graph& g = session.graph();
    const std::map<std::string, Shape> shape = data.inputShapes(1);
    std::set<std::string> outputs;
    for (const auto& l : session.layers())
        outputs.insert(g.nodes[std::size_t(g.findNode(l.name))].outputs.front());
    CompileOptions fo = session.compileOptions(false, shape), qo = session.compileOptions(true, shape);
    fo.keepValues.insert(outputs.begin(), outputs.end());
    qo.keepValues.insert(outputs.begin(), outputs.end());
    auto fp = compilePlan(g, fo), q = compilePlan(g, qo);
    const std::vector<Tensor> x = data.batch(index, 1);
    const Tensor ref = fp->run(x).front(), test = q->run(x).front();
    SampleTrace t;
    t.index = index;
    t.label = labelOf(data, index);
    perSample(ref, test, data.targets.has_value(), [&](int64_t, int64_t a, int64_t b, double kl) {
        t.fp32Class = a;
        t.quantClass = b;
        t.outputKl = kl;
    });
    t.outputSqnrDb = sqnrDb(ref.data<float>().data(), test.data<float>().data(), std::size_t(ref.numel()));
    for (const auto& l : session.layers()) {
        const std::string& v = g.nodes[std::size_t(g.findNode(l.name))].outputs.front();
        const Tensor a = fp->valueOf(v), b = q->valueOf(v);
        t.layers.push_back({l.name, l.op, v, sqnrDb(a.data<float>().data(), b.data<float>().data(), std::size_t(a.numel()))});
    }
    progress.report(1, "samples: traced");
    return t;
}

} // namespace qs
