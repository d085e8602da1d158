// Element-wise ops on channel-blocked activations whose channel count is not a multiple of
// the block (nChw16c with 36 channels, padded to 48): oneDNN 2.6's jit binary kernel wrote
// past the buffer and computed wrong values there (BlazeFace's residual Adds). Checked
// against naive loops with the blocked layout forced (QS_RUNTIME_BLOCKED=1) on any CPU.
#include "graph/onnx_import.h"
#include "runtime/plan.h"
#include "support/onnx_builder.h"

#include <QtTest>

#include <cmath>

using namespace qs;

class TestPaddedBlocked : public QObject {
    Q_OBJECT

private slots:
    void residualAddOfPaddedChannels();
};

// y = Relu(Conv1x1(x, w1) + Conv1x1(x, w2)), x [1, 32, 8, 8], 36 output channels.
void TestPaddedBlocked::residualAddOfPaddedChannels()
{
    const int64_t ic = 32, oc = 36, hw = 8;
    std::vector<float> w1(oc * ic), w2(oc * ic), x(ic * hw * hw);
    for (std::size_t i = 0; i < w1.size(); ++i) {
        w1[i] = float(std::sin(0.37 * double(i))) * 0.2f;
        w2[i] = float(std::cos(0.23 * double(i))) * 0.2f;
    }
    for (std::size_t i = 0; i < x.size(); ++i)
        x[i] = float(std::sin(0.011 * double(i) * double(i % 7 + 1)));
    test::OnnxBuilder b;
    b.input("x", {1, ic, hw, hw});
    b.output("y", {1, oc, hw, hw});
    b.initializer("w1", {oc, ic, 1, 1}, w1);
    b.initializer("w2", {oc, ic, 1, 1}, w2);
    b.node("Conv", {"x", "w1"}, {"a"}, "conv1");
    b.node("Conv", {"x", "w2"}, {"b"}, "conv2");
    b.node("Add", {"a", "b"}, {"s"}, "add");
    b.node("Relu", {"s"}, {"y"}, "relu");
    const std::string bytes = b.bytes();

    std::vector<float> want(std::size_t(oc * hw * hw));
    for (int64_t o = 0; o < oc; ++o)
        for (int64_t p = 0; p < hw * hw; ++p) {
            double s = 0;
            for (int64_t i = 0; i < ic; ++i)
                s +=
                    double(w1[std::size_t(o * ic + i)] + w2[std::size_t(o * ic + i)]) * x[std::size_t(i * hw * hw + p)];
            want[std::size_t(o * hw * hw + p)] = float(std::max(s, 0.0));
        }

    for (const char* blocked : {"1", "0"}) {
        qputenv("QS_RUNTIME_BLOCKED", blocked);
        Graph g = importOnnxBytes(bytes, "padded.onnx", ".");
        CompileOptions o;
        o.threads = 1;
        o.inputShapes["x"] = {1, ic, hw, hw};
        auto plan = compilePlan(g, o);
        const std::vector<Tensor> out = plan->run({Tensor::fromVector<float>({1, ic, hw, hw}, x)});
        const std::vector<float> got = out.at(0).toFloat();
        QCOMPARE(got.size(), want.size());
        double worst = 0;
        for (std::size_t i = 0; i < got.size(); ++i)
            worst = std::max(worst, double(std::fabs(got[i] - want[i])));
        QVERIFY2(worst < 1e-4, qPrintable(QString("QS_RUNTIME_BLOCKED=%1: max |error| %2").arg(blocked).arg(worst)));
    }
    qunsetenv("QS_RUNTIME_BLOCKED");
}

QTEST_GUILESS_MAIN(TestPaddedBlocked)
#include "test_padded_blocked.moc"
