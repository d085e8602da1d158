#include "analysis/whatif.h"

#include "data/input_binding.h"
#include "measure/activations.h"
#include "measure/fidelity.h"
#include "runtime/plan_shared.h"
#include "util/memory_budget.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>

namespace qs {

// One evaluation batch: which samples (kept for the session's life).
struct WhatIfSession::Batch {
    int64_t start = 0, n = 0;
    std::map<std::string, Shape> shapes;
    std::vector<int64_t> labels;
};

// A batch's FP32 values: its inputs, the model output and every layer's output.
struct WhatIfSession::Fp32Values {
    std::vector<Tensor> input;             // the model's inputs
    Tensor out;                            // FP32 model output
    std::map<std::string, Tensor> layer;   // FP32 output of every layer (by output value)
    int64_t bytes() const
    {
        int64_t b = int64_t(out.bytes.size());
        for (const Tensor& t : input)
            b += int64_t(t.bytes.size());
        for (const auto& entry : layer)
            b += int64_t(entry.second.bytes.size());
        return b;
    }
};

// A batch's cached values (LruCache within the memory budget; recomputed when evicted):
// the FP32 ones and the current configuration's.
struct WhatIfSession::BatchValues {
    std::shared_ptr<const Fp32Values> fp;
    Tensor out;                            // current configuration's model output
    std::map<std::string, Tensor> raw;     // every layer input before its activation quantization
    std::map<std::string, Tensor> kept;    // other frontier values, as the current configuration leaves them
    int64_t bytes() const
    {
        int64_t b = int64_t(out.bytes.size()) + (fp ? fp->bytes() : 0);
        for (const auto* m : {&raw, &kept})
            for (const auto& entry : *m)
                b += int64_t(entry.second.bytes.size());
        return b;
    }
};

namespace {

WhatIfMetrics metricsOf(const FidelityMeter& m)
{
    WhatIfMetrics r;
    r.outputSqnrDb = m.sqnrDb();
    r.kl = m.kl();
    r.cosine = m.cosine();
    r.top1Agreement = m.top1Agreement();
    r.top1 = m.testTop1();
    return r;
}

// `raw` through the value's activation quantization in `params` (a copy; as is when the
// value is not quantized). The same fakeQuant the plans' transforms apply, so bitwise equal.
Tensor quantizedValue(const Tensor& raw, const std::string& value, const std::map<std::string, QParams>& params)
{
    Tensor t = raw;
    if (auto q = params.find(value); q != params.end())
        for (float& x : t.data<float>())
            x = fakeQuant(x, q->second);
    return t;
}

bool sameParams(const QParams& a, const QParams& b)
{
    return a.scale == b.scale && a.zeroPoint == b.zeroPoint && a.qmin == b.qmin && a.qmax == b.qmax;
}

// Nodes that depend on `seeds` (values given anew) and the values those nodes read that
// neither they nor the seeds provide: what a partial re-run must be handed besides the
// seeds. Keeping these values in a plan also keeps fusion from merging a node that
// re-runs with one that does not, so the re-run computes exactly what a full run would.
struct Downstream {
    std::set<std::string> produced; // values the dependent nodes write
    std::set<std::string> frontier;
};

Downstream downstreamOf(const Graph& g, const std::set<std::string>& seeds)
{
    std::set<int> downstream;
    std::vector<std::string> work(seeds.begin(), seeds.end());
    std::set<std::string> produced;
    while (!work.empty()) {
        const std::string v = work.back();
        work.pop_back();
        for (int c : g.consumersOf(v))
            if (downstream.insert(c).second)
                for (const auto& o : g.nodes[std::size_t(c)].outputs)
                    if (!o.empty() && produced.insert(o).second)
                        work.push_back(o);
    }
    Downstream d;
    for (int c : downstream)
        for (const auto& in : g.nodes[std::size_t(c)].inputs)
            if (!in.empty() && !produced.count(in) && !seeds.count(in) && !g.constant(in))
                d.frontier.insert(in);
    d.produced = std::move(produced);
    return d;
}

} // namespace

WhatIfSession::WhatIfSession(const Graph& source, const Dataset& calib, const Dataset& eval, QuantizeOptions options,
                             Progress& progress, const CancelToken& cancel, int64_t cacheBudget)
    : source_(source), eval_(eval), options_(std::move(options))
{
    if (!options_.config.algorithms.empty())
        fail("what-if: configurations with algorithms (", options_.config.algorithms.front().name,
             ") are not supported; what-if changes plain per-layer quantization");
    if (options_.int8)
        fail("what-if: runs simulated quantization only (no --int8)");
    session_ = std::make_unique<QuantSession>(source_, options_);
    session_->checkRanges();
    const Graph& g = session_->graph();
    // Every quantizable layer, whatever the configuration quantizes: a later one may
    // give bits to a layer in float or bring back an excluded one.
    std::vector<std::string> inputs;
    for (int idx : g.quantizableLayers()) {
        const Node& n = g.nodes[std::size_t(idx)];
        const std::string in = layerInputOf(g, n);
        outputOf_[n.name] = n.outputs.front();
        if (std::find(inputs.begin(), inputs.end(), in) == inputs.end())
            inputs.push_back(in);
        for (const auto& v : downstreamOf(g, {in}).frontier)
            frontier_.insert(v);
    }
    if (inputs.empty())
        fail(source.sourcePath, ": no quantizable layers");
    inputs_.insert(inputs.begin(), inputs.end());
    frontier_.insert(inputs.begin(), inputs.end());
    ProfileOptions po;
    po.batch = options_.batch;
    po.limit = options_.calibLimit;
    po.threads = options_.threads;
    Progress cal = progress.sub(0, 0.3);
    observers_ = observeActivations(g, calib, inputs, po, cal, cancel);
    // Attention operands under any static granularity a later configuration may ask for.
    if (const auto& points = session_->attentionPatterns().points; !points.empty()) {
        const int64_t total = std::min(options_.calibLimit >= 0 ? options_.calibLimit : calib.count(), calib.count());
        runFp32Batches(g, calib, total, std::max<int64_t>(1, std::min(batchFor(source, options_.batch), total)),
            options_.threads,
            [&](Plan& plan, int64_t) {
                for (const auto& p : points) {
                    const Shape shape = plan.shapeOf(p.value);
                    for (auto gran :
                        {OperandGranularity::Tensor, OperandGranularity::Head, OperandGranularity::Channel}) {
                        try {
                            (void)staticSliceAxis(p, gran, shape);
                        } catch (const Error&) {
                            continue; // not for this operand's shape (per head of a rank-3 operand, ...)
                        }
                        auto [it, fresh] = operandObservers_.try_emplace({p.name, int(gran)}, OperandObserver(p, gran));
                        OperandObserver* o = &it->second;
                        plan.addTap(p.value, [o](const std::string&, const Tensor& t) { o->observe(t); });
                    }
                }
            },
            cancel, {});
    }

    // The evaluation batches; their values are computed by rebuild() and kept in a cache
    // within the memory budget.
    samples_ = options_.evalLimit >= 0 ? std::min(options_.evalLimit, eval_.count()) : eval_.count();
    if (samples_ <= 0)
        fail("evaluation dataset ", quoted(eval_.path), " has no samples");
    const int64_t batch = std::max<int64_t>(1, std::min(batchFor(source, options_.batch), samples_));
    for (int64_t start = 0; start < samples_; start += batch) {
        auto b = std::make_unique<Batch>();
        b->start = start;
        b->n = std::min(batch, samples_ - start);
        b->shapes = eval_.inputShapes(b->n);
        if (eval_.labels)
            b->labels.assign(eval_.labels->begin() + start, eval_.labels->begin() + start + b->n);
        batches_.push_back(std::move(b));
    }
    cache_ = std::make_unique<LruCache<std::size_t, BatchValues>>(cacheBudget > 0 ? cacheBudget : cacheBudgetBytes());
    Progress rest = progress.sub(0.3, 1);
    rebuild(options_.config, rest, cancel);
}

WhatIfSession::~WhatIfSession() = default;

std::unique_ptr<QuantSession> WhatIfSession::makeSession(const QuantConfig& config) const
{
    QuantizeOptions o = options_;
    o.config = config;
    auto session = std::make_unique<QuantSession>(source_, o);
    session->checkRanges();
    session->setActivationQuantization(observers_);
    std::map<std::string, OperandObserver> operands;
    for (const auto& o : session->operands()) {
        if (o.spec.granularity == OperandGranularity::Token)
            continue;
        auto it = operandObservers_.find({o.point.name, int(o.spec.granularity)});
        if (it == operandObservers_.end())
            fail("what-if: attention operand ", quoted(o.point.name), ": per ",
                operandGranularityName(o.spec.granularity), " does not apply to its shape");
        operands.emplace(o.point.name, it->second);
    }
    session->setOperandQuantization(operands);
    session->quantizeWeights();
    return session;
}

WhatIfMetrics WhatIfSession::runInFull(const QuantConfig& config, const CancelToken& cancel)
{
    const std::unique_ptr<QuantSession> session = makeSession(config);
    FidelityMeter meter(eval_.targets.has_value());
    std::unique_ptr<Plan> plan;
    std::map<std::string, Shape> planShapes;
    for (std::size_t bi = 0; bi < batches_.size(); ++bi) {
        cancel.check();
        const Batch& b = *batches_[bi];
        const std::shared_ptr<const Fp32Values> fp = fp32ValuesOf(bi);
        if (!plan || b.shapes != planShapes) {
            plan = session->compile(true, b.shapes);
            planShapes = b.shapes;
        }
        meter.add(fp->out, plan->run(fp->input).front(), eval_.labels ? &b.labels : nullptr);
    }
    return metricsOf(meter);
}

std::unique_ptr<Plan> WhatIfSession::fp32Plan(const std::map<std::string, Shape>& shapes, Fp32Values* const* filling) const
{
    // Not split over threads: a batch recomputed after eviction must equal the one evicted.
    CompileOptions co = session_->compileOptions(false, shapes);
    co.splitBatch = false;
    auto plan = compileSharedPlan(std::shared_ptr<const Graph>(std::shared_ptr<const Graph> {}, &session_->graph()), co);
    for (const auto& entry : outputOf_)
        plan->addTap(entry.second, [filling](const std::string& v, const Tensor& t) { (*filling)->layer[v] = t; });
    return plan;
}

std::shared_ptr<const WhatIfSession::Fp32Values> WhatIfSession::runFp32(std::size_t bi)
{
    const Batch& b = *batches_[bi];
    auto fp = std::make_shared<Fp32Values>();
    Fp32Values* filling = fp.get();
    if (!recompute_.fp || recompute_.fpShapes != b.shapes) {
        recompute_.fp = fp32Plan(b.shapes, &recompute_.fpFilling);
        recompute_.fpShapes = b.shapes;
    }
    recompute_.fpFilling = filling;
    fp->input = eval_.batch(b.start, b.n);
    fp->out = recompute_.fp->run(fp->input).front();
    recompute_.fpFilling = nullptr;
    return fp;
}

std::shared_ptr<const WhatIfSession::Fp32Values> WhatIfSession::fp32ValuesOf(std::size_t bi)
{
    if (auto v = cache_->find(bi))
        return v->fp;
    return runFp32(bi);
}

std::unique_ptr<Plan> WhatIfSession::currentPlan(const QuantSession& s, const std::map<std::string, Shape>& shapes,
    BatchValues* const* filling, std::map<std::string, SignalNoise>* power) const
{
    // Raw layer inputs are recorded by the activation transforms before they quantize.
    CompileOptions co = s.compileOptions(true, shapes);
    co.keepValues = frontier_;
    co.splitBatch = false;
    for (auto& entry : co.valueTransforms)
        entry.second = [filling, quantize = entry.second](Tensor& t) {
            (*filling)->raw[t.name] = t;
            quantize(t);
        };
    auto plan = compilePlan(s.graph(), co);
    if (power)
        for (const auto& entry : outputOf_)
            plan->addTap(entry.second, [filling, power](const std::string& v, const Tensor& t) {
                (*power)[v].add((*filling)->fp->layer.at(v), t);
            });
    return plan;
}

void WhatIfSession::runCurrent(Plan& plan, BatchValues& v) const
{
    v.raw.clear();
    v.kept.clear();
    v.out = plan.run(v.fp->input).front();
    // A quantized layer input is its raw value through fakeQuant (what the transform
    // did), so only the raw copy is kept; other values are kept as they are.
    for (const auto& name : inputs_)
        if (!v.raw.count(name)) // not quantized: the value itself
            v.raw[name] = plan.valueOf(name);
    for (const auto& name : frontier_)
        if (!inputs_.count(name))
            v.kept[name] = plan.valueOf(name);
}

std::shared_ptr<const WhatIfSession::BatchValues> WhatIfSession::valuesOf(std::size_t bi)
{
    return cache_->getOrCompute(bi, [&] {
        const Batch& b = *batches_[bi];
        BatchValues v;
        v.fp = runFp32(bi);
        if (!recompute_.current || recompute_.currentShapes != b.shapes) {
            recompute_.current = currentPlan(*session_, b.shapes, &recompute_.currentFilling, nullptr);
            recompute_.currentShapes = b.shapes;
        }
        recompute_.currentFilling = &v;
        runCurrent(*recompute_.current, v);
        recompute_.currentFilling = nullptr;
        const int64_t bytes = v.bytes();
        return std::pair(std::move(v), bytes);
    });
}

void WhatIfSession::rebuild(const QuantConfig& config, Progress& progress, const CancelToken& cancel)
{
    std::unique_ptr<QuantSession> session = makeSession(config);

    // The current configuration over every batch: raw layer inputs, frontier values,
    // layer SQNRs; each batch's values go to the cache (the FP32 ones kept from it).
    std::map<std::string, SignalNoise> power;
    FidelityMeter meter(eval_.targets.has_value());
    FidelityMeter fpMeter(eval_.targets.has_value()); // FP32 top-1, on the first build
    std::unique_ptr<Plan> plan;
    std::map<std::string, Shape> planShapes;
    BatchValues* current = nullptr;
    // Cancelled half way, the cache would hold batches of both configurations: it is
    // emptied, and the kept session's values are recomputed as needed.
    struct ClearOnThrow {
        LruCache<std::size_t, BatchValues>& cache;
        int uncaught = std::uncaught_exceptions();
        ~ClearOnThrow()
        {
            if (std::uncaught_exceptions() > uncaught)
                cache.clear();
        }
    } clearOnThrow {*cache_};
    for (std::size_t bi = 0; bi < batches_.size(); ++bi) {
        cancel.check();
        const Batch& b = *batches_[bi];
        BatchValues v;
        v.fp = fp32ValuesOf(bi);
        current = &v;
        if (!plan || b.shapes != planShapes) {
            plan = currentPlan(*session, b.shapes, &current, &power);
            planShapes = b.shapes;
        }
        runCurrent(*plan, v);
        meter.add(v.fp->out, v.out, eval_.labels ? &b.labels : nullptr);
        if (!fp32TopKnown_)
            fpMeter.add(v.fp->out, v.fp->out, eval_.labels ? &b.labels : nullptr);
        const int64_t bytes = v.bytes();
        cache_->put(bi, std::move(v), bytes);
        progress.report(double(bi + 1) / double(batches_.size()), "caching quantized activations");
    }
    if (!fp32TopKnown_) {
        fp32Top1_ = fpMeter.refTop1();
        fp32TopKnown_ = true;
    }
    layerSqnr_.clear();
    for (const auto& [layer, out] : outputOf_)
        layerSqnr_[layer] = sqnrDb(power[out].signal, power[out].noise);
    base_ = metricsOf(meter);
    plan.reset();
    recompute_ = {}; // its plans read the session's graph
    session_ = std::move(session);
    options_.config = config;
}

double WhatIfSession::layerSqnrDb(const std::string& layer) const
{
    auto it = layerSqnr_.find(layer);
    if (it == layerSqnr_.end())
        fail("what-if: ", quoted(layer), " is not a quantized layer of the model");
    return it->second;
}

int64_t WhatIfSession::cachedBytes() const
{
    return cache_->bytes();
}

int64_t WhatIfSession::cacheBudget() const
{
    return cache_->budget();
}

int64_t WhatIfSession::cacheEvictions() const
{
    return cache_->evictions();
}

void WhatIfSession::setCacheBudget(int64_t bytes)
{
    std::lock_guard<std::mutex> lock(mutex_);
    cache_->setBudget(bytes > 0 ? bytes : cacheBudgetBytes());
}

const SessionLayer& WhatIfSession::layerNamed(const std::string& name) const
{
    for (const auto& l : session_->layers())
        if (l.name == name)
            return l;
    fail("what-if: ", quoted(name), options_.config.excluded.count(name) ? " is excluded from quantization"
                                                                          : " is not a quantizable layer of the model");
}

QuantConfig WhatIfSession::changed(const WhatIfChange& change) const
{
    QuantConfig c = options_.config;
    if (change.spec) {
        if (change.layer.empty())
            fail("what-if: a new spec needs the layer it is for");
        (void)layerNamed(change.layer);
        for (const QuantSpec* s : {&change.spec->weight, &change.spec->activation})
            if (!((s->bits >= 2 && s->bits <= 8) || s->bits == 16 || s->bits == 32))
                fail("what-if: layer ", quoted(change.layer), ": ", s->bits, " bits is not 2..8, 16 or 32");
        (void)calibrator(change.spec->activation.calibrator);
        c.layers[change.layer] = *change.spec;
    }
    if (change.operandSpec) {
        const auto& points = session_->attentionPatterns().points;
        auto p = std::find_if(
            points.begin(), points.end(), [&](const AttentionPoint& a) { return a.name == change.operand; });
        if (p == points.end())
            fail("what-if: ", quoted(change.operand), " is not an attention operand of the model");
        const OperandSpec& s = *change.operandSpec;
        if (!((s.bits >= 2 && s.bits <= 8) || s.bits == 16 || s.bits == 32))
            fail("what-if: attention operand ", quoted(change.operand), ": ", s.bits, " bits is not 2..8, 16 or 32");
        if (!s.isFloat() && s.granularity != OperandGranularity::Token) {
            (void)calibrator(s.calibrator);
            if (!operandObservers_.count({p->name, int(s.granularity)}))
                fail("what-if: attention operand ", quoted(change.operand), ": per ",
                    operandGranularityName(s.granularity), " does not apply to its shape");
        }
        c.attention.points[change.operand] = s;
    }
    for (const auto& name : change.clearRanges)
        c.ranges.erase(name);
    for (const auto& [name, r] : change.setRanges) {
        if (!(r.first < r.second) || !std::isfinite(r.first) || !std::isfinite(r.second))
            fail("what-if: range of ", quoted(name), ": lo must be below hi (got [", r.first, ", ", r.second, "])");
        bool known = false;
        for (const auto& l : session_->layers())
            known = known || l.input == name || l.weight == name;
        if (!known)
            fail("what-if: ", quoted(name), " is neither the input nor the weight of a quantizable layer");
        c.ranges[name] = r;
    }
    return c;
}

WhatIfResult WhatIfSession::evaluate(const WhatIfChange& change, const CancelToken& cancel)
{
    std::lock_guard<std::mutex> lock(mutex_);
    const auto t0 = std::chrono::steady_clock::now();
    WhatIfResult result;
    result.config = changed(change);
    result.layer = change.layer;
    if (change.operandSpec) {
        result.layer = change.operand;
        result.layerSqnrDb = result.baseLayerSqnrDb = NAN;
        result.weightSqnrDb = INFINITY;
        result.base = base_;
        result.fp32Top1 = fp32Top1_;
        result.samples = samples_;
        if (result.config.toJson() == options_.config.toJson())
            result.metrics = base_;
        else
            result.metrics = runInFull(result.config, cancel);
        if (auto p = std::find_if(session_->attentionPatterns().points.begin(), session_->attentionPatterns().points.end(),
                [&](const AttentionPoint& a) { return a.name == change.operand; });
            p != session_->attentionPatterns().points.end())
            result.changedActivations.push_back(p->value);
        result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return result;
    }
    if (result.layer.empty()) {
        for (const auto& l : session_->layers())
            if (result.layer.empty() && !change.setRanges.empty() &&
                (change.setRanges.count(l.input) || change.setRanges.count(l.weight)))
                result.layer = l.name;
        if (result.layer.empty())
            fail("what-if: the change names no layer");
    }
    const SessionLayer& reported = layerNamed(result.layer);
    const Graph& g = session_->graph();

    // The changed configuration's layers, weights and activation quantization.
    std::vector<SessionLayer> layers = session_->layers();
    for (auto& l : layers)
        l.spec = *session_->specFor(g.nodes[std::size_t(g.findNode(l.name))], result.config);
    std::map<std::string, Tensor> weights = session_->weightOverrides;
    std::set<std::string> seeds; // values the re-run is handed anew
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const SessionLayer& now = session_->layers()[i];
        const SessionLayer& next = layers[i];
        const QuantSpec a = QuantSession::weightSpec(now, options_.config);
        const QuantSpec b = QuantSession::weightSpec(next, result.config);
        if (a == b || (a.isFloat() && b.isFloat()))
            continue;
        if (b.isFloat())
            weights.erase(next.weight);
        else
            weights[next.weight] = session_->quantizedWeight(next, result.config);
        result.changedWeights.push_back(next.weight);
        seeds.insert(next.input);
    }
    const auto acts = chooseActivationQuantization(layers, result.config, observers_);
    std::map<std::string, QParams> params;
    for (const auto& [v, q] : acts)
        params[v] = q.params;
    std::set<std::string> values;
    for (const auto& [v, q] : params)
        values.insert(v);
    for (const auto& [v, q] : session_->activationParams)
        values.insert(v);
    for (const auto& v : values) {
        auto a = session_->activationParams.find(v);
        auto b = params.find(v);
        const bool same = a != session_->activationParams.end() && b != params.end() && sameParams(a->second, b->second);
        if (!same && !(a == session_->activationParams.end() && b == params.end())) {
            result.changedActivations.push_back(v);
            seeds.insert(v);
        }
    }
    if (auto r = acts.find(reported.input); r != acts.end())
        result.activationRange = r->second.range;
    {
        const Tensor* w = g.constant(reported.weight);
        auto q = weights.find(reported.weight);
        std::vector<float> a = w->toFloat();
        result.weightSqnrDb = q == weights.end() ? INFINITY : sqnrDb(a.data(), q->second.data<float>().data(), a.size());
    }
    result.base = base_;
    result.fp32Top1 = fp32Top1_;
    result.baseLayerSqnrDb = layerSqnr_.at(result.layer);
    result.samples = samples_;
    if (seeds.empty()) { // nothing the model computes changes
        result.metrics = base_;
        result.layerSqnrDb = result.baseLayerSqnrDb;
        result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        return result;
    }

    // Re-run: per batch shape one plan of the changed configuration, run in full on its
    // first batch (a partial re-run needs a previous run), then handed the new values
    // (changed activations re-quantized from the cached raw inputs, the unchanged input
    // of a layer with a new weight) and the frontier values, so it computes only what
    // depends on the change.
    // A seed that depends on another one is recomputed (and quantized by the plan's
    // transform) rather than handed over.
    const std::set<std::string> produced = downstreamOf(g, seeds).produced;
    std::set<std::string> given;
    for (const auto& v : seeds)
        if (!produced.count(v))
            given.insert(v);
    const Downstream down = downstreamOf(g, given);
    const std::string reportedOut = outputOf_.at(result.layer);
    FidelityMeter meter(eval_.targets.has_value());
    SignalNoise layerPower;
    const BatchValues* current = nullptr;
    std::unique_ptr<Plan> plan;
    for (std::size_t bi = 0; bi < batches_.size(); ++bi) {
        cancel.check();
        const Batch& b = *batches_[bi];
        const std::shared_ptr<const BatchValues> cached = valuesOf(bi);
        current = cached.get();
        std::vector<Tensor> out;
        if (!plan || plan->shapeOf(g.inputs.front().name) != cached->fp->input.front().shape) {
            CompileOptions co = session_->compileOptions(b.shapes, weights, params);
            co.keepValues = frontier_;
            plan = compilePlan(g, co);
            plan->addTap(reportedOut, [&current, &layerPower](const std::string& v, const Tensor& t) {
                layerPower.add(current->fp->layer.at(v), t);
            });
            out = plan->run(cached->fp->input);
        } else {
            std::map<std::string, Tensor> values;
            for (const auto& v : given)
                values[v] = quantizedValue(cached->raw.at(v), v, params);
            for (const auto& v : down.frontier) {
                if (auto k = cached->kept.find(v); k != cached->kept.end()) {
                    values[v] = k->second;
                    continue;
                }
                values[v] = quantizedValue(cached->raw.at(v), v, session_->activationParams);
            }
            out = plan->runFrom(values);
        }
        meter.add(cached->fp->out, out.front(), eval_.labels ? &b.labels : nullptr);
    }
    result.metrics = metricsOf(meter);
    // The reported layer's output changes only when it depends on the change.
    result.layerSqnrDb = down.produced.count(reportedOut) ? sqnrDb(layerPower.signal, layerPower.noise)
                                                          : result.baseLayerSqnrDb;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return result;
}

void WhatIfSession::apply(const WhatIfChange& change, Progress& progress, const CancelToken& cancel)
{
    std::lock_guard<std::mutex> lock(mutex_);
    rebuild(changed(change), progress, cancel);
}

bool WhatIfSession::setConfig(const QuantConfig& config, Progress& progress, const CancelToken& cancel)
{
    std::lock_guard<std::mutex> lock(mutex_);
    if (config.toJson() == options_.config.toJson())
        return false;
    if (!config.algorithms.empty())
        fail("what-if: configurations with algorithms (", config.algorithms.front().name, ") are not supported");
    rebuild(config, progress, cancel);
    return true;
}

WhatIfSession::Snapshot WhatIfSession::snapshot(bool foldedWeights)
{
    std::lock_guard<std::mutex> lock(mutex_);
    Snapshot s;
    s.config = options_.config;
    s.layers = session_->layers();
    s.activationRanges = session_->activationRanges;
    for (const auto& [name, t] : source_.initializers)
        s.sourceWeights.insert(name);
    if (foldedWeights)
        for (const auto& l : s.layers)
            if (!s.sourceWeights.count(l.weight))
                if (const Tensor* w = session_->graph().constant(l.weight))
                    s.foldedWeights.emplace(l.weight, *w);
    return s;
}

TensorQuantError histogramQuantError(const Histogram& h, float lo, float hi, int bits, bool symmetric)
{
    TensorQuantError e;
    const uint64_t total = h.total();
    if (total == 0 || h.bins() == 0)
        return e;
    e.mse = histogramQuantMse(h, lo, hi, bits, symmetric);
    const double w = h.binWidth();
    double signal = 0, counted = 0;
    uint64_t outside = h.below + h.above;
    for (int i = 0; i < h.bins(); ++i) {
        const double c = double(h.counts[std::size_t(i)]);
        const double x = h.lo + w * (i + 0.5);
        signal += c * x * x;
        counted += c;
        if (x < lo || x > hi)
            outside += h.counts[std::size_t(i)];
    }
    signal = counted > 0 ? signal / counted : 0;
    e.sqnrDb = sqnrDb(signal, e.mse);
    e.clippedFraction = double(outside) / double(total);
    return e;
}

} // namespace qs
