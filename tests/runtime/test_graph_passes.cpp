// The graph optimizer (core/runtime/passes): each pass on a small model built here must
// rewrite its pattern (node counts) and leave the outputs as the original graph gives them
// (to 1e-5 of the largest magnitude); the cases it must not touch stay as they are. The
// plan hook: optimized plain plans name the original layers, and observing a value the
// optimizer removed recompiles the original graph. With `borrow` (plans) the passes read
// large weights from the original graph, copied in only when more than folds changed.
#include "graph/onnx_import.h"
#include "runtime/passes/passes.h"
#include "runtime/plan.h"
#include "support/cli_runner.h"
#include "support/compare.h"
#include "support/onnx_builder.h"
#include "util/error.h"

#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace qs;
using qs::test::OnnxBuilder;

class TestGraphPasses : public QObject {
    Q_OBJECT

private slots:
    void selection();
    void padFold_data();
    void padFold();
    void transpose_data();
    void transpose();
    void cleanupPass();
    void constantFold();
    void convAffine_data();
    void convAffine();
    void hardSwish_data();
    void hardSwish();
    void layerNorm_data();
    void layerNorm();
    void planUsesOptimizedGraph();
    void plansShareOneOptimization();
    void observingRemovedValue();
    void borrowedWeights_data();
    void borrowedWeights();
    void inspectOptimized();
};

namespace {

using Dims = std::vector<int64_t>;

// A graph output import infers the shape of (the builder's default is a scalar).
void anyShape(onnx::ValueInfoProto* v)
{
    v->mutable_type()->mutable_tensor_type()->clear_shape();
}

std::vector<float> ramp(std::size_t n, float scale = 1.f)
{
    std::vector<float> v(n);
    for (std::size_t i = 0; i < n; ++i)
        v[i] = scale * float(std::sin(0.37 * double(i) + 0.1) + 0.25 * std::cos(1.3 * double(i)));
    return v;
}

Tensor inputTensor(const Dims& dims)
{
    return Tensor::fromVector<float>(dims, ramp(std::size_t(numelOf(dims)), 2.f));
}

Graph load(const OnnxBuilder& b)
{
    return importOnnxBytes(b.bytes(), "passes.onnx", ".");
}

int count(const Graph& g, const std::string& op)
{
    const auto counts = g.opCounts();
    auto it = counts.find(op);
    return it == counts.end() ? 0 : it->second;
}

std::vector<Tensor> runGraph(const Graph& g, const std::vector<Tensor>& inputs)
{
    CompileOptions o;
    o.threads = 1;
    return compilePlan(g, o)->run(inputs);
}

// Runs `spec` on the model; the optimized graph must compute what the original does.
rt::OptimizedGraph optimizeAndCompare(const Graph& g, const std::string& spec, const std::vector<Tensor>& inputs)
{
    rt::OptimizedGraph o = rt::optimizeGraph(g, spec);
    const auto want = runGraph(g, inputs);
    const auto got = runGraph(o.graph, inputs);
    [&] {
        QCOMPARE(got.size(), want.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            QCOMPARE(got[i].shape, want[i].shape);
            const double rel = qs::test::maxRelDiff(got[i].toFloat(), want[i].toFloat());
            if (!(rel <= 1e-5))
                QFAIL(qPrintable(QString("output %1 differs by %2 relative\n%3")
                                     .arg(i)
                                     .arg(rel)
                                     .arg(QString::fromStdString(o.reportText()))));
        }
    }();
    return o;
}

// x [1,3,6,6] -> Pad(pads, value, mode) -> consumer -> y.
OnnxBuilder padModel(const std::string& consumer, const std::string& mode, float value)
{
    OnnxBuilder b(13);
    b.input("x", {1, 3, 6, 6});
    b.int64Initializer("pads", {8}, {0, 0, 1, 2, 0, 0, 2, 1});
    b.initializer("value", {}, {value});
    auto* pad = b.node("Pad", {"x", "pads", "value"}, {"padded"}, "pad");
    OnnxBuilder::stringAttr(pad, "mode", mode);
    if (consumer == "Conv") {
        b.initializer("w", {4, 3, 3, 3}, ramp(4 * 3 * 3 * 3, 0.3f));
        b.initializer("bias", {4}, {0.1f, -0.2f, 0.3f, 0.f});
        auto* conv = b.node("Conv", {"padded", "w", "bias"}, {"y"}, "conv");
        OnnxBuilder::intsAttr(conv, "kernel_shape", {3, 3});
    } else {
        auto* pool = b.node(consumer == "AveragePoolExcl" ? "AveragePool" : consumer, {"padded"}, {"y"}, "pool");
        OnnxBuilder::intsAttr(pool, "kernel_shape", {3, 3});
        if (consumer == "AveragePool")
            OnnxBuilder::intAttr(pool, "count_include_pad", 1);
    }
    anyShape(b.output("y"));
    return b;
}

// x NCHW -> Transpose to NHWC -> Add(bias per channel) -> Relu -> middle -> Transpose back -> Conv
// ("merge": x -> Transpose -> another Transpose).
OnnxBuilder transposeModel(const std::string& middle)
{
    OnnxBuilder b(13);
    b.input("x", {1, 3, 5, 6});
    auto* t1 = b.node("Transpose", {"x"}, {"nhwc"}, "to_nhwc");
    OnnxBuilder::intsAttr(t1, "perm", {0, 2, 3, 1});
    if (middle == "merge") { // a second Transpose that does not undo the first: one Transpose
        auto* t2 = b.node("Transpose", {"nhwc"}, {"y"}, "other");
        OnnxBuilder::intsAttr(t2, "perm", {0, 2, 1, 3});
        anyShape(b.output("y"));
        return b;
    }
    b.initializer("bias", {3}, {0.5f, -0.25f, 0.125f});
    b.node("Add", {"nhwc", "bias"}, {"biased"}, "add");
    b.node("Relu", {"biased"}, {"act"}, "relu");
    std::string last = "act";
    if (middle == "pad") {
        b.int64Initializer("pads", {8}, {0, 1, 1, 0, 0, 1, 1, 0});
        b.node("Pad", {"act", "pads"}, {"padded"}, "pad_nhwc");
        last = "padded";
    } else if (middle == "softmax") { // reads along an axis: the Transpose cannot pass it
        b.node("Softmax", {"act"}, {"soft"}, "softmax");
        last = "soft";
    }
    auto* t2 = b.node("Transpose", {last}, {"nchw"}, "to_nchw");
    OnnxBuilder::intsAttr(t2, "perm", {0, 3, 1, 2});
    b.initializer("w", {2, 3, 3, 3}, ramp(2 * 3 * 3 * 3, 0.3f));
    auto* conv = b.node("Conv", {"nchw", "w"}, {"y"}, "conv");
    OnnxBuilder::intsAttr(conv, "kernel_shape", {3, 3});
    anyShape(b.output("y"));
    return b;
}

} // namespace

void TestGraphPasses::selection()
{
    const auto& all = rt::graphPassNames();
    QCOMPARE(rt::selectPasses("all"), all);
    QCOMPARE(rt::selectPasses(""), all);
    QVERIFY(rt::selectPasses("none").empty());
    auto without = rt::selectPasses("-pad_fold");
    QCOMPARE(without.size(), all.size() - 1);
    QVERIFY(std::find(without.begin(), without.end(), "pad_fold") == without.end());
    QCOMPARE(rt::selectPasses("pad_fold,constant_fold"), (std::vector<std::string> {"constant_fold", "pad_fold"}));
    QCOMPARE(rt::selectPasses("all,-transpose").size(), all.size() - 1);
    try {
        rt::selectPasses("constant_fold,pad_fusion");
        QFAIL("an unknown pass was accepted");
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find("QS_RUNTIME_PASSES: unknown pass \"pad_fusion\"") != std::string::npos,
            e.what());
    }
    // "none" runs nothing and changes nothing.
    Graph g = load(padModel("Conv", "constant", 0.f));
    rt::OptimizedGraph o = rt::optimizeGraph(g, "none");
    QVERIFY(o.passes.empty());
    QCOMPARE(o.graph.nodes.size(), g.nodes.size());
}

void TestGraphPasses::padFold_data()
{
    QTest::addColumn<QString>("consumer");
    QTest::addColumn<QString>("mode");
    QTest::addColumn<float>("value");
    QTest::addColumn<bool>("folds");
    QTest::newRow("conv") << "Conv"
                          << "constant" << 0.f << true;
    QTest::newRow("average pool counting pads") << "AveragePool"
                                                << "constant" << 0.f << true;
    QTest::newRow("max pool, -inf") << "MaxPool"
                                    << "constant" << -INFINITY << true;
    QTest::newRow("conv, value 1") << "Conv"
                                   << "constant" << 1.f << false;
    QTest::newRow("conv, reflect") << "Conv"
                                   << "reflect" << 0.f << false;
    QTest::newRow("conv, edge") << "Conv"
                                << "edge" << 0.f << false;
    QTest::newRow("average pool not counting pads") << "AveragePoolExcl"
                                                    << "constant" << 0.f << false;
    QTest::newRow("max pool, zero") << "MaxPool"
                                    << "constant" << 0.f << false;
}

void TestGraphPasses::padFold()
{
    QFETCH(QString, consumer);
    QFETCH(QString, mode);
    QFETCH(float, value);
    QFETCH(bool, folds);
    Graph g = load(padModel(consumer.toStdString(), mode.toStdString(), value));
    const auto o = optimizeAndCompare(g, "pad_fold", {inputTensor({1, 3, 6, 6})});
    QCOMPARE(count(o.graph, "Pad"), folds ? 0 : 1);
    QCOMPARE(o.graph.nodes.size(), std::size_t(folds ? 1 : 2));
    QCOMPARE(o.passes.at(0).rewrites, folds ? 1 : 0);
    if (folds) {
        const Node& n = o.graph.nodes.at(0);
        QCOMPARE(n.attrInts("pads"), (std::vector<int64_t> {1, 2, 2, 1}));
        QCOMPARE(o.sourcesOf(n.name), (std::vector<std::string> {n.name, "pad"}));
    }
}

void TestGraphPasses::transpose_data()
{
    QTest::addColumn<QString>("middle");
    QTest::addColumn<QString>("spec");
    QTest::addColumn<int>("transposes");
    QTest::addColumn<int>("pads");
    QTest::newRow("through add and relu") << ""
                                          << "transpose" << 0 << 0;
    QTest::newRow("through pad, then pad folded") << "pad"
                                                  << "transpose,pad_fold" << 0 << 0;
    QTest::newRow("through pad, pad kept") << "pad"
                                           << "transpose" << 0 << 1;
    QTest::newRow("softmax blocks it") << "softmax"
                                       << "transpose" << 2 << 0;
    QTest::newRow("two merged into one") << "merge"
                                         << "transpose" << 1 << 0;
    QTest::newRow("pass off") << "pad"
                              << "pad_fold" << 2 << 1;
}

void TestGraphPasses::transpose()
{
    QFETCH(QString, middle);
    QFETCH(QString, spec);
    QFETCH(int, transposes);
    QFETCH(int, pads);
    Graph g = load(transposeModel(middle.toStdString()));
    const auto o = optimizeAndCompare(g, spec.toStdString(), {inputTensor({1, 3, 5, 6})});
    QCOMPARE(count(o.graph, "Transpose"), transposes);
    QCOMPARE(count(o.graph, "Pad"), pads);
    QCOMPARE(count(o.graph, "Relu"), middle == "merge" ? 0 : 1);
    // Values that now hold another layout carry new names: no name of the original
    // graph means anything else in the optimized one.
    if (transposes == 0)
        for (const auto& n : o.graph.nodes)
            for (const auto& out : n.outputs)
                QVERIFY2(out != "biased" && out != "act" && out != "padded", out.c_str());
}

void TestGraphPasses::cleanupPass()
{
    OnnxBuilder b(13);
    b.input("x", {2, 6});
    b.node("Identity", {"x"}, {"same"}, "identity");
    auto* cast = b.node("Cast", {"same"}, {"cast"}, "cast");
    OnnxBuilder::intAttr(cast, "to", onnx::TensorProto::FLOAT);
    b.int64Initializer("s1", {2}, {3, 4});
    b.int64Initializer("s2", {2}, {4, -1});
    b.node("Reshape", {"cast", "s1"}, {"r1"}, "reshape1");
    b.node("Reshape", {"r1", "s2"}, {"r2"}, "reshape2");
    b.node("Relu", {"r2"}, {"y"}, "relu");
    anyShape(b.output("y"));
    Graph g = load(b);
    const auto o = optimizeAndCompare(g, "cleanup", {inputTensor({2, 6})});
    QCOMPARE(count(o.graph, "Identity"), 0);
    QCOMPARE(count(o.graph, "Cast"), 0);
    QCOMPARE(count(o.graph, "Reshape"), 1);
    QCOMPARE(o.passes.at(0).rewrites, 3);
    QCOMPARE(o.sourcesOf("reshape2"), (std::vector<std::string> {"reshape1", "reshape2"}));

    // A Cast that converts and a graph output behind an Identity stay.
    OnnxBuilder k(13);
    k.input("x", {2, 6});
    auto* toInt = k.node("Cast", {"x"}, {"ints"}, "to_int");
    OnnxBuilder::intAttr(toInt, "to", onnx::TensorProto::INT32);
    k.node("Identity", {"ints"}, {"y"}, "identity");
    k.output("y", {2, 6}, onnx::TensorProto::INT32);
    const auto kept = optimizeAndCompare(load(k), "cleanup", {inputTensor({2, 6})});
    QCOMPARE(kept.graph.nodes.size(), std::size_t(2));
}

void TestGraphPasses::constantFold()
{
    // Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) on a fixed shape, plus an
    // Add of two initializers: everything but the Reshape and the Mul folds.
    OnnxBuilder b(13);
    b.input("x", {2, 3, 4});
    b.int64Initializer("zero", {}, {0});
    b.int64Initializer("axes", {1}, {0});
    b.int64Initializer("minus_one", {1}, {-1});
    b.node("Shape", {"x"}, {"shape"}, "shape");
    auto* gather = b.node("Gather", {"shape", "zero"}, {"batch"}, "gather");
    OnnxBuilder::intAttr(gather, "axis", 0);
    b.node("Unsqueeze", {"batch", "axes"}, {"batch1"}, "unsqueeze");
    auto* concat = b.node("Concat", {"batch1", "minus_one"}, {"target"}, "concat");
    OnnxBuilder::intAttr(concat, "axis", 0);
    b.node("Reshape", {"x", "target"}, {"flat"}, "reshape");
    b.initializer("a", {12}, ramp(12));
    b.initializer("c", {12}, ramp(12, -0.5f));
    b.node("Add", {"a", "c"}, {"scale"}, "add_constants");
    b.node("Mul", {"flat", "scale"}, {"y"}, "mul");
    anyShape(b.output("y"));
    Graph g = load(b);
    const auto o = optimizeAndCompare(g, "constant_fold", {inputTensor({2, 3, 4})});
    QCOMPARE(o.graph.nodes.size(), std::size_t(2));
    QCOMPARE(count(o.graph, "Reshape"), 1);
    QCOMPARE(count(o.graph, "Mul"), 1);
    QCOMPARE(o.passes.at(0).rewrites, 5);
    const Tensor* target = o.graph.constant("target");
    QVERIFY(target);
    QCOMPARE(target->toInt64(), (std::vector<int64_t> {2, -1}));
}

void TestGraphPasses::convAffine_data()
{
    QTest::addColumn<QString>("where");
    QTest::addColumn<Dims>("constShape");
    QTest::addColumn<int>("pad");
    QTest::addColumn<int>("nodesAfter");
    QTest::newRow("per-channel Mul and Add after") << "after" << Dims {4, 1, 1} << 1 << 1;
    QTest::newRow("scalar Mul and Add after (left to post-ops)") << "after" << Dims {1} << 1 << 3;
    QTest::newRow("Mul and Add along width after") << "after" << Dims {1, 1, 1, 5} << 1 << 3;
    QTest::newRow("scalar Mul and Add before an unpadded Conv") << "before" << Dims {} << 0 << 3;
    QTest::newRow("scalar Mul and Add before a padded Conv") << "before" << Dims {} << 1 << 3;
    QTest::newRow("per-channel Mul and Add before") << "before" << Dims {1, 3, 1, 1} << 0 << 3;
}

// x [1,3,5,5] -> [Mul(k1) -> Add(k2) ->] Conv (w [4,3,3,3], bias, pads) [-> Mul(k1) -> Add(k2)].
void TestGraphPasses::convAffine()
{
    QFETCH(QString, where);
    QFETCH(Dims, constShape);
    QFETCH(int, pad);
    QFETCH(int, nodesAfter);
    OnnxBuilder b(13);
    b.input("x", {1, 3, 5, 5});
    b.initializer("w", {4, 3, 3, 3}, ramp(4 * 3 * 3 * 3, 0.5f));
    b.initializer("bias", {4}, {0.1f, -0.2f, 0.3f, 0.4f});
    b.initializer("k1", constShape, ramp(std::size_t(numelOf(constShape)), 1.5f));
    b.initializer("k2", constShape, ramp(std::size_t(numelOf(constShape)), -0.7f));
    const bool before = where == "before";
    if (before) {
        b.node("Mul", {"k1", "x"}, {"scaled"}, "mul");
        b.node("Add", {"scaled", "k2"}, {"shifted"}, "add");
    }
    auto* conv = b.node("Conv", {before ? "shifted" : "x", "w", "bias"}, {before ? "y" : "c"}, "conv");
    OnnxBuilder::intsAttr(conv, "pads", {pad, pad, pad, pad});
    if (!before) {
        b.node("Mul", {"c", "k1"}, {"scaled"}, "mul");
        b.node("Add", {"k2", "scaled"}, {"y"}, "add");
    }
    anyShape(b.output("y"));
    const auto o = optimizeAndCompare(load(b), "conv_affine", {inputTensor({1, 3, 5, 5})});
    QCOMPARE(o.graph.nodes.size(), std::size_t(nodesAfter));
    if (nodesAfter == 1)
        QCOMPARE(o.sourcesOf("conv"), (std::vector<std::string> {"conv", "mul", "add"}));
}

void TestGraphPasses::hardSwish_data()
{
    QTest::addColumn<float>("alpha");
    QTest::addColumn<float>("clipMax");
    QTest::addColumn<bool>("fuses");
    QTest::newRow("alpha 1/6") << 1.f / 6.f << 0.f << true;
    QTest::newRow("alpha 0.2 (a plain HardSigmoid)") << 0.2f << 0.f << false;
    QTest::newRow("x * Clip(x + 3, 0, 6) / 6 (the compiler's exact loop)") << 0.f << 6.f << false;
    QTest::newRow("x * Clip(x + 3, 0, 5) / 6") << 0.f << 5.f << false;
}

void TestGraphPasses::hardSwish()
{
    QFETCH(float, alpha);
    QFETCH(float, clipMax);
    QFETCH(bool, fuses);
    const bool decomposed = clipMax > 0;
    OnnxBuilder b(13);
    b.input("x", {1, 3, 5, 5});
    b.initializer("w", {4, 3, 3, 3}, ramp(4 * 3 * 3 * 3, 2.f));
    auto* conv = b.node("Conv", {"x", "w"}, {"c"}, "conv");
    OnnxBuilder::intsAttr(conv, "pads", {1, 1, 1, 1});
    if (decomposed) { // as paddle2onnx writes it
        b.initializer("three", {}, {3.f});
        b.initializer("zero", {}, {0.f});
        b.initializer("top", {}, {clipMax});
        b.initializer("six", {}, {6.f});
        b.node("Add", {"c", "three"}, {"shifted"}, "add");
        b.node("Clip", {"shifted", "zero", "top"}, {"clipped"}, "clip");
        b.node("Mul", {"c", "clipped"}, {"scaled"}, "mul");
        b.node("Div", {"scaled", "six"}, {"y"}, "div");
    } else {
        auto* hs = b.node("HardSigmoid", {"c"}, {"gate"}, "hardsigmoid");
        OnnxBuilder::floatAttr(hs, "alpha", alpha);
        OnnxBuilder::floatAttr(hs, "beta", 0.5f);
        b.node("Mul", {"gate", "c"}, {"y"}, "mul");
    }
    anyShape(b.output("y"));
    const auto o = optimizeAndCompare(load(b), "hardswish", {inputTensor({1, 3, 5, 5})});
    QCOMPARE(count(o.graph, "HardSwish"), fuses ? 1 : 0);
    QCOMPARE(o.graph.nodes.size(), std::size_t(fuses ? 2 : decomposed ? 5 : 3));
    if (fuses && decomposed)
        QCOMPARE(o.sourcesOf("div"), (std::vector<std::string> {"add", "clip", "mul", "div"}));
    if (fuses && !decomposed)
        QCOMPARE(o.sourcesOf("mul"), (std::vector<std::string> {"hardsigmoid", "mul"}));
}

void TestGraphPasses::layerNorm_data()
{
    QTest::addColumn<float>("exponent");
    QTest::addColumn<bool>("affine");
    QTest::addColumn<bool>("fuses");
    QTest::newRow("with scale and shift") << 2.f << true << true;
    QTest::newRow("plain") << 2.f << false << true;
    QTest::newRow("Pow 3 is no variance") << 3.f << true << false;
}

void TestGraphPasses::layerNorm()
{
    QFETCH(float, exponent);
    QFETCH(bool, affine);
    QFETCH(bool, fuses);
    OnnxBuilder b(13);
    b.input("x", {2, 5, 8});
    auto mean = [&](const std::string& in, const std::string& out, const std::string& name) {
        auto* n = b.node("ReduceMean", {in}, {out}, name);
        OnnxBuilder::intsAttr(n, "axes", {-1});
    };
    mean("x", "mean", "mean");
    b.node("Sub", {"x", "mean"}, {"centered"}, "sub");
    b.initializer("two", {}, {exponent});
    b.node("Pow", {"centered", "two"}, {"squared"}, "pow");
    mean("squared", "var", "var");
    b.initializer("eps", {}, {1e-5f});
    b.node("Add", {"var", "eps"}, {"var_eps"}, "add_eps");
    b.node("Sqrt", {"var_eps"}, {"std"}, "sqrt");
    b.node("Div", {"centered", "std"}, {affine ? "normed" : "y"}, "div");
    if (affine) {
        b.initializer("gamma", {8}, ramp(8, 1.5f));
        b.initializer("beta", {8}, ramp(8, -0.5f));
        b.node("Mul", {"normed", "gamma"}, {"scaled"}, "scale");
        b.node("Add", {"scaled", "beta"}, {"y"}, "shift");
    }
    anyShape(b.output("y"));
    const auto o = optimizeAndCompare(load(b), "layernorm", {inputTensor({2, 5, 8})});
    QCOMPARE(count(o.graph, "LayerNormalization"), fuses ? 1 : 0);
    QCOMPARE(o.graph.nodes.size(), fuses ? std::size_t(1) : std::size_t(affine ? 9 : 7));
    if (fuses) {
        const Node& ln = o.graph.nodes.at(0);
        QCOMPARE(ln.attrInt("axis", 0), int64_t(-1));
        QCOMPARE(o.sourcesOf(ln.name).size(), std::size_t(affine ? 9 : 7));
        QCOMPARE(o.sourcesOf(ln.name).front(), std::string("mean"));
    }
}

void TestGraphPasses::planUsesOptimizedGraph()
{
    qputenv("QS_RUNTIME_PASSES", "all");
    Graph g = load(padModel("Conv", "constant", 0.f));
    CompileOptions o;
    o.threads = 1;
    auto plain = compilePlan(g, o);
    auto optimized = compileOptimizedPlan(g, o);
    const Tensor x = inputTensor({1, 3, 6, 6});
    const auto want = plain->run({x}).at(0).toFloat();
    const auto got = optimized->run({x}).at(0).toFloat();
    QVERIFY(qs::test::maxAbsDiff(got, want) <= 1e-5);
    bool padKernel = false, convNamed = false;
    for (const auto& line : optimized->kernelSummary()) {
        padKernel = padKernel || line.rfind("Pad ", 0) == 0;
        convNamed = convNamed || line.rfind("Conv conv+pad", 0) == 0; // the original layers it computes
    }
    QVERIFY(!padKernel);
    QVERIFY(convNamed);
    bool plainPad = false;
    for (const auto& line : plain->kernelSummary())
        plainPad = plainPad || line.rfind("Pad ", 0) == 0;
    QVERIFY(plainPad); // the graph as given still pads on its own

    // QS_RUNTIME_PASSES=none compiles the graph as given.
    qputenv("QS_RUNTIME_PASSES", "none");
    auto none = compileOptimizedPlan(g, o);
    bool nonePad = false;
    for (const auto& line : none->kernelSummary())
        nonePad = nonePad || line.rfind("Pad ", 0) == 0;
    QVERIFY(nonePad);
    qputenv("QS_RUNTIME_PASSES", "all");
}

// Plans on one shared graph (`run`'s full and remainder batches) run the optimizer once,
// also when it changed nothing beyond folds; another pass spec or graph runs it again.
void TestGraphPasses::plansShareOneOptimization()
{
    qputenv("QS_RUNTIME_PASSES", "all");
    const auto g = std::make_shared<const Graph>(load(padModel("Conv", "constant", 0.f)));
    CompileOptions o;
    o.threads = 1;
    const Tensor x = inputTensor({1, 3, 6, 6});
    const auto want = compilePlan(*g, o)->run({x}).at(0).toFloat();
    const std::size_t before = rt::optimizeGraphRuns();
    auto first = compileOptimizedPlan(g, o);
    auto second = compileOptimizedPlan(g, o);
    QCOMPARE(rt::optimizeGraphRuns(), before + 1);
    for (auto* plan : {first.get(), second.get()}) {
        QVERIFY(qs::test::maxAbsDiff(plan->run({x}).at(0).toFloat(), want) <= 1e-5);
        bool padKernel = false;
        for (const auto& line : plan->kernelSummary())
            padKernel = padKernel || line.rfind("Pad ", 0) == 0;
        QVERIFY(!padKernel); // both compiled the optimized graph
    }
    // A graph the passes leave as it is (constant folding only, nothing to fold): once too.
    qputenv("QS_RUNTIME_PASSES", "constant_fold");
    auto idle1 = compileOptimizedPlan(g, o);
    auto idle2 = compileOptimizedPlan(g, o);
    QCOMPARE(rt::optimizeGraphRuns(), before + 2);
    QVERIFY(qs::test::maxAbsDiff(idle2->run({x}).at(0).toFloat(), want) <= 1e-5);
    // Another graph with the same contents is optimized on its own.
    qputenv("QS_RUNTIME_PASSES", "all");
    auto other = compileOptimizedPlan(std::make_shared<const Graph>(*g), o);
    QCOMPARE(rt::optimizeGraphRuns(), before + 3);
}

void TestGraphPasses::observingRemovedValue()
{
    qputenv("QS_RUNTIME_PASSES", "all");
    Graph g = load(padModel("Conv", "constant", 0.f));
    CompileOptions o;
    o.threads = 1;
    const Tensor x = inputTensor({1, 3, 6, 6});
    const auto want = runGraph(g, {x}).at(0).toFloat();

    // Shape of a value the optimizer removed, then valueOf() of it: the original graph.
    auto plan = compileOptimizedPlan(g, o);
    QCOMPARE(plan->shapeOf("padded"), (Shape {1, 3, 9, 9}));
    QCOMPARE(plan->run({x}).at(0).toFloat().size(), want.size());
    const Tensor padded = plan->valueOf("padded");
    QCOMPARE(padded.shape, (Shape {1, 3, 9, 9}));
    QCOMPARE(padded.toFloat().at(0), 0.f);                       // the padding
    QCOMPARE(padded.toFloat().at(1 * 9 + 2), x.toFloat().at(0)); // after 1 row and 2 columns of padding
    QCOMPARE(plan->run({x}).at(0).toFloat(), want);              // now the original graph: the same numbers

    // A tap on it: the plan compiles the original graph and calls the tap.
    auto tapped = compileOptimizedPlan(g, o);
    tapped->run({x});
    int calls = 0;
    tapped->addTap("padded", [&](const std::string&, const Tensor& t) {
        ++calls;
        QCOMPARE(t.shape, (Shape {1, 3, 9, 9}));
    });
    QCOMPARE(tapped->run({x}).at(0).toFloat(), want);
    QCOMPARE(calls, 1);
}

void TestGraphPasses::inspectOptimized()
{
    QTemporaryDir dir;
    const QString model = dir.filePath("pad_conv.onnx");
    padModel("Conv", "constant", 0.f).save(model.toStdString());
    qputenv("QS_RUNTIME_PASSES", "all");
    auto r = qs::test::cli({"inspect", model, "--optimized"});
    QVERIFY2(r.exitCode == 0, r.err.constData());
    QVERIFY2(r.out.contains("graph optimizer (QS_RUNTIME_PASSES=all): 2 -> 1 nodes"), r.out.constData());
    QVERIFY2(r.out.contains("pad_fold: 1 rewrite, nodes 2 -> 1"), r.out.constData());
    QVERIFY2(r.out.contains("folded Pad into Conv: \"conv\" <- \"conv\" \"pad\""), r.out.constData());
    r = qs::test::cli({"inspect", model, "--optimized", "--json"});
    QVERIFY2(r.exitCode == 0, r.err.constData());
    QVERIFY2(r.out.contains("\"pass\": \"pad_fold\""), r.out.constData());
    qputenv("QS_RUNTIME_PASSES", "none");
    r = qs::test::cli({"inspect", model, "--optimized"});
    qputenv("QS_RUNTIME_PASSES", "all");
    QVERIFY2(r.out.contains("no passes selected"), r.out.constData());
    qputenv("QS_RUNTIME_PASSES", "pad_fold,nonsense");
    r = qs::test::cli({"inspect", model, "--optimized"});
    qputenv("QS_RUNTIME_PASSES", "all");
    QCOMPARE(r.exitCode, 1);
    QVERIFY2(r.err.contains("unknown pass \"nonsense\""), r.err.constData());
}

// x -> Identity -> MatMul(w, 128 KiB) -> Mul(Add(two, three)): constant_fold folds the
// Add; cleanup also drops the Identity. Borrowing, the fold-only result lacks w (a plan
// compiles the original graph) and the other holds w as the original has it; the
// optimized graph and the plan compute what the original does.
void TestGraphPasses::borrowedWeights_data()
{
    QTest::addColumn<QString>("spec");
    QTest::addColumn<bool>("beyondFolds");
    QTest::newRow("folds only") << "constant_fold" << false;
    QTest::newRow("folds and cleanup") << "constant_fold,cleanup" << true;
}

void TestGraphPasses::borrowedWeights()
{
    QFETCH(QString, spec);
    QFETCH(bool, beyondFolds);
    constexpr int64_t kIn = 256, kOut = 128;
    OnnxBuilder b(13);
    b.input("x", {2, kIn});
    b.initializer("w", {kIn, kOut}, ramp(std::size_t(kIn * kOut), 0.001f));
    b.initializer("two", {1}, {2.f});
    b.initializer("three", {1}, {3.f});
    b.node("Identity", {"x"}, {"same"}, "identity");
    b.node("MatMul", {"same", "w"}, {"y"}, "mm");
    b.node("Add", {"two", "three"}, {"five"}, "add");
    b.node("Mul", {"y", "five"}, {"z"}, "scale");
    b.output("z", {2, kOut});
    const Graph g = load(b);
    const std::vector<Tensor> in = {inputTensor({2, kIn})};

    const rt::OptimizedGraph o = rt::optimizeGraph(g, spec.toStdString(), {}, true);
    QCOMPARE(rt::rewritesBeyondFolds(o), beyondFolds);
    QCOMPARE(count(o.graph, "Add"), 0); // folded either way
    if (beyondFolds) {
        QCOMPARE(o.graph.initializers.count("w"), std::size_t(1));
        QCOMPARE(o.graph.initializers.at("w").bytes, g.initializers.at("w").bytes);
        QVERIFY(qs::test::maxRelDiff(runGraph(o.graph, in)[0].toFloat(), runGraph(g, in)[0].toFloat()) <= 1e-6);
    } else {
        QCOMPARE(o.graph.initializers.count("w"), std::size_t(0)); // never copied
    }
    // Without borrowing the result is whole, as before.
    QCOMPARE(rt::optimizeGraph(g, spec.toStdString()).graph.initializers.count("w"), std::size_t(1));

    CompileOptions opts;
    opts.threads = 1;
    const auto got = compileOptimizedPlan(std::make_shared<const Graph>(g), opts)->run(in);
    QVERIFY(qs::test::maxRelDiff(got[0].toFloat(), runGraph(g, in)[0].toFloat()) <= 1e-6);
}

QTEST_GUILESS_MAIN(TestGraphPasses)
#include "test_graph_passes.moc"
