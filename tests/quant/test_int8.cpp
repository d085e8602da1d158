// Real INT8 execution: the demo CNN in INT8 against the simulated-quantization path
// (every quantized value and every logit), and one INT8 convolution against a naive
// loop over the dequantized integers.
#include "demo_data.h"
#include "naive_reference.h"

#include "data/dataset.h"
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "runtime/cpu_isa.h"
#include "runtime/plan.h"
#include "support/onnx_builder.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>
#include <random>

using namespace qs;

namespace {

const char* const kModel = test::kDemoModel;
using test::demoData;

struct StepDiff {
    double maxSteps = 0;  // largest |a - b| in steps
    double fractionExact = 0;
};

StepDiff stepDiff(const Tensor& a, const Tensor& b, double step)
{
    auto x = a.toFloat(), y = b.toFloat();
    StepDiff d;
    if (x.size() != y.size()) {
        d.maxSteps = INFINITY;
        return d;
    }
    int64_t exact = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double s = std::abs(double(x[i]) - y[i]) / step;
        d.maxSteps = std::max(d.maxSteps, s);
        exact += s < 0.01;
    }
    d.fractionExact = double(exact) / double(std::max<std::size_t>(x.size(), 1));
    return d;
}

int countKernels(const Plan& p, const std::string& what)
{
    int n = 0;
    for (const auto& k : p.kernelSummary())
        n += k.find(what) != std::string::npos;
    return n;
}

} // namespace

class TestInt8 : public QObject {
    Q_OBJECT

private slots:
    void demoAgreesWithSimulation_data()
    {
        QTest::addColumn<int>("wbits");
        QTest::addColumn<QString>("granularity");
        QTest::addColumn<QString>("calib");
        QTest::addColumn<bool>("symmetricActs");
        QTest::newRow("W8A8 channel minmax") << 8 << "channel" << "minmax" << false;
        QTest::newRow("W8A8 tensor percentile") << 8 << "tensor" << "percentile:99.99" << false;
        QTest::newRow("W4A8 channel mse") << 4 << "channel" << "mse" << false;
        QTest::newRow("W8A8 channel, s8 activations") << 8 << "channel" << "minmax" << true;
    }

    void demoAgreesWithSimulation()
    {
        QFETCH(int, wbits);
        QFETCH(QString, granularity);
        QFETCH(QString, calib);
        QFETCH(bool, symmetricActs);
        Graph g = importOnnx(kModel);
        QuantizeOptions o;
        o.config.defaults.weight.bits = wbits;
        parseGranularity(granularity.toStdString(), o.config.defaults.weight);
        parseCalibrator(calib.toStdString(), o.config.defaults.activation);
        o.config.defaults.activation.symmetric = symmetricActs;
        o.calibLimit = 128;
        QuantSession s(g, o);
        Dataset d = demoData(-1);
        Progress p;
        s.calibrate(d, p, CancelToken());
        s.quantizeWeights();
        const Tensor x = d.batch(0, 500).front();

        // The deployed form: fused, untapped. Its logits against the simulation's.
        auto sim = s.compile(true, x.shape);
        auto int8 = s.compileInt8(x.shape);
        QVERIFY(countKernels(*int8, "int8 ") == 8);
        QCOMPARE(countKernels(*int8, "ref:"), 0);
        // 8 bits between INT8 layers: the image and the Gemm's input (after the float
        // GlobalAveragePool) are quantized; res2/conv2 writes float for the pool, so its
        // residual is dequantized for the sum.
        QCOMPARE(countKernels(*int8, "[quantize "), 2);
        QCOMPARE(countKernels(*int8, "[dequantize "), 1);
        // Per layer: every quantized value the INT8 plan computes against the simulation
        // computing it from the INT8 plan's own values upstream (runFrom), in steps of
        // that value's scale: the layer in isolation, without earlier rounding flips.
        // On the first 250 images: each value re-runs the simulation downstream of it.
        const Tensor xs = d.batch(0, 250).front();
        auto simT = s.compile(true, xs.shape);
        auto int8T = s.compileInt8(xs.shape);
        std::map<std::string, Tensor> a, b;
        for (const auto& [value, q] : s.activationParams) {
            simT->addTap(value, [&a](const std::string& v, const Tensor& t) { a[v] = t; });
            int8T->addTap(value, [&b](const std::string& v, const Tensor& t) { b[v] = t; });
        }
        simT->run({xs});
        const Tensor gotSmall = int8T->run({xs}).front();
        QCOMPARE(b.size(), s.activationParams.size());
        // The INT8 plan holds the Gemm's input in float and quantizes it inside the
        // Gemm: put it on the grid the Gemm sees.
        for (auto& [value, t] : b)
            for (float& v : t.data<float>())
                v = fakeQuant(v, s.activationParams.at(value));
        const std::map<std::string, Tensor> full = a;
        for (const auto& [value, q] : s.activationParams) {
            if (value == g.inputs.front().name)
                continue; // the INT8 plan quantizes the float input inside the first layer
            std::map<std::string, Tensor> given = b;
            given.erase(value);
            const StepDiff e2e = stepDiff(full.at(value), b.at(value), q.scale);
            a.clear();
            simT->runFrom(given);
            const StepDiff sd = stepDiff(a.at(value), b.at(value), q.scale);
            qInfo("%-34s isolated: max %.0f steps, %.3f%% exact; end to end: max %.0f, %.3f%% exact", value.c_str(),
                  sd.maxSteps, sd.fractionExact * 100, e2e.maxSteps, e2e.fractionExact * 100);
            QVERIFY2(sd.maxSteps <= 1.0 + 1e-3, value.c_str());
            // Off by one only near a rounding tie; the int32 bias (rounded to the
            // accumulator unit, coarse at 4 bits) moves a few more values across one.
            QVERIFY2(sd.fractionExact > 0.99, value.c_str());
        }

        // The logits: one step of their own 8-bit grid (min-max over this data). The
        // Gemm in isolation (from the INT8 plan's input to it) stays within one step;
        // end to end, earlier one-step flips add up, so that bound is looser.
        const Tensor want = sim->run({x}).front(), got = int8->run({x}).front();
        float lo = INFINITY, hi = -INFINITY;
        for (float v : want.data<float>()) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        const double logitStep = (hi - lo) / 255.0;
        std::map<std::string, Tensor> given = b;
        given.erase(g.inputs.front().name);
        const Tensor isolated = simT->runFrom(given).front();
        const StepDiff gemm = stepDiff(isolated, gotSmall, logitStep), e2e = stepDiff(want, got, logitStep);
        qInfo("logits (step %.4f): Gemm isolated max %.3f steps; end to end max %.3f steps", logitStep,
              gemm.maxSteps, e2e.maxSteps);
        QVERIFY2(gemm.maxSteps <= 1.0, qPrintable(QString::number(gemm.maxSteps)));
        QVERIFY2(e2e.maxSteps <= 4.0, qPrintable(QString::number(e2e.maxSteps)));
        int agree = 0;
        for (int64_t i = 0; i < want.shape[0]; ++i) {
            auto w = want.data<float>().subspan(std::size_t(i * 10), 10), q = got.data<float>().subspan(std::size_t(i * 10), 10);
            agree += std::max_element(w.begin(), w.end()) - w.begin() == std::max_element(q.begin(), q.end()) - q.begin();
        }
        QVERIFY2(agree >= 497, qPrintable(QString::number(agree))); // top-1 of INT8 = simulated on >= 99.4%
    }

    void convMatchesNaiveIntegerLoop_data()
    {
        QTest::addColumn<bool>("signedInput");
        QTest::addColumn<int>("channels");
        QTest::newRow("u8, 5 channels") << false << 5;
        QTest::newRow("s8, 5 channels") << true << 5;
        QTest::newRow("s8, 1 channel") << true << 1;
    }

    void convMatchesNaiveIntegerLoop()
    {
        // y = Relu(Conv(x, w) + b) on random data, input quantized affine u8 (or symmetric
        // s8), output affine u8, weights s8 per output channel.
        QFETCH(bool, signedInput);
        QFETCH(int, channels);
        test::OnnxBuilder mb;
        const int64_t O = 6, C = channels;
        mb.input("x", {-1, C, 9, 9});
        std::mt19937 rng(7);
        std::normal_distribution<float> nd(0.f, 1.f);
        std::vector<float> wf(static_cast<std::size_t>(O * C * 9)), bf(static_cast<std::size_t>(O));
        for (float& v : wf)
            v = 0.2f * nd(rng);
        for (float& v : bf)
            v = 0.5f * nd(rng);
        mb.initializer("w", {O, C, 3, 3}, wf);
        mb.initializer("b", {O}, bf);
        auto* conv = mb.node("Conv", {"x", "w", "b"}, {"c"}, "conv");
        test::OnnxBuilder::intsAttr(conv, "pads", {1, 0, 1, 2});
        test::OnnxBuilder::intsAttr(conv, "strides", {2, 1});
        mb.node("Relu", {"c"}, {"y"}, "relu");
        mb.output("y", {-1, O, 5, 9});
        Graph g = importOnnxBytes(mb.bytes(), "conv.onnx", "");

        const QParams qx = qparamsFor(-1.7f, 2.9f, 8, signedInput), qy = qparamsFor(0.f, 6.f, 8, false);
        QVERIFY(signedInput ? qx.zeroPoint == 0 : qx.zeroPoint != 0);
        Int8Layer L;
        std::vector<float> wq(wf.size()); // dequantized integer weights
        for (int64_t o = 0; o < O; ++o) {
            float m = 0;
            for (int64_t k = 0; k < C * 9; ++k)
                m = std::max(m, std::abs(wf[std::size_t(o * C * 9 + k)]));
            const float sw = m / 127.f;
            L.weightScales.push_back(sw);
            for (int64_t k = 0; k < C * 9; ++k) {
                const std::size_t e = std::size_t(o * C * 9 + k);
                L.weight.push_back(int8_t(std::nearbyint(wf[e] / sw)));
                wq[e] = float(L.weight.back()) * sw;
            }
            L.bias.push_back(int32_t(std::nearbyint(bf[std::size_t(o)] / (qx.scale * sw))));
        }
        CompileOptions co;
        Tensor x(DType::Float, {3, C, 9, 9});
        for (float& v : x.data<float>())
            v = 1.5f * nd(rng) + 0.4f;
        co.inputShapes["x"] = x.shape;
        co.int8Layers["conv"] = L;
        co.int8Values["x"] = {qx.scale, qx.zeroPoint, signedInput};
        co.int8Values["y"] = {qy.scale, qy.zeroPoint, false}; // quantized output, dequantized for the graph
        auto plan = compilePlan(g, co);
        QCOMPARE(countKernels(*plan, "int8 "), 1);
        if (int8UsesReferenceKernels()) // the fast kernels, not the (exact) reference ones
            QCOMPARE(countKernels(*plan, "(7-bit split)"), 1);
        const std::vector<float> got = plan->run({x}).front().toFloat();

        // Reference: the float conv of the dequantized integers (the int32 bias in
        // accumulator units), then ReLU and the output grid.
        Tensor xq = x;
        for (float& v : xq.data<float>())
            v = fakeQuant(v, qx);
        std::map<std::string, Tensor> over;
        over["w"] = Tensor::fromVector(Shape{O, C, 3, 3}, wq);
        std::vector<float> bq;
        for (int64_t o = 0; o < O; ++o)
            bq.push_back(float(L.bias[std::size_t(o)]) * qx.scale * L.weightScales[std::size_t(o)]);
        over["b"] = Tensor::fromVector(Shape{O}, bq);
        std::vector<float> want = test::naiveRun(g, xq, over).toFloat();
        QCOMPARE(got.size(), want.size());
        int64_t exact = 0;
        for (std::size_t i = 0; i < want.size(); ++i) {
            const float r = fakeQuant(want[i], qy);
            const float steps = std::abs(r - got[i]) / qy.scale;
            QVERIFY2(steps < 1.001f, qPrintable(QString("element %1: %2 vs %3").arg(i).arg(got[i]).arg(r)));
            exact += steps < 0.01f;
        }
        // Off by one only where the real value sits on a rounding boundary.
        QVERIFY2(double(exact) / double(want.size()) > 0.995, qPrintable(QString::number(exact)));
    }

    void matmulMatchesNaiveIntegerLoop_data()
    {
        QTest::addColumn<QString>("op");
        QTest::addColumn<bool>("transB");
        QTest::addColumn<float>("alpha");
        QTest::addColumn<int>("rank");
        QTest::newRow("Gemm transB") << "Gemm" << true << 1.f << 2;
        QTest::newRow("Gemm alpha 0.5") << "Gemm" << false << 0.5f << 2;
        QTest::newRow("MatMul 3-D input") << "MatMul" << false << 1.f << 3;
    }

    void matmulMatchesNaiveIntegerLoop()
    {
        // y = Relu(op(x, W) (+ C)), x affine u8, W s8 per output column, y affine u8;
        // the reference is an integer loop over the stored values.
        QFETCH(QString, op);
        QFETCH(bool, transB);
        QFETCH(float, alpha);
        QFETCH(int, rank);
        const int64_t K = 24, N = 7, rows = 3, batch = 5;
        std::mt19937 rng(11);
        std::normal_distribution<float> nd(0.f, 1.f);
        Int8Layer L;
        for (int64_t n = 0; n < N; ++n)
            L.weightScales.push_back(0.004f * float(n + 1));
        std::vector<int8_t> w(static_cast<std::size_t>(K * N)); // [K][N]
        for (auto& v : w)
            v = int8_t(std::clamp(std::nearbyint(40.f * nd(rng)), -127.f, 127.f));
        std::vector<float> wf;
        const bool gemm = op == "Gemm";
        for (int64_t i = 0; i < K * N; ++i) { // stored in the graph's layout: [N][K] when transB
            const int64_t k = transB ? i % K : i / N, n = transB ? i / K : i % N;
            L.weight.push_back(w[std::size_t(k * N + n)]);
            wf.push_back(float(L.weight.back()) * L.weightScales[std::size_t(n)]);
        }
        for (int64_t n = 0; n < N; ++n)
            L.bias.push_back(gemm ? int32_t(n * 37 - 100) : 0);
        if (!gemm)
            L.bias.clear();
        test::OnnxBuilder mb;
        const std::vector<int64_t> xDims = rank == 2 ? std::vector<int64_t>{-1, K} : std::vector<int64_t>{-1, rows, K};
        mb.input("x", xDims);
        mb.initializer("w", transB ? std::vector<int64_t>{N, K} : std::vector<int64_t>{K, N}, wf);
        onnx::NodeProto* node = nullptr;
        if (gemm) {
            mb.initializer("c", {N}, std::vector<float>(std::size_t(N), 0.f)); // the int32 bias stands for it
            node = mb.node("Gemm", {"x", "w", "c"}, {"m"}, "layer");
            test::OnnxBuilder::intAttr(node, "transB", transB ? 1 : 0);
            test::OnnxBuilder::floatAttr(node, "alpha", alpha);
        } else {
            node = mb.node("MatMul", {"x", "w"}, {"m"}, "layer");
        }
        mb.node("Relu", {"m"}, {"y"}, "relu");
        std::vector<int64_t> yDims = xDims;
        yDims.back() = N;
        mb.output("y", yDims);
        Graph g = importOnnxBytes(mb.bytes(), "mm.onnx", "");

        const QParams qx = qparamsFor(-2.f, 3.f, 8, false), qy = qparamsFor(0.f, 4.f, 8, false);
        Shape xs = rank == 2 ? Shape{batch, K} : Shape{batch, rows, K};
        Tensor x(DType::Float, xs);
        for (float& v : x.data<float>())
            v = nd(rng) + 0.3f;
        CompileOptions co;
        co.inputShapes["x"] = xs;
        co.int8Layers["layer"] = L;
        co.int8Values["x"] = {qx.scale, qx.zeroPoint, false};
        co.int8Values["y"] = {qy.scale, qy.zeroPoint, false};
        auto plan = compilePlan(g, co);
        QCOMPARE(countKernels(*plan, "int8 "), 1);
        const std::vector<float> got = plan->run({x}).front().toFloat();

        auto xv = x.data<float>();
        const int64_t M = x.numel() / K;
        int64_t exact = 0;
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
                int64_t acc = L.bias.empty() ? 0 : L.bias[std::size_t(n)];
                for (int64_t k = 0; k < K; ++k) {
                    const int64_t xq = int64_t(std::clamp(std::nearbyint(xv[std::size_t(m * K + k)] / qx.scale) +
                                                              float(qx.zeroPoint), 0.f, 255.f));
                    acc += (xq - qx.zeroPoint) * w[std::size_t(k * N + n)];
                }
                const double real = std::max(0.0, double(alpha) * double(acc) * qx.scale * L.weightScales[std::size_t(n)]);
                const double want = std::clamp(std::nearbyint(real / qy.scale) + qy.zeroPoint, 0.0, 255.0);
                const double have = std::nearbyint(got[std::size_t(m * N + n)] / qy.scale) + qy.zeroPoint;
                QVERIFY2(std::abs(want - have) <= 1, qPrintable(QString("row %1 col %2: %3 vs %4").arg(m).arg(n).arg(have).arg(want)));
                exact += want == have;
            }
        QVERIFY2(double(exact) / double(M * N) > 0.95, qPrintable(QString::number(exact)));
        const auto positive = std::count_if(got.begin(), got.end(), [](float v) { return v > 0; });
        QVERIFY2(positive > M * N / 4 && positive < M * N, qPrintable(QString::number(positive))); // not degenerate
    }

    void saturationProneMatmulIsExact()
    {
        // u8 inputs near 255 and s8 weights near +-127 in same-signed pairs: a kernel whose
        // pairwise products saturate at int16 (vpmaddubsw without VNNI) loses up to half of
        // such a sum. Float output, so the int32 sums are compared exactly (to float
        // rounding) with an integer loop. Without VNNI this runs the 7-bit weight split on
        // oneDNN's fast kernels; with VNNI or AMX the plain kernels, exact by themselves.
        const int64_t M = 6, K = 96, N = 10;
        std::mt19937 rng(5);
        Int8Layer L;
        for (int64_t n = 0; n < N; ++n)
            L.weightScales.push_back(0.001f * float(n + 1));
        const int8_t pool[] = {127, 126, -128, -127, 119, -121, 3, -1};
        std::vector<float> wf;
        for (int64_t k = 0; k < K; ++k)
            for (int64_t n = 0; n < N; ++n) {
                const int8_t v = pool[((k / 2) * 3 + n) % 8]; // equal in each pair of rows k
                L.weight.push_back(v);
                wf.push_back(float(v) * L.weightScales[std::size_t(n)]);
            }
        for (int64_t n = 0; n < N; ++n)
            L.bias.push_back(int32_t(n * 1000 - 4000));
        test::OnnxBuilder mb;
        mb.input("x", {-1, K});
        mb.initializer("w", {K, N}, wf);
        mb.initializer("c", {N}, std::vector<float>(std::size_t(N), 0.f)); // the int32 bias stands for it
        mb.node("Gemm", {"x", "w", "c"}, {"y"}, "layer");
        mb.output("y", {-1, N});
        Graph g = importOnnxBytes(mb.bytes(), "sat.onnx", "");
        const QParams qx = qparamsFor(-0.1f, 5.f, 8, false);
        Tensor x(DType::Float, {M, K});
        std::uniform_int_distribution<int> near(245, 255);
        for (float& v : x.data<float>())
            v = float(near(rng) - qx.zeroPoint) * qx.scale; // exactly on the grid
        CompileOptions co;
        co.inputShapes["x"] = x.shape;
        co.int8Layers["layer"] = L;
        co.int8Values["x"] = {qx.scale, qx.zeroPoint, false};
        auto plan = compilePlan(g, co);
        QCOMPARE(countKernels(*plan, "int8 "), 1);
        if (int8UsesReferenceKernels()) // the fast kernels, not the (exact) reference ones
            QCOMPARE(countKernels(*plan, "(7-bit split)"), 1);
        const std::vector<float> got = plan->run({x}).front().toFloat();
        auto xv = x.data<float>();
        int64_t saturating = 0; // pairs of raw u8 x s8 products a saturating kernel would clip
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
                int64_t acc = L.bias[std::size_t(n)], previous = 0;
                for (int64_t k = 0; k < K; ++k) {
                    const int64_t xq = int64_t(std::nearbyint(xv[std::size_t(m * K + k)] / qx.scale)) + qx.zeroPoint;
                    const int64_t raw = xq * L.weight[std::size_t(k * N + n)];
                    acc += raw - int64_t(qx.zeroPoint) * L.weight[std::size_t(k * N + n)];
                    saturating += k % 2 == 1 && std::abs(previous + raw) > 32767;
                    previous = raw;
                }
                const double want = double(acc) * qx.scale * L.weightScales[std::size_t(n)];
                const double have = got[std::size_t(m * N + n)];
                QVERIFY2(std::abs(have - want) <= 1e-5 * std::max(1.0, std::abs(want)),
                         qPrintable(QString("row %1 col %2: %3 vs %4").arg(m).arg(n).arg(have).arg(want)));
            }
        QVERIFY2(saturating > M * N, qPrintable(QString::number(saturating))); // the data does provoke it
    }

    void unsupportedSpecsNameTheLayer()
    {
        Graph g = importOnnx(kModel);
        QuantizeOptions o;
        o.config.defaults.activation.bits = 6;
        o.calibLimit = 16;
        QuantSession s(g, o);
        Dataset d = demoData(16);
        Progress p;
        s.calibrate(d, p, CancelToken());
        s.quantizeWeights();
        try {
            s.compileInt8(d.first().shape);
            QFAIL("no error");
        } catch (const qs::Error& e) {
            QVERIFY2(std::string(e.what()).find("/stem/stem.0/Conv") != std::string::npos, e.what());
            QVERIFY2(std::string(e.what()).find("exactly 8") != std::string::npos, e.what());
        }
    }
};

QTEST_APPLESS_MAIN(TestInt8)
#include "test_int8.moc"
