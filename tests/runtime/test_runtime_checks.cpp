// Malformed models that import without error must fail to compile (or, for indices
// known only at run time, fail to run) with one message naming the node: never read or
// write out of bounds, never answer wrongly. Add a case as a row of malformed_data()
// with a builder in kModels; QS_WRITE_SEEDS=DIR also writes each model to
// DIR/crash-<row>.onnx (the seeds of tests/fuzz/corpus/fuzz_runtime).
#include "graph/onnx_import.h"
#include "runtime/plan.h"
#include "support/onnx_builder.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>

using namespace qs;
using qs::test::OnnxBuilder;

namespace {

std::vector<float> ramp(std::size_t n)
{
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = float(int(i % 5) - 2) * 0.25f;
    return v;
}

// A graph output of unknown shape (the builder's default is a scalar).
void output(OnnxBuilder& b, const std::string& name)
{
    b.output(name)->mutable_type()->mutable_tensor_type()->clear_shape();
}

// x [1,2,5,5] -> Conv "conv" (w [4,2,3,3], bias of `biasLen` values) [-> BatchNormalization "bn"].
OnnxBuilder convModel(int biasLen, bool withBn)
{
    OnnxBuilder b;
    b.input("x", {1, 2, 5, 5});
    b.initializer("w", {4, 2, 3, 3}, ramp(72));
    b.initializer("b", {biasLen}, ramp(std::size_t(biasLen)));
    b.node("Conv", {"x", "w", "b"}, {withBn ? "c" : "y"}, "conv");
    if (withBn) {
        b.initializer("gamma", {4}, {1, 2, 3, 4});
        b.initializer("beta", {4}, {0.5f, 0.5f, 0.5f, 0.5f});
        b.initializer("mean", {4}, {0, 0.1f, 0.2f, 0.3f});
        b.initializer("var", {4}, {1, 1, 1, 1});
        b.node("BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"y"}, "bn");
    }
    b.output("y", {1, 4, 3, 3});
    return b;
}

// x [1,2,5,5] -> Conv "conv" with one attribute set to `values`.
OnnxBuilder convAttr(const std::string& attr, std::vector<int64_t> values, int64_t group = 1)
{
    OnnxBuilder b;
    b.input("x", {1, 2, 5, 5});
    b.initializer("w", {4, 2 / group, 3, 3}, ramp(std::size_t(4 * (2 / group) * 9)));
    auto* n = b.node("Conv", {"x", "w"}, {"y"}, "conv");
    OnnxBuilder::intsAttr(n, attr, values);
    OnnxBuilder::intAttr(n, "group", group);
    output(b, "y");
    return b;
}

OnnxBuilder convTranspose(const std::string& attr, std::vector<int64_t> values, int64_t group = 1)
{
    OnnxBuilder b;
    b.input("x", {1, 2, 4, 4});
    b.initializer("w", {2, 3, 3, 3}, ramp(54));
    auto* n = b.node("ConvTranspose", {"x", "w"}, {"y"}, "deconv");
    OnnxBuilder::intsAttr(n, attr, values);
    OnnxBuilder::intAttr(n, "group", group);
    output(b, "y");
    return b;
}

OnnxBuilder maxPool(const std::string& attr, std::vector<int64_t> values)
{
    OnnxBuilder b;
    b.input("x", {1, 2, 5, 5});
    auto* n = b.node("MaxPool", {"x"}, {"y"}, "pool");
    OnnxBuilder::intsAttr(n, "kernel_shape", {2, 2});
    OnnxBuilder::intsAttr(n, attr, values);
    output(b, "y");
    return b;
}

OnnxBuilder gemmWithC(std::vector<int64_t> cDims)
{
    OnnxBuilder b;
    b.input("x", {1, 3});
    b.initializer("w", {3, 4}, ramp(12));
    int64_t n = 1;
    for (int64_t d : cDims)
        n *= d;
    b.initializer("c", cDims, ramp(std::size_t(n)));
    b.node("Gemm", {"x", "w", "c"}, {"y"}, "gemm");
    output(b, "y");
    return b;
}

// data [2,3] float, int64 indices of `indDims` -> GatherElements axis 1.
OnnxBuilder gatherElements(std::vector<int64_t> indDims)
{
    OnnxBuilder b;
    b.input("x", {2, 3});
    b.input("i", indDims, onnx::TensorProto::INT64);
    auto* n = b.node("GatherElements", {"x", "i"}, {"y"}, "gather_el");
    OnnxBuilder::intAttr(n, "axis", 1);
    output(b, "y");
    return b;
}

OnnxBuilder transposePerm(std::vector<int64_t> perm)
{
    OnnxBuilder b;
    b.input("x", {2, 3});
    OnnxBuilder::intsAttr(b.node("Transpose", {"x"}, {"y"}, "transpose"), "perm", perm);
    output(b, "y");
    return b;
}

OnnxBuilder splitSizes(std::vector<int64_t> sizes)
{
    OnnxBuilder b;
    b.input("x", {4, 3});
    b.int64Initializer("s", {int64_t(sizes.size())}, sizes);
    b.node("Split", {"x", "s"}, {"y0", "y1"}, "split");
    output(b, "y0");
    output(b, "y1");
    return b;
}

OnnxBuilder padWithAxes()
{
    OnnxBuilder b(18);
    b.input("x", {2, 3});
    b.int64Initializer("pads", {4}, {1, 1, 1, 1});
    b.int64Initializer("axes", {1}, {1});
    b.node("Pad", {"x", "pads", "", "axes"}, {"y"}, "pad");
    output(b, "y");
    return b;
}

OnnxBuilder resizeScales(std::vector<float> scales)
{
    OnnxBuilder b;
    b.input("x", {1, 1, 2, 2});
    b.initializer("roi", {0}, {});
    b.initializer("scales", {4}, scales);
    b.node("Resize", {"x", "roi", "scales"}, {"y"}, "resize");
    output(b, "y");
    return b;
}

OnnxBuilder constantOfShape(std::vector<int64_t> dims)
{
    OnnxBuilder b;
    b.input("x", {1});
    b.int64Initializer("shape", {int64_t(dims.size())}, dims);
    b.node("ConstantOfShape", {"shape"}, {"c"}, "fill");
    b.node("Add", {"c", "x"}, {"y"}, "add");
    output(b, "y");
    return b;
}

OnnxBuilder gatherOnScalar()
{
    OnnxBuilder b;
    b.input("x", {});
    b.int64Initializer("i", {1}, {0});
    b.node("Gather", {"x", "i"}, {"y"}, "gather");
    output(b, "y");
    return b;
}

OnnxBuilder clipWithEmptyMin()
{
    OnnxBuilder b;
    b.input("x", {4});
    b.input("lo", {0});
    b.node("Clip", {"x", "lo"}, {"y"}, "clip");
    output(b, "y");
    return b;
}

OnnxBuilder rangeHuge()
{
    OnnxBuilder b(13);
    b.input("x", {1});
    b.initializer("start", {}, {0.f});
    b.initializer("limit", {}, {1e30f});
    b.initializer("delta", {}, {1e-30f});
    b.node("Range", {"start", "limit", "delta"}, {"r"}, "range");
    b.node("Add", {"r", "x"}, {"y"}, "add");
    output(b, "y");
    return b;
}

const std::map<QString, std::function<OnnxBuilder()>> kModels = {
    {"conv-short-bias", [] { return convModel(2, false); }},
    {"conv-short-bias-bn", [] { return convModel(2, true); }},
    {"conv-kernel-shape",
        [] {
            return convAttr("kernel_shape", {2, 2});
        }},
    {"conv-short-pads",
        [] {
            return convAttr("pads", {1, 1});
        }},
    {"conv-negative-pads",
        [] {
            return convAttr("pads", {-3, 0, 0, 0});
        }},
    {"conv-group",
        [] {
            return convAttr("strides", {1, 1}, 3);
        }},
    {"conv-kernel-too-large",
        [] {
            return convAttr("dilations", {4, 4});
        }},
    {"deconv-group",
        [] {
            return convTranspose("strides", {1, 1}, 3);
        }},
    {"deconv-output-padding",
        [] {
            return convTranspose("output_padding", {3, 3});
        }},
    {"deconv-short-strides", [] { return convTranspose("strides", {2}); }},
    {"deconv-kernel-shape",
        [] {
            return convTranspose("kernel_shape", {5, 5});
        }},
    {"pool-short-pads", [] { return maxPool("pads", {1}); }},
    {"gemm-c-rows",
        [] {
            return gemmWithC({3, 4});
        }},
    {"gemm-c-short", [] { return gemmWithC({2}); }},
    {"gather-elements-shape",
        [] {
            return gatherElements({4, 3});
        }},
    {"transpose-perm",
        [] {
            return transposePerm({0, 0});
        }},
    {"split-negative",
        [] {
            return splitSizes({-1, 5});
        }},
    {"pad-axes", [] { return padWithAxes(); }},
    {"resize-zero-scale",
        [] {
            return resizeScales({1, 1, 0, 2});
        }},
    {"resize-nan-scale",
        [] {
            return resizeScales({1, 1, std::nanf(""), 2});
        }},
    {"constant-of-shape",
        [] {
            return constantOfShape({-1, 4});
        }},
    {"gather-scalar", [] { return gatherOnScalar(); }},
    {"clip-empty-min", [] { return clipWithEmptyMin(); }},
    {"range-huge", [] { return rangeHuge(); }},
};

} // namespace

class TestRuntimeChecks : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        const QByteArray dir = qgetenv("QS_WRITE_SEEDS");
        if (dir.isEmpty())
            return;
        for (const auto& [name, build] : kModels)
            build().save(dir.toStdString() + "/crash-" + name.toStdString() + ".onnx");
    }

    void malformed_data()
    {
        // The model, the node the message must name, and a word of what is wrong.
        QTest::addColumn<QString>("model");
        QTest::addColumn<QString>("node");
        QTest::addColumn<QString>("what");
        QTest::newRow("Conv bias shorter than its channels") << "conv-short-bias"
                                                             << "conv"
                                                             << "bias";
        QTest::newRow("Conv short bias folding a BatchNormalization") << "conv-short-bias-bn"
                                                                      << "conv"
                                                                      << "bias";
        QTest::newRow("kernel_shape contradicts the weights") << "conv-kernel-shape"
                                                              << "conv"
                                                              << "kernel_shape";
        QTest::newRow("Conv pads for one dim") << "conv-short-pads"
                                               << "conv"
                                               << "spatial dims";
        QTest::newRow("Conv negative pads") << "conv-negative-pads"
                                            << "conv"
                                            << "pads";
        QTest::newRow("Conv group does not divide the channels") << "conv-group"
                                                                 << "conv"
                                                                 << "channels";
        QTest::newRow("Conv dilated kernel larger than the input") << "conv-kernel-too-large"
                                                                   << "conv"
                                                                   << "larger";
        QTest::newRow("ConvTranspose group does not divide the channels") << "deconv-group"
                                                                          << "deconv"
                                                                          << "group 3";
        QTest::newRow("ConvTranspose output_padding >= stride") << "deconv-output-padding"
                                                                << "deconv"
                                                                << "output_padding";
        QTest::newRow("ConvTranspose strides for one dim") << "deconv-short-strides"
                                                           << "deconv"
                                                           << "spatial dims";
        QTest::newRow("ConvTranspose kernel_shape") << "deconv-kernel-shape"
                                                    << "deconv"
                                                    << "kernel_shape";
        QTest::newRow("MaxPool pads for one dim") << "pool-short-pads"
                                                  << "pool"
                                                  << "spatial dims";
        QTest::newRow("Gemm C with more rows than the output") << "gemm-c-rows"
                                                               << "gemm"
                                                               << "broadcast";
        QTest::newRow("Gemm C shorter than the columns") << "gemm-c-short"
                                                         << "gemm"
                                                         << "broadcast";
        QTest::newRow("GatherElements indices larger than the data") << "gather-elements-shape"
                                                                     << "gather_el"
                                                                     << "larger than data";
        QTest::newRow("Transpose perm repeats an axis") << "transpose-perm"
                                                        << "transpose"
                                                        << "permutation";
        QTest::newRow("Split negative size") << "split-negative"
                                             << "split"
                                             << "split";
        QTest::newRow("Pad pads do not match axes") << "pad-axes"
                                                    << "pad"
                                                    << "axes";
        QTest::newRow("Resize scale 0") << "resize-zero-scale"
                                        << "resize"
                                        << "scales";
        QTest::newRow("Resize scale NaN") << "resize-nan-scale"
                                          << "resize"
                                          << "scales";
        QTest::newRow("ConstantOfShape negative dim") << "constant-of-shape"
                                                      << "fill"
                                                      << "negative";
        QTest::newRow("Gather on a scalar") << "gather-scalar"
                                            << "gather"
                                            << "rank";
        QTest::newRow("Clip min with no value") << "clip-empty-min"
                                                << "clip"
                                                << "min";
        QTest::newRow("Range of 1e60 values") << "range-huge"
                                              << "range"
                                              << "range";
    }

    void malformed()
    {
        QFETCH(QString, model);
        QFETCH(QString, node);
        QFETCH(QString, what);
        const std::string name = model.toStdString() + ".onnx";
        try {
            // Refused at import or at compile, whichever sees it first.
            compilePlan(importOnnxBytes(kModels.at(model)().bytes(), name, ""));
            QFAIL("compiled");
        } catch (const Error& e) {
            const QString m = QString::fromUtf8(e.what());
            // Our checks quote the node; ONNX shape inference at import says "node name: x".
            QVERIFY2(m.contains("\"" + node + "\"") || m.contains("node name: " + node + ")"), qPrintable(m));
            QVERIFY2(m.contains(what), qPrintable(m));
            QVERIFY2(!m.contains('\n'), qPrintable(m));
        }
    }

    // Indices are data: checked as the kernel reads them, the error naming the node.
    void gatherElementsIndexOutOfRange_data()
    {
        QTest::addColumn<qint64>("index");
        QTest::newRow("past the end") << qint64(3);
        QTest::newRow("before the start") << qint64(-4);
        QTest::newRow("huge") << qint64(std::numeric_limits<int64_t>::max());
    }

    void gatherElementsIndexOutOfRange()
    {
        QFETCH(qint64, index);
        Graph g = importOnnxBytes(gatherElements({2, 2}).bytes(), "ge.onnx", "");
        auto plan = compilePlan(g);
        Tensor x = Tensor::fromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
        Tensor i = Tensor::fromVector<int64_t>({2, 2}, {0, -1, 2, index});
        try {
            plan->run({x, i});
            QFAIL("ran");
        } catch (const Error& e) {
            const QString m = QString::fromUtf8(e.what());
            QVERIFY2(m.contains("\"gather_el\"") && m.contains("out of range"), qPrintable(m));
        }
        // In range, negative ones counting from the end: a naive gather along axis 1.
        Tensor ok = Tensor::fromVector<int64_t>({2, 2}, {0, -1, 2, -3});
        const auto y = plan->run({x, ok}).at(0).toFloat();
        QCOMPARE(y, (std::vector<float> {1, 3, 6, 4}));
    }

    // A step beyond any length takes one element (no overflow of the length formula).
    void sliceWithHugeStep()
    {
        OnnxBuilder b;
        b.input("x", {5});
        b.int64Initializer("starts", {1}, {1});
        b.int64Initializer("ends", {1}, {std::numeric_limits<int64_t>::max()});
        b.int64Initializer("axes", {1}, {0});
        b.int64Initializer("steps", {1}, {std::numeric_limits<int64_t>::max()});
        b.node("Slice", {"x", "starts", "ends", "axes", "steps"}, {"y"}, "slice");
        output(b, "y");
        Graph g = importOnnxBytes(b.bytes(), "slice.onnx", "");
        const auto y = compilePlan(g)->run({Tensor::fromVector<float>({5}, {10, 11, 12, 13, 14})}).at(0);
        QCOMPARE(y.shape, (Shape {1}));
        QCOMPARE(y.toFloat(), (std::vector<float> {11}));
    }
};

QTEST_APPLESS_MAIN(TestRuntimeChecks)
#include "test_runtime_checks.moc"
