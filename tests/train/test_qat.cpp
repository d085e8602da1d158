// The training job: Adam and the schedule against hand-computed steps, the options'
// JSON, and a tiny W4A4 distillation run whose held-out loss falls, whose checkpoint
// quantizes through QuantSession to the numbers training saw, and which cancels.
#include "support/onnx_builder.h"

#include "data/dataset.h"
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "train/loss.h"
#include "train/optim.h"
#include "train/qat.h"
#include "util/error.h"

#include <QtTest>

#include <QTemporaryDir>

#include <cmath>
#include <fstream>
#include <random>

using namespace qs;
using namespace qs::train;
using qs::test::OnnxBuilder;

namespace {

// Values of N(0, sigma), drawn in sequence from a seeded generator.
struct NormalValues {
    std::mt19937 rng;
    std::normal_distribution<float> g;
    NormalValues(uint32_t seed, float sigma) : rng(seed), g(0.f, sigma) { }
    std::vector<float> operator()(std::size_t n)
    {
        std::vector<float> v(n);
        for (float& x : v)
            x = g(rng);
        return v;
    }
};

// x [N,1,6,6] -> Conv 3x3 -> Relu -> Conv 3x3 stride 2 -> Relu -> GAP -> Flatten -> Gemm -> [N,5]
Graph tinyCnn(uint32_t seed)
{
    NormalValues values(seed, 0.6f);
    OnnxBuilder b(13);
    b.input("x", {-1, 1, 6, 6});
    b.initializer("w1", {4, 1, 3, 3}, values(36));
    b.initializer("b1", {4}, values(4));
    b.initializer("w2", {6, 4, 3, 3}, values(216));
    b.initializer("w3", {5, 6}, values(30));
    b.initializer("b3", {5}, values(5));
    OnnxBuilder::intsAttr(b.node("Conv", {"x", "w1", "b1"}, {"c1"}, "conv1"), "pads", {1, 1, 1, 1});
    b.node("Relu", {"c1"}, {"r1"}, "relu1");
    OnnxBuilder::intsAttr(b.node("Conv", {"r1", "w2"}, {"c2"}, "conv2"), "strides", {2, 2});
    b.node("Relu", {"c2"}, {"r2"}, "relu2");
    b.node("GlobalAveragePool", {"r2"}, {"p"}, "gap");
    b.node("Flatten", {"p"}, {"f"}, "flatten");
    OnnxBuilder::intAttr(b.node("Gemm", {"f", "w3", "b3"}, {"y"}, "fc"), "transB", 1);
    b.output("y", {-1, 5});
    return importOnnxBytes(b.bytes(), "tiny_cnn.onnx", "");
}

// x [N,3,4] -> Q, K, V projections -> softmax(Q K^T) V -> [N,3,4]
Graph tinyAttention(uint32_t seed)
{
    NormalValues values(seed, 0.7f);
    OnnxBuilder b(13);
    b.input("x", {-1, 3, 4});
    for (const char* w : {"wq", "wk", "wv"})
        b.initializer(w, {4, 4}, values(16));
    b.node("MatMul", {"x", "wq"}, {"q"}, "q_proj");
    b.node("MatMul", {"x", "wk"}, {"k"}, "k_proj");
    b.node("MatMul", {"x", "wv"}, {"v"}, "v_proj");
    OnnxBuilder::intsAttr(b.node("Transpose", {"k"}, {"kt"}, "k_t"), "perm", {0, 2, 1});
    b.node("MatMul", {"q", "kt"}, {"s"}, "scores");
    OnnxBuilder::intAttr(b.node("Softmax", {"s"}, {"p"}, "softmax"), "axis", -1);
    b.node("MatMul", {"p", "v"}, {"y"}, "context");
    b.output("y", {-1, 3, 4});
    return importOnnxBytes(b.bytes(), "attn.onnx", "");
}

Dataset randomData(const Graph& g, int64_t n, uint64_t seed)
{
    DataOptions o;
    o.spec = "random:" + std::to_string(n);
    o.seed = seed;
    return loadDataset(o, g);
}

QatOptions w4a4(int64_t steps)
{
    QatOptions o;
    o.config.defaults.weight = QuantSpec {.bits = 4, .granularity = Granularity::Channel};
    o.config.defaults.activation = QuantSpec {.bits = 4, .symmetric = false};
    o.steps = steps;
    o.batch = 16;
    o.calibLimit = 64;
    o.evalEvery = 0;
    o.lr = 3e-3;
    o.scaleLr = 3e-3;
    o.warmupSteps = 5;
    o.temperature = 1;
    return o;
}

// The first value of a resumed run's training state that differs from the uninterrupted
// run's by more than 1e-5 relative (or a different set of values), empty when none does.
QString stateDifference(const QatTrainState& got, const QatTrainState& want)
{
    if (got.values.size() != want.values.size())
        return QString("%1 state values, expected %2").arg(got.values.size()).arg(want.values.size());
    for (const auto& [name, v] : want.values) {
        auto it = got.values.find(name);
        if (it == got.values.end())
            return QString("state value %1 is missing").arg(name.c_str());
        for (std::size_t i = 0; i < v.size(); ++i)
            if (!(std::abs(it->second[i] - v[i]) <= 1e-5f * (1 + std::abs(v[i]))))
                return QString("%1[%2]: %3 vs %4").arg(name.c_str()).arg(i).arg(it->second[i]).arg(v[i]);
    }
    return {};
}

} // namespace

class TestQat : public QObject {
    Q_OBJECT

private slots:
    void adamMatchesHandComputedSteps()
    {
        Adam adam;
        AdamState st;
        std::vector<float> w = {1.f, -2.f};
        // Step 1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2: w -= lr * sign(g).
        adam.beginStep();
        std::vector<float> g1 = {0.5f, -4.f};
        adam.update(st, w, g1, 0.1);
        QVERIFY(std::abs(w[0] - 0.9f) < 1e-6f);
        QVERIFY(std::abs(w[1] - (-1.9f)) < 1e-6f);
        // Step 2 against the formulas in double.
        adam.beginStep();
        std::vector<float> g2 = {-1.f, 2.f};
        adam.update(st, w, g2, 0.1);
        const double expect[2] = {0.9, -1.9};
        for (int i = 0; i < 2; ++i) {
            const double m = 0.9 * (0.1 * g1[i]) + 0.1 * g2[i];
            const double v = 0.999 * (0.001 * g1[i] * g1[i]) + 0.001 * g2[i] * g2[i];
            const double mhat = m / (1 - 0.81), vhat = v / (1 - 0.999 * 0.999);
            const double want = expect[i] - 0.1 * mhat / (std::sqrt(vhat) + 1e-8);
            QVERIFY2(std::abs(w[i] - want) < 1e-5, qPrintable(QString("%1 vs %2").arg(w[i]).arg(want)));
        }
        QVERIFY(std::abs(w[0] - 0.93661) < 1e-4); // by hand: 0.9 + 0.1 * 0.28947 / 0.79069
    }

    void scheduleWarmsUpThenDecays()
    {
        LrSchedule s {0.01, 10, 111, 0.1};
        QCOMPARE(s.at(0), 0.001);
        QCOMPARE(s.at(9), 0.01);
        QVERIFY(std::abs(s.at(10) - 0.01) < 1e-12);
        QVERIFY(std::abs(s.at(60) - 0.0055) < 1e-12); // halfway down the cosine: (peak + floor) / 2
        QVERIFY(std::abs(s.at(110) - 0.001) < 1e-12);
        QVERIFY(s.at(30) > s.at(31));
    }

    void optionsReadTheirJson()
    {
        QatOptions o;
        o.apply(nlohmann::json {{"steps", 7}, {"lr", 0.5}, {"learn_scales", false}}, "config.qat");
        QCOMPARE(o.steps, int64_t(7));
        QCOMPARE(o.lr, 0.5);
        QVERIFY(!o.learnScales);
        QatOptions back;
        back.apply(o.toJson(), "again");
        QCOMPARE(back.toJson(), o.toJson());
        try {
            o.apply(nlohmann::json {{"stepz", 3}}, "config.qat");
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("config.qat.stepz"), e.what());
        }
        QVERIFY_THROWS_EXCEPTION(Error, o.apply(nlohmann::json {{"steps", 0}}, "q"));
    }

    // Distillation at W4A4 lowers the held-out loss; the checkpoint (trained graph and
    // learned ranges) quantized by QuantSession computes what the trained net computed.
    void distillationLowersHeldOutLoss()
    {
        const Graph teacher = tinyCnn(11);
        const Dataset train = randomData(teacher, 256, 1), held = randomData(teacher, 48, 2);
        QatOptions o = w4a4(120);
        std::optional<QatCheckpoint> last;
        QatCallbacks cb;
        cb.onCheckpoint = [&](const QatCheckpoint& c) { last = c; };
        Progress progress;
        const QatResult r = trainQat(teacher, teacher, train, held, o, cb, progress, CancelToken());
        QCOMPARE(int(r.steps.size()), 120);
        QCOMPARE(int(r.evals.size()), 2);
        const double before = r.evals.front().kd, after = r.evals.back().kd;
        QVERIFY2(after < 0.5 * before, qPrintable(QString("held-out KD %1 -> %2").arg(before).arg(after)));
        double first = 0, lastLoss = 0;
        for (int i = 0; i < 10; ++i) {
            first += r.steps[std::size_t(i)].loss;
            lastLoss += r.steps[r.steps.size() - 1 - std::size_t(i)].loss;
        }
        QVERIFY(lastLoss < first);
        bool scaleMoved = false;
        for (const auto& [value, s] : r.evals.back().scales)
            scaleMoved |= std::abs(s - r.initialScales.at(value)) > 1e-4f * r.initialScales.at(value);
        QVERIFY(scaleMoved);

        QVERIFY(last.has_value());
        QCOMPARE(last->step, int64_t(120));
        QCOMPARE(int(last->config.ranges.size()), 3); // the three layer inputs
        QuantizeOptions qo;
        qo.config = last->config;
        qo.calibLimit = 16;
        QuantSession s(last->graph, qo);
        s.refreshLayers();
        s.calibrate(train.slice(0, 16), progress, CancelToken());
        s.quantizeWeights();
        const int64_t n = held.count();
        const Tensor q = s.compile(true, held.inputShapes(n))->run(held.batch(0, n)).front();
        CompileOptions co;
        co.inputShapes = held.inputShapes(n);
        const Tensor t = compilePlan(teacher, co)->run(held.batch(0, n)).front();
        const double kd = distillationLoss(q.toFloat(), t.toFloat(), n, o.temperature, 0, {});
        QVERIFY2(std::abs(kd - after) < 1e-3 * (1 + after),
            qPrintable(QString("session %1, training %2").arg(kd).arg(after)));
    }

    // Resuming from the state of a checkpoint at step 12 (saved to a file and read back:
    // params, Adam's moments and step count) gives the run of 24 steps never interrupted:
    // the same weights, scales and held-out loss.
    void resumeEqualsUninterrupted()
    {
        const Graph teacher = tinyCnn(5);
        const Dataset train = randomData(teacher, 96, 1), held = randomData(teacher, 32, 2);
        QatOptions o = w4a4(24);
        o.checkpointEvery = 12;
        std::vector<QatCheckpoint> full, part;
        QatCallbacks cb;
        cb.onCheckpoint = [&](const QatCheckpoint& c) { full.push_back(c); };
        Progress progress;
        const QatResult a = trainQat(teacher, teacher, train, held, o, cb, progress, CancelToken());
        QCOMPARE(int(full.size()), 2);
        QVERIFY(full[0].state && full[0].state->step == 12 && full[0].state->adamSteps == 12);
        QVERIFY(!full[0].state->moments.empty());

        QTemporaryDir dir;
        const std::string path = dir.filePath("state.safetensors").toStdString();
        saveQatTrainState(*full[0].state, path);
        auto loaded = std::make_shared<QatTrainState>(loadQatTrainState(path));
        QCOMPARE(loaded->values, full[0].state->values);
        QCOMPARE(loaded->moments.size(), full[0].state->moments.size());
        QatOptions r = o;
        r.config = full[0].config;
        r.resume = loaded;
        cb.onCheckpoint = [&](const QatCheckpoint& c) { part.push_back(c); };
        const QatResult b = trainQat(teacher, full[0].graph, train, held, r, cb, progress, CancelToken());
        QCOMPARE(int(b.steps.size()), 12);
        QCOMPARE(b.steps.front().step, int64_t(13));
        QCOMPARE(int(part.size()), 1);
        const QString stateDiff = stateDifference(*part[0].state, *full[1].state);
        QVERIFY2(stateDiff.isEmpty(), qPrintable(stateDiff));
        QVERIFY(std::abs(b.evals.back().kd - a.evals.back().kd) <= 1e-6 * (1 + a.evals.back().kd));
        QCOMPARE(b.steps.back().loss, a.steps.back().loss);
        // Without the moments (Adam restarted) the run differs: the test can fail.
        auto noMoments = std::make_shared<QatTrainState>(*loaded);
        noMoments->moments.clear();
        noMoments->adamSteps = 0;
        r.resume = noMoments;
        part.clear();
        trainQat(teacher, full[0].graph, train, held, r, cb, progress, CancelToken());
        double diff = 0;
        for (const auto& [name, v] : full[1].state->values)
            for (std::size_t i = 0; i < v.size(); ++i)
                diff = std::max(diff, double(std::abs(part[0].state->values.at(name)[i] - v[i])));
        QVERIFY2(diff > 1e-4, qPrintable(QString::number(diff)));
        // A corrupt state file fails naming it.
        {
            std::ofstream bad(path, std::ios::binary | std::ios::trunc);
            bad << "not a state";
        }
        try {
            loadQatTrainState(path);
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("state.safetensors"), e.what());
        }
    }

    // Attention operands quantized (K per channel, Q, V per tensor, P asymmetric): the
    // checkpoint's config holds the learned operand grids (attention.ranges, through its
    // JSON), a run resumed from step 12 equals the uninterrupted one, and the last
    // checkpoint quantized by QuantSession computes what training evaluated (the learned
    // operand grids, not recalibrated ones).
    void resumeWithOperandsEqualsUninterrupted()
    {
        const Graph teacher = tinyAttention(8);
        const Dataset train = randomData(teacher, 64, 2), held = randomData(teacher, 32, 3);
        QatOptions o = w4a4(24);
        o.config.defaults.weight.bits = 8;
        o.config.defaults.activation.bits = 8;
        o.config.attention.q = OperandSpec {.bits = 4};
        o.config.attention.k = OperandSpec {.bits = 4, .granularity = OperandGranularity::Channel};
        o.config.attention.v = OperandSpec {.bits = 4};
        o.config.attention.p = OperandSpec {.bits = 4, .symmetric = false};
        o.checkpointEvery = 12;
        std::vector<QatCheckpoint> full, part;
        QatCallbacks cb;
        cb.onCheckpoint = [&](const QatCheckpoint& c) { full.push_back(c); };
        Progress progress;
        const QatResult a = trainQat(teacher, teacher, train, held, o, cb, progress, CancelToken());
        QCOMPARE(int(full.size()), 2);
        const auto& ranges = full[0].config.attention.ranges;
        QCOMPARE(int(ranges.size()), 4);
        QCOMPARE(int(ranges.at("scores:K").size()), 4); // per channel
        QCOMPARE(int(ranges.at("context:P").size()), 1);
        QCOMPARE(QuantConfig::fromJson(full[0].config.toJson()).attention, full[0].config.attention);
        for (const char* point : {"scores:Q", "context:V", "context:P"}) { // learned: they moved
            const auto& r = full[1].config.attention.ranges.at(point).front();
            const float s = a.evals.back().scales.at(point);
            QVERIFY2(std::abs((r.second - r.first) / s - (std::string(point) == "context:P" ? 15.f : 14.f)) < 1e-3f,
                point);
            QVERIFY2(s != a.initialScales.at(point), point);
        }

        QatOptions r = o;
        r.config = QuantConfig::fromJson(full[0].config.toJson()); // as the store records it
        r.resume = full[0].state;
        cb.onCheckpoint = [&](const QatCheckpoint& c) { part.push_back(c); };
        const QatResult b = trainQat(teacher, full[0].graph, train, held, r, cb, progress, CancelToken());
        QCOMPARE(int(part.size()), 1);
        const QString stateDiff = stateDifference(*part[0].state, *full[1].state);
        QVERIFY2(stateDiff.isEmpty(), qPrintable(stateDiff));
        QVERIFY2(std::abs(b.evals.back().kd - a.evals.back().kd) <= 1e-6 * (1 + a.evals.back().kd),
            qPrintable(QString("%1 vs %2").arg(b.evals.back().kd).arg(a.evals.back().kd)));

        QuantizeOptions qo;
        qo.config = full[1].config;
        QuantSession s(full[1].graph, qo);
        s.refreshLayers();
        s.calibrate(train, progress, CancelToken());
        s.quantizeWeights();
        for (const auto& [point, slices] : full[1].config.attention.ranges)
            for (std::size_t k = 0; k < slices.size(); ++k) {
                const QParams& q = s.operandQuant.at(point).params[k];
                const float learned = a.evals.back().scales.at(slices.size() == 1 ? point : str(point, "[", k, "]"));
                QVERIFY2(std::abs(q.scale - learned) <= 1e-6f * learned, point.c_str());
            }
        const int64_t n = held.count();
        const Tensor qy = s.compile(true, held.inputShapes(n))->run(held.batch(0, n)).front();
        CompileOptions co;
        co.inputShapes = held.inputShapes(n);
        const Tensor ty = compilePlan(teacher, co)->run(held.batch(0, n)).front();
        const double kd = distillationLoss(qy.toFloat(), ty.toFloat(), n * 3, o.temperature, 0, {});
        QVERIFY2(std::abs(kd - a.evals.back().kd) < 1e-4 * (1 + kd),
            qPrintable(QString("session %1, training %2").arg(kd).arg(a.evals.back().kd)));
        // A range list that does not fit the operand's slices fails naming the point.
        qo.config.attention.ranges["scores:K"].pop_back();
        QuantSession bad(full[1].graph, qo);
        bad.refreshLayers();
        try {
            bad.calibrate(train, progress, CancelToken());
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("attention.ranges.scores:K"), e.what());
        }
    }

    // Block by block with the student as teacher, each block learns its FP32 output from
    // a plan of its own FP32 weights (the session's graph trained in place, a weight of
    // two blocks kept FP32 for the second): the same losses, step by step, as with a
    // distinct teacher graph (the teacher's whole plan), also with the model handed over.
    void blocksLearnTheSameFromTheirOwnFp32Weights()
    {
        NormalValues values(6, 0.5f);
        OnnxBuilder b(13);
        b.input("x", {-1, 6});
        b.initializer("w", {6, 6}, values(36));
        b.initializer("w2", {6, 6}, values(36));
        b.node("MatMul", {"x", "w"}, {"m1"}, "mm1");
        b.node("Relu", {"m1"}, {"r1"}, "relu1");
        b.node("MatMul", {"r1", "w2"}, {"m2"}, "mm2");
        b.node("Relu", {"m2"}, {"r2"}, "relu2");
        b.node("MatMul", {"r2", "w"}, {"y"}, "mm3"); // w again: read by blocks 0 and 2
        b.output("y", {-1, 6});
        const Graph teacher = importOnnxBytes(b.bytes(), "shared.onnx", "");
        const Graph other = teacher; // a distinct teacher graph: the teacher's plan
        QCOMPARE(int(partitionBlocks(teacher, {"mm1", "mm2", "mm3"}).size()), 3);
        const Dataset train = randomData(teacher, 64, 1), held = randomData(teacher, 32, 2);
        QatOptions o = w4a4(30);
        o.blockwise = true;
        std::vector<Graph> trained;
        QatCallbacks cb;
        cb.onCheckpoint = [&](const QatCheckpoint& c) { trained.push_back(c.graph); };
        Progress progress;
        const QatResult want = trainQat(other, teacher, train, held, o, cb, progress, CancelToken());
        const QatResult same = trainQat(teacher, teacher, train, held, o, cb, progress, CancelToken());
        const QatResult moved = trainQat(Graph(teacher), train, held, o, cb, progress, CancelToken());
        QCOMPARE(int(trained.size()), 3);
        QCOMPARE(want.steps.back().block, 2);
        for (const QatResult* r : {&same, &moved}) {
            QCOMPARE(r->steps.size(), want.steps.size());
            for (std::size_t i = 0; i < want.steps.size(); ++i)
                QVERIFY2(std::abs(r->steps[i].loss - want.steps[i].loss) <= 1e-6 * (1 + want.steps[i].loss),
                    qPrintable(QString("step %1: %2 vs %3").arg(i + 1).arg(r->steps[i].loss).arg(want.steps[i].loss)));
            QVERIFY(std::abs(r->evals.back().kd - want.evals.back().kd) <= 1e-6 * (1 + want.evals.back().kd));
        }
        for (const char* w : {"w", "w2"}) {
            const auto a = trained[0].initializers.at(w).toFloat();
            QVERIFY(a != teacher.initializers.at(w).toFloat()); // trained
            for (const Graph& t : {trained[1], trained[2]}) {
                const auto v = t.initializers.at(w).toFloat();
                for (std::size_t i = 0; i < a.size(); ++i)
                    QVERIFY2(std::abs(v[i] - a[i]) <= 1e-5f * (1 + std::abs(a[i])), w);
            }
        }
    }

    void blocksCutWhereOneValueIsLive()
    {
        const Graph g = tinyCnn(1);
        const auto blocks = partitionBlocks(g, {"conv1", "conv2", "fc"});
        QCOMPARE(int(blocks.size()), 3);
        QCOMPARE(blocks[0].input, std::string("x"));
        QCOMPARE(blocks[0].output, std::string("r1"));
        QCOMPARE(blocks[1].output, std::string("f")); // conv2, relu2, GAP, Flatten: cut before the Gemm
        QCOMPARE(blocks[2].nodes, (std::vector<int> {6}));
        QCOMPARE(blocks[2].output, std::string("y"));
        // A block needs a layer: without conv2 among the layers, nothing is cut before it.
        const auto merged = partitionBlocks(g, {"conv1", "fc"});
        QCOMPARE(int(merged.size()), 2);
        QCOMPARE(merged[0].nodes, (std::vector<int> {0, 1, 2, 3, 4, 5}));
        QCOMPARE(merged[1].input, std::string("f"));
        // A residual: nothing is cut while the skip is live.
        OnnxBuilder b(13);
        b.input("x", {-1, 2});
        b.initializer("w", {2, 2}, {1, 0, 0, 1});
        b.node("MatMul", {"x", "w"}, {"m"}, "mm1");
        b.node("Relu", {"m"}, {"r"}, "relu");
        b.node("MatMul", {"r", "w"}, {"m2"}, "mm2");
        b.node("Add", {"m2", "r"}, {"a"}, "add");
        b.node("MatMul", {"a", "w"}, {"y"}, "mm3");
        b.output("y", {-1, 2});
        const Graph res = importOnnxBytes(b.bytes(), "res.onnx", "");
        const auto rb = partitionBlocks(res, {"mm1", "mm2", "mm3"});
        QCOMPARE(int(rb.size()), 3);
        QCOMPARE(rb[0].output, std::string("r"));
        QCOMPARE(rb[1].nodes, (std::vector<int> {2, 3})); // mm2 and the Add, cut at "a"
        QCOMPARE(rb[1].output, std::string("a"));
        // A pre-norm residual stream: a cut where the one live value forks, before a
        // non-layer (as before a transformer layer's LayerNormalization).
        OnnxBuilder p(13);
        p.input("x", {-1, 2});
        p.initializer("w", {2, 2}, {1, 0, 0, 1});
        p.node("MatMul", {"x", "w"}, {"m"}, "mm1");
        p.node("Relu", {"m"}, {"r"}, "relu");
        p.node("MatMul", {"r", "w"}, {"m2"}, "mm2");
        p.node("Add", {"m", "m2"}, {"a"}, "add");
        p.node("MatMul", {"a", "w"}, {"y"}, "mm3");
        p.output("y", {-1, 2});
        const auto pb = partitionBlocks(importOnnxBytes(p.bytes(), "prenorm.onnx", ""), {"mm1", "mm2", "mm3"});
        QCOMPARE(int(pb.size()), 3);
        QCOMPARE(pb[0].output, std::string("m"));
        QCOMPARE(pb[1].nodes, (std::vector<int> {1, 2, 3}));
        QCOMPARE(pb[1].output, std::string("a"));
    }

    void blockByBlockLowersHeldOutLoss()
    {
        const Graph teacher = tinyCnn(11);
        const Dataset train = randomData(teacher, 256, 1), held = randomData(teacher, 48, 2);
        QatOptions o = w4a4(120);
        o.blockwise = true;
        Progress progress;
        const QatResult r = trainQat(teacher, teacher, train, held, o, {}, progress, CancelToken());
        QCOMPARE(int(r.steps.size()), 120);
        QCOMPARE(r.steps.front().block, 0);
        QCOMPARE(r.steps.back().block, 2);
        QVERIFY(r.steps.front().mse > 0 && r.steps.back().kd > 0);
        const double before = r.evals.front().kd, after = r.evals.back().kd;
        QVERIFY2(after < 0.7 * before, qPrintable(QString("held-out KD %1 -> %2").arg(before).arg(after)));
    }

    // Logits [N, 2, 3] (a sequence): distillation per row of the last axis, as for tokens.
    // Attention's K and V operands at 3 bits (K per channel, V per tensor) train with
    // their own learned scales: step 0's held-out loss is the session's simulated plan's
    // (the same fake quantization of the operands), the operand scales are learned, and
    // training lowers the loss.
    void attentionOperandsTrain()
    {
        const Graph teacher = tinyAttention(8);
        const Dataset train = randomData(teacher, 64, 2);
        QatOptions o = w4a4(40);
        o.config.defaults.weight.bits = 8;
        o.config.defaults.activation.bits = 8;
        o.config.attention.k = OperandSpec {.bits = 3, .granularity = OperandGranularity::Channel};
        o.config.attention.v = OperandSpec {.bits = 3};
        Progress progress;
        const QatResult r = trainQat(teacher, teacher, train, train.slice(0, 32), o, {}, progress, CancelToken());
        QVERIFY(r.initialScales.count("scores:K[0]") && r.initialScales.count("scores:K[3]"));
        QVERIFY(r.initialScales.count("context:V") && !r.initialScales.count("scores:Q"));
        QVERIFY(r.evals.back().scales.at("context:V") != r.initialScales.at("context:V"));

        QuantizeOptions qo;
        qo.config = o.config;
        QuantSession s(teacher, qo);
        s.refreshLayers();
        s.calibrate(train.slice(0, 64), progress, CancelToken());
        s.quantizeWeights();
        const Tensor q = s.compile(true, train.inputShapes(32))->run(train.batch(0, 32)).front();
        const Tensor t = s.compile(false, train.inputShapes(32))->run(train.batch(0, 32)).front();
        const double perRow = distillationLoss(q.toFloat(), t.toFloat(), 32 * 3, 1.0, 0, {});
        QVERIFY2(std::abs(r.evals.front().kd - perRow) < 1e-4 * (1 + perRow),
            qPrintable(QString("%1 vs %2 per row").arg(r.evals.front().kd).arg(perRow)));
        QVERIFY2(r.evals.back().kd < r.evals.front().kd,
            qPrintable(QString("%1 -> %2").arg(r.evals.front().kd).arg(r.evals.back().kd)));
    }

    void sequenceLogitsDistilPerRow()
    {
        std::mt19937 rng(4);
        std::normal_distribution<float> g(0.f, 1.f);
        std::vector<float> w(24);
        for (float& v : w)
            v = g(rng);
        OnnxBuilder b(13);
        b.input("x", {-1, 4});
        b.initializer("w", {4, 6}, w);
        b.int64Initializer("shape", {3}, {-1, 2, 3});
        b.node("MatMul", {"x", "w"}, {"m"}, "mm");
        b.node("Reshape", {"m", "shape"}, {"y"}, "reshape");
        b.output("y", {-1, 2, 3});
        const Graph teacher = importOnnxBytes(b.bytes(), "seq.onnx", "");
        const Dataset train = randomData(teacher, 64, 1);
        Progress progress;
        const QatResult r =
            trainQat(teacher, teacher, train, train.slice(0, 32), w4a4(40), {}, progress, CancelToken());
        QVERIFY(!r.evals.back().top1.has_value());
        // Step 0 is the calibrated quantized model: its KL per row of 3 against the teacher.
        QuantizeOptions qo;
        qo.config = w4a4(40).config;
        QuantSession s(teacher, qo);
        s.refreshLayers();
        s.calibrate(train.slice(0, 64), progress, CancelToken());
        s.quantizeWeights();
        const Tensor q = s.compile(true, train.inputShapes(32))->run(train.batch(0, 32)).front();
        const Tensor t = s.compile(false, train.inputShapes(32))->run(train.batch(0, 32)).front();
        const double perRow = distillationLoss(q.toFloat(), t.toFloat(), 64, 1.0, 0, {}); // w4a4: T = 1
        QVERIFY2(std::abs(r.evals.front().kd - perRow) < 1e-4 * (1 + perRow),
            qPrintable(QString("%1 vs %2 per row").arg(r.evals.front().kd).arg(perRow)));
        QVERIFY2(r.evals.back().kd < r.evals.front().kd,
            qPrintable(QString("%1 -> %2").arg(r.evals.front().kd).arg(r.evals.back().kd)));
    }

    void cancelStopsBetweenSteps()
    {
        const Graph teacher = tinyCnn(3);
        const Dataset train = randomData(teacher, 64, 1);
        CancelToken cancel;
        QatCallbacks cb;
        int seen = 0;
        cb.onStep = [&](const QatStep& s) {
            seen = int(s.step);
            if (s.step == 3)
                cancel.cancel();
        };
        Progress progress;
        QVERIFY_THROWS_EXCEPTION(
            Cancelled, trainQat(teacher, teacher, train, train.slice(0, 16), w4a4(50), cb, progress, cancel));
        QCOMPARE(seen, 3);
    }

    void algorithmsAndShortDataFail()
    {
        const Graph teacher = tinyCnn(3);
        const Dataset train = randomData(teacher, 8, 1);
        Progress progress;
        QVERIFY_THROWS_EXCEPTION(
            Error, trainQat(teacher, teacher, train, train, w4a4(5), {}, progress, CancelToken())); // 8 < batch 16
        QatOptions o = w4a4(5);
        o.config.algorithms.push_back({"cle", nlohmann::json::object()});
        QVERIFY_THROWS_EXCEPTION(
            Error, trainQat(teacher, teacher, randomData(teacher, 32, 1), train, o, {}, progress, CancelToken()));
    }
};

QTEST_APPLESS_MAIN(TestQat)
#include "test_qat.moc"
