// Batch split (runtime/batch_split.h): a batch run as per-thread sub-batches gives
// what the whole program gives, is used only where every operator keeps samples
// apart and nothing observes inner values, and hands inner values back correctly
// after a split run; the caller-participating pool runs every index once.
#include "graph/onnx_import.h"
#include "runtime/batch_split.h"
#include "runtime/compiler.h"
#include "runtime/plan.h"
#include "support/onnx_builder.h"
#include "util/error.h"

#include <QtTest>

#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

using namespace qs;
using qs::test::OnnxBuilder;

namespace {

const char* kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";

Tensor randomInput(const Shape& shape, unsigned seed)
{
    Tensor x(DType::Float, shape);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (float& v : x.data<float>())
        v = u(rng);
    return x;
}

double maxAbsDiff(const Tensor& a, const Tensor& b)
{
    auto x = a.toFloat(), y = b.toFloat();
    if (x.size() != y.size())
        return INFINITY;
    double m = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
        m = std::max(m, double(std::fabs(x[i] - y[i])));
    return m;
}

// Per sample, the demo model on that sample alone (batch 1, one thread): the
// reference every batched run must reproduce row by row.
Tensor perSample(const Graph& g, const Tensor& x)
{
    CompileOptions o;
    o.threads = 1;
    o.splitBatch = false;
    Shape one = x.shape;
    one[0] = 1;
    o.inputShapes[g.inputs[0].name] = one;
    auto plan = compilePlan(g, o);
    const std::size_t row = x.bytes.size() / std::size_t(x.shape[0]);
    Tensor out;
    for (int64_t i = 0; i < x.shape[0]; ++i) {
        Tensor xi(DType::Float, one);
        std::memcpy(xi.bytes.data(), x.bytes.data() + row * std::size_t(i), row);
        Tensor yi = plan->run({xi})[0];
        if (i == 0) {
            Shape s = yi.shape;
            s[0] = x.shape[0];
            out = Tensor(DType::Float, s);
        }
        std::memcpy(out.bytes.data() + yi.bytes.size() * std::size_t(i), yi.bytes.data(), yi.bytes.size());
    }
    return out;
}

std::unique_ptr<Plan> twoThreadPlan(const Graph& g, const Shape& shape)
{
    CompileOptions o;
    o.threads = 2;
    o.inputShapes[g.inputs[0].name] = shape;
    return compilePlan(g, o);
}

// x [N, 4] -> op -> y, for the whitelist cases.
Graph twoDimModel(const std::string& op, int64_t n, bool batchMixing)
{
    OnnxBuilder b(13);
    b.input("x", {-1, 4});
    if (op == "ReduceMean") {
        auto* r = b.node("ReduceMean", {"x"}, {"y"}, "reduce");
        OnnxBuilder::intsAttr(r, "axes", {batchMixing ? 0 : 1});
        OnnxBuilder::intAttr(r, "keepdims", 1);
        b.output("y", {batchMixing ? 1 : -1, batchMixing ? 4 : 1});
    } else if (op == "Softmax") {
        auto* s = b.node("Softmax", {"x"}, {"y"}, "softmax");
        OnnxBuilder::intAttr(s, "axis", batchMixing ? 0 : 1);
        b.output("y", {-1, 4});
    } else if (op == "Transpose") {
        auto* t = b.node("Transpose", {"x"}, {"t"}, "transpose");
        OnnxBuilder::intsAttr(t, "perm", {1, 0});
        b.node("Transpose", {"t"}, {"y"}, "back");
        b.output("y", {-1, 4});
    } else if (op == "Add") {
        // A constant with a batch dimension of its own: adding it is row-dependent.
        std::vector<float> c(std::size_t(n * 4));
        for (std::size_t i = 0; i < c.size(); ++i)
            c[i] = float(i);
        b.initializer("c", batchMixing ? std::vector<int64_t>{n, 4} : std::vector<int64_t>{1, 4},
                      batchMixing ? c : std::vector<float>{1, 2, 3, 4});
        b.node("Add", {"x", "c"}, {"y"}, "add");
        b.output("y", {-1, 4});
    }
    return importOnnxBytes(b.bytes(), op + ".onnx", "");
}

} // namespace

class TestBatchSplit : public QObject {
    Q_OBJECT

private slots:
    void splitSizes_data()
    {
        QTest::addColumn<int>("batch");
        QTest::addColumn<int>("parts");
        QTest::addColumn<QList<int>>("sizes");
        QTest::newRow("even") << 32 << 2 << QList<int>{16, 16};
        QTest::newRow("odd") << 33 << 2 << QList<int>{17, 16};
        QTest::newRow("three") << 10 << 3 << QList<int>{4, 3, 3};
        QTest::newRow("more parts than samples") << 2 << 4 << QList<int>{1, 1};
        QTest::newRow("one") << 1 << 2 << QList<int>{1};
    }

    void splitSizes()
    {
        QFETCH(int, batch);
        QFETCH(int, parts);
        QFETCH(QList<int>, sizes);
        const auto got = rt::splitBatch(batch, parts);
        QCOMPARE(int(got.size()), int(sizes.size()));
        for (std::size_t i = 0; i < got.size(); ++i)
            QCOMPARE(int(got[i]), sizes[qsizetype(i)]);
    }

    // Every index exactly once, whichever thread gets it; the first exception reaches
    // the caller after all indices finished.
    void poolRunsEveryIndexOnce()
    {
        for (int round = 0; round < 200; ++round) {
            const int n = 1 + round % 5;
            std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
            rt::parallelShards(n, [&](int i) { hits[std::size_t(i)].fetch_add(1); });
            for (auto& h : hits)
                QCOMPARE(h.load(), 1);
        }
        std::atomic<int> ran{0};
        bool thrown = false;
        try {
            rt::parallelShards(4, [&](int i) {
                ran.fetch_add(1);
                if (i == 2)
                    fail("shard ", i, " failed");
            });
        } catch (const Error& e) {
            thrown = QString(e.what()).contains("shard 2 failed");
        }
        QVERIFY(thrown);
        QCOMPARE(ran.load(), 4);
    }

    // A caller never waits for a worker that has not started: with the worker busy for
    // 300 ms elsewhere, a second job's indices are all taken by its caller.
    void callerDoesNotWaitForABusyWorker()
    {
        std::atomic<bool> release{false};
        std::thread busy([&] {
            rt::parallelShards(2, [&](int) {
                while (!release.load())
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
            });
        });
        std::this_thread::sleep_for(std::chrono::milliseconds(50)); // both of busy's indices claimed
        const auto t0 = std::chrono::steady_clock::now();
        std::atomic<int> done{0};
        rt::parallelShards(2, [&](int) { done.fetch_add(1); });
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        release = true;
        busy.join();
        QCOMPARE(done.load(), 2);
        QVERIFY2(ms < 250, qPrintable(QString("the caller waited %1 ms for a busy worker").arg(ms)));
    }

    void demoSplitsAndMatchesPerSample_data()
    {
        QTest::addColumn<int>("batch");
        QTest::newRow("32") << 32;
        QTest::newRow("odd 7") << 7;
    }

    // Two threads: the first run is whole, the second checks the shards against it,
    // from the third on the shards run; each equals the model run sample by sample.
    void demoSplitsAndMatchesPerSample()
    {
        QFETCH(int, batch);
        Graph g = importOnnx(kModel);
        const Shape shape{batch, 1, 28, 28};
        auto plan = twoThreadPlan(g, shape);
        QList<int> shards;
        for (int run = 0; run < 4; ++run) {
            const Tensor x = randomInput(shape, unsigned(run + 1));
            const Tensor y = plan->run({x})[0];
            shards << plan->lastRunShards();
            QVERIFY2(maxAbsDiff(y, perSample(g, x)) < 1e-4, qPrintable(QString("run %1").arg(run)));
        }
        QCOMPARE(shards, (QList<int>{1, 1, 2, 2}));
    }

    // After a split run, inner values and partial re-runs see that run's inputs.
    void valuesAfterASplitRunAreThatRuns()
    {
        Graph g = importOnnx(kModel);
        const Shape shape{8, 1, 28, 28};
        auto plan = twoThreadPlan(g, shape);
        const Tensor a = randomInput(shape, 11), b = randomInput(shape, 12);
        plan->run({a});
        plan->run({a});
        const Tensor yb = plan->run({b})[0];
        QCOMPARE(plan->lastRunShards(), 2);
        const std::string in = g.inputs[0].name, out = g.outputs[0].name;
        QCOMPARE(maxAbsDiff(plan->valueOf(in), b), 0.0);
        QVERIFY(maxAbsDiff(plan->valueOf(out), yb) < 1e-4);
        // runFrom the input itself reproduces the output; later runs stay whole.
        QVERIFY(maxAbsDiff(plan->runFrom({{in, b}})[0], yb) < 1e-4);
        plan->run({a});
        QCOMPARE(plan->lastRunShards(), 1);
    }

    // Observed plans never split: taps and transforms see whole batches.
    void tapsKeepTheWholeProgram()
    {
        Graph g = importOnnx(kModel);
        const Shape shape{8, 1, 28, 28};
        auto plan = twoThreadPlan(g, shape);
        int64_t rows = 0;
        plan->addTap(g.outputs[0].name, [&](const std::string&, const Tensor& t) { rows += t.shape[0]; });
        for (int run = 0; run < 3; ++run)
            plan->run({randomInput(shape, 5)});
        QCOMPARE(plan->lastRunShards(), 1);
        QCOMPARE(rows, int64_t(24));
    }

    void whitelist_data()
    {
        QTest::addColumn<QString>("op");
        QTest::addColumn<bool>("mixing");
        QTest::newRow("ReduceMean over features") << "ReduceMean" << false;
        QTest::newRow("ReduceMean over the batch") << "ReduceMean" << true;
        QTest::newRow("Softmax over features") << "Softmax" << false;
        QTest::newRow("Softmax over the batch") << "Softmax" << true;
        QTest::newRow("Transpose of the batch") << "Transpose" << true;
        QTest::newRow("Add of a row constant") << "Add" << false;
        QTest::newRow("Add of a batch-sized constant") << "Add" << true;
    }

    // batchLocal accepts exactly the sample-local cases; a plan of a batch-mixing one
    // never splits and gives the whole program's (correct) result.
    void whitelist()
    {
        QFETCH(QString, op);
        QFETCH(bool, mixing);
        const int64_t n = 6;
        Graph g = twoDimModel(op.toStdString(), n, mixing);
        CompileOptions o;
        o.threads = 2;
        o.inputShapes["x"] = {n, 4};
        rt::Compiler compiler(g, o, {});
        compiler.compile();
        std::string why;
        QCOMPARE(rt::batchLocal(g, compiler.meta, n, &why), !mixing);
        if (mixing)
            QVERIFY2(why.find("node \"") != std::string::npos, why.c_str());
        auto plan = compilePlan(g, o);
        const Tensor x = randomInput({n, 4}, 3);
        CompileOptions whole = o;
        whole.splitBatch = false;
        const Tensor expected = compilePlan(g, whole)->run({x})[0];
        for (int run = 0; run < 3; ++run)
            QVERIFY(maxAbsDiff(plan->run({x})[0], expected) < 1e-6);
        QCOMPARE(plan->lastRunShards(), mixing ? 1 : 2);
    }
};

QTEST_APPLESS_MAIN(TestBatchSplit)
#include "test_batch_split.moc"
