// Convolution parts (PartsKernel, conv.cpp buildParts): at batch 1 with two or more
// threads, a convolution runs as parts on the caller-participating pool: output
// channels when its output is nChw16c, output rows when it is nhwc. Checked against
// naive loops in double on small chains: mostly 1x1 and depthwise convs (the blocked
// layout) with a dense strided conv whose last channel block is partial, a residual
// sum, depthwise convs, activations; dense 3x3 convs (nhwc) with a sum, the bottom
// padding in the last row part and dilations; a classifier Gemm's column parts; and
// the same plans on one thread, which never use parts.
#include "graph/onnx_import.h"
#include "runtime/plan.h"
#include "support/onnx_builder.h"

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <random>

using namespace qs;
using qs::test::OnnxBuilder;

namespace {

struct Layer {
    int64_t oc = 0, kernel = 1, stride = 1, groups = 1; // groups == -1: depthwise
    bool clip = false;                                   // Clip(0, 6) after it
    int residual = -1; // add the output of layer `residual` (0: the model input) after the clip
    int64_t dilation = 1;
};

struct Chain {
    int64_t c = 0, h = 0, w = 0;
    std::vector<Layer> layers;
    int64_t head = 0; // > 0: GlobalAveragePool, Flatten and a Gemm (transB, bias) to this many classes
};

// Uniform in [-scale, scale] + offset, from a fixed seed.
std::vector<float> uniform(std::size_t count, float scale, float offset, unsigned seed)
{
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-scale, scale);
    std::vector<float> v(count);
    for (float& x : v)
        x = u(rng) + offset;
    return v;
}

struct Act {
    int64_t c = 0, h = 0, w = 0;
    std::vector<double> v;
};

// Weights and the reference output of a chain, and its ONNX model.
struct Built {
    Graph graph;
    std::vector<float> input;
    Act expected;
};

Built build(const Chain& ch)
{
    OnnxBuilder b(13);
    b.input("x", {1, ch.c, ch.h, ch.w});
    b.initializer("lo", {}, {0.f});
    b.initializer("hi", {}, {6.f});
    Built out;
    out.input = uniform(std::size_t(ch.c * ch.h * ch.w), 1.f, 0.f, 7);
    std::vector<Act> acts{{ch.c, ch.h, ch.w, std::vector<double>(out.input.begin(), out.input.end())}};
    std::vector<std::string> names{"x"};
    for (std::size_t l = 0; l < ch.layers.size(); ++l) {
        const Layer& L = ch.layers[l];
        const Act& in = acts.back();
        const int64_t groups = L.groups < 0 ? in.c : L.groups, icg = in.c / groups, ocg = L.oc / groups;
        const int64_t k = L.kernel, d = L.dilation, pad = d * (k / 2);
        const int64_t kEff = d * (k - 1) + 1;
        const int64_t oh = (in.h + 2 * pad - kEff) / L.stride + 1, ow = (in.w + 2 * pad - kEff) / L.stride + 1;
        const std::string id = std::to_string(l);
        const auto wv = uniform(std::size_t(L.oc * icg * k * k), 1.7f / std::sqrt(float(icg * k * k)), 0.f, 11 + unsigned(l));
        const auto bv = uniform(std::size_t(L.oc), 0.1f, 0.05f, 101 + unsigned(l));
        b.initializer("w" + id, {L.oc, icg, k, k}, wv);
        b.initializer("b" + id, {L.oc}, bv);
        auto* conv = b.node("Conv", {names.back(), "w" + id, "b" + id}, {"conv" + id}, "conv" + id);
        OnnxBuilder::intAttr(conv, "group", groups);
        OnnxBuilder::intsAttr(conv, "kernel_shape", {k, k});
        OnnxBuilder::intsAttr(conv, "pads", {pad, pad, pad, pad});
        OnnxBuilder::intsAttr(conv, "strides", {L.stride, L.stride});
        OnnxBuilder::intsAttr(conv, "dilations", {d, d});
        std::string value = "conv" + id;

        Act o{L.oc, oh, ow, std::vector<double>(std::size_t(L.oc * oh * ow))};
        for (int64_t oc = 0; oc < L.oc; ++oc) {
            const int64_t g = oc / ocg;
            for (int64_t r = 0; r < oh; ++r)
                for (int64_t q = 0; q < ow; ++q) {
                    double acc = bv[std::size_t(oc)];
                    for (int64_t i = 0; i < icg; ++i)
                        for (int64_t kr = 0; kr < k; ++kr)
                            for (int64_t kq = 0; kq < k; ++kq) {
                                const int64_t ir = r * L.stride - pad + kr * d, iq = q * L.stride - pad + kq * d;
                                if (ir < 0 || ir >= in.h || iq < 0 || iq >= in.w)
                                    continue;
                                acc += double(wv[std::size_t(((oc * icg + i) * k + kr) * k + kq)]) *
                                       in.v[std::size_t(((g * icg + i) * in.h + ir) * in.w + iq)];
                            }
                    o.v[std::size_t((oc * oh + r) * ow + q)] = acc;
                }
        }
        if (L.clip) {
            b.node("Clip", {value, "lo", "hi"}, {"clip" + id}, "clip" + id);
            value = "clip" + id;
            for (double& v : o.v)
                v = std::clamp(v, 0.0, 6.0);
        }
        if (L.residual >= 0) {
            const Act& r = acts[std::size_t(L.residual)];
            if (r.c != o.c || r.h != o.h || r.w != o.w)
                qFatal("test chain: residual of layer %zu does not match its output", l);
            b.node("Add", {value, names[std::size_t(L.residual)]}, {"add" + id}, "add" + id);
            value = "add" + id;
            for (std::size_t i = 0; i < o.v.size(); ++i)
                o.v[i] += r.v[i];
        }
        names.push_back(value);
        acts.push_back(std::move(o));
    }
    if (ch.head > 0) {
        const Act& last = acts.back();
        const auto wv = uniform(std::size_t(ch.head * last.c), 1.f / std::sqrt(float(last.c)), 0.f, 31);
        const auto bv = uniform(std::size_t(ch.head), 0.1f, 0.f, 37);
        b.initializer("fcw", {ch.head, last.c}, wv);
        b.initializer("fcb", {ch.head}, bv);
        b.node("GlobalAveragePool", {names.back()}, {"pooled"}, "pool");
        b.node("Flatten", {"pooled"}, {"flat"}, "flatten");
        OnnxBuilder::intAttr(b.node("Gemm", {"flat", "fcw", "fcb"}, {"logits"}, "fc"), "transB", 1);
        b.output("logits", {1, ch.head});
        Act logits{ch.head, 1, 1, std::vector<double>(std::size_t(ch.head))};
        const std::size_t plane = std::size_t(last.h * last.w);
        for (int64_t o = 0; o < ch.head; ++o) {
            double acc = bv[std::size_t(o)];
            for (int64_t i = 0; i < last.c; ++i) {
                double mean = 0;
                for (std::size_t q = 0; q < plane; ++q)
                    mean += last.v[std::size_t(i) * plane + q];
                acc += double(wv[std::size_t(o * last.c + i)]) * mean / double(plane);
            }
            logits.v[std::size_t(o)] = acc;
        }
        out.graph = importOnnxBytes(b.bytes(), "parts.onnx", "");
        out.expected = logits;
        return out;
    }
    b.output(names.back(), {1, acts.back().c, acts.back().h, acts.back().w});
    out.graph = importOnnxBytes(b.bytes(), "parts.onnx", "");
    out.expected = acts.back();
    return out;
}

// Whether a reference can tell a wrong part from a right one: most values nonzero
// and varying within a channel, or across classes for logits (an activation that
// clips everything would not).
bool informative(const Act& a)
{
    std::size_t nonzero = 0, varying = 0;
    const std::size_t plane = std::size_t(a.h * a.w);
    for (std::size_t i = 0; i < a.v.size(); ++i) {
        nonzero += a.v[i] != 0 ? 1 : 0;
        const std::size_t first = plane > 1 ? i / plane * plane : 0; // logits: across classes
        varying += std::fabs(a.v[i] - a.v[first]) > 1e-3 ? 1 : 0;
    }
    return 2 * nonzero > a.v.size() && 2 * varying > a.v.size();
}

int partKernels(const Plan& plan)
{
    int n = 0;
    for (const auto& line : plan.kernelSummary())
        n += line.find(" parts]") != std::string::npos ? 1 : 0; // channel or row parts
    return n;
}

// Largest |a - b| relative to the reference's largest magnitude.
double relativeError(const Tensor& got, const Act& ref)
{
    const auto v = got.toFloat();
    if (v.size() != ref.v.size())
        return INFINITY;
    double worst = 0, scale = 1e-12;
    for (std::size_t i = 0; i < v.size(); ++i) {
        worst = std::max(worst, std::fabs(double(v[i]) - ref.v[i]));
        scale = std::max(scale, std::fabs(ref.v[i]));
    }
    return worst / scale;
}

} // namespace

Q_DECLARE_METATYPE(Chain)

class TestConvParts : public QObject {
    Q_OBJECT

private slots:
    // Channel parts are parts of the blocked (nChw16c) layout, which the runtime chooses
    // by itself only where oneDNN runs AVX-512; these cases force it everywhere.
    void initTestCase() { qputenv("QS_RUNTIME_BLOCKED", "1"); }

    void partsEqualNaiveLoops_data()
    {
        QTest::addColumn<Chain>("chain");
        QTest::addColumn<int>("minParts"); // kernels expected to run as parts at 2 threads
        // A dense 3x3 stride-2 stem with 40 output channels (the last block has 8), then
        // two 1x1 convs with activations.
        QTest::newRow("dense stem, partial block") << Chain{3, 64, 64, {{40, 3, 2, 1, true}, {48, 1, 1, 1, true},
                                                                        {40, 1, 1, 1}}} << 3;
        // An inverted residual: expand, depthwise, project, and the input added back.
        QTest::newRow("inverted residual, sum") << Chain{32, 24, 24, {{96, 1, 1, 1, true}, {96, 3, 1, -1, true},
                                                                      {32, 1, 1, 1, false, 0}}} << 3;
        // A depthwise stride-2 conv over 40 channels between 1x1 convs.
        QTest::newRow("depthwise stride 2, partial block") << Chain{24, 64, 64, {{40, 1, 1, 1, true},
                                                                                  {40, 3, 2, -1, true},
                                                                                  {24, 1, 1, 1}}} << 3;
        // The residual taken from an inner layer's output, with a clip before the add: a
        // binary post-op (on AVX-512; AVX2 refuses it and takes a sum one), whose operand each part reads.
        QTest::newRow("inner residual") << Chain{16, 28, 28, {{64, 1, 1, 1, true}, {64, 1, 1, 1, true, 1},
                                                              {32, 1, 1, 1}}} << 2;
        // Dense 3x3 convs choose nhwc: row parts. A residual sum, and a stride-2 conv over
        // 41 rows whose last part has the bottom padding.
        QTest::newRow("nhwc rows, sum") << Chain{16, 40, 40, {{32, 3, 1, 1, true}, {32, 3, 1, 1, false, 1},
                                                              {48, 3, 2, 1, true}}} << 3;
        QTest::newRow("nhwc rows, odd height, stride 2") << Chain{16, 41, 37, {{32, 3, 2, 1, true},
                                                                              {24, 3, 1, 1}}} << 2;
        // Dilated 3x3 convs (dilation 2 and 3): each row part reads a taller band of input.
        QTest::newRow("nhwc rows, dilated") << Chain{16, 38, 38, {{32, 3, 1, 1, true, -1, 2}, {32, 3, 2, 1, false, -1, 3},
                                                                  {24, 3, 1, 1}}} << 3;
        // A classifier head: the Gemm of one row runs as column parts (1000 classes, the
        // last part wider than the others).
        QTest::newRow("classifier head") << Chain{16, 14, 14, {{64, 1, 1, 1, true}, {64, 3, 1, -1, true},
                                                               {128, 1, 1, 1, true}, {256, 1, 1, 1, true}},
                                                              1000} << 5;
    }

    void partsEqualNaiveLoops()
    {
        QFETCH(Chain, chain);
        QFETCH(int, minParts);
        const Built m = build(chain);
        QVERIFY(informative(m.expected));
        const Tensor in = Tensor::fromVector<float>({1, chain.c, chain.h, chain.w}, m.input);
        CompileOptions opts;
        opts.inputShapes["x"] = {1, chain.c, chain.h, chain.w};
        opts.threads = 2;
        auto two = compilePlan(m.graph, opts);
        for (const auto& line : two->kernelSummary())
            qInfo("%s", line.c_str());
        QVERIFY2(partKernels(*two) >= minParts,
                 qPrintable(QString("%1 kernels as parts, expected %2").arg(partKernels(*two)).arg(minParts)));
        opts.threads = 1;
        auto one = compilePlan(m.graph, opts);
        QCOMPARE(partKernels(*one), 0);
        for (int run = 0; run < 3; ++run) { // parts on the pool, run after run
            const Tensor y = two->run({in})[0];
            const Shape want = chain.head > 0 ? Shape{1, chain.head} : Shape{1, m.expected.c, m.expected.h, m.expected.w};
            QCOMPARE(y.shape, want);
            const double err = relativeError(y, m.expected);
            QVERIFY2(err < 1e-5, qPrintable(QString("relative error %1 in run %2").arg(err).arg(run)));
        }
        QVERIFY(relativeError(one->run({in})[0], m.expected) < 1e-5);
    }

    // A tap on a value written by parts sees the whole value.
    void tapSeesWholePartedValue()
    {
        const Chain chain{32, 48, 48, {{96, 1, 1, 1, true}, {32, 1, 1, 1}}};
        const Built m = build(chain);
        Chain first = chain;
        first.layers.pop_back();
        const Built ref = build(first);
        CompileOptions opts;
        opts.inputShapes["x"] = {1, chain.c, chain.h, chain.w};
        opts.threads = 2;
        auto plan = compilePlan(m.graph, opts);
        std::vector<Tensor> seen;
        plan->addTap("clip0", [&](const std::string&, const Tensor& t) { seen.push_back(t); });
        QVERIFY(partKernels(*plan) >= 1);
        const Tensor in = Tensor::fromVector<float>({1, chain.c, chain.h, chain.w}, m.input);
        QVERIFY(relativeError(plan->run({in})[0], m.expected) < 1e-5);
        QCOMPARE(seen.size(), std::size_t(1));
        QVERIFY(relativeError(seen[0], ref.expected) < 1e-5);
    }
};

QTEST_GUILESS_MAIN(TestConvParts)
#include "test_conv_parts.moc"
