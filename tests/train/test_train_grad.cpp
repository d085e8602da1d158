// Every training kernel of core/train against central finite differences of its own
// forward (double-accumulated loss sum(R * y) on tiny shapes), and the forward against
// the inference runtime on the same graph; fake quantization's STE and LSQ gradients;
// the losses' gradients against finite differences.
#include "support/onnx_builder.h"

#include "graph/onnx_import.h"
#include "quant/attention.h"
#include "runtime/plan.h"
#include "train/fake_quant.h"
#include "train/loss.h"
#include "train/net.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>
#include <functional>
#include <numeric>
#include <span>
#include <random>

using namespace qs;
using namespace qs::train;
using qs::test::OnnxBuilder;

namespace {

std::vector<float> randomValues(std::size_t n, std::mt19937& rng, float sd = 1.f)
{
    std::normal_distribution<float> g(0.f, sd);
    std::vector<float> v(n);
    for (float& x : v)
        x = g(rng);
    return v;
}

int64_t count(const std::vector<int64_t>& dims)
{
    int64_t n = 1;
    for (int64_t d : dims)
        n *= d;
    return n;
}

// One small graph: input "x" of `xShape` -> the case's nodes -> output "y".
struct Case {
    std::vector<int64_t> xShape;
    std::function<void(OnnxBuilder&, std::mt19937&)> build;
};

void param(OnnxBuilder& b, const std::string& name, std::vector<int64_t> dims, std::mt19937& rng, float sd = 0.5f)
{
    b.initializer(name, dims, randomValues(std::size_t(count(dims)), rng, sd));
}

std::map<std::string, Case> cases()
{
    using B = OnnxBuilder;
    std::map<std::string, Case> c;
    c["conv pad stride bias"] = {{2, 3, 6, 5}, [](B& b, std::mt19937& r) {
                                     param(b, "w", {4, 3, 3, 3}, r);
                                     param(b, "bias", {4}, r);
                                     auto* n = b.node("Conv", {"x", "w", "bias"}, {"y"}, "conv");
                                     B::intsAttr(n, "pads", {1, 0, 1, 2});
                                     B::intsAttr(n, "strides", {2, 1});
                                 }};
    c["conv grouped dilated"] = {{1, 4, 7, 7}, [](B& b, std::mt19937& r) {
                                     param(b, "w", {6, 2, 3, 3}, r);
                                     auto* n = b.node("Conv", {"x", "w"}, {"y"}, "conv");
                                     B::intAttr(n, "group", 2);
                                     B::intsAttr(n, "dilations", {2, 2});
                                 }};
    c["conv 1-D"] = {{2, 3, 9}, [](B& b, std::mt19937& r) {
                         param(b, "w", {2, 3, 4}, r);
                         b.node("Conv", {"x", "w"}, {"y"}, "conv");
                     }};
    c["gemm transB"] = {{3, 5}, [](B& b, std::mt19937& r) {
                            param(b, "w", {4, 5}, r);
                            param(b, "bias", {4}, r);
                            B::intAttr(b.node("Gemm", {"x", "w", "bias"}, {"y"}, "gemm"), "transB", 1);
                        }};
    c["gemm"] = {{3, 5}, [](B& b, std::mt19937& r) {
                     param(b, "w", {5, 2}, r);
                     b.node("Gemm", {"x", "w"}, {"y"}, "gemm");
                 }};
    c["matmul 3-D"] = {{2, 3, 5}, [](B& b, std::mt19937& r) {
                           param(b, "w", {5, 4}, r);
                           b.node("MatMul", {"x", "w"}, {"y"}, "matmul");
                       }};
    for (const char* op : {"Relu", "Sigmoid", "Tanh", "LeakyRelu"})
        c[std::string("eltwise ") + op] = {{2, 3, 4}, [op](B& b, std::mt19937&) { b.node(op, {"x"}, {"y"}, "act"); }};
    c["maxpool"] = {{2, 2, 6, 6}, [](B& b, std::mt19937&) {
                        auto* n = b.node("MaxPool", {"x"}, {"y"}, "pool");
                        B::intsAttr(n, "kernel_shape", {3, 3});
                        B::intsAttr(n, "strides", {2, 2});
                        B::intsAttr(n, "pads", {1, 1, 1, 1});
                    }};
    c["averagepool exclude pad"] = {{1, 2, 5, 5}, [](B& b, std::mt19937&) {
                                        auto* n = b.node("AveragePool", {"x"}, {"y"}, "pool");
                                        B::intsAttr(n, "kernel_shape", {2, 3});
                                        B::intsAttr(n, "pads", {1, 1, 0, 1});
                                    }};
    c["global average pool"] = {
        {2, 3, 4, 5}, [](B& b, std::mt19937&) { b.node("GlobalAveragePool", {"x"}, {"y"}, "gap"); }};
    c["softmax"] = {
        {2, 3, 5}, [](B& b, std::mt19937&) { B::intAttr(b.node("Softmax", {"x"}, {"y"}, "sm"), "axis", 1); }};
    c["layer normalization"] = {{2, 3, 6}, [](B& b, std::mt19937& r) {
                                    std::vector<float> g = randomValues(6, r, 0.3f);
                                    for (float& v : g)
                                        v += 1;
                                    b.initializer("gamma", {6}, g);
                                    param(b, "beta", {6}, r);
                                    b.node("LayerNormalization", {"x", "gamma", "beta"}, {"y"}, "ln");
                                }};
    c["add broadcast"] = {{2, 3, 4}, [](B& b, std::mt19937& r) {
                              param(b, "c", {3, 1}, r);
                              b.node("Relu", {"x"}, {"r"}, "act");
                              b.node("Add", {"x", "c"}, {"a"}, "add_const");
                              b.node("Add", {"a", "r"}, {"y"}, "add"); // x reaches y on two paths
                          }};
    c["mul and sub"] = {{2, 4}, [](B& b, std::mt19937& r) {
                            param(b, "c", {4}, r);
                            b.node("Mul", {"x", "c"}, {"m"}, "mul");
                            b.node("Mul", {"m", "x"}, {"s"}, "square");
                            b.node("Sub", {"c", "s"}, {"y"}, "sub");
                        }};
    c["flatten reshape"] = {{2, 3, 2, 2}, [](B& b, std::mt19937& r) {
                                b.node("Flatten", {"x"}, {"f"}, "flatten");
                                b.int64Initializer("shape", {3}, {0, 3, -1});
                                b.node("Reshape", {"f", "shape"}, {"s"}, "reshape");
                                param(b, "w", {4, 2}, r);
                                b.node("MatMul", {"s", "w"}, {"y"}, "matmul");
                            }};
    // Attention's two products of computed values: softmax(x x^T) x, per head.
    c["attention matmul transpose softmax"] = {
        {2, 3, 4, 5}, [](B& b, std::mt19937&) {
            B::intsAttr(b.node("Transpose", {"x"}, {"xt"}, "transpose"), "perm", {0, 1, 3, 2});
            b.node("MatMul", {"x", "xt"}, {"s"}, "qk");
            B::intAttr(b.node("Softmax", {"s"}, {"p"}, "sm"), "axis", -1);
            b.node("MatMul", {"p", "x"}, {"y"}, "pv");
        }};
    // A product whose right side is one matrix for every batch (broadcast), itself a
    // transpose of the input reshaped.
    c["matmul broadcast transpose"] = {
        {2, 3, 4}, [](B& b, std::mt19937&) {
            b.int64Initializer("shape", {2}, {6, 4});
            b.node("Reshape", {"x", "shape"}, {"f"}, "reshape");
            b.node("Transpose", {"f"}, {"ft"}, "transpose"); // default perm: reversed, [4, 6]
            b.node("MatMul", {"x", "ft"}, {"y"}, "matmul");
        }};
    // Rows of a computed table by constant indices, repeated and negative.
    c["gather rows"] = {{5, 3}, [](B& b, std::mt19937&) {
                            b.int64Initializer("idx", {2, 3}, {0, 4, 4, -1, 2, 0});
                            b.node("Gather", {"x", "idx"}, {"y"}, "gather");
                        }};
    // Attention's query, key and value from one projection: Split into unequal parts
    // along the last axis, recombined (each part's gradient goes back to its place).
    c["split sizes mul"] = {{2, 3, 7}, [](B& b, std::mt19937&) {
                                b.int64Initializer("sizes", {3}, {2, 2, 3});
                                B::intAttr(b.node("Split", {"x", "sizes"}, {"q", "k", "v"}, "split"), "axis", -1);
                                b.node("Mul", {"q", "k"}, {"s"}, "mul");
                                B::intsAttr(b.node("Transpose", {"s"}, {"t"}, "transpose"), "perm", {0, 2, 1});
                                b.node("MatMul", {"t", "v"}, {"y"}, "matmul");
                            }};
    // Equal parts on a middle axis, divided by each other (both sides of Div).
    c["split equal div"] = {{2, 4, 3}, [](B& b, std::mt19937&) {
                                B::intAttr(b.node("Split", {"x"}, {"a", "c"}, "split"), "axis", 1);
                                b.node("Sigmoid", {"c"}, {"s"}, "act");
                                b.node("Div", {"a", "s"}, {"y"}, "div");
                            }};
    // A causal mask as attention applies it: scores where a constant lower-triangular
    // condition holds, a computed fill elsewhere (both receive gradients), broadcast over
    // the batch.
    c["where mask softmax"] = {{2, 3, 3}, [](B& b, std::mt19937&) {
                                   b.node("Tanh", {"x"}, {"fill"}, "act");
                                   b.initializer("half", {1}, {0.5f});
                                   b.node("Mul", {"fill", "half"}, {"f"}, "scale");
                                   auto* causal = b.int64Initializer("causal", {3, 3}, {});
                                   causal->set_data_type(onnx::TensorProto::BOOL);
                                   for (int v : {1, 0, 0, 1, 1, 0, 1, 1, 1})
                                       causal->add_int32_data(v);
                                   b.node("Where", {"causal", "x", "f"}, {"w"}, "mask");
                                   B::intAttr(b.node("Softmax", {"w"}, {"y"}, "sm"), "axis", -1);
                               }};
    // A shape chain as exporters write it (Shape, Gather, Unsqueeze, Concat into
    // Reshape's shape), folded on the fixed input shape when the net is built.
    c["reshape by a shape chain"] = {{2, 3, 4}, [](B& b, std::mt19937&) {
                                         b.node("Shape", {"x"}, {"s"}, "shape");
                                         b.int64Initializer("zero", {}, {0});
                                         b.node("Gather", {"s", "zero"}, {"n"}, "batch");
                                         b.int64Initializer("axes", {1}, {0});
                                         b.node("Unsqueeze", {"n", "axes"}, {"nu"}, "unsqueeze");
                                         b.int64Initializer("rest", {1}, {-1});
                                         B::intAttr(b.node("Concat", {"nu", "rest"}, {"shape"}, "concat"), "axis", 0);
                                         b.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
                                     }};
    // GELU as exporters decompose it: x * (1 + erf(x / sqrt 2)) / 2.
    c["erf gelu"] = {{2, 3, 4}, [](B& b, std::mt19937&) {
                         b.initializer("sqrt2", {}, {std::sqrt(2.f)});
                         b.initializer("one", {}, {1.f});
                         b.initializer("half", {}, {0.5f});
                         b.node("Div", {"x", "sqrt2"}, {"d"}, "div");
                         b.node("Erf", {"d"}, {"e"}, "erf");
                         b.node("Add", {"e", "one"}, {"a"}, "add");
                         b.node("Mul", {"x", "a"}, {"m"}, "mul");
                         b.node("Mul", {"m", "half"}, {"y"}, "half");
                     }};
    // LayerNormalization as older exporters decompose it: ReduceMean, Sub, Pow 2,
    // ReduceMean, Add epsilon, Sqrt, Div (axes as an attribute, opset 17).
    c["decomposed layer norm"] = {{2, 3, 6}, [](B& b, std::mt19937&) {
                                      B::intsAttr(b.node("ReduceMean", {"x"}, {"mu"}, "mean"), "axes", {-1});
                                      b.node("Sub", {"x", "mu"}, {"c"}, "center");
                                      b.initializer("two", {}, {2.f});
                                      b.node("Pow", {"c", "two"}, {"sq"}, "pow");
                                      B::intsAttr(b.node("ReduceMean", {"sq"}, {"var"}, "var"), "axes", {-1});
                                      b.initializer("eps", {}, {1e-5f});
                                      b.node("Add", {"var", "eps"}, {"ve"}, "add_eps");
                                      b.node("Sqrt", {"ve"}, {"sd"}, "sqrt");
                                      b.node("Div", {"c", "sd"}, {"y"}, "div");
                                  }};
    // ReduceMean over two axes without keepdims, and Pow by a fractional exponent.
    c["reduce mean axes pow"] = {{2, 3, 4}, [](B& b, std::mt19937&) {
                                     b.node("Sigmoid", {"x"}, {"s"}, "act");
                                     b.initializer("p", {1}, {1.5f});
                                     b.node("Pow", {"s", "p"}, {"q"}, "pow");
                                     auto* n = b.node("ReduceMean", {"q"}, {"y"}, "mean");
                                     B::intsAttr(n, "axes", {0, 2});
                                     B::intAttr(n, "keepdims", 0);
                                 }};
    return c;
}

double weightedSum(const std::vector<float>& y, const std::vector<float>& r)
{
    double s = 0;
    for (std::size_t i = 0; i < y.size(); ++i)
        s += double(y[i]) * double(r[i]);
    return s;
}

// Compares analytic and central-difference gradients of sum(R * y) for some elements of `values`.
void checkGradient(const std::string& what, std::span<float> values, const std::vector<float>& analytic,
    const std::function<double()>& loss, std::mt19937& rng)
{
    QCOMPARE(analytic.size(), values.size());
    std::vector<std::size_t> idx(values.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::shuffle(idx.begin(), idx.end(), rng);
    idx.resize(std::min<std::size_t>(idx.size(), 24));
    const float h = 1e-3f;
    for (std::size_t i : idx) {
        const float keep = values[i];
        values[i] = keep + h;
        const double up = loss();
        values[i] = keep - h;
        const double down = loss();
        values[i] = keep;
        const double numeric = (up - down) / (2.0 * double(h));
        const double tol = 5e-3 + 1e-2 * std::abs(numeric);
        if (std::abs(numeric - double(analytic[i])) > tol)
            QFAIL(qPrintable(QString("%1[%2]: analytic %3, finite difference %4")
                                 .arg(QString::fromStdString(what))
                                 .arg(i)
                                 .arg(analytic[i])
                                 .arg(numeric)));
    }
}

} // namespace

class TestTrainGrad : public QObject {
    Q_OBJECT

private slots:
    void opGradients_data()
    {
        QTest::addColumn<QString>("name");
        for (const auto& [name, c] : cases())
            QTest::newRow(name.c_str()) << QString::fromStdString(name);
    }
    void opGradients()
    {
        QFETCH(QString, name);
        const Case c = cases().at(name.toStdString());
        std::mt19937 rng(7);
        OnnxBuilder b(17);
        b.input("x", c.xShape);
        c.build(b, rng);
        b.output("y")->mutable_type()->mutable_tensor_type()->clear_shape();
        const Graph g = importOnnxBytes(b.bytes(), "case.onnx", "");
        const std::map<std::string, Shape> shapes = {{"x", Shape(c.xShape)}};

        NetOptions o;
        o.inputGradients = true;
        auto params = std::make_shared<ParamStore>();
        Net net(g, shapes, params, o);
        Tensor x = Tensor::fromVector<float>(Shape(c.xShape), randomValues(std::size_t(count(c.xShape)), rng));
        const std::vector<float> y = net.forward({x});

        // The forward against the inference runtime.
        CompileOptions co;
        co.inputShapes = shapes;
        const Tensor ref = compilePlan(g, co)->run({x}).front();
        QCOMPARE(ref.shape, net.outputShape());
        const auto refv = ref.toFloat();
        for (std::size_t i = 0; i < y.size(); ++i)
            QVERIFY2(std::abs(refv[i] - y[i]) <= 1e-4f * (1 + std::abs(refv[i])), qPrintable(QString::number(i)));

        const std::vector<float> r = randomValues(y.size(), rng);
        params->zeroGrad();
        net.backward(r);
        const std::vector<float> dx = net.gradient("x");
        std::vector<float> xv = x.toFloat();
        auto loss = [&] { return weightedSum(net.forward({Tensor::fromVector<float>(Shape(c.xShape), xv)}), r); };
        checkGradient("x", xv, dx, loss, rng);
        QVERIFY(!params->params.empty() || name.contains("eltwise") || name.contains("pool") || name.contains("add") ||
            name.contains("mul") || name.contains("softmax") || name.contains("gather") || name.contains("split") ||
            name.contains("reshape") || name.contains("erf") || name.contains("norm") || name.contains("reduce"));
        for (Param& p : params->params) {
            const std::vector<float> grad = p.grad;
            auto paramLoss = [&] { return weightedSum(net.forward({x}), r); };
            checkGradient(p.name, p.value, grad, paramLoss, rng);
        }
    }

    // A quantized layer: the weight's straight-through gradient and the LSQ scale of the
    // input, through the Net, against the rules of Esser et al. computed here in double.
    void fakeQuantInNet()
    {
        std::mt19937 rng(3);
        OnnxBuilder b(13);
        b.input("x", {4, 6});
        param(b, "w", {3, 6}, rng);
        OnnxBuilder::intAttr(b.node("Gemm", {"x", "w"}, {"y"}, "gemm"), "transB", 1);
        b.output("y")->mutable_type()->mutable_tensor_type()->clear_shape();
        const Graph g = importOnnxBytes(b.bytes(), "q.onnx", "");
        NetOptions o;
        o.inputGradients = true;
        const QParams grid = qparamsFor(-1.5f, 2.f, 4, false);
        o.activations["x"] = grid;
        o.weights["w"] = {QuantSpec {.bits = 4, .granularity = Granularity::Channel}, 0, 1};
        auto params = std::make_shared<ParamStore>();
        Net net(g, {{"x", {4, 6}}}, params, o);
        const std::vector<float> xv = randomValues(24, rng, 1.2f);
        const std::vector<float> y = net.forward({Tensor::fromVector<float>({4, 6}, xv)});
        const std::vector<float> r = randomValues(y.size(), rng);
        params->zeroGrad();
        net.backward(r);

        // Reference: y = q(x) . q(w)^T with per-row symmetric 4-bit weights.
        const Param& w = params->params[std::size_t(params->find("w"))];
        std::vector<double> wq(18), xq(24);
        for (int o2 = 0; o2 < 3; ++o2) {
            double m = 0;
            for (int k = 0; k < 6; ++k)
                m = std::max(m, std::abs(double(w.value[std::size_t(o2 * 6 + k)])));
            const double s = m / 7;
            for (int k = 0; k < 6; ++k)
                wq[std::size_t(o2 * 6 + k)] =
                    std::clamp(std::nearbyint(w.value[std::size_t(o2 * 6 + k)] / s), -7.0, 7.0) * s;
        }
        double dsRef = 0;
        std::vector<double> dxRef(24, 0);
        for (std::size_t i = 0; i < 24; ++i) {
            const double u = double(xv[i]) / double(grid.scale), code = std::nearbyint(u) + grid.zeroPoint;
            const double c = std::clamp(code, double(grid.qmin), double(grid.qmax));
            xq[i] = (c - grid.zeroPoint) * grid.scale;
            double dxq = 0; // dL/dxq
            const std::size_t row = i / 6, k = i % 6;
            for (std::size_t o2 = 0; o2 < 3; ++o2)
                dxq += double(r[row * 3 + o2]) * wq[o2 * 6 + k];
            if (code < grid.qmin)
                dsRef += dxq * (grid.qmin - grid.zeroPoint);
            else if (code > grid.qmax)
                dsRef += dxq * (grid.qmax - grid.zeroPoint);
            else {
                dsRef += dxq * (std::nearbyint(u) - u);
                dxRef[i] = dxq;
            }
        }
        for (std::size_t row = 0; row < 4; ++row)
            for (std::size_t o2 = 0; o2 < 3; ++o2) {
                double v = 0;
                for (std::size_t k = 0; k < 6; ++k)
                    v += xq[row * 6 + k] * wq[o2 * 6 + k];
                QVERIFY(std::abs(v - double(y[row * 3 + o2])) < 1e-4);
            }
        const auto& dx = net.gradient("x");
        for (std::size_t i = 0; i < 24; ++i)
            QVERIFY2(std::abs(dx[i] - dxRef[i]) < 1e-4, qPrintable(QString::number(i)));
        const Param& s = params->params[std::size_t(params->find("x.scale"))];
        const double g2 = lsqGradScale(6, grid.qmax);
        QVERIFY2(std::abs(double(s.grad[0]) - dsRef * g2) < 1e-4 * (1 + std::abs(dsRef)),
            qPrintable(QString("%1 vs %2").arg(s.grad[0]).arg(dsRef * g2)));
        // Weight STE: dL/dw = dL/dwq = sum over rows of r * xq.
        for (std::size_t o2 = 0; o2 < 3; ++o2)
            for (std::size_t k = 0; k < 6; ++k) {
                double d = 0;
                for (std::size_t row = 0; row < 4; ++row)
                    d += double(r[row * 3 + o2]) * xq[row * 6 + k];
                QVERIFY(std::abs(double(w.grad[o2 * 6 + k]) - d) < 1e-4);
            }
    }

    // Away from rounding boundaries fake quantization is linear in s piece by piece: the
    // true derivative is round(x/s) - z inside (clamp level - z outside), and LSQ's
    // gradient is that minus x/s for the values inside.
    void lsqAgainstFiniteDifferences_data()
    {
        QTest::addColumn<int>("bits");
        QTest::addColumn<bool>("symmetric");
        QTest::newRow("4-bit affine") << 4 << false;
        QTest::newRow("4-bit symmetric") << 4 << true;
        QTest::newRow("2-bit affine") << 2 << false;
        QTest::newRow("8-bit symmetric") << 8 << true;
    }
    void lsqAgainstFiniteDifferences()
    {
        QFETCH(int, bits);
        QFETCH(bool, symmetric);
        std::mt19937 rng(uint32_t(bits * 2 + symmetric));
        QParams q = qparamsFor(-1.f, 1.5f, bits, symmetric);
        std::vector<float> x = randomValues(200, rng, 1.f);
        // Keep every x/s at least 0.05 from a rounding boundary so a small step in s crosses none.
        for (float& v : x) {
            const float u = v / q.scale, frac = u - std::floor(u);
            if (std::abs(frac - 0.5f) < 0.05f)
                v = (std::floor(u) + 0.3f) * q.scale;
        }
        const std::vector<float> r = randomValues(x.size(), rng);
        std::vector<float> dx(x.size(), 0.f), y(x.size());
        const double lsq = fakeQuantBackward(x, q, r, dx);
        auto loss = [&](float s) {
            QParams p = q;
            p.scale = s;
            fakeQuantForward(x, p, y);
            return weightedSum(y, r);
        };
        const float h = q.scale * 1e-4f;
        const double numeric = (loss(q.scale + h) - loss(q.scale - h)) / (2.0 * double(h));
        double inside = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const float code = std::nearbyint(x[i] / q.scale) + float(q.zeroPoint);
            const bool in = code >= float(q.qmin) && code <= float(q.qmax);
            QCOMPARE(dx[i], in ? r[i] : 0.f); // straight through inside, stopped outside
            if (in)
                inside += double(r[i]) * double(x[i]) / double(q.scale);
        }
        QVERIFY2(std::abs(lsq + inside - numeric) < 1e-3 * (1 + std::abs(numeric)),
            qPrintable(QString("lsq %1 + inside %2 vs finite difference %3").arg(lsq).arg(inside).arg(numeric)));
        QCOMPARE(lsqGradScale(100, 7), float(1 / std::sqrt(700.0)));
    }

    // Attention operands as QAT fake-quantizes them: Q per head and K^T per channel of
    // Q x K^T, P per tensor and V per token of P x V (inputs of the net, so the product
    // is linear in the quantized operands). The forward against quant/attention.h's
    // fakeQuantOperand in the inference runtime (as QuantSession simulates it); each
    // slice's LSQ scale gradient against central differences of the net's loss in that
    // scale (x/s kept away from rounding boundaries; LSQ drops the x/s term of the
    // values inside, added back here); the operands' gradients straight through inside
    // their slice's grid, 0 outside, and straight through per token.
    void attentionOperandGradients_data()
    {
        QTest::addColumn<int>("bits");
        QTest::newRow("4-bit") << 4;
        QTest::newRow("3-bit") << 3;
        QTest::newRow("2-bit") << 2;
    }
    void attentionOperandGradients()
    {
        QFETCH(int, bits);
        std::mt19937 rng(uint32_t(17 + bits));
        for (const bool qk : {true, false}) {
            OnnxBuilder b(17);
            const std::vector<int64_t> as = qk ? std::vector<int64_t> {2, 3, 4, 5} : std::vector<int64_t> {2, 3, 4, 6};
            const std::vector<int64_t> bs = qk ? std::vector<int64_t> {2, 3, 5, 6} : std::vector<int64_t> {2, 3, 6, 5};
            b.input("a", as);
            b.input("b", bs);
            b.node("MatMul", {"a", "b"}, {"y"}, "mm");
            b.output("y")->mutable_type()->mutable_tensor_type()->clear_shape();
            const Graph g = importOnnxBytes(b.bytes(), "attn.onnx", "");
            const std::map<std::string, Shape> shapes = {{"a", Shape(as)}, {"b", Shape(bs)}};
            std::vector<float> av = randomValues(std::size_t(count(as)), rng, 1.2f);
            std::vector<float> bv = randomValues(std::size_t(count(bs)), rng, 0.8f);
            if (!qk) // P: probabilities
                for (float& v : av)
                    v = std::abs(v) / 3;

            // The points and their calibration (min-max per slice, slightly clipped so some
            // values fall outside the grid).
            NetOptions o;
            o.inputGradients = true;
            const struct {
                const char* value;
                OperandRole role;
                OperandGranularity granularity;
                int input;
            } specs[] = {{"a", qk ? OperandRole::Q : OperandRole::P,
                             qk ? OperandGranularity::Head : OperandGranularity::Tensor, 0},
                {"b", qk ? OperandRole::K : OperandRole::V,
                    qk ? OperandGranularity::Channel : OperandGranularity::Token, 1}};
            for (const auto& sp : specs) {
                AttentionPoint pt {str("mm:", operandRoleName(sp.role)), "mm", sp.value, sp.role, sp.input, ""};
                OperandObserver obs(pt, sp.granularity);
                obs.observe(Tensor::fromVector<float>(shapes.at(sp.value), sp.input == 0 ? av : bv));
                OperandSpec os {.bits = bits, .symmetric = sp.role != OperandRole::P, .granularity = sp.granularity};
                OperandQuant q = chooseOperandQuant(pt, os, &obs);
                for (QParams& p : q.params)
                    p.scale *= 0.85f;
                o.operands.push_back(q);
            }
            // A static point's slices: elements per slice row (inner) and slice count.
            auto slicing = [&](const OperandQuant& q) {
                const Shape& s = shapes.at(q.point.value);
                const int axis = q.spec.granularity == OperandGranularity::Tensor
                    ? -1
                    : staticSliceAxis(q.point, q.spec.granularity, s);
                return std::pair<int64_t, int64_t> {
                    axis < 0 ? count(s) : count(std::vector<int64_t>(s.begin() + axis + 1, s.end())),
                    axis < 0 ? 1 : s[std::size_t(axis)]};
            };
            // Keep x/s at least 0.05 from a rounding boundary of its slice's grid.
            for (const OperandQuant& q : o.operands) {
                if (q.params.empty())
                    continue;
                std::vector<float>& x = q.point.input == 0 ? av : bv;
                const auto [inner, dim] = slicing(q);
                for (std::size_t i = 0; i < x.size(); ++i) {
                    const float sc = q.params[std::size_t((int64_t(i) / inner) % dim)].scale;
                    const float u = x[i] / sc, frac = u - std::floor(u);
                    if (std::abs(frac - 0.5f) < 0.05f)
                        x[i] = (std::floor(u) + 0.3f) * sc;
                }
            }
            auto params = std::make_shared<ParamStore>();
            Net net(g, shapes, params, o);
            auto inputs = [&] { return std::vector<Tensor> {Tensor::fromVector<float>(Shape(as), av),
                                    Tensor::fromVector<float>(Shape(bs), bv)}; };
            const std::vector<float> y = net.forward(inputs());

            // The forward against the runtime with the session's operand transforms.
            CompileOptions co;
            co.inputShapes = shapes;
            for (const OperandQuant& q : o.operands)
                co.valueTransforms[q.point.value] = [q](Tensor& t) { fakeQuantOperand(t, q); };
            const auto ref = compilePlan(g, co)->run(inputs()).front().toFloat();
            QCOMPARE(ref.size(), y.size());
            for (std::size_t i = 0; i < y.size(); ++i)
                QVERIFY2(std::abs(ref[i] - y[i]) <= 1e-4f * (1 + std::abs(ref[i])), qPrintable(QString::number(i)));

            const std::vector<float> r = randomValues(y.size(), rng);
            params->zeroGrad();
            net.backward(r);
            for (const OperandQuant& q : o.operands) {
                const std::vector<float>& x = q.point.input == 0 ? av : bv;
                const std::vector<float> dy = net.gradient(q.point.name); // dL/d(quantized operand)
                const std::vector<float>& dx = net.gradient(q.point.value);
                QCOMPARE(dy.size(), x.size());
                const int si = params->find(q.point.name + ".scale");
                if (q.params.empty()) { // per token: straight through, no scale
                    QCOMPARE(si, -1);
                    for (std::size_t i = 0; i < x.size(); ++i)
                        QCOMPARE(dx[i], dy[i]);
                    continue;
                }
                QVERIFY(si >= 0);
                Param& sp = params->params[std::size_t(si)];
                QCOMPARE(sp.value.size(), q.params.size());
                const Shape& s = shapes.at(q.point.value);
                const auto [inner, dim] = slicing(q);
                const int64_t perSample = count(s) / s[0] / dim;
                std::vector<double> inside(std::size_t(dim), 0);
                for (std::size_t i = 0; i < x.size(); ++i) {
                    const std::size_t c = std::size_t((int64_t(i) / inner) % dim);
                    const QParams& g2 = q.params[c];
                    const float code = std::nearbyint(x[i] / g2.scale) + float(g2.zeroPoint);
                    const bool in = code >= float(g2.qmin) && code <= float(g2.qmax);
                    QCOMPARE(dx[i], in ? dy[i] : 0.f);
                    if (in)
                        inside[c] += double(dy[i]) * double(x[i]) / double(g2.scale);
                }
                for (std::size_t c = 0; c < std::size_t(dim); ++c) {
                    const float keep = sp.value[c], h = keep * 0.02f / float(1 << bits); // |x/s| moves < 0.05
                    sp.value[c] = keep + h;
                    const double up = weightedSum(net.forward(inputs()), r);
                    sp.value[c] = keep - h;
                    const double down = weightedSum(net.forward(inputs()), r);
                    sp.value[c] = keep;
                    const double numeric = (up - down) / (2.0 * double(h));
                    const double lsq = double(sp.grad[c]) / double(lsqGradScale(perSample, q.params[c].qmax));
                    QVERIFY2(std::abs(lsq + inside[c] - numeric) < 2e-3 * (1 + std::abs(numeric)),
                        qPrintable(QString("%1[%2]: lsq %3 + inside %4 vs finite difference %5")
                                       .arg(QString::fromStdString(q.point.name))
                                       .arg(c)
                                       .arg(lsq)
                                       .arg(inside[c])
                                       .arg(numeric)));
                }
            }
        }
    }

    void lossGradients()
    {
        std::mt19937 rng(5);
        const int64_t rows = 3, classes = 5;
        std::vector<float> s = randomValues(15, rng, 2), t = randomValues(15, rng, 2);
        const std::vector<int64_t> labels = {4, 0, 2};
        for (double temperature : {1.0, 3.0}) {
            std::vector<float> d(15, 0.f), m(15, 0.f);
            distillationLoss(s, t, rows, temperature, 0.5, d);
            crossEntropyLoss(s, labels, rows, 2.0, d);
            mseLoss(s, t, 0.25, d);
            auto loss = [&] {
                return 0.5 * distillationLoss(s, t, rows, temperature, 0, {}) +
                    2.0 * crossEntropyLoss(s, labels, rows, 0, {}) + 0.25 * mseLoss(s, t, 0, {});
            };
            checkGradient("logits", s, d, loss, rng);
        }
        // Attention-map KL on probabilities (rows of 5): central differences, 0 for equal maps.
        {
            auto probs = [&](float sharp) {
                std::vector<float> p = randomValues(15, rng);
                for (int64_t r = 0; r < rows; ++r) {
                    double sum = 0;
                    for (int64_t c = 0; c < 5; ++c)
                        sum += p[std::size_t(r * 5 + c)] = std::exp(sharp * p[std::size_t(r * 5 + c)]);
                    for (int64_t c = 0; c < 5; ++c)
                        p[std::size_t(r * 5 + c)] = float(p[std::size_t(r * 5 + c)] / sum);
                }
                return p;
            };
            std::vector<float> q = probs(1), p = probs(2), d(15, 0.f);
            attentionKlLoss(q, p, rows, 0.7, d);
            checkGradient(
                "attention", q, d, [&] { return 0.7 * attentionKlLoss(q, p, rows, 0, {}); }, rng);
            QVERIFY(std::abs(attentionKlLoss(p, p, rows, 1, {})) < 1e-7);
            QVERIFY(attentionKlLoss(q, p, rows, 1, {}) > 0);
        }
        // Known values: KL of equal logits is 0, cross-entropy of equal logits log(classes).
        std::vector<float> z(15, 0.25f);
        QVERIFY(std::abs(distillationLoss(z, z, rows, 2.0, 1, {})) < 1e-12);
        QVERIFY(std::abs(crossEntropyLoss(z, labels, rows, 1, {}) - std::log(double(classes))) < 1e-9);
        QVERIFY_THROWS_EXCEPTION(Error, crossEntropyLoss(z, std::vector<int64_t> {5, 0, 0}, rows, 1, {}));
    }

    // Token ids (an int64 input) pick rows of an embedding table: the forward against the
    // inference runtime, the table's and the next layer's gradients against central
    // differences (ids repeat, so rows sum several gradients); an id beyond the table
    // fails naming the node.
    void tokenEmbeddingGradient()
    {
        std::mt19937 rng(11);
        OnnxBuilder b(17);
        b.input("tokens", {2, 4}, onnx::TensorProto::INT64);
        param(b, "wte", {6, 3}, rng);
        param(b, "w", {3, 2}, rng);
        b.node("Gather", {"wte", "tokens"}, {"e"}, "embed");
        b.node("Tanh", {"e"}, {"h"}, "act");
        b.node("MatMul", {"h", "w"}, {"y"}, "head");
        b.output("y")->mutable_type()->mutable_tensor_type()->clear_shape();
        const Graph g = importOnnxBytes(b.bytes(), "tokens.onnx", "");
        const std::map<std::string, Shape> shapes = {{"tokens", Shape {2, 4}}};
        auto params = std::make_shared<ParamStore>();
        Net net(g, shapes, params, NetOptions {});
        const Tensor tokens = Tensor::fromVector<int64_t>({2, 4}, {1, 5, 1, 0, 3, 3, 5, 2});
        const std::vector<float> y = net.forward({tokens});
        CompileOptions co;
        co.inputShapes = shapes;
        const auto ref = compilePlan(g, co)->run({tokens}).front().toFloat();
        QCOMPARE(ref.size(), y.size());
        for (std::size_t i = 0; i < y.size(); ++i)
            QVERIFY2(std::abs(ref[i] - y[i]) <= 1e-5f * (1 + std::abs(ref[i])), qPrintable(QString::number(i)));
        const std::vector<float> r = randomValues(y.size(), rng);
        params->zeroGrad();
        net.backward(r);
        QCOMPARE(int(params->params.size()), 2);
        for (Param& p : params->params) {
            const std::vector<float> grad = p.grad;
            checkGradient(
                p.name, p.value, grad, [&] { return weightedSum(net.forward({tokens}), r); }, rng);
        }
        const Param& table = params->params[std::size_t(params->find("wte"))];
        QCOMPARE(table.grad[4 * 3], 0.f); // id 4 is never read
        const Tensor bad = Tensor::fromVector<int64_t>({2, 4}, {1, 6, 1, 0, 3, 3, 5, 2});
        try {
            net.forward({bad});
            QFAIL("an id beyond the table was read");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("embed"), e.what());
        }
    }

    // A loss on an inner value (attention maps): addValueGradient's d on the softmax
    // output reaches the input as the central differences of sum(d * softmax(x x^T)).
    void innerValueGradient()
    {
        std::mt19937 rng(13);
        OnnxBuilder b(17);
        b.input("x", {1, 3, 4});
        using B = OnnxBuilder;
        B::intsAttr(b.node("Transpose", {"x"}, {"xt"}, "transpose"), "perm", {0, 2, 1});
        b.node("MatMul", {"x", "xt"}, {"s"}, "qk");
        B::intAttr(b.node("Softmax", {"s"}, {"p"}, "sm"), "axis", -1);
        b.node("MatMul", {"p", "x"}, {"y"}, "pv");
        b.output("y")->mutable_type()->mutable_tensor_type()->clear_shape();
        const Graph g = importOnnxBytes(b.bytes(), "inner.onnx", "");
        NetOptions o;
        o.inputGradients = true;
        Net net(g, {{"x", Shape {1, 3, 4}}}, std::make_shared<ParamStore>(), o);
        std::vector<float> xv = randomValues(12, rng);
        auto run = [&] { net.forward({Tensor::fromVector<float>({1, 3, 4}, xv)}); };
        run();
        const std::vector<float> d = randomValues(9, rng);
        net.addValueGradient("p", d);
        net.backward(std::vector<float>(12, 0.f));
        const std::vector<float> dx = net.gradient("x");
        checkGradient(
            "x", xv, dx,
            [&] {
                run();
                return weightedSum(net.rawValue("p"), d);
            },
            rng);
        QVERIFY_THROWS_EXCEPTION(Error, net.addValueGradient("p", std::vector<float>(4, 0.f)));
    }

    void unsupportedOpNamesTheNode()
    {
        OnnxBuilder b(13);
        b.input("x", {2, 3});
        b.node("Cos", {"x"}, {"y"}, "the_cos");
        b.output("y")->mutable_type()->mutable_tensor_type()->clear_shape();
        const Graph g = importOnnxBytes(b.bytes(), "bad.onnx", "");
        try {
            Net net(g, {{"x", {2, 3}}}, std::make_shared<ParamStore>(), NetOptions {});
            QFAIL("no error");
        } catch (const Error& e) {
            QVERIFY2(QString(e.what()).contains("the_cos") && QString(e.what()).contains("Cos"), e.what());
        }
    }
};

QTEST_APPLESS_MAIN(TestTrainGrad)
#include "test_train_grad.moc"
