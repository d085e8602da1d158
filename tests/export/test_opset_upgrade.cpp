// Models as paddle2onnx and tf2onnx write them: weights in Constant nodes and opsets 7
// to 12 with the old operator forms (Slice, Pad and Clip attributes, Upsample,
// BatchNormalization spatial). Imported, run against naive loops, quantized W8A8 and
// exported as QDQ at opset 13 that ONNX Runtime runs like our simulation.
// A new case: a row in opsets_data() (the model is built by oldStyleModel()).
#include "export/opset_upgrade.h"
#include "export/qdq.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "record/export_run.h"
#include "runtime/plan.h"
#include "support/compare.h"
#include "support/error_of.h"
#include "support/onnx_builder.h"
#include "support/ort_runner.h"
#include "util/error.h"
#include "util/file.h"

#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <cmath>

namespace {

using qs::test::OnnxBuilder;

constexpr int64_t C = 2, K = 3, H = 6, W = 6; // input channels, conv outputs, spatial

std::vector<float> convWeight()
{
    std::vector<float> w(std::size_t(K * C * 9));
    for (std::size_t i = 0; i < w.size(); ++i)
        w[i] = float(int(i * 7 % 11) - 5) * 0.05f;
    return w;
}
const std::vector<float> kBias {0.05f, -0.1f, 0.2f};
const std::vector<float> kHead {0.5f, -0.25f, 1.f, 0.75f, 0.5f, -1.f}; // [2,3,1,1]
const std::vector<float> kBnScale {1.5f, 0.5f, 1.f}, kBnBias {0.1f, 0.f, -0.1f}, kBnMean {0.05f, -0.05f, 0.1f},
    kBnVar {0.5f, 2.f, 1.f};

// A Constant node holding a float tensor, the way paddle2onnx writes weights.
void constantNode(OnnxBuilder& b, const std::string& name, std::vector<int64_t> dims, const std::vector<float>& v)
{
    auto* n = b.node("Constant", {}, {name}, name + "_const");
    auto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    auto* t = a->mutable_t();
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims)
        t->add_dims(d);
    for (float x : v)
        t->add_float_data(x);
}

void floatsAttr(onnx::NodeProto* n, const std::string& name, std::vector<float> values)
{
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOATS);
    for (float v : values)
        a->add_floats(v);
}

// x [N,2,6,6] -> Conv 3x3 pad 1 -> BatchNormalization -> Clip [0.1, 0.6] -> Pad
// (1,2 before, 2,1 after, value 0.5) -> Slice rows 1..7, cols 0..end -> Upsample
// nearest x2 x3 -> Conv 1x1 to 2 channels, no bias -> y [N,2,14,27]. Every weight and
// the scales are Constant nodes; the head's weight is not folded with anything.
OnnxBuilder oldStyleModel(int opset)
{
    OnnxBuilder b(opset);
    b.model().set_ir_version(opset < 9 ? 3 : 4);
    b.input("x", {-1, C, H, W});
    constantNode(b, "conv.w", {K, C, 3, 3}, convWeight());
    constantNode(b, "conv.b", {K}, kBias);
    for (const auto& [name, v] :
        {std::pair {"bn.scale", kBnScale}, {"bn.bias", kBnBias}, {"bn.mean", kBnMean}, {"bn.var", kBnVar}})
        constantNode(b, name, {K}, v);
    auto* conv = b.node("Conv", {"x", "conv.w", "conv.b"}, {"c"}, "conv");
    OnnxBuilder::intsAttr(conv, "pads", {1, 1, 1, 1});
    OnnxBuilder::intsAttr(conv, "kernel_shape", {3, 3});
    auto* bn = b.node("BatchNormalization", {"c", "bn.scale", "bn.bias", "bn.mean", "bn.var"}, {"n"}, "bn");
    if (opset < 9)
        OnnxBuilder::intAttr(bn, "spatial", 1);
    auto* clip = b.node("Clip", {"n"}, {"r"}, "clip");
    OnnxBuilder::floatAttr(clip, "min", 0.1f);
    OnnxBuilder::floatAttr(clip, "max", 0.6f);
    auto* pad = b.node("Pad", {"r"}, {"p"}, "pad");
    OnnxBuilder::intsAttr(pad, "pads", {0, 0, 1, 2, 0, 0, 2, 1});
    OnnxBuilder::floatAttr(pad, "value", 0.5f);
    auto* slice = b.node("Slice", {"p"}, {"s"}, "slice");
    OnnxBuilder::intsAttr(slice, "starts", {1, 0});
    OnnxBuilder::intsAttr(slice, "ends", {8, 100});
    OnnxBuilder::intsAttr(slice, "axes", {2, 3});
    if (opset < 9) {
        auto* up = b.node("Upsample", {"s"}, {"u"}, "upsample");
        floatsAttr(up, "scales", {1, 1, 2, 3});
    } else {
        constantNode(b, "up.scales", {4}, {1, 1, 2, 3});
        b.node("Upsample", {"s", "up.scales"}, {"u"}, "upsample");
    }
    constantNode(b, "head.w", {2, K, 1, 1}, kHead);
    b.node("Conv", {"u", "head.w"}, {"y"}, "head");
    b.output("y", {-1, 2, 14, 27});
    return b;
}

// The same computation as naive loops, from the spec of each operator.
std::vector<float> naiveOldStyle(const qs::Tensor& x)
{
    const int64_t N = x.shape[0];
    const std::vector<float> in = x.toFloat(), w = convWeight();
    std::vector<float> out;
    for (int64_t n = 0; n < N; ++n) {
        float r[K][H][W];
        for (int64_t k = 0; k < K; ++k)
            for (int64_t i = 0; i < H; ++i)
                for (int64_t j = 0; j < W; ++j) {
                    double acc = kBias[std::size_t(k)];
                    for (int64_t c = 0; c < C; ++c)
                        for (int64_t di = 0; di < 3; ++di)
                            for (int64_t dj = 0; dj < 3; ++dj) {
                                const int64_t ii = i + di - 1, jj = j + dj - 1;
                                if (ii >= 0 && ii < H && jj >= 0 && jj < W)
                                    acc += double(w[std::size_t(((k * C + c) * 3 + di) * 3 + dj)]) *
                                        in[std::size_t(((n * C + c) * H + ii) * W + jj)];
                            }
                    const std::size_t kk = std::size_t(k);
                    const double bn =
                        (acc - kBnMean[kk]) / std::sqrt(double(kBnVar[kk]) + 1e-5) * kBnScale[kk] + kBnBias[kk];
                    r[k][i][j] = float(std::clamp(bn, 0.1, 0.6));
                }
        // Pad: 1 row and 2 columns before, 2 rows and 1 column after -> [9, 9].
        auto padded = [&](int64_t k, int64_t i, int64_t j) {
            const int64_t ii = i - 1, jj = j - 2;
            return ii >= 0 && ii < H && jj >= 0 && jj < W ? r[k][ii][jj] : 0.5f;
        };
        // Slice rows 1..7 (7 rows), all 9 columns; Upsample nearest: u[i][j] = s[i/2][j/3];
        // the 1x1 head mixes the channels.
        for (int64_t o = 0; o < 2; ++o)
            for (int64_t i = 0; i < 14; ++i)
                for (int64_t j = 0; j < 27; ++j) {
                    double acc = 0;
                    for (int64_t k = 0; k < K; ++k)
                        acc += double(kHead[std::size_t(o * K + k)]) * padded(k, i / 2 + 1, j / 3);
                    out.push_back(float(acc));
                }
    }
    return out;
}

// x [N,3,4,5] -> Conv 1x1 -> Softmax (axis 1: the old 2-D coercion, over 60 values)
// -> Conv 1x1 -> LogSoftmax (axis 2: over the last 2 dims) -> Reshape to [N,-1] through
// Shape, Slice and Concat (paddle2onnx's flatten: import cannot infer the rank) ->
// Softmax (axis 1, the last) -> y [N,60], at opset 9 with a symbolic batch as
// paddle2onnx writes classifiers.
OnnxBuilder coercedSoftmaxModel()
{
    OnnxBuilder b(9);
    b.model().set_ir_version(4);
    b.input("x", {-1, 3, 4, 5});
    const std::vector<float> w1 {0.9f, -0.4f, 0.3f, 0.2f, 1.1f, -0.5f, -0.6f, 0.1f, 0.8f};
    const std::vector<float> w2 {0.5f, 0.7f, -0.2f, -0.9f, 0.4f, 0.6f, 0.3f, -0.8f, 1.2f};
    b.initializer("w1", {3, 3, 1, 1}, w1);
    b.initializer("w2", {3, 3, 1, 1}, w2);
    b.node("Conv", {"x", "w1"}, {"c1"}, "conv1");
    OnnxBuilder::intAttr(b.node("Softmax", {"c1"}, {"s1"}, "softmax1"), "axis", 1);
    b.node("Conv", {"s1", "w2"}, {"c2"}, "conv2");
    OnnxBuilder::intAttr(b.node("LogSoftmax", {"c2"}, {"l2"}, "logsoftmax2"), "axis", 2);
    b.node("Shape", {"l2"}, {"l2.shape"}, "shape");
    auto* slice = b.node("Slice", {"l2.shape"}, {"l2.batch"}, "slice");
    OnnxBuilder::intsAttr(slice, "starts", {0});
    OnnxBuilder::intsAttr(slice, "ends", {1});
    OnnxBuilder::intsAttr(slice, "axes", {0});
    auto* minusOne = b.node("Constant", {}, {"minus_one"}, "minus_one");
    auto* a = minusOne->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    a->mutable_t()->set_data_type(onnx::TensorProto::INT64);
    a->mutable_t()->add_dims(1);
    a->mutable_t()->add_int64_data(-1);
    OnnxBuilder::intAttr(b.node("Concat", {"l2.batch", "minus_one"}, {"flat.shape"}, "concat"), "axis", 0);
    b.node("Reshape", {"l2", "flat.shape"}, {"flat"}, "reshape");
    OnnxBuilder::intAttr(b.node("Softmax", {"flat"}, {"y"}, "softmax3"), "axis", 1);
    b.output("y", {-1, 60});
    return b;
}

qs::Dataset randomData(const qs::Graph& g, int64_t n)
{
    qs::DataOptions d;
    d.spec = "random:" + std::to_string(n);
    return qs::loadDataset(d, g);
}

// W8A8 (per-channel symmetric weights, affine activations), calibrated on `data`.
std::unique_ptr<qs::QuantSession> w8a8Session(const qs::Graph& g, const qs::Dataset& data)
{
    qs::QuantizeOptions opts;
    opts.config.defaults.weight = {.bits = 8, .symmetric = true, .granularity = qs::Granularity::Channel};
    opts.config.defaults.activation = {.bits = 8, .symmetric = false};
    auto session = std::make_unique<qs::QuantSession>(g, opts);
    qs::Progress progress;
    qs::CancelToken cancel;
    session->calibrate(data, progress, cancel);
    session->quantizeWeights();
    return session;
}

} // namespace

class TestOpsetUpgrade : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;

private slots:
    void opsets_data()
    {
        QTest::addColumn<int>("opset");
        QTest::newRow("opset 7 (Upsample scales attribute, BN spatial)") << 7;
        QTest::newRow("opset 8") << 8;
        QTest::newRow("opset 9 (Upsample scales input)") << 9;
    }

    // Constant nodes became initializers (failed before: 0 parameters, no layer);
    // the FP32 run equals the naive loops (failed before: Upsample unsupported).
    void opsets()
    {
        QFETCH(int, opset);
        const qs::Graph g = qs::importOnnxBytes(oldStyleModel(opset).bytes(), "old.onnx", "");
        for (const auto& n : g.nodes)
            QVERIFY2(n.opType != "Constant", n.name.c_str());
        QCOMPARE(g.parameterCount(), int64_t(K * C * 9 + K + 4 * K + 2 * K + (opset < 9 ? 0 : 4)));
        QCOMPARE(g.quantizableLayers().size(), std::size_t(2));
        QCOMPARE(g.weightOf(g.nodes[std::size_t(g.quantizableLayers()[0])]), std::string("conv.w"));
        QCOMPARE(g.weightOf(g.nodes[std::size_t(g.quantizableLayers()[1])]), std::string("head.w"));

        const qs::Dataset data = randomData(g, 3);
        qs::CompileOptions co;
        co.inputShapes["x"] = data.first().shape;
        const std::vector<float> ours = qs::compilePlan(g, co)->run({data.first()}).front().toFloat();
        const std::vector<float> ref = naiveOldStyle(data.first());
        QCOMPARE(ours.size(), ref.size());
        for (std::size_t i = 0; i < ref.size(); ++i)
            QVERIFY2(std::abs(ours[i] - ref[i]) < 1e-5f,
                qPrintable(QString("%1: %2 vs %3").arg(i).arg(ours[i]).arg(ref[i])));
    }

    // W8A8 with the weight from a Constant node (failed before: "initializer override
    // \"conv.w\": the model has no initializer of that name"), exported as QDQ after an
    // upgrade to opset 13 (failed before: "model opset 9 is below 13"), which ONNX
    // Runtime loads and runs as our simulation does.
    void quantizeAndExport_data() { opsets_data(); }

    void quantizeAndExport()
    {
        QFETCH(int, opset);
        const qs::Graph g = qs::importOnnxBytes(oldStyleModel(opset).bytes(), "old.onnx", "");
        const qs::Dataset data = randomData(g, 16);
        const auto session = w8a8Session(g, data);
        QCOMPARE(session->layers().size(), std::size_t(2));

        const qs::QdqModel qdq = qs::buildQdqModel(*session);
        QCOMPARE(qdq.graph.opset(""), int64_t(13));
        QVERIFY(qdq.upgrade.upgraded());
        QCOMPARE(qdq.upgrade.from, int64_t(opset));
        for (const char* op : {"Upsample", "Slice", "Pad", "Clip"})
            QVERIFY2(std::count(qdq.upgrade.ops.begin(), qdq.upgrade.ops.end(), op) == 1, op);
        QVERIFY(qdq.graph.metadata.at("quantstudio.opset_upgrade")
                    .starts_with("opset " + std::to_string(opset) + " -> 13"));
        const std::string bytes = qs::exportOnnxBytes(qdq.graph);
        qs::checkOnnxBytes(bytes, "old_qdq.onnx");
        const QString path = dir_.filePath(QString("old%1_qdq.onnx").arg(opset));
        qs::writeFileAtomic(path.toStdString(), bytes);

        const std::vector<float> ours = session->compile(true, data.first().shape)->run({data.first()}).front().toFloat();
        const std::vector<float> ort = qs::test::ortLogits(path, data, "disabled", dir_.path());
        QCOMPARE(ort.size(), ours.size());
        float maxAbs = 0, maxDiff = 0;
        for (std::size_t i = 0; i < ours.size(); ++i) {
            maxAbs = std::max(maxAbs, std::abs(ours[i]));
            maxDiff = std::max(maxDiff, std::abs(ours[i] - ort[i]));
        }
        // One activation step (range / 255) at most: rounding ties may fall either way.
        QVERIFY2(maxDiff <= maxAbs / 255.f + 1e-6f, qPrintable(QString("max diff %1 of %2").arg(maxDiff).arg(maxAbs)));
    }

    // Softmax and LogSoftmax at opset 9 coerce to 2-D at their axis; the upgrade to 13
    // rewrites them (failed before on the symbolic batch: "cannot upgrade opset 9 to 13:
    // .../softmax_12_13.h", the ocr_cls corpus model). ONNX Runtime runs the original
    // opset-9 file, the upgraded FP32 file and the QDQ export; all agree with us.
    void coercedSoftmaxAxes()
    {
        const OnnxBuilder model = coercedSoftmaxModel();
        const qs::Graph g = qs::importOnnxBytes(model.bytes(), "softmax9.onnx", "");
        QVERIFY(!g.info("flat") || !g.info("flat")->dims); // the case the input shapes are for
        const std::string error = qs::test::errorOf([&] { qs::upgradeOpset(g, 13); });
        QVERIFY2(error.find("node \"softmax3\" (Softmax): the rank of input \"flat\" is unknown") != std::string::npos,
            error.c_str());
        const qs::Dataset data = randomData(g, 4);
        qs::OpsetUpgrade up;
        const qs::Graph g13 = qs::upgradeOpset(g, 13, &up, data.inputShapes(1));
        QCOMPARE(g13.opset(""), int64_t(13));
        QCOMPARE(g13.opCounts()["Flatten"], 2); // softmax1 and logsoftmax2; softmax3 is on the last axis
        for (const char* name : {"softmax1", "logsoftmax2", "softmax3"}) {
            const int i = g13.findNode(name);
            QVERIFY2(i >= 0, name);
            QCOMPARE(g13.nodes[std::size_t(i)].attrInt("axis", 0), int64_t(-1));
        }
        const QString original = dir_.filePath("softmax9.onnx"), upgraded = dir_.filePath("softmax13.onnx");
        qs::writeFileAtomic(original.toStdString(), model.bytes());
        const std::string bytes13 = qs::exportOnnxBytes(g13);
        qs::checkOnnxBytes(bytes13, "softmax13.onnx");
        qs::writeFileAtomic(upgraded.toStdString(), bytes13);
        const std::vector<float> ortOld = qs::test::ortLogits(original, data, "disabled", dir_.path());
        const std::vector<float> ortNew = qs::test::ortLogits(upgraded, data, "disabled", dir_.path());
        qs::CompileOptions co;
        co.inputShapes["x"] = data.first().shape;
        const std::vector<float> ours = qs::compilePlan(g13, co)->run({data.first()}).front().toFloat();
        QCOMPARE(ours.size(), std::size_t(4 * 60));
        QCOMPARE(ortOld.size(), ours.size());
        QVERIFY2(qs::test::maxAbsDiff(ortOld, ortNew) < 1e-6f, "ONNX Runtime: opset 9 vs the upgraded file");
        QVERIFY2(qs::test::maxAbsDiff(ortOld, ours) < 1e-5f, "ONNX Runtime vs our run of the upgraded graph");

        const auto session = w8a8Session(g, data);
        const qs::QdqModel qdq = qs::buildQdqModel(*session, data.inputShapes(1));
        const std::string qdqBytes = qs::exportOnnxBytes(qdq.graph);
        qs::checkOnnxBytes(qdqBytes, "softmax_qdq.onnx");
        const QString path = dir_.filePath("softmax_qdq.onnx");
        qs::writeFileAtomic(path.toStdString(), qdqBytes);
        const std::vector<float> sim = session->compile(true, data.first().shape)->run({data.first()}).front().toFloat();
        const std::vector<float> ort = qs::test::ortLogits(path, data, "disabled", dir_.path());
        QCOMPARE(ort.size(), sim.size());
        // One activation step (1/255 of the softmax's [0,1]) at most: rounding ties may fall either way.
        const double diff = qs::test::maxAbsDiff(ort, sim);
        QVERIFY2(diff <= 1. / 255 + 1e-6, qPrintable(QString("QDQ in ONNX Runtime vs our simulation: %1").arg(diff)));
    }

    void currentOpsetIsNotUpgraded()
    {
        const qs::Graph g = qs::importOnnxBytes(qs::test::tinyConvModel().bytes(), "tiny.onnx", "");
        qs::OpsetUpgrade up;
        const qs::Graph same = qs::upgradeOpset(g, 13, &up);
        QVERIFY(!up.upgraded());
        QCOMPARE(up.text(), std::string());
        QCOMPARE(same.nodes.size(), g.nodes.size());
    }

    void init() { QVERIFY(dir_.isValid()); }
};

QTEST_APPLESS_MAIN(TestOpsetUpgrade)
#include "test_opset_upgrade.moc"
