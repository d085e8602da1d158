// The runtime on the demo CNN against PyTorch's logits and the accuracy recorded at
// training time; taps against graph outputs; runFrom against value transforms;
// compile-time errors and constant folding on models built here.
#include "data/dataset.h"
#include "data/npy.h"
#include "graph/onnx_import.h"
#include "runtime/plan.h"
#include "support/onnx_builder.h"
#include "util/error.h"

#include <QScopeGuard>
#include <QtTest>

#include <algorithm>
#include <cmath>

#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

using namespace qs;
using qs::test::OnnxBuilder;

namespace {

const char* kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
const char* kImages = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";
const char* kLogits = QS_SOURCE_DIR "/resources/demo/fashion1k-logits.npy";

float maxAbsDiff(const Tensor& a, const Tensor& b)
{
    auto x = a.toFloat(), y = b.toFloat();
    if (x.size() != y.size())
        return INFINITY;
    float m = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
        m = std::max(m, std::fabs(x[i] - y[i]));
    return m;
}

Graph demo() { return importOnnx(kModel); }

Dataset demoData(const Graph& g, int64_t limit = -1)
{
    DataOptions o;
    o.spec = kImages;
    o.limit = limit;
    return loadDataset(o, g);
}

// 1x1 conv (C -> M, bias) -> Clip(0, 6) -> 3x3 depthwise conv (stride s, pad 1, bias) ->
// BatchNormalization -> Relu, the MobileNetV2 expansion; values deterministic.
struct PointDepthModel {
    int64_t n = 1, c = 16, m = 96, h = 112, w = 112, stride = 2; // MobileNetV2 features.2
    std::vector<float> w1, b1, w2, b2, gamma, beta, mean, var, x;

    static std::vector<float> ramp(std::size_t count, float scale, float offset, int period)
    {
        std::vector<float> v(count);
        for (std::size_t i = 0; i < count; ++i)
            v[i] = scale * float(int(i * 7 % std::size_t(period)) - period / 2) + offset;
        return v;
    }

    explicit PointDepthModel(int64_t s, int64_t batch = 1) : n(batch), stride(s)
    {
        w1 = ramp(std::size_t(m * c), 0.02f, 0.f, 23);
        b1 = ramp(std::size_t(m), 0.1f, 0.5f, 11);
        w2 = ramp(std::size_t(m * 9), 0.05f, 0.01f, 13);
        b2 = ramp(std::size_t(m), 0.05f, 0.f, 7);
        gamma = ramp(std::size_t(m), 0.05f, 1.f, 5);
        beta = ramp(std::size_t(m), 0.1f, 0.f, 9);
        mean = ramp(std::size_t(m), 0.1f, 0.2f, 3);
        var = ramp(std::size_t(m), 0.05f, 1.f, 6);
        x = ramp(std::size_t(n * c * h * w), 0.3f, 0.f, 31);
    }
    int64_t oh() const { return (h + 2 - 3) / stride + 1; }
    int64_t ow() const { return (w + 2 - 3) / stride + 1; }

    Graph graph() const
    {
        OnnxBuilder b(13);
        b.input("x", {-1, c, h, w});
        b.initializer("w1", {m, c, 1, 1}, w1);
        b.initializer("b1", {m}, b1);
        b.initializer("w2", {m, 1, 3, 3}, w2);
        b.initializer("b2", {m}, b2);
        b.initializer("gamma", {m}, gamma);
        b.initializer("beta", {m}, beta);
        b.initializer("mean", {m}, mean);
        b.initializer("var", {m}, var);
        b.initializer("lo", {}, {0.f});
        b.initializer("hi", {}, {6.f});
        b.node("Conv", {"x", "w1", "b1"}, {"pw"}, "pw");
        b.node("Clip", {"pw", "lo", "hi"}, {"pw6"}, "clip");
        auto* dw = b.node("Conv", {"pw6", "w2", "b2"}, {"dw"}, "dw");
        OnnxBuilder::intAttr(dw, "group", m);
        OnnxBuilder::intsAttr(dw, "kernel_shape", {3, 3});
        OnnxBuilder::intsAttr(dw, "pads", {1, 1, 1, 1});
        OnnxBuilder::intsAttr(dw, "strides", {stride, stride});
        b.node("BatchNormalization", {"dw", "gamma", "beta", "mean", "var"}, {"bn"}, "bn");
        b.node("Relu", {"bn"}, {"y"}, "relu");
        b.output("y", {-1, m, oh(), ow()});
        return importOnnxBytes(b.bytes(), "pointdepth.onnx", "");
    }

    // Naive loops, in double.
    std::vector<float> reference() const
    {
        std::vector<double> mid(std::size_t(n * m * h * w));
        for (int64_t b = 0; b < n; ++b)
            for (int64_t o = 0; o < m; ++o)
                for (int64_t p = 0; p < h * w; ++p) {
                    double acc = b1[std::size_t(o)];
                    for (int64_t i = 0; i < c; ++i)
                        acc += double(w1[std::size_t(o * c + i)]) * x[std::size_t((b * c + i) * h * w + p)];
                    mid[std::size_t((b * m + o) * h * w + p)] = std::min(6.0, std::max(0.0, acc));
                }
        std::vector<float> y(std::size_t(n * m * oh() * ow()));
        for (int64_t b = 0; b < n; ++b)
            for (int64_t o = 0; o < m; ++o)
                for (int64_t r = 0; r < oh(); ++r)
                    for (int64_t q = 0; q < ow(); ++q) {
                        double acc = b2[std::size_t(o)];
                        for (int64_t kr = 0; kr < 3; ++kr)
                            for (int64_t kq = 0; kq < 3; ++kq) {
                                const int64_t ir = r * stride - 1 + kr, iq = q * stride - 1 + kq;
                                if (ir >= 0 && ir < h && iq >= 0 && iq < w)
                                    acc += double(w2[std::size_t(o * 9 + kr * 3 + kq)]) *
                                           mid[std::size_t(((b * m + o) * h + ir) * w + iq)];
                            }
                        const std::size_t u = std::size_t(o);
                        const double bn = (acc - mean[u]) / std::sqrt(double(var[u]) + 1e-5) * gamma[u] + beta[u];
                        y[std::size_t(((b * m + o) * oh() + r) * ow() + q)] = float(std::max(0.0, bn));
                    }
        return y;
    }
};

bool hasDwFusion(const Plan& plan)
{
    for (const auto& line : plan.kernelSummary())
        if (line.find("+dw") != std::string::npos)
            return true;
    return false;
}

} // namespace

class TestRuntimePlan : public QObject {
    Q_OBJECT

private slots:
    void demoMatchesPyTorch_data()
    {
        QTest::addColumn<int>("batch");
        QTest::addColumn<int>("threads");
        QTest::newRow("batch 100, 1 thread") << 100 << 1;
        QTest::newRow("batch 1000, 2 threads") << 1000 << 2;
        QTest::newRow("batch 37 (ragged), 2 threads") << 37 << 2;
    }

    void demoMatchesPyTorch()
    {
        QFETCH(int, batch);
        QFETCH(int, threads);
        Graph g = demo();
        Dataset data = demoData(g);
        QCOMPARE(data.count(), int64_t(1000));
        QVERIFY(data.labels.has_value());
        Tensor ref = readNpy(kLogits);
        QCOMPARE(ref.shape, (Shape{1000, 10}));
        auto refv = ref.toFloat();

        CompileOptions opts;
        opts.threads = threads;
        opts.inputShapes["input"] = {batch, 1, 28, 28};
        auto plan = compilePlan(g, opts);
        int64_t correct = 0;
        float worst = 0;
        for (int64_t start = 0; start < data.count(); start += batch) {
            const int64_t n = std::min<int64_t>(batch, data.count() - start);
            auto out = plan->run(data.batch(start, n));
            QCOMPARE(out.size(), std::size_t(1));
            QCOMPARE(out[0].shape, (Shape{n, 10}));
            auto v = out[0].toFloat();
            for (int64_t i = 0; i < n; ++i) {
                int best = 0;
                for (int k = 0; k < 10; ++k) {
                    worst = std::max(worst, std::fabs(v[std::size_t(i * 10 + k)] - refv[std::size_t((start + i) * 10 + k)]));
                    if (v[std::size_t(i * 10 + k)] > v[std::size_t(i * 10 + best)])
                        best = k;
                }
                correct += best == (*data.labels)[std::size_t(start + i)] ? 1 : 0;
            }
        }
        const double top1 = double(correct) / 1000.0;
        const double recorded = std::stod(g.metadata.at("quantstudio.slice_top1"));
        qInfo("demo top-1 %.4f (recorded %.4f), max |logit - PyTorch| %.2e", top1, recorded, worst);
        QCOMPARE(top1, recorded);
        QVERIFY2(worst < 1e-3f, qPrintable(QString("max abs logit difference %1").arg(worst)));
    }

    void demoFusesBatchNormAndActivations()
    {
        Graph g = demo();
        CompileOptions opts;
        opts.inputShapes["input"] = {8, 1, 28, 28};
        auto fused = compilePlan(g, opts);
        opts.fuse = false;
        auto unfused = compilePlan(g, opts);
        const auto k = fused->kernelSummary();
        for (const auto& line : k)
            qInfo("%s", line.c_str());
        // 7 convs (BN, ReLU and the residual Add fused), pool, flatten, gemm, maybe reorders.
        int convs = 0;
        for (const auto& line : k)
            convs += line.rfind("Conv ", 0) == 0 ? 1 : 0;
        QCOMPARE(convs, 7);
        QVERIFY2(k.size() <= 13, "BatchNormalization, Relu and Add should fuse into the convolutions");
        for (const auto& line : k)
            QVERIFY2(line.find("BatchNormalization") == std::string::npos || line.rfind("Conv ", 0) == 0, line.c_str());
        QVERIFY(unfused->kernelSummary().size() > 20);
        Dataset data = demoData(g, 8);
        QVERIFY(maxAbsDiff(fused->run({data.first()})[0], unfused->run({data.first()})[0]) < 1e-4f);
    }


    // Observing a value must not change the numbers: a plan that keeps every layer's
    // output (so nothing fuses into the convolutions) gives bit for bit what the fused
    // plan gives. The what-if and sensitivity analyses rely on it to equal a full run.
    // (oneDNN's AVX2 convolution starts its accumulators from the residual when the Add
    // is a sum post-op, a different rounding than conv-then-Add; a binary post-op adds
    // after the bias, as the Add node does.)
    void keepingValuesKeepsTheNumbers()
    {
        Graph g = demo();
        Dataset data = demoData(g, 64);
        CompileOptions opts;
        opts.threads = 1;
        opts.inputShapes["input"] = {64, 1, 28, 28};
        auto fused = compilePlan(g, opts);
        CompileOptions keep = opts;
        for (const auto& n : g.nodes)
            if (n.opType == "BatchNormalization") // each Conv's output once BN is folded in
                keep.keepValues.insert(n.outputs[0]);
        auto kept = compilePlan(g, keep);
        QVERIFY(fused->kernelSummary().size() < kept->kernelSummary().size());
        const Tensor in = data.first();
        const float diff = maxAbsDiff(fused->run({in})[0], kept->run({in})[0]);
        QVERIFY2(diff == 0.f, qPrintable(QString("logits differ by %1").arg(double(diff))));
    }

    void pointwiseCarriesDepthwise_data()
    {
        QTest::addColumn<int>("stride");
        QTest::addColumn<int>("threads");
        QTest::addColumn<int>("batch");
        QTest::newRow("stride 2, 1 thread") << 2 << 1 << 1;
        QTest::newRow("stride 2, 2 threads, batch 2") << 2 << 2 << 2;
        QTest::newRow("stride 2, 2 threads, batch 1 (parts)") << 2 << 2 << 1;
        QTest::newRow("stride 1, 2 threads") << 1 << 2 << 1;
    }

    // The 3x3 depthwise conv (with BN and activations) runs as a post-op of the 1x1 one
    // where oneDNN has a fused kernel, except in parts mode (batch 1, 2 threads), where
    // both run as parts instead; either way the result matches naive loops, and a kept
    // intermediate disables the fusion.
    void pointwiseCarriesDepthwise()
    {
        QFETCH(int, stride);
        QFETCH(int, threads);
        QFETCH(int, batch);
        // The blocked layout is what carries the fusion and the channel parts; below
        // AVX-512 the runtime would choose nhwc for this model.
        qputenv("QS_RUNTIME_BLOCKED", "1");
        const auto unset = qScopeGuard([] { qunsetenv("QS_RUNTIME_BLOCKED"); });
        const PointDepthModel model(stride, batch);
        Graph g = model.graph();
        CompileOptions opts;
        opts.threads = threads;
        opts.inputShapes["x"] = {model.n, model.c, model.h, model.w};
        auto fused = compilePlan(g, opts);
        for (const auto& line : fused->kernelSummary())
            qInfo("%s", line.c_str());
        const bool partsMode = threads > 1 && batch == 1;
        // oneDNN 2.6 has jit kernels for nChw16c (and so the fusion) only from AVX-512 on.
        const bool jitBlocked = dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core;
        if (stride == 2 && !partsMode && jitBlocked)
            QVERIFY2(hasDwFusion(*fused), "oneDNN's jit 1x1 kernel should carry the stride-2 depthwise conv");
        if (partsMode) {
            QVERIFY(!hasDwFusion(*fused));
            int parts = 0;
            for (const auto& line : fused->kernelSummary())
                parts += line.find(" parts]") != std::string::npos ? 1 : 0;
            QCOMPARE(parts, 2);
        }
        const Tensor in = Tensor::fromVector<float>({model.n, model.c, model.h, model.w}, model.x);
        const Tensor expected =
            Tensor::fromVector<float>({model.n, model.m, model.oh(), model.ow()}, model.reference());
        QVERIFY(maxAbsDiff(fused->run({in})[0], expected) < 1e-4f);
        QCOMPARE(fused->shapeOf("pw6"), (Shape{model.n, model.m, model.h, model.w}));
        QCOMPARE(fused->shapeOf("dw"), (Shape{model.n, model.m, model.oh(), model.ow()}));

        CompileOptions keep = opts;
        keep.keepValues.insert("pw6");
        auto kept = compilePlan(g, keep);
        QVERIFY(!hasDwFusion(*kept));
        QVERIFY(maxAbsDiff(kept->run({in})[0], expected) < 1e-4f);

        // A tap on the intermediate recompiles without the fusion and sees the clipped 1x1 output.
        std::vector<Tensor> seen;
        fused->addTap("pw6", [&](const std::string&, const Tensor& t) { seen.push_back(t); });
        QVERIFY(maxAbsDiff(fused->run({in})[0], expected) < 1e-4f);
        QCOMPARE(seen.size(), std::size_t(1));
        QVERIFY(maxAbsDiff(seen[0], kept->valueOf("pw6")) < 1e-6f);
    }

    void tapsSeeGraphOutputValues_data()
    {
        QTest::addColumn<QString>("value");
        // A conv output hidden by BN folding, a fused BN output, a Relu inside a
        // residual block, the residual Add, the pooled features.
        QTest::newRow("conv before BN") << "/stem/stem.0/Conv_output_0";
        QTest::newRow("BN output") << "/stem/stem.1/BatchNormalization_output_0";
        QTest::newRow("relu") << "/res1/Relu_output_0";
        QTest::newRow("residual add") << "/res1/Add_output_0";
        QTest::newRow("pooled") << "/pool/GlobalAveragePool_output_0";
    }

    void tapsSeeGraphOutputValues()
    {
        QFETCH(QString, value);
        const std::string name = value.toStdString();
        Graph g = demo();
        if (g.producerOf(name) < 0)
            QFAIL(qPrintable("the demo model has no value " + value));
        Dataset data = demoData(g, 64);
        const Shape shape{32, 1, 28, 28};
        CompileOptions opts;
        opts.threads = 2;
        opts.inputShapes["input"] = shape;

        // Reference: the same value made a graph output.
        Graph withOutput = g;
        ValueInfo vi;
        vi.name = name;
        vi.dtype = DType::Float;
        withOutput.outputs.push_back(vi);
        auto ref = compilePlan(withOutput, opts);

        auto plan = compilePlan(g, opts);
        std::vector<Tensor> seen;
        plan->addTap(name, [&](const std::string& v, const Tensor& t) {
            QCOMPARE(v, name);
            seen.push_back(t);
        });
        for (int b = 0; b < 2; ++b) {
            Tensor in = data.batch(b * 32, 32).front();
            auto expected = ref->run({in});
            auto out = plan->run({in});
            QCOMPARE(seen.size(), std::size_t(b + 1));
            QCOMPARE(seen.back().shape, expected[1].shape);
            QCOMPARE(plan->shapeOf(name), expected[1].shape);
            QVERIFY(maxAbsDiff(seen.back(), expected[1]) < 1e-5f);
            QVERIFY(maxAbsDiff(out[0], expected[0]) < 1e-5f);
        }
        plan->clearTaps();
        plan->run(data.batch(0, 32));
        QCOMPARE(seen.size(), std::size_t(2));
    }

    void runFromEqualsTransformedRun_data()
    {
        QTest::addColumn<QString>("value");
        QTest::newRow("stem relu (fused conv output)") << "/stem/stem.2/Relu_output_0";
        QTest::newRow("res2 add") << "/res2/Add_output_0";
        QTest::newRow("conv before BN") << "/down1/down1.0/Conv_output_0";
        QTest::newRow("graph input") << "input";
    }

    void runFromEqualsTransformedRun()
    {
        QFETCH(QString, value);
        const std::string name = value.toStdString();
        Graph g = demo();
        if (name != "input" && g.producerOf(name) < 0)
            QFAIL(qPrintable("the demo model has no value " + value));
        Dataset data = demoData(g, 16);
        auto perturb = [](Tensor& t) {
            auto v = t.data<float>();
            for (std::size_t i = 0; i < v.size(); ++i)
                v[i] = v[i] * 0.9f + 0.05f * float(int(i % 7) - 3);
        };
        CompileOptions opts;
        opts.inputShapes["input"] = {16, 1, 28, 28};
        CompileOptions transformed = opts;
        transformed.valueTransforms[name] = perturb;
        auto expected = compilePlan(g, transformed)->run({data.first()});

        auto plan = compilePlan(g, opts);
        Tensor captured;
        plan->addTap(name, [&](const std::string&, const Tensor& t) { captured = t; });
        auto clean = plan->run({data.first()});
        QVERIFY(!captured.bytes.empty());
        QVERIFY(maxAbsDiff(clean[0], expected[0]) > 1e-3f); // the perturbation matters
        Tensor changed = captured;
        perturb(changed);
        auto partial = plan->runFrom({{name, changed}});
        QVERIFY2(maxAbsDiff(partial[0], expected[0]) <= 1e-6f,
                 qPrintable(QString("runFrom differs by %1").arg(maxAbsDiff(partial[0], expected[0]))));
        // Again from the clean value: back to the clean outputs.
        auto back = plan->runFrom({{name, captured}});
        QVERIFY(maxAbsDiff(back[0], clean[0]) <= 1e-6f);
    }

    // runFrom() keeps what a call changed until one gives other values (the sweep's
    // repeated calls): each call still equals a full run with only its own change,
    // whatever came before, and valueOf() and run() see the last run()'s values.
    void repeatedAndAlternatingRunFromEqualTransformedRuns()
    {
        Graph g = demo();
        Dataset data = demoData(g, 16);
        const std::string a = "/down1/down1.2/Relu_output_0", b = "/res2/Relu_output_0";
        CompileOptions opts;
        opts.inputShapes["input"] = {16, 1, 28, 28};
        opts.keepValues = {a, b};
        auto scaled = [](float f) {
            return [f](Tensor& t) {
                for (float& v : t.data<float>())
                    v *= f;
            };
        };
        auto expected = [&](const std::string& value, float f) {
            CompileOptions o = opts;
            o.valueTransforms[value] = scaled(f);
            return compilePlan(g, o)->run({data.first()}).front();
        };
        auto plan = compilePlan(g, opts);
        const Tensor clean = plan->run({data.first()}).front();
        const Tensor baseA = plan->valueOf(a), baseB = plan->valueOf(b);
        auto given = [&](const Tensor& base, float f) {
            Tensor t = base;
            scaled(f)(t);
            return t;
        };
        struct Step {
            const std::string* value;
            const Tensor* base;
            float f;
        };
        const std::vector<Step> steps = {{&a, &baseA, 0.5f}, {&a, &baseA, 1.5f}, {&a, &baseA, 0.8f}, {&b, &baseB, 0.7f},
            {&b, &baseB, 1.2f}, {&a, &baseA, 0.9f}};
        for (const Step& s : steps) {
            const Tensor out = plan->runFrom({{*s.value, given(*s.base, s.f)}}).front();
            const Tensor ref = expected(*s.value, s.f);
            QVERIFY(maxAbsDiff(out, clean) > 1e-4f);
            QVERIFY2(maxAbsDiff(out, ref) <= 1e-6f,
                qPrintable(QString("%1 x %2: differs by %3").arg(s.value->c_str()).arg(s.f).arg(maxAbsDiff(out, ref))));
        }
        // The values downstream of the last change are the clean run's again.
        QCOMPARE(maxAbsDiff(plan->valueOf(b), baseB), 0.f);
        plan->runFrom({{a, given(baseA, 0.6f)}});
        QCOMPARE(maxAbsDiff(plan->run({data.first()}).front(), clean), 0.f);
        QCOMPARE(maxAbsDiff(plan->valueOf(b), baseB), 0.f);
    }

    // A value handed over from another plan as that plan stores it (blocked layouts
    // included) equals handing the same value over as a plain tensor.
    void runFromAnotherPlansValue()
    {
        Graph g = demo();
        Dataset data = demoData(g, 8);
        const std::string v = "/res1/Relu_1_output_0";
        CompileOptions opts;
        opts.inputShapes["input"] = {8, 1, 28, 28};
        opts.keepValues = {v};
        CompileOptions halved = opts;
        halved.valueTransforms[v] = [](Tensor& t) {
            for (float& x : t.data<float>())
                x *= 0.5f;
        };
        auto source = compilePlan(g, halved);
        const Tensor expected = source->run({data.first()}).front();
        auto plan = compilePlan(g, opts);
        const Tensor clean = plan->run({data.first()}).front();
        QVERIFY(maxAbsDiff(clean, expected) > 1e-3f);
        QCOMPARE(maxAbsDiff(plan->runFrom({}, *source, {{v, v}}).front(), expected), 0.f);
        QCOMPARE(maxAbsDiff(plan->runFrom({{v, source->valueOf(v)}}).front(), expected), 0.f);
        QCOMPARE(maxAbsDiff(plan->run({data.first()}).front(), clean), 0.f);
        QVERIFY_THROWS_EXCEPTION(Error, plan->runFrom({}, *source, {{v, "no such value"}}));
        QVERIFY_THROWS_EXCEPTION(Error, plan->runFrom({}, *source, {{"/res2/Relu_1_output_0", v}})); // other shape
    }

    void runFromOnHiddenValueRecompiles()
    {
        Graph g = demo();
        Dataset data = demoData(g, 4);
        CompileOptions opts;
        opts.inputShapes["input"] = {4, 1, 28, 28};
        auto plan = compilePlan(g, opts);
        auto clean = plan->run({data.first()});
        const std::string hidden = "/res1/bn2/BatchNormalization_output_0";
        if (g.producerOf(hidden) < 0)
            QFAIL("no such value");
        Tensor zeros(DType::Float, plan->shapeOf(hidden));
        auto out = plan->runFrom({{hidden, zeros}});
        QVERIFY(maxAbsDiff(out[0], clean[0]) > 1e-4f);
        QVERIFY_THROWS_EXCEPTION(Error, compilePlan(g, opts)->runFrom({{hidden, zeros}})); // needs a run first
    }

    void overridesReplaceInitializers()
    {
        Graph g = demo();
        Dataset data = demoData(g, 4);
        CompileOptions opts;
        opts.inputShapes["input"] = {4, 1, 28, 28};
        auto base = compilePlan(g, opts)->run({data.first()});
        const std::string w = g.weightOf(g.nodes[std::size_t(g.quantizableLayers().back())]);
        Tensor zero(DType::Float, g.initializers.at(w).shape);
        opts.initializerOverrides[w] = zero;
        auto out = compilePlan(g, opts)->run({data.first()});
        // The last Gemm with zero weights outputs its bias for every sample.
        auto v = out[0].toFloat();
        for (int i = 1; i < 4; ++i)
            for (int k = 0; k < 10; ++k)
                QCOMPARE(v[std::size_t(i * 10 + k)], v[std::size_t(k)]);
        QVERIFY(maxAbsDiff(out[0], base[0]) > 1e-3f);
    }

    void threadCountIsRespected_data()
    {
        QTest::addColumn<int>("threads");
        QTest::newRow("1 thread") << 1;
        QTest::newRow("2 threads") << 2;
    }

    // oneDNN (OpenMP build) takes its thread count from the OpenMP setting when a
    // primitive is created and when it runs: each kernel must see the plan's count
    // whatever the process set before, and small work must stay on one thread.
    void threadCountIsRespected()
    {
        QFETCH(int, threads);
        Graph g = demo();
        CompileOptions opts;
        opts.threads = threads;
        opts.inputShapes["input"] = {192, 1, 28, 28}; // the stem conv is large enough to split (>16M MACs)
        const std::string stem = g.nodes[std::size_t(g.findNode("/stem/stem.2/Relu"))].outputs[0];
        const std::string flat = g.nodes[std::size_t(g.findNode("/flatten/Flatten"))].outputs[0];
        auto plan = compilePlan(g, opts);
        std::map<std::string, int> seen;
        auto record = [&](const std::string& value, const Tensor&) { seen[value] = omp_get_max_threads(); };
        plan->addTap(stem, record);
        plan->addTap(flat, record);
        omp_set_num_threads(3); // what the caller had must not leak into the plan
        Tensor x(DType::Float, {192, 1, 28, 28});
        plan->run({x});
        QCOMPARE(seen.size(), std::size_t(2));
        QCOMPARE(seen.at(stem), threads);
        QCOMPARE(seen.at(flat), 1); // [192, 64] into Flatten: below the parallel threshold
        const auto k = plan->kernelSummary();
        QVERIFY2(std::any_of(k.begin(), k.end(), [](const std::string& l) { return l.find("+/stem/stem.2/Relu") != std::string::npos; }),
                 "the tap must not stop the ReLU fusing into the stem convolution");
    }

    void unsupportedOperatorIsReportedAtCompileTime_data()
    {
        // Each case: model opset, a domain ("" = ONNX) and its opset, the unsupported
        // node(s) as "OpType:name" separated by commas, and what the message must name.
        QTest::addColumn<int>("opset");
        QTest::addColumn<QString>("domain");
        QTest::addColumn<int>("domainOpset");
        QTest::addColumn<QStringList>("nodes");
        QTest::addColumn<QStringList>("expected");
        QTest::newRow("ONNX op, opset 13") << 13 << "" << 0 << QStringList{"Hardmax:the_hardmax"}
                                           << QStringList{"Hardmax", "\"the_hardmax\"", "opset 13"};
        QTest::newRow("ONNX op, opset 11") << 11 << "" << 0 << QStringList{"Det:my_det"}
                                           << QStringList{"Det", "\"my_det\"", "opset 11"};
        QTest::newRow("custom domain") << 13 << "com.example" << 3 << QStringList{"FusedThing:fx"}
                                       << QStringList{"com.example.FusedThing", "\"fx\"", "opset 3"};
        QTest::newRow("known op type in a foreign domain")
            << 13 << "com.microsoft" << 1 << QStringList{"Relu:ms_relu"}
            << QStringList{"com.microsoft.Relu", "\"ms_relu\"", "opset 1"};
        QTest::newRow("two unsupported nodes, both named")
            << 17 << "" << 0 << QStringList{"Hardmax:hm", "Einsum:es"}
            << QStringList{"unsupported operators", "Hardmax", "\"hm\"", "Einsum", "\"es\"", "opset 17"};
    }

    void unsupportedOperatorIsReportedAtCompileTime()
    {
        QFETCH(int, opset);
        QFETCH(QString, domain);
        QFETCH(int, domainOpset);
        QFETCH(QStringList, nodes);
        QFETCH(QStringList, expected);
        OnnxBuilder b(opset);
        if (!domain.isEmpty()) {
            auto* op = b.model().add_opset_import();
            op->set_domain(domain.toStdString());
            op->set_version(domainOpset);
        }
        b.input("x", {1, 4});
        b.node("Relu", {"x"}, {"v0"}, "first");
        std::string prev = "v0";
        for (int i = 0; i < nodes.size(); ++i) {
            const QStringList parts = nodes[i].split(':');
            const std::string out = "v" + std::to_string(i + 1);
            auto* n = b.node(parts[0].toStdString(), {prev}, {out}, parts[1].toStdString());
            n->set_domain(domain.toStdString());
            prev = out;
        }
        b.node("Relu", {prev}, {"y"}, "last");
        b.output("y", {1, 4});
        Graph g = importOnnxBytes(b.bytes(), "unsupported.onnx", "");
        try {
            compilePlan(g);
            QFAIL("compiled an unsupported operator");
        } catch (const Error& e) {
            const QString m = QString::fromUtf8(e.what());
            for (const QString& want : expected)
                QVERIFY2(m.contains(want), qPrintable(m + " lacks " + want));
            QVERIFY2(!m.contains("\"first\"") && !m.contains("\"last\""), qPrintable(m));
        }
    }

    void unknownInputShapeIsAnError()
    {
        Graph g = demo();
        QVERIFY_THROWS_EXCEPTION(Error, compilePlan(g));
    }

    void shapeSubgraphIsFolded()
    {
        // y = Reshape(x, Concat(Gather(Shape(x), 0), [-1])): [N,3,4] -> [N,12].
        OnnxBuilder b(13);
        b.input("x", {-1, 3, 4});
        b.node("Shape", {"x"}, {"s"}, "shape");
        auto* idx = b.model().mutable_graph()->add_initializer();
        idx->set_name("zero");
        idx->set_data_type(onnx::TensorProto::INT64);
        idx->add_int64_data(0);
        auto* minus = b.model().mutable_graph()->add_initializer();
        minus->set_name("minus_one");
        minus->set_data_type(onnx::TensorProto::INT64);
        minus->add_dims(1);
        minus->add_int64_data(-1);
        b.node("Gather", {"s", "zero"}, {"n"}, "gather");
        b.node("Unsqueeze", {"n", "zero_axes"}, {"n1"}, "unsqueeze");
        auto* axes = b.model().mutable_graph()->add_initializer();
        axes->set_name("zero_axes");
        axes->set_data_type(onnx::TensorProto::INT64);
        axes->add_dims(1);
        axes->add_int64_data(0);
        auto* cat = b.node("Concat", {"n1", "minus_one"}, {"shape2"}, "concat");
        OnnxBuilder::intAttr(cat, "axis", 0);
        b.node("Reshape", {"x", "shape2"}, {"y"}, "reshape");
        b.output("y", {-1, 12});
        Graph g = importOnnxBytes(b.bytes(), "fold.onnx", "");
        CompileOptions opts;
        opts.inputShapes["x"] = {5, 3, 4};
        auto plan = compilePlan(g, opts);
        const auto k = plan->kernelSummary();
        QCOMPARE(k.size(), std::size_t(1)); // only the reshape's copy runs
        QCOMPARE(plan->shapeOf("y"), (Shape{5, 12}));
        std::vector<float> v(60);
        for (int i = 0; i < 60; ++i)
            v[std::size_t(i)] = float(i);
        auto out = plan->run({Tensor::fromVector<float>({5, 3, 4}, v)});
        QCOMPARE(out[0].shape, (Shape{5, 12}));
        QCOMPARE(out[0].data<float>()[59], 59.f);
    }

    void supportedOperatorsListsTheIssue()
    {
        const auto ops = supportedOperators();
        for (const char* op : {"Conv", "ConvTranspose", "Gemm", "MatMul", "MaxPool", "AveragePool", "GlobalAveragePool",
                               "GlobalMaxPool", "BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid",
                               "Tanh", "HardSigmoid", "HardSwish", "Elu", "Gelu", "Exp", "Log", "Sqrt", "Abs",
                               "Softmax", "LogSoftmax", "Add", "Sub", "Mul", "Div", "Max", "Min", "Concat",
                               "LayerNormalization", "ReduceMean", "ReduceSum", "ReduceMax", "LRN", "Reshape",
                               "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Gather", "Slice", "Split", "Shape",
                               "Constant", "ConstantOfShape", "Identity", "Dropout", "Cast", "Pad", "Expand", "Where",
                               "Equal", "Range", "Resize"})
            QVERIFY2(std::find(ops.begin(), ops.end(), op) != ops.end(), op);
    }
};

QTEST_APPLESS_MAIN(TestRuntimePlan)
#include "test_runtime_plan.moc"
