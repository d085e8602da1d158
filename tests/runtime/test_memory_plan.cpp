// The memory plan (Compiler::planMemory, Plan::memoryStats): the values kernels compute
// share one arena by lifetime, so a chain of N equal ops needs two buffers, not N; the
// results equal a naive loop and a run without the arena; taps, kept values, value
// transforms, valueOf() and runFrom() still see every value they name. Large constants
// are read where the graph holds them, and a plan shares the caller's graph, not a copy.
#include "graph/onnx_import.h"
#include "runtime/passes/passes.h"
#include "runtime/plan.h"
#include "support/compare.h"
#include "support/onnx_builder.h"

#include <QtTest>

#include <cmath>
#include <random>

using namespace qs;
using qs::test::OnnxBuilder;
using qs::test::maxAbsDiff;

namespace {

constexpr int kChain = 12; // ops in the chain
constexpr int64_t kRows = 4, kCols = 1000;
constexpr float kShift = 0.25f;
const char* kDemo = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";

std::string valueName(int i)
{
    return i == 0 ? "x" : "y" + std::to_string(i);
}

// x -> Sin -> Add(0.25) -> Sin -> Add(0.25) ... (kChain ops); y<kChain> is the output,
// or with `branch` z = y<kChain> + m, m = y2 * y7 computed right after y7.
Graph chainModel(bool branch = false)
{
    OnnxBuilder b;
    b.input("x", {kRows, kCols});
    b.initializer("shift", {1}, {kShift});
    for (int i = 1; i <= kChain; ++i) {
        const std::string in = valueName(i - 1), out = valueName(i);
        if (i % 2)
            b.node("Sin", {in}, {out}, "sin" + std::to_string(i));
        else
            b.node("Add", {in, "shift"}, {out}, "add" + std::to_string(i));
        if (branch && i == 7)
            b.node("Mul", {"y2", "y7"}, {"m"}, "mul");
    }
    if (branch)
        b.node("Add", {valueName(kChain), "m"}, {"z"}, "sum");
    b.output(branch ? "z" : valueName(kChain), {kRows, kCols});
    return importOnnxBytes(b.bytes(), "chain.onnx", "");
}

// The chain by hand: value i of the chain for input x.
std::vector<float> naive(const std::vector<float>& x, int upTo, int from = 0)
{
    std::vector<float> v = x;
    for (int i = from + 1; i <= upTo; ++i)
        for (float& e : v)
            e = i % 2 ? std::sin(e) : e + kShift;
    return v;
}

Tensor randomTensor(const Shape& shape, unsigned seed)
{
    Tensor t(DType::Float, shape);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-2.f, 2.f);
    for (float& v : t.data<float>())
        v = u(rng);
    return t;
}

CompileOptions chainOptions(bool planMemory)
{
    CompileOptions o;
    o.threads = 1;
    o.fuse = false; // one kernel per node
    o.planMemory = planMemory;
    return o;
}

constexpr std::size_t kValueBytes = std::size_t(kRows * kCols) * sizeof(float); // a multiple of 64

} // namespace

class TestMemoryPlan : public QObject {
    Q_OBJECT
private slots:
    void chainNeedsTwoBuffers()
    {
        const Graph g = chainModel();
        auto plan = compilePlan(g, chainOptions(true));
        const PlanMemory m = plan->memoryStats();
        // y1 .. y11 are computed and read by the next op only; x and y12 own their storage.
        QCOMPARE(m.arenaValues, std::size_t(kChain - 1));
        QCOMPARE(m.arenaValueBytes, std::size_t(kChain - 1) * kValueBytes);
        QCOMPARE(m.arenaBytes, 2 * kValueBytes);
        QVERIFY(m.ownValues >= 2); // x and y12 (and the constant shift when kernels read it)
    }

    void addsRunInPlace()
    {
        // y_i = y_(i-1) + 0.25, twelve times: each oneDNN binary writes over its source,
        // so the eleven inner values share one buffer.
        OnnxBuilder b;
        b.input("x", {kRows, kCols});
        b.initializer("shift", {1}, {kShift});
        for (int i = 1; i <= kChain; ++i)
            b.node("Add", {valueName(i - 1), "shift"}, {valueName(i)}, "add" + std::to_string(i));
        b.output(valueName(kChain), {kRows, kCols});
        const Graph g = importOnnxBytes(b.bytes(), "adds.onnx", "");
        auto plan = compilePlan(g, chainOptions(true));
        const PlanMemory m = plan->memoryStats();
        QCOMPARE(m.arenaValues, std::size_t(kChain - 1));
        QCOMPARE(m.inPlaceValues, std::size_t(kChain - 2)); // y2 .. y11 over y1
        QCOMPARE(m.arenaBytes, kValueBytes);
        const Tensor x = randomTensor({kRows, kCols}, 10);
        std::vector<float> want = x.toFloat();
        for (float& v : want)
            for (int i = 0; i < kChain; ++i)
                v += kShift;
        QVERIFY(maxAbsDiff(plan->run({x})[0].toFloat(), want) < 1e-5);
    }

    void chainEqualsNaiveAndUnplanned()
    {
        const Graph g = chainModel();
        auto planned = compilePlan(g, chainOptions(true));
        auto unplanned = compilePlan(g, chainOptions(false));
        QCOMPARE(unplanned->memoryStats().arenaBytes, std::size_t(0));
        QVERIFY(unplanned->memoryStats().ownValues >= std::size_t(kChain));
        for (unsigned seed : {1u, 2u}) { // twice: the second run starts from the first's leftovers
            const Tensor x = randomTensor({kRows, kCols}, seed);
            const Tensor a = planned->run({x})[0], b = unplanned->run({x})[0];
            QCOMPARE(a.bytes, b.bytes);
            QVERIFY2(
                maxAbsDiff(a.toFloat(), naive(x.toFloat(), kChain)) < 1e-5, "planned run differs from the naive loop");
        }
    }

    void tapsAndKeptValuesSeeTheirValues()
    {
        const Graph g = chainModel();
        CompileOptions o = chainOptions(true);
        o.keepValues = {"y5"};
        o.valueTransforms["y8"] = [](Tensor& t) {
            for (float& v : t.data<float>())
                v *= 0.5f;
        };
        auto plan = compilePlan(g, o);
        std::vector<float> tapped;
        plan->addTap("y3", [&](const std::string&, const Tensor& t) { tapped = t.toFloat(); });
        const Tensor x = randomTensor({kRows, kCols}, 3);
        const Tensor y = plan->run({x})[0];
        // y5 (kept) and y8 (transformed) keep storage of their own; the tap, added after
        // the compile, sees y3 as it is produced, in the arena.
        QCOMPARE(plan->memoryStats().arenaValues, std::size_t(kChain - 3));
        QVERIFY(maxAbsDiff(tapped, naive(x.toFloat(), 3)) < 1e-5);
        QVERIFY(maxAbsDiff(plan->valueOf("y5").toFloat(), naive(x.toFloat(), 5)) < 1e-5);
        std::vector<float> y8 = naive(x.toFloat(), 8);
        for (float& v : y8)
            v *= 0.5f;
        QVERIFY(maxAbsDiff(plan->valueOf("y8").toFloat(), y8) < 1e-5);
        QVERIFY(maxAbsDiff(y.toFloat(), naive(y8, kChain, 8)) < 1e-5);
    }

    void valueOfAnArenaValue()
    {
        // y6 was overwritten by later values; valueOf() recompiles without the arena.
        const Graph g = chainModel();
        auto plan = compilePlan(g, chainOptions(true));
        const Tensor x = randomTensor({kRows, kCols}, 4);
        plan->run({x});
        QVERIFY(plan->memoryStats().arenaBytes > 0);
        QVERIFY(maxAbsDiff(plan->valueOf("y6").toFloat(), naive(x.toFloat(), 6)) < 1e-5);
        QVERIFY(maxAbsDiff(plan->valueOf("y2").toFloat(), naive(x.toFloat(), 2)) < 1e-5);
        QCOMPARE(plan->memoryStats().arenaBytes, std::size_t(0));
    }

    void runFromReadsTheLastRun()
    {
        // runFrom(y6) re-runs what follows y6, the Mul included, which reads y2 from the
        // last full run: y2's bytes must not have gone to a later value.
        const Graph g = chainModel(true);
        auto plan = compilePlan(g, chainOptions(true));
        int calls = 0;
        std::vector<float> y9;
        plan->addTap("y9", [&](const std::string&, const Tensor& t) {
            ++calls;
            y9 = t.toFloat();
        });
        const Tensor x = randomTensor({kRows, kCols}, 5);
        plan->run({x});
        const Tensor given = randomTensor({kRows, kCols}, 6);
        const Tensor z = plan->runFrom({{"y6", given}})[0];
        // Once in run(), once in runFrom(); not again while the last run is repeated
        // without the arena.
        QCOMPARE(calls, 2);
        QVERIFY(maxAbsDiff(y9, naive(given.toFloat(), 9, 6)) < 1e-5);
        const std::vector<float> y2 = naive(x.toFloat(), 2), y7 = naive(given.toFloat(), 7, 6),
                                 tail = naive(given.toFloat(), kChain, 6);
        std::vector<float> want(y2.size());
        for (std::size_t i = 0; i < want.size(); ++i)
            want[i] = tail[i] + y2[i] * y7[i];
        QVERIFY(maxAbsDiff(z.toFloat(), want) < 1e-5);
    }

    void cnnEqualsUnplanned()
    {
        const Graph g = importOnnx(kDemo);
        for (int64_t batch : {1, 8}) {
            CompileOptions o;
            o.threads = 2;
            o.inputShapes[g.inputs[0].name] = {batch, 1, 28, 28};
            auto planned = compilePlan(g, o);
            o.planMemory = false;
            auto unplanned = compilePlan(g, o);
            const PlanMemory m = planned->memoryStats();
            QVERIFY(m.arenaValues > 0);
            QVERIFY2(m.arenaBytes < m.arenaValueBytes, "the arena saves nothing");
            for (unsigned seed : {7u, 8u, 9u}) { // the third run may go through batch shards
                const Tensor x = randomTensor({batch, 1, 28, 28}, seed);
                const Tensor a = planned->run({x})[0], b = unplanned->run({x})[0];
                QVERIFY2(maxAbsDiff(a.toFloat(), b.toFloat()) <= 1e-4, qPrintable(QString::number(batch)));
            }
        }
    }

    // An embedding table (512 KiB) that Gather reads at run time and a MatMul weight
    // (128 KiB): before, the plan copied the table into storage of its own (ownBytes >= its
    // size) on top of the graph's copy and the plan's own copy of the graph; now it reads
    // the graph's tensor, and compileOptimizedPlan(shared graph) keeps the caller's graph
    // alive instead of copying it. Results against naive loops, also once the caller let
    // go of the graph.
    void largeConstantsAreReadInPlace_data()
    {
        QTest::addColumn<bool>("sharedGraph");
        QTest::newRow("compilePlan(graph)") << false;
        QTest::newRow("compileOptimizedPlan(shared graph)") << true;
    }

    void largeConstantsAreReadInPlace()
    {
        QFETCH(bool, sharedGraph);
        constexpr int64_t kVocab = 4096, kWidth = 32, kIn = 256, kOut = 128;
        const Tensor table = randomTensor({kVocab, kWidth}, 21), w = randomTensor({kIn, kOut}, 22);
        OnnxBuilder b;
        b.input("ids", {3}, onnx::TensorProto::INT64);
        b.input("x", {2, kIn});
        b.initializer("table", {kVocab, kWidth}, table.toFloat());
        b.initializer("w", {kIn, kOut}, w.toFloat());
        b.node("Gather", {"table", "ids"}, {"rows"}, "embed");
        b.node("MatMul", {"x", "w"}, {"y"}, "mm");
        b.output("rows", {3, kWidth});
        b.output("y", {2, kOut});
        auto graph = std::make_shared<const Graph>(importOnnxBytes(b.bytes(), "embed.onnx", ""));
        CompileOptions o;
        o.threads = 1;
        auto plan = sharedGraph ? compileOptimizedPlan(graph, o) : compilePlan(*graph, o);
        QCOMPARE(graph.use_count() > 1, sharedGraph); // held by the plan (and its constants), or copied
        const std::size_t tableBytes = table.bytes.size();
        QVERIFY2(plan->memoryStats().ownBytes < tableBytes,
            std::to_string(plan->memoryStats().ownBytes).c_str()); // inputs and outputs only
        graph.reset();                                             // the plan keeps what it needs

        const std::vector<int64_t> ids = {4095, 0, 1234};
        const Tensor x = randomTensor({2, kIn}, 23);
        for (int pass = 0; pass < 2; ++pass) {
            const std::vector<Tensor> out = plan->run({Tensor::fromVector<int64_t>({3}, ids), x});
            std::vector<float> rows, y(std::size_t(2 * kOut), 0.f);
            const auto t = table.data<float>(), wv = w.data<float>(), xv = x.data<float>();
            for (int64_t id : ids)
                rows.insert(rows.end(), t.begin() + id * kWidth, t.begin() + (id + 1) * kWidth);
            for (int64_t r = 0; r < 2; ++r)
                for (int64_t c = 0; c < kOut; ++c) {
                    double acc = 0;
                    for (int64_t k = 0; k < kIn; ++k)
                        acc += double(xv[std::size_t(r * kIn + k)]) * wv[std::size_t(k * kOut + c)];
                    y[std::size_t(r * kOut + c)] = float(acc);
                }
            QCOMPARE(out.at(0).toFloat(), rows);
            QVERIFY(maxAbsDiff(out.at(1).toFloat(), y) < 1e-3);
        }
    }
};

QTEST_APPLESS_MAIN(TestMemoryPlan)
#include "test_memory_plan.moc"
