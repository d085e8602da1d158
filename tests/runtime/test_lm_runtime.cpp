// The bundled byte-level GPT (opset 17: LayerNormalization, tanh-GELU, Trilu/Not/Where
// mask, Range positions), its decomposed twin (opset 14: ReduceMean/Pow/Sqrt/Div
// LayerNorm, erf-GELU, -inf mask) and torch's own nn.TransformerEncoder (opset 17)
// run on our runtime and compared with the logits torch computed for the same windows
// (resources/demo_lm/train_byte_gpt.py).
#include "data/npy.h"
#include "graph/onnx_import.h"
#include "runtime/cpu_isa.h"
#include "runtime/plan.h"
#include "util/error.h"
#include "support/onnx_builder.h"

#include <QtTest>

#include <cmath>
#include <cstring>
#include <random>

using namespace qs;

class TestLmRuntime : public QObject {
    Q_OBJECT
private slots:
    void matchesTorch_data();
    void matchesTorch();
    void shorterWindowsAndBatches();
    void maskedFill_data();
    void maskedFill();
    void geluTanhPattern_data();
    void geluTanhPattern();
    void bf16Products();
    void bf16ByteGpt();
};

void TestLmRuntime::matchesTorch_data()
{
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("tokens");
    QTest::addColumn<QString>("logits");
    const QString d = QS_SOURCE_DIR "/resources/demo/";
    QTest::newRow("byte_gpt opset17 LayerNormalization tanh-GELU")
        << d + "byte_gpt.onnx" << d + "byte_gpt_ref_tokens.npy" << d + "byte_gpt_ref_logits.npy";
    QTest::newRow("tiny opset14 decomposed LayerNorm erf-GELU -inf mask")
        << d + "byte_gpt_tiny_decomposed.onnx" << d + "byte_gpt_tiny_ref_tokens.npy"
        << d + "byte_gpt_tiny_ref_logits.npy";
    QTest::newRow("torch nn.TransformerEncoder opset17 (Gemm in-proj, Slice, additive -inf mask)")
        << d + "byte_gpt_torch_encoder.onnx" << d + "byte_gpt_torch_encoder_tokens.npy"
        << d + "byte_gpt_torch_encoder_logits.npy";
}

void TestLmRuntime::matchesTorch()
{
    QFETCH(QString, model);
    QFETCH(QString, tokens);
    QFETCH(QString, logits);
    const Graph g = importOnnx(model.toStdString());
    const Tensor in = readNpy(tokens.toStdString());
    const Tensor want = readNpy(logits.toStdString());
    QCOMPARE(in.dtype, DType::Int64);
    CompileOptions o;
    o.inputShapes[g.inputs.at(0).name] = in.shape;
    auto plan = compilePlan(g, o);
    const std::vector<Tensor> out = plan->run({in});
    QCOMPARE(out.size(), std::size_t(1));
    QCOMPARE(out[0].shape, want.shape);
    const auto got = out[0].data<float>();
    const auto ref = want.data<float>();
    double maxErr = 0, maxRef = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        QVERIFY2(std::isfinite(got[i]), qPrintable(QString("logit %1 is not finite").arg(i)));
        maxErr = std::max(maxErr, double(std::fabs(got[i] - ref[i])));
        maxRef = std::max(maxRef, double(std::fabs(ref[i])));
    }
    qInfo("max |logit - torch| = %.3g (max |torch logit| %.3g)", maxErr, maxRef);
    QVERIFY(maxRef > 0.5); // the reference is not degenerate
    QVERIFY2(maxErr < 1e-3 * std::max(1.0, maxRef), qPrintable(QString("max error %1").arg(maxErr)));
}

// Dynamic axes: a plan for a shorter window and a batch of 2 computes, for every
// row, the prefix of the reference logits (causal attention).
void TestLmRuntime::shorterWindowsAndBatches()
{
    const QString d = QS_SOURCE_DIR "/resources/demo/";
    const Graph g = importOnnx((d + "byte_gpt.onnx").toStdString());
    const Tensor all = readNpy((d + "byte_gpt_ref_tokens.npy").toStdString());
    const Tensor want = readNpy((d + "byte_gpt_ref_logits.npy").toStdString());
    const int64_t rows = 2, len = 17, full = all.shape[1], vocab = want.shape[2];
    Tensor in(DType::Int64, {rows, len});
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t t = 0; t < len; ++t)
            in.data<int64_t>()[std::size_t(r * len + t)] = all.data<int64_t>()[std::size_t(r * full + t)];
    CompileOptions o;
    o.inputShapes[g.inputs.at(0).name] = in.shape;
    const Tensor out = compilePlan(g, o)->run({in}).at(0);
    QCOMPARE(out.shape, (Shape {rows, len, vocab}));
    double maxErr = 0;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t t = 0; t < len; ++t)
            for (int64_t v = 0; v < vocab; ++v)
                maxErr = std::max(maxErr, double(std::fabs(out.data<float>()[std::size_t((r * len + t) * vocab + v)] -
                                                          want.data<float>()[std::size_t((r * full + t) * vocab + v)])));
    QVERIFY2(maxErr < 1e-3, qPrintable(QString("max error %1").arg(maxErr)));
}

// Where(mask, scalar, scores) as torch's masked_fill exports it, and the mirrored
// Where(mask, scores, scalar), with the mask broadcast over leading dims (the runtime's
// mask path), against a naive loop.
void TestLmRuntime::maskedFill_data()
{
    QTest::addColumn<bool>("scalarFirst");
    QTest::addColumn<QList<qint64>>("maskDims");
    QTest::newRow("Where(mask, fill, x), mask [3,4]") << true << QList<qint64> {3, 4};
    QTest::newRow("Where(mask, x, fill), mask [1,1,3,4]") << false << QList<qint64> {1, 1, 3, 4};
    QTest::newRow("Where(mask, fill, x), mask [2,1,3,4] (general path)") << true << QList<qint64> {2, 1, 3, 4};
}

void TestLmRuntime::maskedFill()
{
    QFETCH(bool, scalarFirst);
    QFETCH(QList<qint64>, maskDims);
    const Shape out {2, 2, 3, 4}, maskShape(maskDims.begin(), maskDims.end());
    qs::test::OnnxBuilder b(13);
    b.input("mask", maskShape, onnx::TensorProto::BOOL);
    b.input("x", out);
    b.initializer("fill", {}, {-1e4f});
    if (scalarFirst)
        b.node("Where", {"mask", "fill", "x"}, {"y"}, "where");
    else
        b.node("Where", {"mask", "x", "fill"}, {"y"}, "where");
    b.output("y", out);
    const Graph g = importOnnxBytes(b.bytes(), "masked_fill.onnx", "", {});
    Tensor mask(DType::Bool, maskShape), x(DType::Float, out);
    for (int64_t i = 0; i < mask.numel(); ++i)
        mask.data<bool>()[std::size_t(i)] = (i * 7) % 3 == 0;
    for (int64_t i = 0; i < x.numel(); ++i)
        x.data<float>()[std::size_t(i)] = float(i) * 0.5f;
    const Tensor y = compilePlan(g)->run({mask, x}).at(0);
    QCOMPARE(y.shape, out);
    const int64_t inner = 12; // mask elements per [3,4] matrix
    for (int64_t i = 0; i < x.numel(); ++i) {
        const int64_t m = maskShape.size() == 4 && maskShape[0] == 2 ? (i / 24) * inner + i % inner : i % inner;
        const bool c = mask.data<bool>()[std::size_t(m)];
        const float want = c == scalarFirst ? -1e4f : x.data<float>()[std::size_t(i)];
        QCOMPARE(y.data<float>()[std::size_t(i)], want);
    }
}

// The tanh-GELU spellings the runtime fuses into one eltwise, against the formula.
void TestLmRuntime::geluTanhPattern_data()
{
    QTest::addColumn<bool>("pow");
    QTest::addColumn<bool>("halfFirst");
    QTest::newRow("x*(x*x), 0.5 last (torch)") << false << false;
    QTest::newRow("Pow(x,3), 0.5*x first (GPT-2 style)") << true << true;
}

void TestLmRuntime::geluTanhPattern()
{
    QFETCH(bool, pow);
    QFETCH(bool, halfFirst);
    qs::test::OnnxBuilder b(13);
    b.input("x", {2, 5});
    for (auto [name, v] : {std::pair {"three", 3.f}, {"k", 0.044715f}, {"s", 0.7978845608f}, {"one", 1.f}, {"half", 0.5f}})
        b.initializer(name, {}, {v});
    if (pow) {
        b.node("Pow", {"x", "three"}, {"cube"});
    } else {
        b.node("Mul", {"x", "x"}, {"sq"});
        b.node("Mul", {"x", "sq"}, {"cube"});
    }
    b.node("Mul", {"k", "cube"}, {"kc"});
    b.node("Add", {"x", "kc"}, {"in"});
    b.node("Mul", {"s", "in"}, {"arg"});
    b.node("Tanh", {"arg"}, {"t"});
    b.node("Add", {"one", "t"}, {"p1"});
    if (halfFirst) {
        b.node("Mul", {"half", "x"}, {"hx"});
        b.node("Mul", {"hx", "p1"}, {"y"});
    } else {
        b.node("Mul", {"x", "p1"}, {"xp"});
        b.node("Mul", {"half", "xp"}, {"y"});
    }
    b.output("y", {2, 5});
    const Graph g = importOnnxBytes(b.bytes(), "gelu_tanh.onnx", "", {});
    Tensor x(DType::Float, {2, 5});
    for (int64_t i = 0; i < 10; ++i)
        x.data<float>()[std::size_t(i)] = -4.f + 0.9f * float(i);
    auto plan = compilePlan(g);
    const Tensor y = plan->run({x}).at(0);
    for (int64_t i = 0; i < 10; ++i) {
        const double v = x.data<float>()[std::size_t(i)];
        const double want = 0.5 * v * (1 + std::tanh(0.7978845608 * (v + 0.044715 * v * v * v)));
        QVERIFY2(std::abs(y.data<float>()[std::size_t(i)] - want) < 1e-5, qPrintable(QString::number(v)));
    }
    QCOMPARE(plan->kernelSummary().size(), std::size_t(1)); // one fused eltwise
}

// A float rounded to bfloat16, to nearest even: the reference's rounding, written here
// (not oneDNN's) so the check is independent of the runtime.
static double bf16Round(float v)
{
    std::uint32_t u;
    std::memcpy(&u, &v, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    float r;
    std::memcpy(&r, &u, 4);
    return r;
}

// CompileOptions::bf16: a Gemm (bias, Relu fused) and a batched MatMul reading the same
// input with constant weights, against a double loop over bf16-rounded inputs and weights.
// The output must match that reference far more closely than the float32 one, so the
// rounding is seen to happen (AVX-512 without bf16 dot products emulates them). Below
// AVX-512, where oneDNN has no bf16 kernel at all, compiling must refuse with one line.
void TestLmRuntime::bf16Products()
{
    const int64_t T = 6, K = 40, N = 24;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    auto random = [&](int64_t n) {
        std::vector<float> v(std::size_t(n), 0.f);
        for (float& x : v)
            x = u(rng);
        return v;
    };
    const std::vector<float> w1 = random(K * N), w2 = random(K * N), bias = random(N), x = random(2 * T * K);
    qs::test::OnnxBuilder b(13);
    b.input("x", {2, T, K});
    b.initializer("w1", {K, N}, w1);
    b.initializer("w2", {K, N}, w2);
    b.initializer("bias", {N}, bias);
    b.node("MatMul", {"x", "w2"}, {"y2"});
    qs::test::OnnxBuilder::intAttr(b.node("Flatten", {"x"}, {"x2d"}), "axis", 2);
    b.node("Gemm", {"x2d", "w1", "bias"}, {"g"});
    b.node("Relu", {"g"}, {"y1"});
    b.output("y1", {2 * T, N});
    b.output("y2", {2, T, N});
    const Graph g = importOnnxBytes(b.bytes(), "bf16.onnx", "", {});
    CompileOptions o;
    o.bf16 = true;
    if (!detectCpuIsa().bf16Supported) { // below AVX-512 oneDNN has no bf16 kernel: a one-line refusal
        qInfo("%s: bf16 is refused", detectCpuIsa().summary().c_str());
        try {
            compilePlan(g, o);
            QFAIL("a bf16 plan compiled below AVX-512");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("bf16 needs a CPU with AVX-512"), e.what());
        }
        return;
    }
    auto plan = compilePlan(g, o);
    for (const auto& line : plan->kernelSummary())
        qInfo("%s", line.c_str());
    const std::vector<Tensor> out = plan->run({Tensor::fromVector<float>({2, T, K}, x)});
    double errBf16 = 0, gapF32 = 0, mag = 0;
    for (int which = 0; which < 2; ++which) {
        const std::vector<float>& w = which == 0 ? w1 : w2;
        const auto got = out.at(std::size_t(which)).data<float>();
        for (int64_t r = 0; r < 2 * T; ++r)
            for (int64_t n = 0; n < N; ++n) {
                double rounded = 0, exact = 0;
                for (int64_t k = 0; k < K; ++k) {
                    const float xv = x[std::size_t(r * K + k)], wv = w[std::size_t(k * N + n)];
                    rounded += bf16Round(xv) * bf16Round(wv);
                    exact += double(xv) * double(wv);
                }
                if (which == 0) {
                    rounded = std::max(0.0, rounded + bias[std::size_t(n)]);
                    exact = std::max(0.0, exact + bias[std::size_t(n)]);
                }
                const double v = got[std::size_t(r * N + n)];
                errBf16 = std::max(errBf16, std::fabs(v - rounded));
                gapF32 = std::max(gapF32, std::fabs(exact - rounded));
                mag = std::max(mag, std::fabs(rounded));
            }
    }
    qInfo("max |bf16 plan - bf16 reference| %.3g, max |float32 - bf16 reference| %.3g, max |y| %.3g", errBf16,
          gapF32, mag);
    QVERIFY(mag > 1);
    QVERIFY2(errBf16 < 1e-5 * mag, qPrintable(QString("error %1").arg(errBf16)));
    QVERIFY2(gapF32 > 100 * errBf16 && gapF32 > 1e-4, "the float32 result is as close: bf16 did not round");
}

// The bundled byte GPT at BF16: its logits stay near torch's float32 ones (bf16 keeps 8
// bits of mantissa) and differ from the float32 plan's, so the products did round.
void TestLmRuntime::bf16ByteGpt()
{
    const QString d = QS_SOURCE_DIR "/resources/demo/";
    const Graph g = importOnnx((d + "byte_gpt.onnx").toStdString());
    const Tensor in = readNpy((d + "byte_gpt_ref_tokens.npy").toStdString());
    const Tensor want = readNpy((d + "byte_gpt_ref_logits.npy").toStdString());
    CompileOptions o;
    o.inputShapes[g.inputs.at(0).name] = in.shape;
    const Tensor f32 = compilePlan(g, o)->run({in}).at(0);
    o.bf16 = true;
    if (!detectCpuIsa().bf16Supported)
        return; // bf16Products checks the refusal
    const Tensor bf = compilePlan(g, o)->run({in}).at(0);
    QCOMPARE(bf.shape, want.shape);
    const auto got = bf.data<float>(), ref = want.data<float>(), full = f32.data<float>();
    double maxErr = 0, maxRef = 0, gap = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
        QVERIFY(std::isfinite(got[i]));
        maxErr = std::max(maxErr, double(std::fabs(got[i] - ref[i])));
        maxRef = std::max(maxRef, double(std::fabs(ref[i])));
        gap = std::max(gap, double(std::fabs(got[i] - full[i])));
    }
    qInfo("bf16: max |logit - torch| = %.3g (max |torch logit| %.3g); max |bf16 - float32 plan| %.3g", maxErr,
          maxRef, gap);
    QVERIFY2(maxErr < 5e-2 * std::max(1.0, maxRef), qPrintable(QString("max error %1").arg(maxErr)));
    QVERIFY2(gap > 1e-4, "the bf16 plan computed exactly the float32 logits");
}

QTEST_GUILESS_MAIN(TestLmRuntime)
#include "test_lm_runtime.moc"
