// Kernels that keep a value in its layout instead of reordering it: 1-D convolutions
// that oneDNN would run on gemm, run as 2-D ones over H = 1 (conv.cpp
// buildConv1dAs2d), and channel Concats of blocked or channels-last values with zero
// constants (movement.cpp buildChannelConcat), checked against naive loops in double;
// and the fusions that must not change a bit (scalar Mul / Add as post-ops, the
// decomposed HardSwish loop of eltwise.cpp), against a float loop doing the graph's
// operations one by one. A new case is a row of a _data() table.
#include "graph/onnx_import.h"
#include "runtime/plan.h"
#include "support/onnx_builder.h"

#include <QtTest>

#include <cmath>
#include <random>

using namespace qs;
using qs::test::OnnxBuilder;

namespace {

std::vector<float> uniform(std::size_t count, float scale, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<float> v(count);
    for (float& x : v)
        x = u(rng);
    return v;
}

// A 1-D value [N, C, W] in double.
struct Seq {
    int64_t n = 0, c = 0, w = 0;
    std::vector<double> v;
    double& at(int64_t b, int64_t ch, int64_t t) { return v[std::size_t((b * c + ch) * w + t)]; }
    double at(int64_t b, int64_t ch, int64_t t) const { return v[std::size_t((b * c + ch) * w + t)]; }
};

struct Conv1d {
    int64_t oc = 0, kernel = 1, stride = 1, groups = 1, dilation = 1, pad = 0; // groups -1: depthwise
    bool relu = false;
};

// Largest |got - want| over the largest |want|.
double relativeError(const std::vector<float>& got, const std::vector<double>& want)
{
    if (got.size() != want.size())
        return INFINITY;
    double worst = 0, scale = 1e-12;
    for (std::size_t i = 0; i < got.size(); ++i) {
        worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
        scale = std::max(scale, std::fabs(want[i]));
    }
    return worst / scale;
}

int countKernels(const Plan& plan, const std::string& text)
{
    int n = 0;
    for (const auto& line : plan.kernelSummary())
        n += line.find(text) != std::string::npos ? 1 : 0;
    return n;
}

} // namespace

Q_DECLARE_METATYPE(std::vector<Conv1d>)

class TestLayoutPaths : public QObject {
    Q_OBJECT

private slots:
    void conv1dEqualsNaiveLoop_data()
    {
        QTest::addColumn<int64_t>("channels");
        QTest::addColumn<std::vector<Conv1d>>("layers");
        QTest::addColumn<int>("as2d"); // kernels at least expected to run as 2-D ones (oneDNN picks the rest)
        // Silero VAD's encoder block: depthwise k5 with its Relu, then a 1x1.
        QTest::newRow("depthwise k5, relu, pointwise")
            << int64_t(258) << std::vector<Conv1d>{{258, 5, 1, -1, 1, 2, true}, {16, 1, 1, 1, 1, 0, true}} << 1;
        // Depthwise with stride 2 and dilation 2, odd channel count.
        QTest::newRow("depthwise strided, dilated")
            << int64_t(21) << std::vector<Conv1d>{{21, 3, 2, -1, 2, 2, false}, {21, 5, 1, -1, 1, 2, true}} << 2;
        // Grouped (4 groups) and an unpadded dense conv: oneDNN has jit kernels for them on AVX-512.
        QTest::newRow("grouped, dense")
            << int64_t(32) << std::vector<Conv1d>{{32, 3, 1, 4, 1, 1, true}, {24, 7, 1, 1, 1, 0, false}} << 0;
    }

    void conv1dEqualsNaiveLoop()
    {
        QFETCH(int64_t, channels);
        QFETCH(std::vector<Conv1d>, layers);
        QFETCH(int, as2d);
        const int64_t batch = 3, width = 29;
        OnnxBuilder b(13);
        b.input("x", {batch, channels, width});
        Seq cur{batch, channels, width, {}};
        const auto x = uniform(std::size_t(batch * channels * width), 1.f, 5);
        cur.v.assign(x.begin(), x.end());
        std::string value = "x";
        for (std::size_t l = 0; l < layers.size(); ++l) {
            const Conv1d& L = layers[l];
            const int64_t groups = L.groups < 0 ? cur.c : L.groups, icg = cur.c / groups, ocg = L.oc / groups;
            const int64_t ow = (cur.w + 2 * L.pad - L.dilation * (L.kernel - 1) - 1) / L.stride + 1;
            const std::string id = std::to_string(l);
            const auto w = uniform(std::size_t(L.oc * icg * L.kernel), 1.5f / std::sqrt(float(icg * L.kernel)), 11 + unsigned(l));
            const auto bias = uniform(std::size_t(L.oc), 0.2f, 31 + unsigned(l));
            b.initializer("w" + id, {L.oc, icg, L.kernel}, w);
            b.initializer("b" + id, {L.oc}, bias);
            auto* conv = b.node("Conv", {value, "w" + id, "b" + id}, {"conv" + id}, "conv" + id);
            OnnxBuilder::intAttr(conv, "group", groups);
            OnnxBuilder::intsAttr(conv, "kernel_shape", {L.kernel});
            OnnxBuilder::intsAttr(conv, "pads", {L.pad, L.pad});
            OnnxBuilder::intsAttr(conv, "strides", {L.stride});
            OnnxBuilder::intsAttr(conv, "dilations", {L.dilation});
            value = "conv" + id;
            if (L.relu) {
                b.node("Relu", {value}, {"relu" + id}, "relu" + id);
                value = "relu" + id;
            }
            Seq out{batch, L.oc, ow, std::vector<double>(std::size_t(batch * L.oc * ow))};
            for (int64_t n = 0; n < batch; ++n)
                for (int64_t o = 0; o < L.oc; ++o)
                    for (int64_t t = 0; t < ow; ++t) {
                        double acc = bias[std::size_t(o)];
                        for (int64_t i = 0; i < icg; ++i)
                            for (int64_t k = 0; k < L.kernel; ++k) {
                                const int64_t at = t * L.stride - L.pad + k * L.dilation;
                                if (at >= 0 && at < cur.w)
                                    acc += double(w[std::size_t((o * icg + i) * L.kernel + k)]) *
                                           cur.at(n, o / ocg * icg + i, at);
                            }
                        out.at(n, o, t) = L.relu ? std::max(acc, 0.0) : acc;
                    }
            cur = std::move(out);
        }
        b.output(value, {batch, cur.c, cur.w});
        const Graph g = importOnnxBytes(b.bytes(), "conv1d.onnx", "");
        for (int threads : {1, 2}) {
            CompileOptions opts;
            opts.inputShapes["x"] = {batch, channels, width};
            opts.threads = threads;
            auto plan = compilePlan(g, opts);
            for (const auto& line : plan->kernelSummary())
                qInfo("%s", line.c_str());
            QVERIFY(countKernels(*plan, "(1-D as 2-D)") >= as2d);
            const auto got = plan->run({Tensor::fromVector<float>({batch, channels, width}, x)});
            QCOMPARE(got[0].shape, (Shape{batch, cur.c, cur.w}));
            const double rel = relativeError(got[0].toFloat(), cur.v);
            QVERIFY2(rel < 1e-5, qPrintable(QString("%1 threads: %2 relative").arg(threads).arg(rel)));
        }
    }

    // Relu(Conv1x1(x)) and zero constants concatenated along the channels, the result
    // added to another Conv1x1(x) (BlazeFace's channel-padded residual); the parts'
    // channel counts give block-aligned and unaligned offsets.
    void channelConcatEqualsNaiveLoop_data()
    {
        QTest::addColumn<QString>("blocked"); // QS_RUNTIME_BLOCKED
        QTest::addColumn<QString>("parts");   // channel counts, "z" marks a zero constant
        QTest::newRow("nChw16c, zeros after") << "1" << "24 z4";
        QTest::newRow("nChw16c, zeros first") << "1" << "z4 24";
        QTest::newRow("nChw16c, two computed, zeros between") << "1" << "16 z5 7";
        QTest::newRow("oneDNN's choice, zeros after") << "0" << "24 z8";
    }

    void channelConcatEqualsNaiveLoop()
    {
        QFETCH(QString, blocked);
        QFETCH(QString, parts);
        qputenv("QS_RUNTIME_BLOCKED", blocked.toUtf8());
        const int64_t n = 2, c = 12, h = 9, w = 11, hw = h * w;
        OnnxBuilder b(13);
        b.input("x", {n, c, h, w});
        const auto x = uniform(std::size_t(n * c * hw), 1.f, 3);
        // Reference: concat[n][ch][p] over the parts, then + conv of the sum branch.
        std::vector<std::vector<double>> channels; // [channel][n * hw]
        std::vector<std::string> inputs;
        int k = 0;
        auto conv1x1 = [&](int64_t oc, const std::string& name, bool relu) {
            const auto wv = uniform(std::size_t(oc * c), 1.f / std::sqrt(float(c)), 100 + unsigned(k));
            const auto bv = uniform(std::size_t(oc), 0.3f, 200 + unsigned(k));
            ++k;
            b.initializer(name + "_w", {oc, c, 1, 1}, wv);
            b.initializer(name + "_b", {oc}, bv);
            b.node("Conv", {"x", name + "_w", name + "_b"}, {name + "_c"}, name + "_conv");
            std::string out = name + "_c";
            if (relu) {
                b.node("Relu", {out}, {name}, name + "_relu");
                out = name;
            }
            std::vector<std::vector<double>> ref(std::size_t(oc), std::vector<double>(std::size_t(n * hw)));
            for (int64_t o = 0; o < oc; ++o)
                for (int64_t bi = 0; bi < n; ++bi)
                    for (int64_t p = 0; p < hw; ++p) {
                        double acc = bv[std::size_t(o)];
                        for (int64_t i = 0; i < c; ++i)
                            acc += double(wv[std::size_t(o * c + i)]) * x[std::size_t((bi * c + i) * hw + p)];
                        ref[std::size_t(o)][std::size_t(bi * hw + p)] = relu ? std::max(acc, 0.0) : acc;
                    }
            return std::make_pair(out, ref);
        };
        for (const QString& part : parts.split(' ')) {
            const bool zero = part.startsWith('z');
            const int64_t count = (zero ? part.mid(1) : part).toLongLong();
            const std::string name = "p" + std::to_string(inputs.size());
            if (zero) {
                b.initializer(name, {n, count, h, w}, std::vector<float>(std::size_t(n * count * hw), 0.f));
                inputs.push_back(name);
                for (int64_t i = 0; i < count; ++i)
                    channels.emplace_back(std::size_t(n * hw), 0.0);
                continue;
            }
            auto [out, ref] = conv1x1(count, name, true);
            inputs.push_back(out);
            channels.insert(channels.end(), ref.begin(), ref.end());
        }
        const int64_t total = int64_t(channels.size());
        auto* concat = b.node("Concat", {}, {"cat"}, "cat");
        for (const auto& in : inputs)
            concat->add_input(in);
        OnnxBuilder::intAttr(concat, "axis", 1);
        auto [side, sideRef] = conv1x1(total, "side", false);
        b.node("Add", {side, "cat"}, {"y"}, "add");
        b.output("y", {n, total, h, w});
        std::vector<double> want(std::size_t(n * total * hw));
        for (int64_t bi = 0; bi < n; ++bi)
            for (int64_t ch = 0; ch < total; ++ch)
                for (int64_t p = 0; p < hw; ++p)
                    want[std::size_t((bi * total + ch) * hw + p)] = channels[std::size_t(ch)][std::size_t(bi * hw + p)] +
                                                                   sideRef[std::size_t(ch)][std::size_t(bi * hw + p)];
        const Graph g = importOnnxBytes(b.bytes(), "concat.onnx", "");
        CompileOptions opts;
        opts.inputShapes["x"] = {n, c, h, w};
        opts.threads = 1;
        auto plan = compilePlan(g, opts);
        for (const auto& line : plan->kernelSummary())
            qInfo("%s", line.c_str());
        if (blocked == "1")
            QCOMPARE(countKernels(*plan, "Reorder"), 1); // only the input into nChw16c
        const auto got = plan->run({Tensor::fromVector<float>({n, c, h, w}, x)});
        const double rel = relativeError(got[0].toFloat(), want);
        QVERIFY2(rel < 1e-5, qPrintable(QString("%1 relative").arg(rel)));
        qunsetenv("QS_RUNTIME_BLOCKED");
    }
    // x -> Conv (1x1) -> Mul(s) -> Add(b) -> x' * Clip(x' + 3, 0, 6) / 6 -> Mul(s2) -> Add(b2):
    // paddle2onnx's PP-LCNet block. The Conv's output is kept in a second plan (a kept
    // value ends the fusion there), and from it the rest must come out bit for bit as a
    // float loop of the same operations gives it; both plans agree bit for bit too.
    void scalarAffineAndHardSwishExact_data()
    {
        QTest::addColumn<QString>("last"); // the HardSwish's last node
        QTest::addColumn<QString>("blocked");
        QTest::newRow("Div by 6, nChw16c") << "Div" << "1";
        QTest::newRow("Mul by 1/6, oneDNN's layout") << "Mul" << "0";
    }

    void scalarAffineAndHardSwishExact()
    {
        QFETCH(QString, last);
        QFETCH(QString, blocked);
        qputenv("QS_RUNTIME_BLOCKED", blocked.toUtf8());
        const int64_t n = 2, c = 5, oc = 20, h = 7, w = 6;
        OnnxBuilder b(13);
        b.input("x", {n, c, h, w});
        b.initializer("w", {oc, c, 1, 1}, uniform(std::size_t(oc * c), 1.5f, 7));
        b.initializer("s", {1}, {0.9431690573692322f});
        b.initializer("b", {1}, {0.5042971968650818f});
        b.initializer("three", {}, {3.f});
        b.initializer("zero", {}, {0.f});
        b.initializer("six", {}, {6.f});
        const float k = last == "Div" ? 6.f : 1.f / 6.f;
        b.initializer("k", {}, {k});
        b.initializer("s2", {1}, {0.47632309794425964f});
        b.initializer("b2", {1}, {-0.007573243696242571f});
        b.node("Conv", {"x", "w"}, {"conv"}, "conv");
        b.node("Mul", {"s", "conv"}, {"scaled"}, "mul_s");
        b.node("Add", {"scaled", "b"}, {"a"}, "add_b");
        b.node("Add", {"a", "three"}, {"t"}, "add3");
        b.node("Clip", {"t", "zero", "six"}, {"clipped"}, "clip");
        b.node("Mul", {"a", "clipped"}, {"p"}, "mul_x");
        b.node(last.toStdString(), {"p", "k"}, {"hs"}, "last");
        b.node("Mul", {"hs", "s2"}, {"hs2"}, "mul_s2");
        b.node("Add", {"hs2", "b2"}, {"y"}, "add_b2");
        b.output("y", {n, oc, h, w});
        const Graph g = importOnnxBytes(b.bytes(), "hardswish.onnx", "");
        const auto x = uniform(std::size_t(n * c * h * w), 2.f, 9);
        const Tensor in = Tensor::fromVector<float>({n, c, h, w}, x);
        CompileOptions opts;
        opts.inputShapes["x"] = {n, c, h, w};
        opts.threads = 1;
        auto fused = compilePlan(g, opts);
        for (const auto& line : fused->kernelSummary())
            qInfo("%s", line.c_str());
        QCOMPARE(countKernels(*fused, "mul_s+add_b"), 1);  // the affine joined the Conv
        QCOMPARE(countKernels(*fused, "mul_s2+add_b2"), 1); // and the HardSwish loop
        opts.keepValues = {"conv"};
        auto kept = compilePlan(g, opts);
        const std::vector<float> got = fused->run({in})[0].toFloat();
        const std::vector<float> want = kept->run({in})[0].toFloat();
        const std::vector<float> conv = kept->valueOf("conv").toFloat();
        QCOMPARE(got.size(), conv.size());
        int differ = 0, differLoop = 0;
        for (std::size_t i = 0; i < got.size(); ++i) {
            const float s = 0.9431690573692322f, bb = 0.5042971968650818f;
            const float s2 = 0.47632309794425964f, b2 = -0.007573243696242571f;
            const float a = conv[i] * s + bb;
            const float p = a * std::min(std::max(a + 3.f, 0.f), 6.f);
            const float hs = last == "Div" ? p / k : p * k;
            const volatile float hs2 = hs * s2; // volatile: no contraction into an fma
            const float y = hs2 + b2;
            if ((got[i] != want[i] || got[i] != y) && differ + differLoop < 6)
                qInfo("%zu: conv %.9g fused %.9g kept %.9g loop %.9g", i, conv[i], got[i], want[i], y);
            differ += got[i] != want[i] ? 1 : 0;
            differLoop += got[i] != y ? 1 : 0;
        }
        QCOMPARE(differ, 0);
        QCOMPARE(differLoop, 0);
        qunsetenv("QS_RUNTIME_BLOCKED");
    }
};

QTEST_GUILESS_MAIN(TestLayoutPaths)
#include "test_layout_paths.moc"
