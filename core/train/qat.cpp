#include "train/qat.h"

#include "quant/session.h"
#include "runtime/plan.h"
#include "train/loss.h"
#include "train/net.h"
#include "train/optim.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <random>

namespace qs::train {

nlohmann::json QatOptions::toJson() const
{
    return {{"steps", steps}, {"batch", batch}, {"calib_limit", calibLimit}, {"eval_limit", evalLimit},
        {"eval_every", evalEvery}, {"checkpoint_every", checkpointEvery}, {"lr", lr}, {"scale_lr", scaleLr},
        {"warmup_steps", warmupSteps}, {"floor_fraction", floorFraction}, {"temperature", temperature},
        {"kd_weight", kdWeight}, {"ce_weight", ceWeight}, {"learn_scales", learnScales},
        {"learn_weights", learnWeights}, {"seed", seed}};
}

void QatOptions::apply(const nlohmann::json& j, const std::string& where)
{
    if (!j.is_object())
        fail(where, ": expected an object of training options");
    for (const auto& [key, v] : j.items()) {
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
        if (key == "steps") steps = count(1);
        else if (key == "batch") batch = count(1);
        else if (key == "calib_limit") calibLimit = count(1);
        else if (key == "eval_limit") evalLimit = v.is_number_integer() ? v.get<int64_t>() : count(0);
        else if (key == "eval_every") evalEvery = count(0);
        else if (key == "checkpoint_every") checkpointEvery = count(0);
        else if (key == "lr") lr = num();
        else if (key == "scale_lr") scaleLr = num();
        else if (key == "warmup_steps") warmupSteps = count(0);
        else if (key == "floor_fraction") floorFraction = num();
        else if (key == "temperature") temperature = num();
        else if (key == "kd_weight") kdWeight = num();
        else if (key == "ce_weight") ceWeight = num();
        else if (key == "learn_scales") learnScales = flag();
        else if (key == "learn_weights") learnWeights = flag();
        else if (key == "seed") seed = uint64_t(count(0));
        else
            fail(at, ": unknown field (expected steps, batch, calib_limit, eval_limit, eval_every, checkpoint_every, "
                     "lr, scale_lr, warmup_steps, floor_fraction, temperature, kd_weight, ce_weight, learn_scales, "
                     "learn_weights, seed)");
    }
    if (!(lr >= 0) || !(scaleLr >= 0) || !(temperature > 0) || !(kdWeight >= 0) || !(ceWeight >= 0) ||
        !(floorFraction >= 0 && floorFraction <= 1))
        fail(where, ": lr and scale_lr must be >= 0, temperature > 0, kd_weight and ce_weight >= 0, floor_fraction in [0, 1]");
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

QatResult trainQat(const Graph& teacher, const Graph& student, const Dataset& train, const Dataset& heldOut,
    const QatOptions& options, const QatCallbacks& callbacks, Progress& progress, const CancelToken& cancel)
{
    if (!options.config.algorithms.empty())
        fail("qat: the config's algorithms (", options.config.algorithms.front().name,
             ", ...) are not applied in training; remove them");
    if (train.count() < options.batch)
        fail("qat: the training data ", quoted(train.path), " has ", train.count(), " samples, fewer than a batch of ",
             options.batch);
    QuantizeOptions qo;
    qo.config = options.config;
    qo.batch = options.batch;
    qo.calibLimit = options.calibLimit;
    qo.threads = options.threads;
    QuantSession session(student, qo);
    session.refreshLayers();
    session.checkRanges();
    Progress cal = progress.sub(0.0, 0.05);
    session.calibrate(train.slice(0, std::min(options.calibLimit, train.count())), cal, cancel);

    NetOptions no;
    no.activations = session.activationParams;
    for (const SessionLayer& l : session.layers())
        if (!l.spec.weight.isFloat())
            no.weights[l.weight] = {session.weightSpec(l), l.outAxis, l.inAxis};
    no.learnScales = options.learnScales;
    no.learnWeights = options.learnWeights;
    no.threads = options.threads;
    const Graph& g = session.graph();
    auto params = std::make_shared<ParamStore>();
    std::map<int64_t, std::unique_ptr<Net>> nets; // by batch size, sharing params
    auto netFor = [&](int64_t n) -> Net& {
        auto& net = nets[n];
        if (!net)
            net = std::make_unique<Net>(g, train.inputShapes(n), params, no);
        return *net;
    };
    std::map<int64_t, std::unique_ptr<Plan>> teachers;
    auto teacherLogits = [&](const std::vector<Tensor>& inputs, int64_t n) {
        auto& plan = teachers[n];
        if (!plan) {
            CompileOptions co;
            co.inputShapes = train.inputShapes(n);
            co.threads = options.threads;
            plan = compilePlan(teacher, co);
        }
        Tensor t = plan->run(inputs).front();
        return t.toFloat();
    };
    Net& trainNet = netFor(options.batch);
    const int64_t classes = trainNet.outputShape().empty() ? 1 : trainNet.outputShape().back();

    QatResult result;
    auto scales = [&] {
        std::map<std::string, float> s;
        for (const auto& [value, q] : no.activations)
            s[value] = params->params[std::size_t(params->find(value + ".scale"))].value[0];
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
        if (!heldOut.labels || evalCount == 0)
            return std::nullopt;
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
        for (int64_t s = 0; s < evalCount; s += options.batch) {
            cancel.check();
            const int64_t n = std::min(options.batch, evalCount - s);
            const auto& out = netFor(n).forward(heldOut.batch(s, n));
            logits.insert(logits.end(), out.begin(), out.end());
        }
        if (evalCount > 0)
            e.kd = distillationLoss(logits, heldTeacher, evalCount, options.temperature, 0, {});
        e.top1 = top1Of(logits);
        e.scales = scales();
        result.evals.push_back(e);
        if (callbacks.onEval)
            callbacks.onEval(e);
        return e;
    };
    auto checkpoint = [&](int64_t step) {
        if (!callbacks.onCheckpoint)
            return;
        QatCheckpoint c;
        c.step = step;
        c.graph = g;
        for (const Param& p : params->params)
            if (!p.isScale) {
                Tensor t = Tensor::fromVector<float>(p.shape, p.value);
                t.name = p.name;
                c.graph.initializers[p.name] = std::move(t);
            }
        c.graph.index();
        c.config = options.config;
        for (const auto& [value, q] : no.activations) {
            const float s = params->params[std::size_t(params->find(value + ".scale"))].value[0];
            c.config.ranges[value] = {float(q.qmin - q.zeroPoint) * s, float(q.qmax - q.zeroPoint) * s};
        }
        callbacks.onCheckpoint(c);
    };

    result.initialTop1 = evaluate(0).top1;
    LrSchedule schedule{1.0, options.warmupSteps, options.steps, options.floorFraction}; // a factor of both rates
    Adam adam;
    std::vector<AdamState> states(params->params.size());
    std::mt19937_64 rng(options.seed);
    std::vector<int64_t> order(std::size_t(train.count()));
    std::iota(order.begin(), order.end(), 0);
    std::size_t cursor = order.size();
    const bool labels = train.labels.has_value() && options.ceWeight > 0;
    std::vector<float> dOut;
    double trainSeconds = 0;
    for (int64_t step = 1; step <= options.steps; ++step) {
        cancel.check();
        const auto t0 = std::chrono::steady_clock::now();
        if (cursor + std::size_t(options.batch) > order.size()) {
            std::shuffle(order.begin(), order.end(), rng);
            cursor = 0;
        }
        std::span<const int64_t> idx(order.data() + cursor, std::size_t(options.batch));
        cursor += std::size_t(options.batch);
        const auto inputs = gather(train, idx);
        const auto target = teacherLogits(inputs, options.batch);
        const auto& out = trainNet.forward(inputs);
        dOut.assign(out.size(), 0.f);
        QatStep st;
        st.step = step;
        st.kd = distillationLoss(out, target, options.batch, options.temperature, options.kdWeight, dOut);
        if (labels) {
            std::vector<int64_t> y(idx.size());
            for (std::size_t k = 0; k < idx.size(); ++k)
                y[k] = (*train.labels)[std::size_t(idx[k])];
            st.ce = crossEntropyLoss(out, y, options.batch, options.ceWeight, dOut);
        }
        st.loss = options.kdWeight * st.kd + (labels ? options.ceWeight * st.ce : 0);
        params->zeroGrad();
        trainNet.backward(dOut);
        const double factor = schedule.at(step - 1);
        st.lr = options.lr * factor;
        adam.beginStep();
        for (std::size_t i = 0; i < params->params.size(); ++i) {
            Param& p = params->params[i];
            if (p.trainable)
                adam.update(states[i], p.value, p.grad, (p.isScale ? options.scaleLr : options.lr) * factor);
        }
        trainNet.clampScales();
        trainSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        result.steps.push_back(st);
        if (callbacks.onStep)
            callbacks.onStep(st);
        progress.report(0.05 + 0.95 * double(step) / double(options.steps),
            str("QAT step ", step, "/", options.steps, ", loss ", st.loss));
        if (options.evalEvery > 0 && step % options.evalEvery == 0 && step != options.steps)
            evaluate(step);
        if (options.checkpointEvery > 0 && step % options.checkpointEvery == 0 && step != options.steps)
            checkpoint(step);
    }
    result.secondsPerStep = options.steps > 0 ? trainSeconds / double(options.steps) : 0;
    result.finalTop1 = evaluate(options.steps).top1;
    checkpoint(options.steps);
    return result;
}

} // namespace qs::train
