// Sensitivity: the cached downstream-only sweep equals a full re-run per
// configuration; cancel keeps what was measured; the Hessian estimate is sane.
#include "analysis/activation_profile.h"
#include "analysis/sensitivity.h"
#include "data/dataset.h"
#include "graph/onnx_import.h"
#include "measure/fidelity.h"
#include "quant/quantizer.h"
#include "quant/session.h"
#include "runtime/plan.h"
#include "support/onnx_builder.h"
#include "util/error.h"

#include <QtTest>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <set>
#include <thread>

using namespace qs;

namespace {

const char* kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";

Dataset demoData(const Graph& g, int64_t limit)
{
    DataOptions o;
    o.spec = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";
    o.limit = limit;
    return loadDataset(o, g);
}

// Segment boundaries the demo does not have: a bias behind an Identity node (torch
// exports share biases that way), a layer output with two consumers, a residual Add
// reading a value that is no layer's input, Flatten before a Gemm producing the output.
Graph branchyModel()
{
    qs::test::OnnxBuilder b;
    b.input("x", {-1, 2, 6, 6});
    auto weights = [](std::size_t n, float scale) {
        std::vector<float> w(n);
        for (std::size_t i = 0; i < n; ++i)
            w[i] = scale * std::sin(0.7f * float(i) + 0.3f);
        return w;
    };
    b.initializer("w1", {4, 2, 3, 3}, weights(4 * 2 * 9, 0.5f));
    b.initializer("b0", {4}, {0.1f, -0.1f, 0.05f, 0.2f});
    b.initializer("w2", {4, 4, 3, 3}, weights(4 * 4 * 9, 0.3f));
    b.initializer("b2", {4}, {0.0f, 0.1f, -0.05f, 0.02f});
    b.initializer("wf", {3, 4 * 36}, weights(3 * 4 * 36, 0.2f));
    b.initializer("bf", {3}, {0.0f, 0.1f, -0.1f});
    b.node("Identity", {"b0"}, {"b1"}, "bias_alias");
    for (const char* conv : {"conv1", "conv2"}) {
        const bool first = std::string(conv) == "conv1";
        auto* n =
            b.node("Conv", {first ? "x" : "r1", first ? "w1" : "w2", first ? "b1" : "b2"}, {first ? "c1" : "c2"}, conv);
        qs::test::OnnxBuilder::intsAttr(n, "pads", {1, 1, 1, 1});
    }
    b.node("Relu", {"c1"}, {"r1"}, "relu1");
    b.node("Add", {"c2", "c1"}, {"s"}, "add");
    b.node("Relu", {"s"}, {"r2"}, "relu2");
    b.node("Flatten", {"r2"}, {"f"}, "flatten");
    b.node("Gemm", {"f", "wf", "bf"}, {"y"}, "fc");
    auto* gemm = b.model().mutable_graph()->mutable_node(b.model().graph().node_size() - 1);
    qs::test::OnnxBuilder::intAttr(gemm, "transB", 1);
    b.output("y", {-1, 3});
    return importOnnxBytes(b.bytes(), "branchy.onnx", ".");
}

// tf2onnx's padding before a strided depthwise convolution (M-LSD): Pad's amounts come from
// Split and Concat of an initializer, computed from constants only, inside conv1's segment
// (conv1 -> Relu -> Pad, up to conv2's input).
Graph computedPadsModel()
{
    qs::test::OnnxBuilder b;
    b.input("x", {-1, 2, 6, 6});
    auto* raw = b.model().mutable_graph()->add_initializer();
    raw->set_name("pads_raw");
    raw->set_data_type(onnx::TensorProto::INT64);
    raw->add_dims(8);
    for (int64_t v : {0, 0, 0, 1, 0, 0, 1, 0}) // reordered below to [0,0,0,0, 0,0,1,1]
        raw->add_int64_data(v);
    auto* sizes = b.model().mutable_graph()->add_initializer();
    sizes->set_name("ones");
    sizes->set_data_type(onnx::TensorProto::INT64);
    sizes->add_dims(2);
    for (int64_t v : {4, 4})
        sizes->add_int64_data(v);
    std::vector<float> w1(4 * 2 * 9), w2(4 * 4 * 9);
    for (std::size_t i = 0; i < w1.size(); ++i)
        w1[i] = 0.5f * std::sin(0.7f * float(i) + 0.3f);
    for (std::size_t i = 0; i < w2.size(); ++i)
        w2[i] = 0.3f * std::cos(0.4f * float(i));
    b.initializer("w1", {4, 2, 3, 3}, w1);
    b.initializer("w2", {4, 4, 3, 3}, w2);
    auto* c1 = b.node("Conv", {"x", "w1"}, {"c1"}, "conv1");
    qs::test::OnnxBuilder::intsAttr(c1, "pads", {1, 1, 1, 1});
    b.node("Relu", {"c1"}, {"r1"}, "relu1");
    b.node("Split", {"pads_raw", "ones"}, {"lo", "hi"}, "split");
    b.node("Concat", {"hi", "lo"}, {"pads"}, "concat");
    qs::test::OnnxBuilder::intAttr(b.model().mutable_graph()->mutable_node(3), "axis", 0);
    b.node("Pad", {"r1", "pads"}, {"p"}, "pad");
    auto* c2 = b.node("Conv", {"p", "w2"}, {"y"}, "conv2");
    qs::test::OnnxBuilder::intsAttr(c2, "strides", {2, 2});
    b.output("y", {-1, 4, 3, 3});
    return importOnnxBytes(b.bytes(), "pads.onnx", ".");
}

// The cached sweep (segments, runFrom) against full re-runs per configuration (o.naive), on
// `samples` random samples in batches of `batch`.
void expectFastEqualsNaive(
    const Graph& g, int64_t samples, int64_t batch, SensitivityMode mode, std::vector<int> bits, std::size_t layers)
{
    DataOptions dopts;
    dopts.spec = "random:" + std::to_string(samples);
    Dataset d = loadDataset(dopts, g);
    SensitivityOptions o;
    o.bits = std::move(bits);
    o.mode = mode;
    o.limit = samples;
    o.batch = batch;
    Progress p;
    SensitivityResult fast = measureSensitivity(g, d, o, p, CancelToken());
    o.naive = true;
    SensitivityResult naive = measureSensitivity(g, d, o, p, CancelToken());
    QCOMPARE(fast.layers.size(), layers);
    for (std::size_t i = 0; i < fast.layers.size(); ++i)
        for (int bits : o.bits) {
            const double a = fast.layers[i].byBits.at(bits).sqnrDb, e = naive.layers[i].byBits.at(bits).sqnrDb;
            QVERIFY2(std::isfinite(e) && std::abs(a - e) < 1e-3 * std::max(1.0, std::abs(e)),
                qPrintable(QString("%1 at %2 bits: %3 vs %4 dB")
                               .arg(QString::fromStdString(fast.layers[i].layer))
                               .arg(bits)
                               .arg(a)
                               .arg(e)));
        }
}

} // namespace

class TestSensitivity : public QObject {
    Q_OBJECT

private slots:
    void cachedSweepEqualsFullReRun_data()
    {
        QTest::addColumn<int>("mode");
        QTest::newRow("weights") << int(SensitivityMode::Weights);
        QTest::newRow("activations") << int(SensitivityMode::Activations);
        QTest::newRow("both") << int(SensitivityMode::Both);
    }

    void cachedSweepEqualsFullReRun()
    {
        QFETCH(int, mode);
        Graph g = importOnnx(kModel);
        Dataset d = demoData(g, 48);
        SensitivityOptions o;
        o.bits = {3, 6};
        o.mode = SensitivityMode(mode);
        o.limit = 48;
        o.batch = 16;
        Progress p;
        SensitivityResult fast = measureSensitivity(g, d, o, p, CancelToken());
        // No segment plan kept between batches (planCacheBytes 0): each of the 3 batches
        // compiles every layer's plans again, and the numbers stay the same.
        o.planCacheBytes = 0;
        SensitivityResult uncached = measureSensitivity(g, d, o, p, CancelToken());
        o.planCacheBytes = -1;
        o.naive = true;
        SensitivityResult naive = measureSensitivity(g, d, o, p, CancelToken());
        QCOMPARE(fast.layers.size(), std::size_t(8));
        QCOMPARE(fast.layers.size(), naive.layers.size());
        QCOMPARE(uncached.layers.size(), fast.layers.size());
        for (std::size_t i = 0; i < fast.layers.size(); ++i)
            for (int bits : o.bits) {
                const BitMeasure& a = fast.layers[i].byBits.at(bits);
                const BitMeasure& b = uncached.layers[i].byBits.at(bits);
                QVERIFY(std::abs(a.sqnrDb - b.sqnrDb) <= 1e-9 * std::max(1.0, std::abs(b.sqnrDb)));
                QVERIFY(std::abs(a.kl - b.kl) <= 1e-9 * std::max(1e-3, b.kl));
            }
        for (std::size_t i = 0; i < fast.layers.size(); ++i)
            for (int bits : o.bits) {
                const BitMeasure& a = fast.layers[i].byBits.at(bits);
                const BitMeasure& b = naive.layers[i].byBits.at(bits);
                QVERIFY2(std::abs(a.sqnrDb - b.sqnrDb) < 1e-3 * std::max(1.0, std::abs(b.sqnrDb)),
                    qPrintable(QString("%1 at %2 bits: %3 vs %4 dB")
                                   .arg(QString::fromStdString(fast.layers[i].layer))
                                   .arg(bits)
                                   .arg(a.sqnrDb)
                                   .arg(b.sqnrDb)));
                QVERIFY(std::abs(a.kl - b.kl) < 1e-4 * std::max(1e-3, b.kl) + 1e-9);
                QCOMPARE(a.top1Agreement, b.top1Agreement);
            }
        // Fewer bits hurt more, layer by layer.
        for (const auto& l : fast.layers)
            QVERIFY(l.byBits.at(3).sqnrDb < l.byBits.at(6).sqnrDb);
        qInfo("%s: cached sweep %.2f s, full re-runs %.2f s (ratio %.2f)", sensitivityModeName(o.mode), fast.seconds,
            naive.seconds, fast.seconds / naive.seconds);
    }

    // The cached sweep (activation-only variants re-run in the FP32 plan, repeated
    // runFrom() calls per layer sharing one backup) measures exactly what a full re-run
    // per configuration does: every metric of every (layer, bits) to 1e-6, relative.
    void cachedSweepMetricsEqualFullReRunTo1e6_data() { cachedSweepEqualsFullReRun_data(); }

    void cachedSweepMetricsEqualFullReRunTo1e6()
    {
        QFETCH(int, mode);
        Graph g = importOnnx(kModel);
        Dataset d = demoData(g, 24);
        SensitivityOptions o;
        o.bits = {2, 5};
        o.mode = SensitivityMode(mode);
        o.limit = 24;
        o.batch = 16; // a short last batch: the plans recompile for it
        Progress p;
        SensitivityResult fast = measureSensitivity(g, d, o, p, CancelToken());
        o.naive = true;
        SensitivityResult naive = measureSensitivity(g, d, o, p, CancelToken());
        QCOMPARE(fast.layers.size(), std::size_t(8));
        auto close = [](double a, double b) { return a == b || std::abs(a - b) <= 1e-6 * std::max(1.0, std::abs(b)); };
        int finite = 0;
        for (std::size_t i = 0; i < fast.layers.size(); ++i)
            for (int bits : o.bits) {
                const BitMeasure& a = fast.layers[i].byBits.at(bits);
                const BitMeasure& b = naive.layers[i].byBits.at(bits);
                const QString where =
                    QString("%1 at %2 bits").arg(QString::fromStdString(fast.layers[i].layer)).arg(bits);
                finite += std::isfinite(b.sqnrDb);
                QVERIFY2(close(a.sqnrDb, b.sqnrDb),
                    qPrintable(
                        where + QString(": SQNR %1 vs %2 dB").arg(a.sqnrDb, 0, 'g', 12).arg(b.sqnrDb, 0, 'g', 12)));
                QVERIFY2(std::abs(a.kl - b.kl) <= 1e-6 * b.kl + 1e-12,
                    qPrintable(where + QString(": KL %1 vs %2").arg(a.kl, 0, 'g', 12).arg(b.kl, 0, 'g', 12)));
                QVERIFY2(close(a.top1Agreement, b.top1Agreement), qPrintable(where + ": top-1 agreement"));
                QVERIFY(a.top1.has_value() && b.top1.has_value());
                QVERIFY2(close(*a.top1, *b.top1), qPrintable(where + ": top-1"));
                QCOMPARE(a.samples, int64_t(24));
                QCOMPARE(b.samples, int64_t(24));
            }
        QVERIFY(finite == 8 * 2); // the comparison is not between infinities
        // 2 bits moves the output of every layer measurably (a sweep that quantized nothing would fail here).
        for (const auto& l : fast.layers)
            QVERIFY(l.byBits.at(2).kl > 0 && l.byBits.at(2).sqnrDb < l.byBits.at(5).sqnrDb);
    }

    // The local method's SQNR against whole-model plans that keep each layer's output:
    // FP32, and with that layer's weight quantized.
    void segmentsMatchFullReRunsOnBranchyGraphs_data()
    {
        QTest::addColumn<int>("mode");
        QTest::newRow("weights") << int(SensitivityMode::Weights);
        QTest::newRow("activations") << int(SensitivityMode::Activations);
        QTest::newRow("both") << int(SensitivityMode::Both);
    }

    void segmentsMatchFullReRunsOnBranchyGraphs()
    {
        QFETCH(int, mode);
        expectFastEqualsNaive(branchyModel(), 24, 8, SensitivityMode(mode), {2, 5}, 3);
    }

    // A segment reading a value computed from constants (Pad's amounts) folds it, as the
    // whole plan does, instead of taking it as a run-time input ("pads ... must be a constant").
    void segmentsFoldConstantPads()
    {
        expectFastEqualsNaive(computedPadsModel(), 8, 4, SensitivityMode::Both, {3, 6}, 2);
    }

    void localModeIsTheLayersOwnSqnr()
    {
        Graph g = importOnnx(kModel);
        Dataset d = demoData(g, 32);
        SensitivityOptions o;
        o.bits = {4};
        o.method = SensitivityMethod::Local;
        o.limit = 32;
        Progress p;
        SensitivityResult local = measureSensitivity(g, d, o, p, CancelToken());
        QuantSession session(g, QuantizeOptions {});
        const Graph& sg = session.graph();
        QCOMPARE(local.layers.size(), session.layers().size());
        for (std::size_t i = 0; i < local.layers.size(); ++i) {
            const SessionLayer& l = session.layers()[i];
            const std::string out = sg.nodes[std::size_t(sg.findNode(l.name))].outputs.front();
            CompileOptions co = session.compileOptions(false, d.first().shape);
            co.keepValues.insert(out);
            auto fp = compilePlan(sg, co);
            fp->run({d.first()});
            const Tensor ref = fp->valueOf(out);
            const Tensor* w = sg.constant(l.weight);
            QuantSpec spec = l.spec.weight;
            spec.bits = 4;
            co.initializerOverrides[l.weight] =
                Tensor::fromVector(w->shape, fakeQuantWeight(w->toFloat(), w->shape, l.outAxis, l.inAxis, spec));
            auto q = compilePlan(sg, co);
            q->run({d.first()});
            const Tensor test = q->valueOf(out);
            const double expected =
                sqnrDb(ref.data<float>().data(), test.data<float>().data(), std::size_t(ref.numel()));
            const BitMeasure& m = local.layers[i].byBits.at(4);
            QVERIFY(m.localSqnrDb.has_value());
            QVERIFY2(std::abs(*m.localSqnrDb - expected) < 1e-3 * std::abs(expected),
                qPrintable(
                    QString("%1: %2 vs %3 dB").arg(QString::fromStdString(l.name)).arg(*m.localSqnrDb).arg(expected)));
            QCOMPARE(m.sqnrDb, *m.localSqnrDb);
            QCOMPARE(m.samples, int64_t(32));
        }
    }

    void cancelKeepsPartialResults()
    {
        Graph g = importOnnx(kModel);
        Dataset d = demoData(g, 64);
        SensitivityOptions o;
        o.limit = 64;
        o.batch = 64;
        CancelToken cancel;
        int seen = 0;
        Progress p;
        SensitivityResult r = measureSensitivity(g, d, o, p, cancel, [&](const LayerSensitivity&, int) {
            if (++seen == 10)
                cancel.cancel();
        });
        QVERIFY(!r.complete);
        int measured = 0;
        for (const auto& l : r.layers)
            measured += int(l.byBits.size());
        QVERIFY(measured >= 10 && measured < 8 * 6);
    }

    // Cancel from another thread mid-sweep: the call returns within a second, marked
    // incomplete, and every kept number equals a complete sweep over the samples it
    // says it saw.
    void cancelWithinASecondKeepsConsistentPartials()
    {
        Graph g = importOnnx(kModel);
        Dataset d = demoData(g, 64);
        SensitivityOptions o;
        o.bits = {2, 4, 8};
        o.limit = 64;
        o.batch = 16;
        CancelToken cancel;
        // The sweep pauses once past 60% until the other thread has cancelled, so a
        // fast machine cannot finish first.
        std::atomic<bool> reached {false};
        Progress p([&](const ProgressState& s) {
            if (s.fraction < 0.6 || reached.exchange(true))
                return;
            for (int i = 0; i < 10000 && !cancel.cancelled(); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
        });
        SensitivityResult r;
        std::thread worker([&] { r = measureSensitivity(g, d, o, p, cancel); });
        while (!reached)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        const auto t0 = std::chrono::steady_clock::now();
        cancel.cancel();
        worker.join();
        const double latency = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        qInfo("returned %.3f s after cancel", latency);
        QVERIFY(latency < 1.0);
        QVERIFY(!r.complete);
        std::set<int64_t> counts;
        for (const auto& l : r.layers)
            for (const auto& [bits, m] : l.byBits) {
                QVERIFY(m.samples > 0 && m.samples < 64 && m.samples % 16 == 0);
                counts.insert(m.samples);
            }
        QVERIFY(!counts.empty());
        for (int64_t n : counts) {
            SensitivityOptions full = o;
            full.limit = n;
            Progress quiet;
            SensitivityResult ref = measureSensitivity(g, demoData(g, n), full, quiet, CancelToken());
            QVERIFY(ref.complete);
            for (std::size_t i = 0; i < r.layers.size(); ++i)
                for (const auto& [bits, m] : r.layers[i].byBits) {
                    if (m.samples != n)
                        continue;
                    const BitMeasure& e = ref.layers[i].byBits.at(bits);
                    QCOMPARE(e.samples, n);
                    QVERIFY(std::abs(m.sqnrDb - e.sqnrDb) < 1e-9 * std::max(1.0, std::abs(e.sqnrDb)));
                    QVERIFY(std::abs(m.kl - e.kl) < 1e-12 + 1e-9 * e.kl);
                    QCOMPARE(m.top1Agreement, e.top1Agreement);
                    QCOMPARE(m.top1.value(), e.top1.value());
                }
        }
    }

    void hessianRanksLikeOneShot()
    {
        Graph g = importOnnx(kModel);
        Dataset d = demoData(g, 32);
        SensitivityOptions o;
        o.method = SensitivityMethod::Hessian;
        o.limit = 32;
        o.hutchinsonSamples = 4;
        Progress p;
        SensitivityResult r = measureSensitivity(g, d, o, p, CancelToken());
        QVERIFY(!r.estimator.empty());
        QVERIFY(r.spearman.has_value());
        for (const auto& l : r.layers) {
            QVERIFY(l.hessianTrace && *l.hessianTrace > 0);
            QVERIFY(l.hessianScore && *l.hessianScore > 0);
        }
        qInfo("Spearman(Hessian score, one-shot KL at 4 bits) = %.3f", *r.spearman);
        QVERIFY(*r.spearman > 0); // both measure the same thing; they should at least agree in sign
    }

    // The Hessian trace estimate (Hutchinson over finite differences of the KL) against
    // a brute-force reference on a 3x4 Gemm: the second difference of the naive loss
    // KL(softmax(W x + b) || softmax(W' x + b)), mean over the samples, along every one
    // of the 12 weight axes, summed: tr(H). The score is tr(H)/n times ||Q(W) - W||^2
    // with Q a naive symmetric per-channel 4-bit rounding.
    void hessianTraceMatchesBruteForce()
    {
        const int64_t in = 4, out = 3, n = 16;
        test::OnnxBuilder b;
        b.input("x", {-1, in});
        std::vector<float> w, bias {0.3f, -0.2f, 0.1f};
        for (int64_t i = 0; i < out * in; ++i)
            w.push_back(0.7f * std::sin(float(i) * 1.7f + 0.4f));
        b.initializer("w", {out, in}, w);
        b.initializer("b", {out}, bias);
        test::OnnxBuilder::intAttr(b.node("Gemm", {"x", "w", "b"}, {"y"}, "fc"), "transB", 1);
        b.output("y", {-1, out});
        Graph g = importOnnxBytes(b.bytes(), "fc.onnx", ".");
        DataOptions dopts;
        dopts.spec = "random:16";
        Dataset d = loadDataset(dopts, g);
        SensitivityOptions o;
        o.method = SensitivityMethod::Hessian;
        o.limit = n;
        o.hutchinsonSamples = 400;
        Progress p;
        SensitivityResult r = measureSensitivity(g, d, o, p, CancelToken());
        QCOMPARE(int(r.layers.size()), 1);
        const auto& l = r.layers.front();
        QVERIFY(l.hessianTrace && l.hessianScore);

        const auto x = d.first().toFloat();
        auto loss = [&](const std::vector<double>& wp) {
            double sum = 0;
            for (int64_t s_ = 0; s_ < n; ++s_) {
                std::vector<double> za(static_cast<std::size_t>(out), 0.0), zb = za;
                for (int64_t o_ = 0; o_ < out; ++o_) {
                    za[std::size_t(o_)] = zb[std::size_t(o_)] = bias[std::size_t(o_)];
                    for (int64_t i = 0; i < in; ++i) {
                        za[std::size_t(o_)] += double(w[std::size_t(o_ * in + i)]) * x[std::size_t(s_ * in + i)];
                        zb[std::size_t(o_)] += wp[std::size_t(o_ * in + i)] * x[std::size_t(s_ * in + i)];
                    }
                }
                double ea = 0, eb = 0;
                for (int64_t o_ = 0; o_ < out; ++o_) {
                    ea += std::exp(za[std::size_t(o_)]);
                    eb += std::exp(zb[std::size_t(o_)]);
                }
                for (int64_t o_ = 0; o_ < out; ++o_) {
                    const double pa = std::exp(za[std::size_t(o_)]) / ea, pb = std::exp(zb[std::size_t(o_)]) / eb;
                    sum += pa * std::log(pa / pb);
                }
            }
            return sum / double(n);
        };
        const double eps = 1e-3;
        double trace = 0;
        for (std::size_t j = 0; j < w.size(); ++j) {
            std::vector<double> plus(w.begin(), w.end()), minus(w.begin(), w.end());
            plus[j] += eps;
            minus[j] -= eps;
            trace += (loss(plus) + loss(minus)) / (eps * eps);
        }
        const double params = double(w.size());
        qInfo("tr(H)/n: estimate %.6g, brute force %.6g", *l.hessianTrace, trace / params);
        // 400 Rademacher directions: the estimate's spread is a few percent here.
        QVERIFY2(std::fabs(*l.hessianTrace - trace / params) <= 0.1 * trace / params,
            qPrintable(QString("estimate %1, brute force %2").arg(*l.hessianTrace).arg(trace / params)));

        double err = 0;
        for (int64_t o_ = 0; o_ < out; ++o_) {
            float m = 0;
            for (int64_t i = 0; i < in; ++i)
                m = std::max(m, std::fabs(w[std::size_t(o_ * in + i)]));
            const double scale = double(m / 7.f);
            for (int64_t i = 0; i < in; ++i) {
                const double v = w[std::size_t(o_ * in + i)];
                const double q = std::clamp(std::nearbyint(v / scale), -7.0, 7.0) * scale;
                err += (v - q) * (v - q);
            }
        }
        QVERIFY2(std::fabs(l.weightErrorSq - err) <= 1e-6 * err, qPrintable(QString::number(l.weightErrorSq)));
        QVERIFY(std::fabs(*l.hessianScore - *l.hessianTrace * err) <= 1e-6 * *l.hessianScore);
    }

    void spearmanReference()
    {
        QCOMPARE(spearmanCorrelation({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0);
        QCOMPARE(spearmanCorrelation({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
        // With ties: scipy.stats.spearmanr([1,2,2,3],[1,3,2,4]) = 0.9486832980505138
        QVERIFY(std::abs(spearmanCorrelation({1, 2, 2, 3}, {1, 3, 2, 4}) - 0.9486832980505138) < 1e-12);
    }

    void activationProfilesMatchDirectStatistics()
    {
        Graph g = importOnnx(kModel);
        Dataset d = demoData(g, 40);
        ProfileOptions po;
        po.batch = 16;
        Progress p;
        auto profiles = profileActivations(g, d, po, p, CancelToken());
        QCOMPARE(profiles.size(), std::size_t(16)); // 8 layers x (input, output)
        // The first layer's input is the normalized image itself: check against it.
        const ActivationProfile& first = profiles.front();
        QCOMPARE(first.role, std::string("input"));
        QCOMPARE(first.value, std::string("input"));
        auto all = d.first().data<float>();
        double mn = 1e9, mx = -1e9, sum = 0;
        for (float v : all) {
            mn = std::min(mn, double(v));
            mx = std::max(mx, double(v));
            sum += v;
        }
        QCOMPARE(first.stats.count, int64_t(all.size()));
        QCOMPARE(first.stats.min, mn);
        QCOMPARE(first.stats.max, mx);
        QVERIFY(std::abs(first.stats.mean - sum / double(all.size())) < 1e-6);
        QCOMPARE(first.calibration.histogram.total(), uint64_t(all.size()));
        for (const auto& prof : profiles) {
            QCOMPARE(prof.clipRanges.size(), std::size_t(5));
            const ClipRange& mm = prof.clipRanges.at("minmax");
            for (const auto& [name, r] : prof.clipRanges) {
                QVERIFY2(r.lo >= mm.lo - 1e-6f && r.hi <= mm.hi + 1e-6f, name.c_str()); // never wider than seen
                QVERIFY(r.lo <= r.hi);
            }
        }
    }

    void cancelledProfilingThrows()
    {
        Graph g = importOnnx(kModel);
        Dataset d = demoData(g, 64);
        CancelToken cancel;
        cancel.cancel();
        Progress p;
        QVERIFY_EXCEPTION_THROWN(profileActivations(g, d, ProfileOptions {}, p, cancel), qs::Cancelled);
    }
};

QTEST_APPLESS_MAIN(TestSensitivity)
#include "test_sensitivity.moc"
