// Control flow and recurrent layers in the runtime (ops/control_flow.cpp, ops/rnn.cpp):
// If with a condition known at compile time or only at run time, Loop with trip count,
// condition, loop-carried values and scan outputs, and LSTM/GRU against naive loops of
// the ONNX equations. Add a case as a row of a _data() table or a small model builder.
#include "graph/onnx_import.h"
#include "graph/subgraphs.h"
#include "measure/layers.h"
#include "quant/session.h"
#include "runtime/plan.h"
#include "support/compare.h"
#include "support/onnx_builder.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>
#include <random>

using namespace qs;
using qs::test::GraphBuilder;
using qs::test::OnnxBuilder;
using qs::test::maxAbsDiff;

namespace {

Tensor randomTensor(const Shape& shape, unsigned seed, float scale = 1.f)
{
    Tensor x(DType::Float, shape);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-scale, scale);
    for (float& v : x.data<float>())
        v = u(rng);
    return x;
}

Tensor boolScalar(bool v)
{
    Tensor t(DType::Bool, {});
    t.bytes[0] = std::byte(v ? 1 : 0);
    return t;
}

void addTensor(onnx::GraphProto* g, const Tensor& t, const std::string& name)
{
    auto* p = g->add_initializer();
    p->set_name(name);
    p->set_data_type(int(t.dtype));
    for (int64_t d : t.shape)
        p->add_dims(d);
    p->set_raw_data(std::string(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size()));
}

void untyped(onnx::ValueInfoProto* v)
{
    v->mutable_type()->mutable_tensor_type()->clear_shape();
}

Graph load(const OnnxBuilder& b)
{
    return importOnnxBytes(b.bytes(), "test.onnx", "");
}

// y = If(cond, then: Add(x, one), else: Mul(x, two)); the then branch also has a
// Relu on the sum ("t_relu") to observe. cond is an input, or an initializer when
// `constCond` says which.
OnnxBuilder ifModel(std::optional<bool> constCond)
{
    OnnxBuilder b;
    b.input("x", {2, 3});
    if (constCond)
        addTensor(b.model().mutable_graph(), boolScalar(*constCond), "cond");
    else
        b.input("cond", {}, onnx::TensorProto::BOOL);
    b.initializer("one", {1}, {1.f});
    b.initializer("two", {1}, {2.f});
    auto* n = b.node("If", {"cond"}, {"y"}, "if");
    GraphBuilder t = OnnxBuilder::graphAttr(n, "then_branch");
    t.node("Add", {"x", "one"}, {"t_sum"}, "t_add");
    t.node("Relu", {"t_sum"}, {"t_relu"}, "t_relu_node");
    untyped(t.output("t_relu"));
    GraphBuilder e = OnnxBuilder::graphAttr(n, "else_branch");
    e.node("Mul", {"x", "two"}, {"e_mul"}, "e_mul_node");
    untyped(e.output("e_mul"));
    b.output("y", {2, 3});
    return b;
}

std::vector<float> expectIf(const Tensor& x, bool cond)
{
    std::vector<float> out;
    for (float v : x.toFloat())
        out.push_back(cond ? std::max(v + 1.f, 0.f) : v * 2.f);
    return out;
}

// y = If(cond, then: Conv(x, w) with w an outer initializer, else: Neg(x)), x [1,2,4,4].
void addConvOrNegIf(OnnxBuilder& b, const std::string& cond)
{
    b.initializer("w", {2, 2, 1, 1}, {1.f, 2.f, 3.f, 4.f});
    auto* n = b.node("If", {cond}, {"y"}, "if");
    GraphBuilder t = OnnxBuilder::graphAttr(n, "then_branch");
    t.node("Conv", {"x", "w"}, {"t_conv"}, "branch_conv");
    untyped(t.output("t_conv"));
    GraphBuilder e = OnnxBuilder::graphAttr(n, "else_branch");
    e.node("Neg", {"x"}, {"e_neg"}, "e_neg_node");
    untyped(e.output("e_neg"));
    b.output("y", {1, 2, 4, 4});
}

// addConvOrNegIf() on a Bool condition: an input, or an initializer when `constCond` says which.
OnnxBuilder convInBranchModel(std::optional<bool> constCond)
{
    OnnxBuilder b;
    b.input("x", {1, 2, 4, 4});
    if (constCond)
        addTensor(b.model().mutable_graph(), boolScalar(*constCond), "cond");
    else
        b.input("cond", {}, onnx::TensorProto::BOOL);
    addConvOrNegIf(b, "cond");
    return b;
}

// Silero VAD's form: addConvOrNegIf() on Equal(sr, 16000), sr a scalar int64 input.
OnnxBuilder srSwitchModel()
{
    OnnxBuilder b;
    b.input("x", {1, 2, 4, 4});
    b.input("sr", {}, onnx::TensorProto::INT64);
    Tensor rate(DType::Int64, {});
    rate.data<int64_t>()[0] = 16000;
    addTensor(b.model().mutable_graph(), rate, "rate");
    b.node("Equal", {"sr", "rate"}, {"is16k"}, "equal");
    addConvOrNegIf(b, "is16k");
    return b;
}

float sigmoid(float v)
{
    return 1.f / (1.f + std::exp(-v));
}

struct RnnCase {
    bool lstm = true;
    std::string direction = "forward";
    int64_t T = 3, N = 2, C = 4, H = 5;
    bool bias = true, initial = true, lbr = false;
    int64_t layout = 0;
    bool peephole = false; // LSTM P [D,3H], gates i,o,f
};

// The ONNX equations run step by step (LSTM gates i,o,f,c; GRU z,r,h) on layout-0
// tensors: X [T,N,C], W [D,G*H,C], R [D,G*H,H], B [D,2*G*H], h0/c0 [D,N,H].
// Returns Y [T,D,N,H], Y_h and Y_c [D,N,H].
std::vector<std::vector<float>> naiveRnn(const RnnCase& k, const std::vector<float>& X, const std::vector<float>& W,
    const std::vector<float>& R, const std::vector<float>& B, const std::vector<float>& h0,
    const std::vector<float>& c0, const std::vector<float>& P)
{
    const int64_t D = k.direction == "bidirectional" ? 2 : 1, G = k.lstm ? 4 : 3, T = k.T, N = k.N, C = k.C, H = k.H;
    std::vector<float> Y(std::size_t(T * D * N * H)), Yh(std::size_t(D * N * H)), Yc(std::size_t(D * N * H));
    for (int64_t d = 0; d < D; ++d) {
        const bool reverse = k.direction == "reverse" || d == 1;
        for (int64_t n = 0; n < N; ++n) {
            std::vector<float> h(static_cast<std::size_t>(H)), cs(static_cast<std::size_t>(H));
            for (int64_t j = 0; j < H; ++j) {
                h[std::size_t(j)] = k.initial ? h0[std::size_t((d * N + n) * H + j)] : 0.f;
                cs[std::size_t(j)] = k.initial && k.lstm ? c0[std::size_t((d * N + n) * H + j)] : 0.f;
            }
            for (int64_t s = 0; s < T; ++s) {
                const int64_t t = reverse ? T - 1 - s : s;
                // xw[g][j] = x W^T + Wb, hr[g][j] = h R^T + Rb
                std::vector<float> xw(std::size_t(G * H)), hr(std::size_t(G * H));
                for (int64_t r = 0; r < G * H; ++r) {
                    float a = k.bias ? B[std::size_t(d * 2 * G * H + r)] : 0.f;
                    float bsum = k.bias ? B[std::size_t(d * 2 * G * H + G * H + r)] : 0.f;
                    for (int64_t i = 0; i < C; ++i)
                        a += X[std::size_t((t * N + n) * C + i)] * W[std::size_t((d * G * H + r) * C + i)];
                    for (int64_t i = 0; i < H; ++i)
                        bsum += h[std::size_t(i)] * R[std::size_t((d * G * H + r) * H + i)];
                    xw[std::size_t(r)] = a;
                    hr[std::size_t(r)] = bsum;
                }
                std::vector<float> hn(static_cast<std::size_t>(H));
                for (int64_t j = 0; j < H; ++j) {
                    auto gate = [&](int g) { return xw[std::size_t(g * H + j)] + hr[std::size_t(g * H + j)]; };
                    if (k.lstm) {
                        auto p = [&](int g) { return k.peephole ? P[std::size_t((d * 3 + g) * H + j)] : 0.f; };
                        const float prev = cs[std::size_t(j)];
                        const float i = sigmoid(gate(0) + p(0) * prev), f = sigmoid(gate(2) + p(2) * prev);
                        const float c = std::tanh(gate(3));
                        cs[std::size_t(j)] = f * prev + i * c;
                        const float o = sigmoid(gate(1) + p(1) * cs[std::size_t(j)]);
                        hn[std::size_t(j)] = o * std::tanh(cs[std::size_t(j)]);
                    } else {
                        const float z = sigmoid(gate(0)), r = sigmoid(gate(1));
                        float cand;
                        if (k.lbr) {
                            cand = std::tanh(xw[std::size_t(2 * H + j)] + r * hr[std::size_t(2 * H + j)]);
                        } else { // tanh(x W_h^T + Wb_h + (r . h) R_h^T + Rb_h)
                            float rh = k.bias ? B[std::size_t(d * 2 * G * H + G * H + 2 * H + j)] : 0.f;
                            for (int64_t i = 0; i < H; ++i) {
                                const float ri = sigmoid(xw[std::size_t(H + i)] + hr[std::size_t(H + i)]);
                                rh += ri * h[std::size_t(i)] * R[std::size_t((d * G * H + 2 * H + j) * H + i)];
                            }
                            cand = std::tanh(xw[std::size_t(2 * H + j)] + rh);
                        }
                        hn[std::size_t(j)] = (1 - z) * cand + z * h[std::size_t(j)];
                    }
                }
                h = hn;
                for (int64_t j = 0; j < H; ++j)
                    Y[std::size_t(((t * D + d) * N + n) * H + j)] = h[std::size_t(j)];
            }
            for (int64_t j = 0; j < H; ++j) {
                Yh[std::size_t((d * N + n) * H + j)] = h[std::size_t(j)];
                Yc[std::size_t((d * N + n) * H + j)] = cs[std::size_t(j)];
            }
        }
    }
    return {Y, Yh, Yc};
}

} // namespace

Q_DECLARE_METATYPE(RnnCase)

namespace {

// [A,B,rest] -> [B,A,rest] for the layout-1 (batch first) tensors.
std::vector<float> swap01(const std::vector<float>& v, int64_t a, int64_t b)
{
    const int64_t rest = int64_t(v.size()) / (a * b);
    std::vector<float> out(v.size());
    for (int64_t i = 0; i < a; ++i)
        for (int64_t j = 0; j < b; ++j)
            for (int64_t r = 0; r < rest; ++r)
                out[std::size_t((j * a + i) * rest + r)] = v[std::size_t((i * b + j) * rest + r)];
    return out;
}

} // namespace

class TestControlFlow : public QObject {
    Q_OBJECT

private slots:
    void ifConstantCondition_data()
    {
        QTest::addColumn<bool>("cond");
        QTest::newRow("then") << true;
        QTest::newRow("else") << false;
    }
    // Only the chosen branch is built; its inner values are plain values of the plan.
    void ifConstantCondition()
    {
        QFETCH(bool, cond);
        const Graph g = load(ifModel(cond));
        auto plan = compilePlan(g);
        const Tensor x = randomTensor({2, 3}, 1);
        int taps = 0;
        if (cond)
            plan->addTap("t_sum", [&](const std::string&, const Tensor&) { ++taps; });
        const auto y = plan->run({x});
        QCOMPARE(maxAbsDiff(y[0].toFloat(), expectIf(x, cond)), 0.0);
        QCOMPARE(taps, cond ? 1 : 0);
        bool hasOther = true;
        try {
            plan->shapeOf(cond ? "e_mul" : "t_sum");
        } catch (const Error&) {
            hasOther = false;
        }
        QVERIFY(!hasOther);
    }

    // A condition known only at run time: both branches are built, the chosen one runs,
    // and a tap inside the other one is not called.
    void ifRuntimeCondition()
    {
        const Graph g = load(ifModel(std::nullopt));
        auto plan = compilePlan(g);
        const Tensor x = randomTensor({2, 3}, 2);
        int thenTaps = 0, elseTaps = 0;
        plan->addTap("t_sum", [&](const std::string&, const Tensor&) { ++thenTaps; });
        plan->addTap("e_mul", [&](const std::string&, const Tensor&) { ++elseTaps; });
        for (bool cond : {true, false, true}) {
            const auto y = plan->run({x, boolScalar(cond)});
            QCOMPARE(maxAbsDiff(y[0].toFloat(), expectIf(x, cond)), 0.0);
        }
        QCOMPARE(thenTaps, 2);
        QCOMPARE(elseTaps, 1);
        // A weight override inside a branch applies.
        CompileOptions o;
        o.initializerOverrides["one"] = Tensor::fromVector<float>({1}, {5.f});
        auto over = compilePlan(g, o);
        const auto y = over->run({x, boolScalar(true)});
        QCOMPARE(y[0].toFloat()[0], std::max(x.toFloat()[0] + 5.f, 0.f));
    }

    // A branch that cannot be built for these shapes is an error only when chosen;
    // branches giving different shapes need a condition known at compile time.
    void ifRuntimeErrors()
    {
        OnnxBuilder b;
        b.input("x", {2, 3});
        b.input("cond", {}, onnx::TensorProto::BOOL);
        Tensor shape(DType::Int64, {1});
        shape.data<int64_t>()[0] = 7; // 6 elements cannot become 7
        addTensor(b.model().mutable_graph(), shape, "bad_shape");
        auto* n = b.node("If", {"cond"}, {"y"}, "if");
        GraphBuilder t = OnnxBuilder::graphAttr(n, "then_branch");
        t.node("Reshape", {"x", "bad_shape"}, {"t_r"}, "t_reshape");
        untyped(t.output("t_r"));
        GraphBuilder e = OnnxBuilder::graphAttr(n, "else_branch");
        e.node("Neg", {"x"}, {"e_neg"}, "e_neg_node");
        untyped(e.output("e_neg"));
        untyped(b.output("y"));
        Graph g = importOnnxBytes(b.bytes(), "test.onnx", "", {{}, false});
        auto plan = compilePlan(g);
        const Tensor x = randomTensor({2, 3}, 3);
        QCOMPARE(plan->run({x, boolScalar(false)})[0].toFloat()[0], -x.toFloat()[0]);
        try {
            plan->run({x, boolScalar(true)});
            QFAIL("the then branch ran");
        } catch (const Error& e) {
            QVERIFY2(
                std::string(e.what()).find("then_branch was chosen but cannot run") != std::string::npos, e.what());
        }

        // Different output shapes per branch.
        OnnxBuilder d;
        d.input("x", {2, 3});
        d.input("cond", {}, onnx::TensorProto::BOOL);
        auto* m = d.node("If", {"cond"}, {"y"}, "if");
        GraphBuilder t2 = OnnxBuilder::graphAttr(m, "then_branch");
        t2.node("Flatten", {"x"}, {"t_f"}, "t_flat");
        OnnxBuilder::intAttr(t2.graph()->mutable_node(0), "axis", 0);
        untyped(t2.output("t_f"));
        GraphBuilder e2 = OnnxBuilder::graphAttr(m, "else_branch");
        e2.node("Neg", {"x"}, {"e_n"}, "e_neg");
        untyped(e2.output("e_n"));
        untyped(d.output("y"));
        Graph g2 = importOnnxBytes(d.bytes(), "test.onnx", "", {{}, false});
        try {
            compilePlan(g2);
            QFAIL("compiled");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find("both must agree") != std::string::npos, e.what());
        }
    }

    // Layers inside branches: listed with their scope; a constant condition is inlined
    // at import so the layer is an ordinary, quantizable one; a run-time condition makes
    // quantizing it a one-line error naming the layer.
    void layersInsideBranches()
    {
        const Graph runtime = load(convInBranchModel(std::nullopt));
        const auto rows = summarizeLayers(runtime);
        QCOMPARE(rows.size(), std::size_t(1));
        QCOMPARE(rows[0].name, std::string("branch_conv"));
        QCOMPARE(rows[0].scope, std::string("if/then_branch"));
        QCOMPARE(rows[0].weightShape, (Shape {2, 2, 1, 1}));
        try {
            QuantSession session(runtime, {});
            QFAIL("the session accepted a layer inside a run-time branch");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find("\"branch_conv\" (Conv) inside if/then_branch") != std::string::npos,
                e.what());
        }

        const Graph inlined = load(convInBranchModel(true));
        QCOMPARE(inlined.findNode("if") < 0, true);
        QVERIFY(inlined.findNode("branch_conv") >= 0);
        QCOMPARE(summarizeLayers(inlined)[0].scope, std::string());
        QuantSession session(inlined, {});
        QCOMPARE(session.layers().size(), std::size_t(1));
        QCOMPARE(session.layers()[0].name, std::string("branch_conv"));
        const Tensor x = randomTensor({1, 2, 4, 4}, 5);
        const auto y = compilePlan(inlined)->run({x})[0].toFloat();
        const auto xv = x.toFloat(); // 1x1 conv: y[o] = sum_i w[o][i] x[i]
        QVERIFY(std::fabs(y[0] - (1.f * xv[0] + 2.f * xv[16])) < 1e-6f);
        QVERIFY(std::fabs(y[16] - (3.f * xv[0] + 4.f * xv[16])) < 1e-6f);
        QCOMPARE(load(convInBranchModel(false)).nodes.front().opType, std::string("Neg"));
    }

    // An If whose condition follows from an input given one value (--input-value sr=16000)
    // is inlined by inlineIfsForInputs: its layers become ordinary, quantizable ones, and the
    // graph computes what the chosen branch does (checked against naive loops).
    void ifChosenByInputValue()
    {
        const Graph source = load(srSwitchModel());
        Graph g = source;
        QCOMPARE(inlineIfsForInputs(g, {}), 0);
        QCOMPARE(inlineIfsForInputs(g, {{"x", 1.0}}), 0); // not a single-element input
        QVERIFY(g.findNode("if") >= 0);

        const Tensor x = randomTensor({1, 2, 4, 4}, 9);
        const auto xv = x.toFloat();
        auto sr = [](int64_t v) {
            Tensor t(DType::Int64, {});
            t.data<int64_t>()[0] = v;
            return t;
        };
        Graph g16 = source;
        QCOMPARE(inlineIfsForInputs(g16, {{"sr", 16000.0}}), 1);
        QVERIFY(g16.findNode("if") < 0);
        QVERIFY(g16.findNode("branch_conv") >= 0);
        QuantSession session(g16, {});
        QCOMPARE(session.layers().size(), std::size_t(1));
        QCOMPARE(session.layers()[0].name, std::string("branch_conv"));
        const auto y = compilePlan(g16)->run({x, sr(16000)})[0].toFloat();
        const float w[2][2] = {{1.f, 2.f}, {3.f, 4.f}};
        std::vector<float> expect(32);
        for (int o = 0; o < 2; ++o)
            for (int p = 0; p < 16; ++p)
                expect[std::size_t(o * 16 + p)] = w[o][0] * xv[std::size_t(p)] + w[o][1] * xv[std::size_t(16 + p)];
        QVERIFY(maxAbsDiff(y, expect) < 1e-6);

        Graph g8 = source;
        QCOMPARE(inlineIfsForInputs(g8, {{"sr", 8000.0}}), 1);
        QVERIFY(g8.findNode("e_neg_node") >= 0 && g8.findNode("branch_conv") < 0);
        std::vector<float> neg(xv.size());
        for (std::size_t i = 0; i < xv.size(); ++i)
            neg[i] = -xv[i];
        QCOMPARE(maxAbsDiff(compilePlan(g8)->run({x, sr(8000)})[0].toFloat(), neg), 0.0);
    }

    void loop_data()
    {
        QTest::addColumn<bool>("constantTrip");
        QTest::addColumn<int64_t>("trip");
        QTest::addColumn<int64_t>("stopAfter"); // body condition: iteration < stopAfter
        QTest::newRow("constant M, scan") << true << int64_t(4) << int64_t(100);
        QTest::newRow("constant M, zero trips") << true << int64_t(0) << int64_t(100);
        QTest::newRow("run-time M, condition stops") << false << int64_t(6) << int64_t(3);
    }
    // sum = x; for i < M while cond: sum = sum + x * i; scan out sum (constant M only).
    void loop()
    {
        QFETCH(bool, constantTrip);
        QFETCH(int64_t, trip);
        QFETCH(int64_t, stopAfter);
        OnnxBuilder b;
        b.input("x", {3});
        Tensor m(DType::Int64, {});
        m.data<int64_t>()[0] = trip;
        if (constantTrip)
            addTensor(b.model().mutable_graph(), m, "M");
        else
            b.input("M", {}, onnx::TensorProto::INT64);
        addTensor(b.model().mutable_graph(), boolScalar(true), "cond0");
        Tensor stop(DType::Int64, {});
        stop.data<int64_t>()[0] = stopAfter - 1;
        addTensor(b.model().mutable_graph(), stop, "stop");
        auto* n = constantTrip ? b.node("Loop", {"M", "cond0", "x"}, {"sum", "scan"}, "loop")
                               : b.node("Loop", {"M", "cond0", "x"}, {"sum"}, "loop");
        GraphBuilder body = OnnxBuilder::graphAttr(n, "body");
        body.input("i", {}, onnx::TensorProto::INT64);
        body.input("c_in", {}, onnx::TensorProto::BOOL);
        untyped(body.input("s_in", {}));
        body.node("Cast", {"i"}, {"i_f"}, "cast");
        OnnxBuilder::intAttr(body.graph()->mutable_node(0), "to", onnx::TensorProto::FLOAT);
        body.node("Mul", {"x", "i_f"}, {"xi"}, "mul");
        body.node("Add", {"s_in", "xi"}, {"s_out"}, "add");
        body.node("Less", {"i", "stop"}, {"c_out"}, "less");
        body.node("Identity", {"s_out"}, {"scan_v"}, "scan_id");
        body.output("c_out", {}, onnx::TensorProto::BOOL);
        untyped(body.output("s_out"));
        if (constantTrip)
            untyped(body.output("scan_v"));
        untyped(b.output("sum"));
        if (constantTrip)
            untyped(b.output("scan"));
        Graph g = importOnnxBytes(b.bytes(), "test.onnx", "", {{}, false});
        auto plan = compilePlan(g);
        const Tensor x = randomTensor({3}, 4);
        const auto out = constantTrip ? plan->run({x}) : plan->run({x, m});
        // Naive: the iterations the loop runs and the running sum.
        std::vector<float> sum = x.toFloat(), scan;
        const auto xv = x.toFloat();
        int64_t runs = 0;
        for (int64_t i = 0; i < trip; ++i) {
            for (int j = 0; j < 3; ++j)
                sum[std::size_t(j)] += xv[std::size_t(j)] * float(i);
            scan.insert(scan.end(), sum.begin(), sum.end());
            ++runs;
            if (!(i < stopAfter - 1))
                break;
        }
        QCOMPARE(maxAbsDiff(out[0].toFloat(), sum), 0.0);
        if (constantTrip) {
            QCOMPARE(out[1].shape, (Shape {runs, 3}));
            QCOMPARE(maxAbsDiff(out[1].toFloat(), scan), 0.0);
        }
    }

    // A body whose Slice bounds come from the iteration number: compiled once per
    // iteration with the number as a constant (trip count known).
    void loopSliceByIteration()
    {
        OnnxBuilder b;
        b.input("x", {4});
        b.input("s0", {1});
        Tensor m(DType::Int64, {}), one(DType::Int64, {1}), shape(DType::Int64, {1});
        m.data<int64_t>()[0] = 4;
        one.data<int64_t>()[0] = 1;
        shape.data<int64_t>()[0] = 1;
        addTensor(b.model().mutable_graph(), m, "M");
        addTensor(b.model().mutable_graph(), one, "one_i");
        addTensor(b.model().mutable_graph(), shape, "shape1");
        auto* n = b.node("Loop", {"M", "", "s0"}, {"s", "parts"}, "loop");
        GraphBuilder body = OnnxBuilder::graphAttr(n, "body");
        body.input("i", {}, onnx::TensorProto::INT64);
        body.input("c_in", {}, onnx::TensorProto::BOOL);
        untyped(body.input("s_in", {}));
        body.node("Reshape", {"i", "shape1"}, {"start"}, "start_node");
        body.node("Add", {"start", "one_i"}, {"end"}, "end_node");
        body.node("Slice", {"x", "start", "end"}, {"part"}, "slice");
        body.node("Add", {"s_in", "part"}, {"s_out"}, "acc");
        body.node("Identity", {"c_in"}, {"c_out"}, "keep_going");
        body.output("c_out", {}, onnx::TensorProto::BOOL);
        untyped(body.output("s_out"));
        untyped(body.output("part"));
        untyped(b.output("s"));
        untyped(b.output("parts"));
        Graph g = importOnnxBytes(b.bytes(), "test.onnx", "", {{}, false});
        const Tensor x = randomTensor({4}, 6), s0 = randomTensor({1}, 7);
        const auto out = compilePlan(g)->run({x, s0});
        float sum = s0.toFloat()[0];
        for (float v : x.toFloat())
            sum += v;
        QVERIFY(std::fabs(out[0].toFloat()[0] - sum) < 1e-6f);
        QCOMPARE(out[1].shape, (Shape {4, 1}));
        QCOMPARE(maxAbsDiff(out[1].toFloat(), x.toFloat()), 0.0);
    }

    void rnn_data()
    {
        QTest::addColumn<RnnCase>("k");
        auto row = [](const char* name, RnnCase k) { QTest::newRow(name) << k; };
        row("lstm forward", {});
        row("lstm reverse", {.direction = "reverse"});
        row("lstm bidirectional", {.direction = "bidirectional"});
        row("lstm no bias, no state", {.bias = false, .initial = false});
        row("lstm batch first", {.direction = "bidirectional", .layout = 1});
        row("lstm peepholes", {.direction = "bidirectional", .peephole = true});
        row("gru forward", {.lstm = false});
        row("gru bidirectional", {.lstm = false, .direction = "bidirectional"});
        row("gru linear before reset", {.lstm = false, .lbr = true});
        row("gru lbr reverse, batch first", {.lstm = false, .direction = "reverse", .lbr = true, .layout = 1});
    }
    void rnn()
    {
        QFETCH(RnnCase, k);
        const int64_t D = k.direction == "bidirectional" ? 2 : 1, G = k.lstm ? 4 : 3;
        const Tensor X = randomTensor({k.T, k.N, k.C}, 10), W = randomTensor({D, G * k.H, k.C}, 11, 0.5f);
        const Tensor R = randomTensor({D, G * k.H, k.H}, 12, 0.5f), B = randomTensor({D, 2 * G * k.H}, 13, 0.5f);
        const Tensor h0 = randomTensor({D, k.N, k.H}, 14), c0 = randomTensor({D, k.N, k.H}, 15);
        const Tensor P = randomTensor({D, 3 * k.H}, 16, 0.5f);
        const auto want =
            naiveRnn(k, X.toFloat(), W.toFloat(), R.toFloat(), B.toFloat(), h0.toFloat(), c0.toFloat(), P.toFloat());

        OnnxBuilder b(14);
        const bool bf = k.layout == 1;
        b.input("X", bf ? std::vector<int64_t> {k.N, k.T, k.C} : std::vector<int64_t> {k.T, k.N, k.C});
        b.initializer("W", W.shape, W.toFloat());
        b.initializer("R", R.shape, R.toFloat());
        if (k.bias)
            b.initializer("B", B.shape, B.toFloat());
        std::vector<Tensor> inputs {bf ? Tensor::fromVector<float>({k.N, k.T, k.C}, swap01(X.toFloat(), k.T, k.N)) : X};
        if (k.initial) {
            b.input("h0", bf ? std::vector<int64_t> {k.N, D, k.H} : std::vector<int64_t> {D, k.N, k.H});
            inputs.push_back(bf ? Tensor::fromVector<float>({k.N, D, k.H}, swap01(h0.toFloat(), D, k.N)) : h0);
            if (k.lstm) {
                b.input("c0", bf ? std::vector<int64_t> {k.N, D, k.H} : std::vector<int64_t> {D, k.N, k.H});
                inputs.push_back(bf ? Tensor::fromVector<float>({k.N, D, k.H}, swap01(c0.toFloat(), D, k.N)) : c0);
            }
        }
        const std::string h0n = k.initial ? "h0" : "", c0n = k.initial && k.lstm ? "c0" : "";
        if (k.peephole)
            b.initializer("P", P.shape, P.toFloat());
        auto* n = k.lstm ? b.node("LSTM", {"X", "W", "R", k.bias ? "B" : "", "", h0n, c0n, k.peephole ? "P" : ""},
                               {"Y", "Yh", "Yc"}, "rnn")
                         : b.node("GRU", {"X", "W", "R", k.bias ? "B" : "", "", h0n}, {"Y", "Yh"}, "rnn");
        OnnxBuilder::intAttr(n, "hidden_size", k.H);
        OnnxBuilder::stringAttr(n, "direction", k.direction);
        OnnxBuilder::intAttr(n, "layout", k.layout);
        if (k.lbr)
            OnnxBuilder::intAttr(n, "linear_before_reset", 1);
        untyped(b.output("Y"));
        untyped(b.output("Yh"));
        if (k.lstm)
            untyped(b.output("Yc"));
        auto plan = compilePlan(load(b));
        const auto got = plan->run(inputs);
        // Y [T,D,N,H] (batch first [N,T,D,H]); states [D,N,H] ([N,D,H]).
        QCOMPARE(got[0].shape, bf ? (Shape {k.N, k.T, D, k.H}) : (Shape {k.T, D, k.N, k.H}));
        std::vector<float> y = got[0].toFloat();
        if (bf) { // [N,T,D,H] -> [T,D,N,H]
            const auto v = y;
            for (int64_t n = 0; n < k.N; ++n)
                for (int64_t t = 0; t < k.T; ++t)
                    for (int64_t d = 0; d < D; ++d)
                        for (int64_t j = 0; j < k.H; ++j)
                            y[std::size_t(((t * D + d) * k.N + n) * k.H + j)] =
                                v[std::size_t(((n * k.T + t) * D + d) * k.H + j)];
        }
        QVERIFY2(maxAbsDiff(y, want[0]) < 1e-5, qPrintable(QString::number(maxAbsDiff(y, want[0]))));
        for (std::size_t o = 1; o < got.size(); ++o) {
            const auto s = bf ? swap01(got[o].toFloat(), k.N, D) : got[o].toFloat();
            QVERIFY2(
                maxAbsDiff(s, want[o]) < 1e-5, qPrintable(QString("output %1: %2").arg(o).arg(maxAbsDiff(s, want[o]))));
        }
    }

    // Partial sequences are refused with a one-line error naming the node.
    void rnnSequenceLens()
    {
        OnnxBuilder b(14);
        b.input("X", {3, 2, 4});
        b.initializer("W", {1, 16, 4}, std::vector<float>(64, 0.1f));
        b.initializer("R", {1, 16, 4}, std::vector<float>(64, 0.1f));
        Tensor lens(DType::Int32, {2});
        lens.data<int32_t>()[0] = 3;
        lens.data<int32_t>()[1] = 2;
        addTensor(b.model().mutable_graph(), lens, "lens");
        auto* n = b.node("LSTM", {"X", "W", "R", "", "lens"}, {"Y"}, "lstm");
        OnnxBuilder::intAttr(n, "hidden_size", 4);
        untyped(b.output("Y"));
        try {
            compilePlan(load(b));
            QFAIL("compiled");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find("node \"lstm\"") != std::string::npos &&
                    std::string(e.what()).find("sequence_lens 2") != std::string::npos,
                e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestControlFlow)
#include "test_control_flow.moc"
