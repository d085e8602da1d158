#include "train/qat.h"

#include "graph/safetensors.h"
#include "measure/perplexity.h"
#include "quant/session.h"
#include "runtime/plan.h"
#include "train/loss.h"
#include "train/net.h"
#include "train/optim.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace qs::train {

nlohmann::json QatOptions::toJson() const
{
    return {{"steps", steps}, {"batch", batch}, {"calib_limit", calibLimit}, {"eval_limit", evalLimit},
        {"eval_every", evalEvery}, {"checkpoint_every", checkpointEvery}, {"lr", lr}, {"scale_lr", scaleLr},
        {"warmup_steps", warmupSteps}, {"floor_fraction", floorFraction}, {"temperature", temperature},
        {"kd_weight", kdWeight}, {"ce_weight", ceWeight}, {"attention_weight", attentionWeight},
        {"learn_scales", learnScales}, {"learn_weights", learnWeights}, {"mode", blockwise ? "blocks" : "end_to_end"},
        {"seed", seed}};
}

void QatOptions::apply(const nlohmann::json& j, const std::string& where)
{
    if (!j.is_object())
        fail(where, ": expected an object of training options");
    for (auto it = j.begin(); it != j.end(); ++it) { // no structured binding: clang 14's lambdas cannot capture one
        const std::string& key = it.key();
        const nlohmann::json& v = it.value();
        const std::string at = where + "." + key;
        auto num = [&]() {
            if (!v.is_number())
                fail(at, ": expected a number");
            return v.get<double>();
        };
        auto count = [&](int64_t lo) {
            if (!v.is_number_integer() || v.get<int64_t>() < lo)
                fail(at, ": expected an integer of at least ", lo);
            return v.get<int64_t>();
        };
        auto flag = [&]() {
            if (!v.is_boolean())
                fail(at, ": expected true or false");
            return v.get<bool>();
        };
        if (key == "steps")
            steps = count(1);
        else if (key == "batch")
            batch = count(1);
        else if (key == "calib_limit")
            calibLimit = count(1);
        else if (key == "eval_limit")
            evalLimit = v.is_number_integer() ? v.get<int64_t>() : count(0);
        else if (key == "eval_every")
            evalEvery = count(0);
        else if (key == "checkpoint_every")
            checkpointEvery = count(0);
        else if (key == "lr")
            lr = num();
        else if (key == "scale_lr")
            scaleLr = num();
        else if (key == "warmup_steps")
            warmupSteps = count(0);
        else if (key == "floor_fraction")
            floorFraction = num();
        else if (key == "temperature")
            temperature = num();
        else if (key == "kd_weight")
            kdWeight = num();
        else if (key == "ce_weight")
            ceWeight = num();
        else if (key == "attention_weight")
            attentionWeight = num();
        else if (key == "learn_scales")
            learnScales = flag();
        else if (key == "learn_weights")
            learnWeights = flag();
        else if (key == "seed")
            seed = uint64_t(count(0));
        else if (key == "mode") {
            if (!v.is_string() || (v.get<std::string>() != "blocks" && v.get<std::string>() != "end_to_end"))
                fail(at, ": expected \"blocks\" or \"end_to_end\"");
            blockwise = v.get<std::string>() == "blocks";
        } else
            fail(at,
                ": unknown field (expected steps, batch, calib_limit, eval_limit, eval_every, checkpoint_every, "
                "lr, scale_lr, warmup_steps, floor_fraction, temperature, kd_weight, ce_weight, attention_weight, "
                "learn_scales, "
                "learn_weights, mode, seed)");
    }
    if (!(lr >= 0) || !(scaleLr >= 0) || !(temperature > 0) || !(kdWeight >= 0) || !(ceWeight >= 0) ||
        !(attentionWeight >= 0) || !(floorFraction >= 0 && floorFraction <= 1))
        fail(where,
            ": lr and scale_lr must be >= 0, temperature > 0, kd_weight, ce_weight and attention_weight >= 0, "
            "floor_fraction in [0, 1]");
}

namespace {

// The model's inputs for the samples `idx` of `d` (samples first, batch axis 0).
std::vector<Tensor> gather(const Dataset& d, std::span<const int64_t> idx)
{
    std::vector<Tensor> out;
    for (const DataInput& in : d.inputs) {
        if (in.batchAxis != 0)
            fail("training: input ", quoted(in.name), " has its batch on axis ", in.batchAxis, " (expected 0)");
        Shape s = in.batchShape(int64_t(idx.size()));
        Tensor t(in.samples.dtype, s);
        const std::size_t bytes = t.bytes.size() / std::max<std::size_t>(idx.size(), 1);
        for (std::size_t k = 0; k < idx.size(); ++k) {
            if (in.stream) {
                const Tensor one = in.batch(idx[k], 1);
                std::memcpy(t.bytes.data() + k * bytes, one.bytes.data(), bytes);
            } else {
                std::memcpy(t.bytes.data() + k * bytes, in.samples.bytes.data() + std::size_t(idx[k]) * bytes, bytes);
            }
        }
        out.push_back(std::move(t));
    }
    return out;
}

int64_t argmaxRow(const float* row, int64_t n)
{
    return int64_t(std::max_element(row, row + n) - row);
}

} // namespace

void saveQatTrainState(const QatTrainState& s, const std::string& path)
{
    nlohmann::json header = nlohmann::json::object();
    header["__metadata__"] = {{"step", std::to_string(s.step)}, {"adam_steps", std::to_string(s.adamSteps)}};
    std::vector<const std::vector<float>*> data;
    uint64_t offset = 0;
    auto add = [&](const std::string& name, const std::vector<float>& v) {
        header[name] = {{"dtype", "F32"}, {"shape", {int64_t(v.size())}}, {"data_offsets", {offset, offset + 4 * v.size()}}};
        offset += 4 * v.size();
        data.push_back(&v);
    };
    for (const auto& [name, v] : s.values)
        add("value/" + name, v);
    for (const auto& [name, m] : s.moments) {
        add("m/" + name, m.m);
        add("v/" + name, m.v);
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');
    std::ofstream out(path, std::ios::binary);
    if (!out)
        fail(path, ": cannot write the training state");
    const uint64_t n = h.size();
    char len[8];
    for (int i = 0; i < 8; ++i)
        len[i] = char((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(h.data(), std::streamsize(h.size()));
    for (const auto* v : data) // little-endian floats, as the machine's
        out.write(reinterpret_cast<const char*>(v->data()), std::streamsize(4 * v->size()));
    if (!out)
        fail(path, ": writing the training state failed");
}

QatTrainState loadQatTrainState(const std::string& path)
{
    SafetensorsFile f(path);
    QatTrainState s;
    auto number = [&](const char* key) {
        auto it = f.metadata().find(key);
        if (it == f.metadata().end())
            fail(path, ": no \"", key, "\" in the metadata of a QAT training state");
        try {
            return int64_t(std::stoll(it->second));
        } catch (const std::exception&) {
            fail(path, ": metadata \"", key, "\" is ", quoted(it->second), ", expected an integer");
        }
    };
    s.step = number("step");
    s.adamSteps = number("adam_steps");
    for (const SafetensorsEntry& e : f.tensors()) {
        if (e.dtype != DType::Float)
            fail(path, ": tensor ", quoted(e.name), " is ", e.dtypeName, ", expected F32");
        const std::vector<float> v = f.tensor(e.name).toFloat();
        const auto slash = e.name.find('/');
        const std::string kind = e.name.substr(0, slash), name = slash == std::string::npos ? "" : e.name.substr(slash + 1);
        if (kind == "value" && !name.empty())
            s.values[name] = v;
        else if (kind == "m" && !name.empty())
            s.moments[name].m = v;
        else if (kind == "v" && !name.empty())
            s.moments[name].v = v;
        else
            fail(path, ": tensor ", quoted(e.name), " is not value/, m/ or v/<param>");
    }
    for (const auto& [name, m] : s.moments)
        if (m.m.size() != m.v.size())
            fail(path, ": the moments m/", name, " and v/", name, " differ in size");
    return s;
}

std::vector<QatBlock> partitionBlocks(const Graph& g, const std::set<std::string>& layers)
{
    if (g.inputs.size() != 1 || g.outputs.size() != 1)
        fail("qat blocks: the graph has ", g.inputs.size(), " inputs and ", g.outputs.size(),
            " outputs; block by block training needs one of each");
    std::map<std::string, int> uses; // readers still to come (the graph output: one more)
    for (const Node& n : g.nodes)
        for (const auto& in : n.inputs)
            if (!in.empty() && !g.constant(in))
                ++uses[in];
    ++uses[g.outputs.front().name];
    const std::map<std::string, int> readers = uses;
    std::set<std::string> live = {g.inputs.front().name};
    std::vector<QatBlock> blocks;
    QatBlock cur;
    cur.input = g.inputs.front().name;
    bool hasLayer = false;
    for (int i = 0; i < int(g.nodes.size()); ++i) {
        const Node& n = g.nodes[std::size_t(i)];
        cur.nodes.push_back(i);
        hasLayer |= layers.count(n.name) != 0;
        for (const auto& in : n.inputs)
            if (!in.empty() && !g.constant(in) && --uses[in] == 0)
                live.erase(in);
        for (const auto& out : n.outputs)
            if (!out.empty() && uses[out] > 0)
                live.insert(out);
        // Cut right before a layer, so a block ends with its activations, or where the one
        // live value forks (a residual stream: a pre-norm transformer's layer ends there).
        if (live.size() == 1 && hasLayer && i + 1 < int(g.nodes.size()) &&
            (layers.count(g.nodes[std::size_t(i + 1)].name) || readers.at(*live.begin()) >= 2)) {
            cur.output = *live.begin();
            blocks.push_back(cur);
            cur = QatBlock {};
            cur.input = blocks.back().output;
            hasLayer = false;
        }
    }
    cur.output = g.outputs.front().name;
    if (!blocks.empty() && !hasLayer) { // a tail without layers joins the block before it
        QatBlock& last = blocks.back();
        last.nodes.insert(last.nodes.end(), cur.nodes.begin(), cur.nodes.end());
        last.output = cur.output;
    } else {
        blocks.push_back(cur);
    }
    return blocks;
}

namespace {

// The graph of one block: its nodes and initializers (copies: the FP32 values of the
// block's weights while the session's graph is trained in place; a weight of
// `fp32` is taken from there), its input and output.
Graph blockGraph(const Graph& g, const QatBlock& b, const std::map<std::string, Tensor>& fp32 = {})
{
    Graph sub;
    sub.name = g.name + ":" + b.output;
    sub.opsets = g.opsets;
    for (int i : b.nodes) {
        const Node& n = g.nodes[std::size_t(i)];
        sub.nodes.push_back(n);
        for (const auto& in : n.inputs)
            if (auto f = fp32.find(in); f != fp32.end())
                sub.initializers.emplace(in, f->second);
            else if (auto it = g.initializers.find(in); it != g.initializers.end())
                sub.initializers.emplace(in, it->second);
    }
    ValueInfo in;
    in.name = b.input;
    in.dtype = DType::Float;
    if (!g.inputs.empty() && g.inputs.front().name == b.input)
        in = g.inputs.front(); // token ids stay integers
    sub.inputs.push_back(in);
    ValueInfo out;
    out.name = b.output;
    out.dtype = DType::Float;
    sub.outputs.push_back(out);
    sub.index();
    return sub;
}

void checkQatInputs(const Dataset& train, const QatOptions& options)
{
    if (!options.config.algorithms.empty())
        fail("qat: the config's algorithms (", options.config.algorithms.front().name,
            ", ...) are not applied in training; remove them");
    if (train.count() < options.batch)
        fail("qat: the training data ", quoted(train.path), " has ", train.count(), " samples, fewer than a batch of ",
            options.batch);
}

// Hands the heap's free pages back to the system. Block by block, what a phase freed
// (the whole-model nets, a block's values below malloc's mmap threshold) would else
// stay resident beside the next phase's large buffers (mmapped anew): the peak.
void releaseFreedQatMemory()
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

QuantizeOptions qatSessionOptions(const QatOptions& options)
{
    QuantizeOptions qo;
    qo.config = options.config;
    qo.batch = options.batch;
    qo.calibLimit = options.calibLimit;
    qo.threads = options.threads;
    return qo;
}

// The training on `session` (its graph: the student, trained in place). `teacher`: the
// FP32 model, or nullptr when the student is the teacher and training is block by
// block (the FP32 outputs then come from the session's graph before training, and
// from each block's FP32 weights while it trains).
QatResult trainOnSession(QuantSession& session, const Graph* teacher, bool teacherIsStudent, const Dataset& train,
    const Dataset& heldOut, const QatOptions& options, const QatCallbacks& callbacks, Progress& progress,
    const CancelToken& cancel);

} // namespace

QatResult trainQat(const Graph& teacher, const Graph& student, const Dataset& train, const Dataset& heldOut,
    const QatOptions& options, const QatCallbacks& callbacks, Progress& progress, const CancelToken& cancel)
{
    checkQatInputs(train, options);
    QuantSession session(student, qatSessionOptions(options));
    return trainOnSession(
        session, &teacher, &teacher == &student, train, heldOut, options, callbacks, progress, cancel);
}

QatResult trainQat(Graph&& model, const Dataset& train, const Dataset& heldOut, const QatOptions& options,
    const QatCallbacks& callbacks, Progress& progress, const CancelToken& cancel)
{
    checkQatInputs(train, options);
    std::optional<Graph> teacher; // end to end reads the FP32 model at every step
    if (!options.blockwise)
        teacher = model;
    QuantSession session(std::move(model), qatSessionOptions(options));
    return trainOnSession(session, teacher ? &*teacher : nullptr, true, train, heldOut, options, callbacks, progress,
        cancel);
}

namespace {

QatResult trainOnSession(QuantSession& session, const Graph* teacher, bool teacherIsStudent, const Dataset& train,
    const Dataset& heldOut, const QatOptions& options, const QatCallbacks& callbacks, Progress& progress,
    const CancelToken& cancel)
{
    session.refreshLayers();
    session.checkRanges();
    Progress cal = progress.sub(0.0, 0.05);
    session.calibrate(train.slice(0, std::min(options.calibLimit, train.count())), cal, cancel);

    NetOptions no;
    no.activations = session.activationParams;
    for (const SessionLayer& l : session.layers())
        if (!l.spec.weight.isFloat())
            no.weights[l.weight] = {session.weightSpec(l), l.outAxis, l.inAxis};
    for (const auto& entry : session.operandQuant)
        if (!entry.second.spec.isFloat())
            no.operands.push_back(entry.second);
    no.learnScales = options.learnScales;
    no.learnWeights = options.learnWeights;
    const Graph& g = session.graph();
    // The weights are the session graph's tensors, trained in place (no copy).
    auto params = std::make_shared<ParamStore>();
    std::map<int64_t, std::unique_ptr<Net>> nets; // by batch size, sharing params
    // Block by block, the whole-model nets only evaluate: their params stay frozen (no
    // gradient buffers), they hold no fake-quantized weights between ops, and each
    // block's net makes its own params trainable while it trains.
    NetOptions wholeNo = no;
    if (options.blockwise) {
        wholeNo.learnScales = wholeNo.learnWeights = false;
        wholeNo.forwardOnly = true;
    }
    auto netFor = [&](int64_t n) -> Net& {
        auto& net = nets[n];
        if (!net) {
            params->borrowWeights = true; // from the session's graph only (never a block's FP32 copy)
            net = std::make_unique<Net>(g, train.inputShapes(n), params, wholeNo);
            params->borrowWeights = false;
        }
        return *net;
    };
    // Attention maps: Softmax outputs read by a MatMul of two computed values.
    std::vector<std::string> attentionMaps;
    if (options.attentionWeight > 0 && !options.blockwise)
        for (const Node& n : session.graph().nodes)
            if (n.opType == "Softmax")
                for (const Node& m : session.graph().nodes)
                    if (m.opType == "MatMul" && m.inputs.size() == 2 && !session.graph().constant(m.inputs[0]) &&
                        !session.graph().constant(m.inputs[1]) &&
                        (m.inputs[0] == n.outputs[0] || m.inputs[1] == n.outputs[0])) {
                        attentionMaps.push_back(n.outputs[0]);
                        break;
                    }
    if (options.attentionWeight > 0 && !options.blockwise && attentionMaps.empty())
        fail("qat: attention_weight is set but the model has no attention map (a Softmax read by a MatMul of two "
             "computed values)");
    std::map<int64_t, std::unique_ptr<Plan>> teachers;
    Plan* lastTeacher = nullptr;
    auto teacherLogits = [&](const std::vector<Tensor>& inputs, int64_t n) {
        auto& plan = teachers[n];
        if (!plan) {
            CompileOptions co;
            co.inputShapes = train.inputShapes(n);
            co.threads = options.threads;
            co.keepValues.insert(attentionMaps.begin(), attentionMaps.end());
            plan = compilePlan(teacher ? *teacher : g, co); // no teacher: the session's graph, before training
        }
        lastTeacher = plan.get();
        Tensor t = plan->run(inputs).front();
        return t.toFloat();
    };
    Net* trainNet = &netFor(options.batch);
    const Shape outShape = trainNet->outputShape();
    const int64_t classes = outShape.empty() ? 1 : outShape.back();

    QatResult result;
    auto scales = [&] {
        std::map<std::string, float> s;
        for (const auto& [value, q] : no.activations)
            s[value] = params->params[std::size_t(params->find(value + ".scale"))].value[0];
        for (const OperandQuant& q : no.operands) // "<point>" per tensor, "<point>[slice]" else
            if (const int i = params->find(q.point.name + ".scale"); i >= 0) {
                const ParamValues& v = params->params[std::size_t(i)].value;
                for (std::size_t c = 0; c < v.size(); ++c)
                    s[v.size() == 1 ? q.point.name : str(q.point.name, "[", c, "]")] = v[c];
            }
        return s;
    };
    result.initialScales = scales();

    // Held-out: teacher logits once, then the student's KD loss and top-1 per evaluation.
    const int64_t evalCount = options.evalLimit >= 0 ? std::min(options.evalLimit, heldOut.count()) : heldOut.count();
    std::vector<float> heldTeacher;
    for (int64_t s = 0; s < evalCount; s += options.batch) {
        cancel.check();
        const int64_t n = std::min(options.batch, evalCount - s);
        const auto t = teacherLogits(heldOut.batch(s, n), n);
        heldTeacher.insert(heldTeacher.end(), t.begin(), t.end());
    }
    auto top1Of = [&](const std::vector<float>& logits) -> std::optional<double> {
        if (!heldOut.labels || evalCount == 0 || int64_t(logits.size()) != evalCount * classes)
            return std::nullopt; // labels are per sample: classifiers only
        int64_t right = 0;
        for (int64_t i = 0; i < evalCount; ++i)
            right += argmaxRow(logits.data() + i * classes, classes) == (*heldOut.labels)[std::size_t(i)];
        return double(right) / double(evalCount);
    };
    result.fp32Top1 = top1Of(heldTeacher);
    auto evaluate = [&](int64_t step) {
        QatEval e;
        e.step = step;
        e.samples = evalCount;
        std::vector<float> logits;
        PerplexityMeter ppl;
        for (int64_t s = 0; s < evalCount; s += options.batch) {
            cancel.check();
            const int64_t n = std::min(options.batch, evalCount - s);
            Net& net = netFor(n);
            const auto& out = net.forward(heldOut.batch(s, n));
            logits.insert(logits.end(), out.begin(), out.end());
            if (heldOut.targets)
                ppl.add(Tensor::fromVector<float>(net.outputShape(), out), heldOut.targetBatch(s, n));
        }
        if (ppl.tokens() > 0)
            e.perplexity = ppl.perplexity();
        if (evalCount > 0)
            e.kd = distillationLoss(logits, heldTeacher, int64_t(logits.size()) / classes, options.temperature, 0, {});
        e.top1 = top1Of(logits);
        e.scales = scales();
        if (options.blockwise) { // block by block, one block's net at a time: rebuilt for the next evaluation
            nets.clear();
            releaseFreedQatMemory();
        }
        result.evals.push_back(e);
        if (callbacks.onEval)
            callbacks.onEval(e);
        return e;
    };
    // The weights are the session graph's (borrowed), so a checkpoint copies that graph
    // and writes in only the params of their own; the last one takes the session's graph,
    // so the trained weights are in memory once while the checkpoint is recorded.
    Adam adam; // of the phase running
    std::vector<AdamState> states;
    auto checkpoint = [&](int64_t step, bool last) {
        if (!callbacks.onCheckpoint)
            return;
        QatCheckpoint c;
        c.step = step;
        if (!options.blockwise) {
            c.state = std::make_shared<QatTrainState>();
            c.state->step = step;
            c.state->adamSteps = adam.steps();
            for (std::size_t i = 0; i < params->params.size(); ++i) {
                const Param& p = params->params[i];
                c.state->values[p.name] = p.value.toVector();
                if (i < states.size() && !states[i].m.empty())
                    c.state->moments[p.name] = last ? std::move(states[i]) : states[i];
            }
        }
        if (last)
            c.graph = std::move(session.graph()); // nothing reads it after the last checkpoint
        else
            c.graph = g;
        for (Param& p : params->params)
            if (!p.isScale) {
                if (!p.value.borrowed()) {
                    Tensor t = Tensor(DType::Float, p.shape);
                    std::copy(p.value.begin(), p.value.end(), t.data<float>().begin());
                    t.name = p.name;
                    c.graph.initializers[p.name] = std::move(t);
                }
                if (last) {
                    p.value.release();
                    std::vector<float>().swap(p.grad);
                }
            }
        c.graph.index();
        c.config = options.config;
        // The learned grids as ranges: [(qmin - zero point) * scale, (qmax - zero point) * scale].
        auto rangeOf = [](const QParams& q, float s) {
            return std::pair<float, float> {float(q.qmin - q.zeroPoint) * s, float(q.qmax - q.zeroPoint) * s};
        };
        for (const auto& [value, q] : no.activations)
            c.config.ranges[value] = rangeOf(q, params->params[std::size_t(params->find(value + ".scale"))].value[0]);
        for (const OperandQuant& q : no.operands) // per slice (static granularities; per token learns nothing)
            if (const int i = params->find(q.point.name + ".scale"); i >= 0) {
                std::vector<std::pair<float, float>>& r = c.config.attention.ranges[q.point.name];
                r.clear();
                for (std::size_t k = 0; k < q.params.size(); ++k)
                    r.push_back(rangeOf(q.params[k], params->params[std::size_t(i)].value[k]));
            }
        callbacks.onCheckpoint(c);
    };

    const int64_t startStep = options.resume ? options.resume->step : 0;
    if (options.resume) {
        if (options.blockwise)
            fail("qat: resuming from an optimizer state is for end-to-end training, not block by block");
        if (startStep >= options.steps)
            fail("qat: the checkpoint is at step ", startStep, " of ", options.steps, "; nothing is left to train");
        for (const auto& [name, v] : options.resume->values) {
            const int i = params->find(name);
            if (i < 0 || params->params[std::size_t(i)].value.size() != v.size())
                fail("qat: the resumed state's param ", quoted(name),
                    i < 0 ? " is not in the model" : " has another size than the model's");
            params->params[std::size_t(i)].value.assign(v);
        }
    }
    result.initialTop1 = evaluate(startStep).top1;
    if (options.blockwise) { // training reads one block at a time: drop the whole-model nets and plans
        nets.clear();
        teachers.clear();
        trainNet = nullptr;
        releaseFreedQatMemory();
    }

    // Phases: the whole graph, or one block after another (steps split between them).
    struct Phase {
        Net* net;
        const QatBlock* block; // nullptr: end to end
        int64_t first, last;   // steps
    };
    std::vector<Phase> phases;
    std::vector<QatBlock> blocks;
    // The FP32 output a block learns: with a teacher other than the student, the
    // teacher's plan keeping every block boundary; else each block's plan on its FP32
    // weights (blockGraph's copies) from the FP32 model's input to the block
    // (`fp32Captured`, as `captured` below), so the FP32 weights are the session
    // graph's until a block trains them. A weight read by several blocks keeps its
    // FP32 values in `sharedFp32` until the last of them.
    std::unique_ptr<Plan> blockTeacher;
    std::map<std::string, Tensor> sharedFp32;
    std::map<std::string, std::size_t> lastReader; // a weight of sharedFp32 -> the last block reading it
    if (options.blockwise) {
        std::set<std::string> layerNames;
        for (const SessionLayer& l : session.layers())
            layerNames.insert(l.name);
        blocks = partitionBlocks(g, layerNames);
        const int64_t per = std::max<int64_t>(1, options.steps / int64_t(blocks.size()));
        if (!teacherIsStudent) {
            CompileOptions co;
            co.inputShapes = train.inputShapes(options.batch);
            co.threads = options.threads;
            for (const QatBlock& b : blocks)
                if (b.input != g.inputs.front().name)
                    co.keepValues.insert(b.input); // BN folding keeps the names, so the teacher has them
            blockTeacher = compilePlan(*teacher, co);
        } else {
            std::map<std::string, std::set<std::size_t>> readers;
            for (std::size_t k = 0; k < blocks.size(); ++k)
                for (int i : blocks[k].nodes)
                    for (const std::string& in : g.nodes[std::size_t(i)].inputs)
                        if (const int p = params->find(in); p >= 0 && params->params[std::size_t(p)].value.borrowed())
                            readers[in].insert(k);
            for (const auto& [name, ks] : readers)
                if (ks.size() > 1) {
                    sharedFp32[name] = g.initializers.at(name);
                    lastReader[name] = *ks.rbegin();
                }
        }
        for (std::size_t k = 0; k < blocks.size(); ++k) {
            const int64_t first = int64_t(k) * per + 1;
            phases.push_back(
                {nullptr, &blocks[k], first, k + 1 == blocks.size() ? std::max(options.steps, first) : first + per - 1});
        }
    } else {
        phases.push_back({trainNet, nullptr, 1, options.steps});
    }
    const int64_t totalSteps = phases.back().last;

    // Block by block, the samples drawn are those of whole batches (the first
    // count / batch * batch), whose inputs to the block in training are captured in
    // `captured` (the quantized model's, the blocks before it trained) when it starts.
    const int64_t pool = options.blockwise ? train.count() / options.batch * options.batch : train.count();
    std::vector<float> captured, fp32Captured;
    Shape capturedShape; // of one batch
    auto rowsOf = [&](const std::vector<float>& from, std::span<const int64_t> idx) { // samples idx of a pool
        Tensor t(DType::Float, capturedShape);
        const int64_t per = numelOf(capturedShape) / options.batch;
        float* to = t.data<float>().data();
        for (std::size_t k = 0; k < idx.size(); ++k)
            std::copy_n(from.data() + idx[k] * per, per, to + int64_t(k) * per);
        return t;
    };
    std::mt19937_64 rng(options.seed);
    std::vector<int64_t> order(static_cast<std::size_t>(pool));
    std::iota(order.begin(), order.end(), 0);
    std::size_t cursor = order.size();
    const bool labels = train.labels.has_value() && options.ceWeight > 0 &&
        numelOf(outShape) == options.batch * classes; // one label per sample
    std::vector<float> dOut;
    double trainSeconds = 0;
    for (std::size_t ph = 0; ph < phases.size(); ++ph) {
        Phase& phase = phases[ph];
        const int64_t length = phase.last - phase.first + 1;
        LrSchedule schedule {1.0, std::min(options.warmupSteps, length / 2), length, options.floorFraction};
        adam = Adam();
        std::optional<Graph> blockG; // this block's nodes and FP32 weights
        std::unique_ptr<Net> blockNet;  // the params it reads are the session graph's
        std::unique_ptr<Plan> fp32Block; // teacher is student: the block on its FP32 weights
        if (phase.block) {
            blockG = blockGraph(g, *phase.block, sharedFp32);
            const Shape in = ph == 0 ? train.inputShapes(options.batch).begin()->second : capturedShape;
            const std::map<std::string, Shape> shapes = {{phase.block->input, in}};
            blockNet = std::make_unique<Net>(*blockG, shapes, params, no);
            for (int i : blockNet->paramIds())
                params->setTrainable(i, params->params[std::size_t(i)].isScale ? no.learnScales : no.learnWeights);
            phase.net = blockNet.get();
            if (!blockTeacher) {
                CompileOptions co;
                co.inputShapes = shapes;
                co.threads = options.threads;
                fp32Block = compilePlan(*blockG, co);
            }
        }
        states.assign(params->params.size(), AdamState {});
        if (options.resume) {
            adam.setSteps(options.resume->adamSteps);
            for (const auto& [name, m] : options.resume->moments) {
                const int i = params->find(name);
                if (i < 0 || m.m.size() != params->params[std::size_t(i)].value.size() || m.v.size() != m.m.size())
                    fail("qat: the resumed state's moments of ", quoted(name), " do not fit the model's param");
                states[std::size_t(i)] = m;
            }
        }
        const bool logits = !phase.block || phase.block->output == g.outputs.front().name;
        auto nextBatch = [&] { // the sample order: reshuffled when the pool runs out
            if (cursor + std::size_t(options.batch) > order.size()) {
                std::shuffle(order.begin(), order.end(), rng);
                cursor = 0;
            }
        };
        for (int64_t step = phase.first; step <= std::min(startStep, phase.last); ++step) { // resumed: replay the order
            nextBatch();
            cursor += std::size_t(options.batch);
        }
        for (int64_t step = std::max(phase.first, startStep + 1); step <= phase.last; ++step) {
            cancel.check();
            const auto t0 = std::chrono::steady_clock::now();
            nextBatch();
            std::span<const int64_t> idx(order.data() + cursor, std::size_t(options.batch));
            cursor += std::size_t(options.batch);
            auto inputs = gather(train, idx);
            std::vector<Tensor> blockInputs;
            std::vector<float> target;
            if (phase.block) { // the block's input in the quantized model (the blocks before trained), FP32 output
                if (fp32Block) {
                    std::vector<Tensor> in32;
                    if (ph > 0)
                        in32.push_back(rowsOf(fp32Captured, idx));
                    target = fp32Block->run(ph > 0 ? in32 : inputs).front().toFloat();
                } else {
                    const std::vector<Tensor> outs = blockTeacher->run(inputs);
                    target = logits ? outs.front().toFloat() : blockTeacher->valueOf(phase.block->output).toFloat();
                }
                if (ph > 0)
                    blockInputs.push_back(rowsOf(captured, idx));
            } else {
                target = teacherLogits(inputs, options.batch);
            }
            const auto& out = phase.net->forward(blockInputs.empty() ? inputs : blockInputs);
            dOut.assign(out.size(), 0.f);
            QatStep st;
            st.step = step;
            st.block = phase.block ? int(ph) : -1;
            if (logits) {
                st.kd = distillationLoss( // per row of the last axis (per token of a language model)
                    out, target, int64_t(out.size()) / classes, options.temperature, options.kdWeight, dOut);
                if (labels) {
                    std::vector<int64_t> y(idx.size());
                    for (std::size_t k = 0; k < idx.size(); ++k)
                        y[k] = (*train.labels)[std::size_t(idx[k])];
                    st.ce = crossEntropyLoss(out, y, options.batch, options.ceWeight, dOut);
                }
                st.loss = options.kdWeight * st.kd + (labels ? options.ceWeight * st.ce : 0);
                if (!phase.block && !attentionMaps.empty()) {
                    const double w = options.attentionWeight / double(attentionMaps.size());
                    for (const std::string& name : attentionMaps) {
                        const std::vector<float> fp32 = lastTeacher->valueOf(name).toFloat();
                        const std::vector<float>& q = phase.net->rawValue(name);
                        std::vector<float> d(q.size(), 0.f);
                        const Shape shape = phase.net->shapeOf(name);
                        const int64_t rows = int64_t(q.size()) / std::max<int64_t>(shape.empty() ? 1 : shape.back(), 1);
                        st.attention += attentionKlLoss(q, fp32, rows, w, d) / double(attentionMaps.size());
                        phase.net->addValueGradient(name, d);
                    }
                    st.loss += options.attentionWeight * st.attention;
                }
            } else {
                st.mse = st.loss = mseLoss(out, target, 1.0, dOut);
            }
            params->zeroGrad();
            phase.net->backward(dOut);
            const double factor = schedule.at(step - phase.first);
            st.lr = options.lr * factor;
            adam.beginStep();
            for (std::size_t i = 0; i < params->params.size(); ++i) {
                Param& p = params->params[i];
                if (p.trainable)
                    adam.update(states[i], p.value, p.grad, (p.isScale ? options.scaleLr : options.lr) * factor);
            }
            phase.net->clampScales();
            trainSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            result.steps.push_back(st);
            if (callbacks.onStep)
                callbacks.onStep(st);
            progress.report(0.05 + 0.95 * double(step) / double(totalSteps),
                str("QAT step ", step, "/", totalSteps, ", loss ", st.loss));
            if (options.evalEvery > 0 && step % options.evalEvery == 0 && step != totalSteps)
                evaluate(step);
            if (options.checkpointEvery > 0 && step % options.checkpointEvery == 0 && step != totalSteps)
                checkpoint(step, false);
        }
        if (!blockNet)
            continue;
        if (ph + 1 < phases.size()) { // the next block's inputs: this block, trained (and FP32), on the pool
            cancel.check();
            std::vector<float> next, next32;
            for (int64_t s = 0; s < pool; s += options.batch) {
                std::vector<int64_t> idx(std::size_t(options.batch));
                std::iota(idx.begin(), idx.end(), s);
                std::vector<Tensor> in, in32;
                if (ph == 0) {
                    in = gather(train, idx);
                } else {
                    in.push_back(rowsOf(captured, idx));
                    if (fp32Block)
                        in32.push_back(rowsOf(fp32Captured, idx));
                }
                const auto& out = blockNet->forward(in);
                next.insert(next.end(), out.begin(), out.end());
                if (fp32Block) {
                    const std::vector<float> o32 = fp32Block->run(ph == 0 ? in : in32).front().toFloat();
                    next32.insert(next32.end(), o32.begin(), o32.end());
                }
            }
            capturedShape = blockNet->outputShape();
            captured = std::move(next);
            fp32Captured = std::move(next32);
        }
        for (auto it = lastReader.begin(); it != lastReader.end();) // FP32 copies no later block reads
            if (it->second == ph) {
                sharedFp32.erase(it->first);
                it = lastReader.erase(it);
            } else {
                ++it;
            }
        for (int i : blockNet->paramIds())
            params->setTrainable(i, false);
        states.clear();
        blockNet.reset();
        fp32Block.reset();
        blockG.reset();
        releaseFreedQatMemory();
    }
    result.secondsPerStep = totalSteps > startStep ? trainSeconds / double(totalSteps - startStep) : 0;
    blockTeacher.reset();
    sharedFp32.clear();
    result.finalTop1 = evaluate(totalSteps).top1;
    nets.clear(); // training is over: only the checkpoint is left to make
    teachers.clear();
    checkpoint(totalSteps, true);
    return result;
}

} // namespace

} // namespace qs::train
