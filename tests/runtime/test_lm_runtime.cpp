// The bundled byte-level GPT (opset 17: LayerNormalization, tanh-GELU, Trilu/Not/Where
// mask, Range positions) and its decomposed twin (opset 14: ReduceMean/Pow/Sqrt/Div
// LayerNorm, erf-GELU, -inf mask) run on our runtime and compared with the logits
// torch computed for the same windows (resources/demo_lm/train_byte_gpt.py).
#include "data/npy.h"
#include "graph/onnx_import.h"
#include "runtime/plan.h"

#include <QtTest>

#include <cmath>

using namespace qs;

class TestLmRuntime : public QObject {
    Q_OBJECT
private slots:
    void matchesTorch_data();
    void matchesTorch();
    void shorterWindowsAndBatches();
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

QTEST_GUILESS_MAIN(TestLmRuntime)
#include "test_lm_runtime.moc"
