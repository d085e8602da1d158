// Recurrent layers in FP32 on oneDNN's RNN primitives: LSTM (peepholes too)
// (https://onnx.ai/onnx/operators/onnx__LSTM.html) and GRU
// (https://onnx.ai/onnx/operators/onnx__GRU.html). ONNX stacks the gates as
// LSTM i,o,f,c and GRU z,r,h; oneDNN wants LSTM i,f,c,o and GRU u(=z),r,o(=h), and
// for linear_before_reset a fourth bias (the recurrent h bias) in lbr_gru.
#include "runtime/ops/ops.h"

#include <algorithm>
#include <cstring>

namespace qs::rt {

namespace {

using tag = memory::format_tag;

// ONNX gate index of each oneDNN gate.
constexpr int kLstmGates[] = {0, 2, 3, 1};
constexpr int kGruGates[] = {0, 1, 2};

// Copies a float [A,B,C] tensor to [B,A,C].
void swap01(const float* src, float* dst, int64_t a, int64_t b, int64_t c)
{
    for (int64_t i = 0; i < a; ++i)
        for (int64_t j = 0; j < b; ++j)
            std::memcpy(dst + (j * a + i) * c, src + (i * b + j) * c, std::size_t(c) * sizeof(float));
}

bool buildRnn(NodeContext& c)
{
    const bool lstm = c.node.opType == "LSTM";
    const int gates = lstm ? 4 : 3;
    const int* order = lstm ? kLstmGates : kGruGates;
    if (c.dtype(0) != DType::Float)
        c.fail("only float32 is supported, X is ", dtypeName(c.dtype(0)));
    const std::string dir = c.node.attrString("direction", "forward");
    if (dir != "forward" && dir != "reverse" && dir != "bidirectional")
        c.fail("direction ", quoted(dir), " is not forward, reverse or bidirectional");
    const int64_t D = dir == "bidirectional" ? 2 : 1;
    const int64_t layout = c.opset() >= 14 ? c.node.attrInt("layout", 0) : 0;
    if (layout != 0 && layout != 1)
        c.fail("layout ", layout, " is not 0 or 1");
    if (c.node.has("clip"))
        c.fail("clip is not supported");
    if (lstm && c.node.attrInt("input_forget", 0) != 0)
        c.fail("input_forget is not supported");
    if (c.node.has("activations")) {
        std::vector<std::string> want =
            lstm ? std::vector<std::string> {"Sigmoid", "Tanh", "Tanh"} : std::vector<std::string> {"Sigmoid", "Tanh"};
        const auto& got = c.node.attrs.at("activations").strings;
        for (std::size_t i = 0; i < got.size(); ++i)
            if (got[i] != want[i % want.size()])
                c.fail("activation ", quoted(got[i]), " is not supported (only the defaults ",
                    lstm ? "Sigmoid, Tanh, Tanh" : "Sigmoid, Tanh", ")");
    }
    const Shape x = c.shape(0);
    if (x.size() != 3)
        c.fail("X must have rank 3, got ", shapeString(x));
    const int64_t T = layout ? x[1] : x[0], N = layout ? x[0] : x[1], C = x[2];
    const Tensor& W = c.requireConstant(1, "W");
    const Tensor& R = c.requireConstant(2, "R");
    const int64_t H = c.node.attrInt("hidden_size", R.shape.size() == 3 ? R.shape[2] : 0);
    if (H <= 0)
        c.fail("hidden_size must be positive, got ", H);
    if (W.shape != Shape {D, gates * H, C})
        c.fail("W has shape ", shapeString(W.shape), ", expected ", shapeString({D, gates * H, C}));
    if (R.shape != Shape {D, gates * H, H})
        c.fail("R has shape ", shapeString(R.shape), ", expected ", shapeString({D, gates * H, H}));
    const Tensor* B = c.has(3) ? &c.requireConstant(3, "B") : nullptr;
    if (B && B->shape != Shape {D, 2 * gates * H})
        c.fail("B has shape ", shapeString(B->shape), ", expected ", shapeString({D, 2 * gates * H}));
    if (c.has(4)) { // sequence_lens: only full length
        if (c.dtype(4) != DType::Int32 || c.shape(4) != Shape {N})
            c.fail("sequence_lens must be int32 [", N, "], got ", dtypeName(c.dtype(4)), " ", shapeString(c.shape(4)));
        if (const Tensor* lens = c.constant(4)) {
            for (int64_t v : lens->toInt64())
                if (v != T)
                    c.fail("sequence_lens ", v, " differs from the sequence length ", T,
                        "; only full-length sequences are supported");
        } else {
            const int s = c.input(4);
            const std::string where = c.where();
            c.addFn({s}, {}, [s, N, T, where](Program& p) {
                for (int64_t i = 0; i < N; ++i)
                    if (p.slot(s).as<int32_t>()[i] != T)
                        fail(where, ": sequence_lens ", p.slot(s).as<int32_t>()[i],
                            " differs from the sequence length ", T, "; only full-length sequences are supported");
            });
        }
    }
    // Peepholes P [D,3H], ONNX order i,o,f; oneDNN's i,f,o. All zero: none.
    std::vector<float> peephole;
    if (lstm && c.has(7)) {
        const Tensor& P = c.requireConstant(7, "P");
        if (P.shape != Shape {D, 3 * H})
            c.fail("P has shape ", shapeString(P.shape), ", expected ", shapeString({D, 3 * H}));
        const auto pv = P.toFloat();
        if (std::any_of(pv.begin(), pv.end(), [](float v) { return v != 0; })) {
            constexpr int kPeepholeGates[] = {0, 2, 1};
            peephole.resize(pv.size());
            for (int64_t d = 0; d < D; ++d)
                for (int g = 0; g < 3; ++g)
                    for (int64_t h = 0; h < H; ++h)
                        peephole[std::size_t((d * 3 + g) * H + h)] =
                            pv[std::size_t((d * 3 + kPeepholeGates[g]) * H + h)];
        }
    }
    const bool lbr = !lstm && c.node.attrInt("linear_before_reset", 0) != 0;
    const int biasGates = lbr ? 4 : gates;

    // Weights in oneDNN's plain ldigo / ldgo order (one layer).
    const auto w = W.toFloat(), r = R.toFloat();
    std::vector<float> wl(std::size_t(D * C * gates * H)), wi(std::size_t(D * H * gates * H));
    std::vector<float> bias(std::size_t(D * biasGates * H), 0.f);
    for (int64_t d = 0; d < D; ++d)
        for (int g = 0; g < gates; ++g)
            for (int64_t h = 0; h < H; ++h) {
                const int64_t row = d * gates * H + order[g] * H + h;
                for (int64_t i = 0; i < C; ++i)
                    wl[std::size_t(((d * C + i) * gates + g) * H + h)] = w[std::size_t(row * C + i)];
                for (int64_t i = 0; i < H; ++i)
                    wi[std::size_t(((d * H + i) * gates + g) * H + h)] = r[std::size_t(row * H + i)];
            }
    if (B) {
        const auto b = B->toFloat();
        for (int64_t d = 0; d < D; ++d)
            for (int g = 0; g < biasGates; ++g)
                for (int64_t h = 0; h < H; ++h) {
                    const auto wb = [&](int onnxGate) { return b[std::size_t(d * 2 * gates * H + onnxGate * H + h)]; };
                    const auto rb = [&](int onnxGate) { return wb(gates + onnxGate); };
                    float v;
                    if (lbr && g == 2)
                        v = wb(2);
                    else if (lbr && g == 3)
                        v = rb(2);
                    else
                        v = wb(order[g]) + rb(order[g]);
                    bias[std::size_t((d * biasGates + g) * H + h)] = v;
                }
    }

    const auto f32 = memory::data_type::f32;
    const memory::desc srcLayerMd({T, N, C}, f32, tag::tnc), dstLayerMd({T, N, D * H}, f32, tag::tnc);
    const memory::desc iterMd({1, D, N, H}, f32, tag::ldnc);
    const memory::desc wlAny({1, D, C, gates, H}, f32, tag::any), wiAny({1, D, H, gates, H}, f32, tag::any);
    const memory::desc wlPlain({1, D, C, gates, H}, f32, tag::ldigo), wiPlain({1, D, H, gates, H}, f32, tag::ldigo);
    const memory::desc biasMd({1, D, biasGates, H}, f32, tag::ldgo);
    const auto direction = dir == "forward" ? dnnl::rnn_direction::unidirectional_left2right
        : dir == "reverse"                  ? dnnl::rnn_direction::unidirectional_right2left
                                            : dnnl::rnn_direction::bidirectional_concat;
    const auto prop = dnnl::prop_kind::forward_inference;
    const memory::desc peepholeMd = peephole.empty() ? memory::desc() : memory::desc({1, D, 3, H}, f32, tag::ldgo);
    dnnl::primitive prim;
    std::string impl;
    memory::desc wlMd, wiMd;
    if (lstm) {
        dnnl::lstm_forward::primitive_desc pd(
            dnnl::lstm_forward::desc(prop, direction, srcLayerMd, iterMd, iterMd, wlAny, wiAny, peepholeMd,
                memory::desc(), biasMd, dstLayerMd, iterMd, iterMd),
            cpuEngine());
        prim = dnnl::lstm_forward(pd);
        impl = implName(pd);
        wlMd = pd.weights_layer_desc();
        wiMd = pd.weights_iter_desc();
    } else if (lbr) {
        dnnl::lbr_gru_forward::primitive_desc pd(
            dnnl::lbr_gru_forward::desc(prop, direction, srcLayerMd, iterMd, wlAny, wiAny, biasMd, dstLayerMd, iterMd),
            cpuEngine());
        prim = dnnl::lbr_gru_forward(pd);
        impl = implName(pd);
        wlMd = pd.weights_layer_desc();
        wiMd = pd.weights_iter_desc();
    } else {
        dnnl::gru_forward::primitive_desc pd(
            dnnl::gru_forward::desc(prop, direction, srcLayerMd, iterMd, wlAny, wiAny, biasMd, dstLayerMd, iterMd),
            cpuEngine());
        prim = dnnl::gru_forward(pd);
        impl = implName(pd);
        wlMd = pd.weights_layer_desc();
        wiMd = pd.weights_iter_desc();
    }
    std::unordered_map<int, memory> fixed;
    std::vector<Buffer> owned;
    fixed[DNNL_ARG_WEIGHTS_LAYER] = reorderedConstant(wlMd, wlPlain, wl.data(), owned);
    fixed[DNNL_ARG_WEIGHTS_ITER] = reorderedConstant(wiMd, wiPlain, wi.data(), owned);
    fixed[DNNL_ARG_BIAS] = copiedConstant(biasMd, bias.data(), owned);
    if (!peephole.empty())
        fixed[DNNL_ARG_WEIGHTS_PEEPHOLE] = copiedConstant(peepholeMd, peephole.data(), owned);

    // Inputs in oneDNN's order: X as [T,N,C], the states as [D,N,H] (zeros when absent).
    auto staged = [&](std::size_t input, const Shape& shape) -> int {
        if (!c.has(input)) {
            const int z = c.outputNamed("", DType::Float, shape);
            return z; // zero-initialised and never written
        }
        const int s = c.plainInput(input);
        if (c.dtype(input) != DType::Float)
            c.fail("input ", input, " must be float32, got ", dtypeName(c.dtype(input)));
        if (!layout)
            return s;
        const int t = c.outputNamed("", DType::Float, shape);
        const Shape in = c.slot(s).shape;
        c.addFn({s}, {t},
            [s, t, in](Program& p) { swap01(p.slot(s).as<float>(), p.slot(t).as<float>(), in[0], in[1], in[2]); });
        return t;
    };
    const int srcX = staged(0, {T, N, C});
    const Shape state {D, N, H};
    for (std::size_t i : {std::size_t(5), std::size_t(6)})
        if (c.has(i) && c.shape(i) != (layout ? Shape {N, D, H} : state))
            c.fail(i == 5 ? "initial_h" : "initial_c", " has shape ", shapeString(c.shape(i)), ", expected ",
                shapeString(layout ? Shape {N, D, H} : state));
    const int h0 = staged(5, state);
    const int c0 = lstm ? staged(6, state) : -1;
    const int dstLayer = c.outputNamed("", DType::Float, {T, N, D * H});
    const int hn = c.outputNamed("", DType::Float, state);
    const int cn = lstm ? c.outputNamed("", DType::Float, state) : -1;
    fixed[DNNL_ARG_SRC_LAYER] = c.view(srcX, srcLayerMd);
    fixed[DNNL_ARG_SRC_ITER] = c.view(h0, iterMd);
    fixed[DNNL_ARG_DST_LAYER] = c.view(dstLayer, dstLayerMd);
    fixed[DNNL_ARG_DST_ITER] = c.view(hn, iterMd);
    std::vector<int> reads {srcX, h0};
    std::vector<int> writes {dstLayer, hn};
    if (lstm) {
        fixed[DNNL_ARG_SRC_ITER_C] = c.view(c0, iterMd);
        fixed[DNNL_ARG_DST_ITER_C] = c.view(cn, iterMd);
        reads.push_back(c0);
        writes.push_back(cn);
    }
    auto k = std::make_unique<PrimitiveKernel>();
    k->prim = prim;
    k->impl = impl;
    k->args = std::move(fixed);
    k->owned = std::move(owned);
    k->reads = reads;
    k->writes = writes;
    c.add(std::move(k));

    // Outputs in ONNX's order: Y [T,D,N,H] (layout 1: [N,T,D,H]), Y_h and Y_c [D,N,H] ([N,D,H]).
    const int y = !c.node.outputs.empty() && !c.node.outputs[0].empty()
        ? c.output(0, DType::Float, layout ? Shape {N, T, D, H} : Shape {T, D, N, H})
        : -1;
    const int yh = c.node.outputs.size() > 1 && !c.node.outputs[1].empty()
        ? c.output(1, DType::Float, layout ? Shape {N, D, H} : state)
        : -1;
    const int yc = lstm && c.node.outputs.size() > 2 && !c.node.outputs[2].empty()
        ? c.output(2, DType::Float, layout ? Shape {N, D, H} : state)
        : -1;
    std::vector<int> outs;
    for (int s : {y, yh, yc})
        if (s >= 0)
            outs.push_back(s);
    c.addFn(writes, outs, [=](Program& p) {
        if (y >= 0) {
            const float* src = p.slot(dstLayer).as<float>();
            float* dst = p.slot(y).as<float>();
            for (int64_t t = 0; t < T; ++t)
                for (int64_t n = 0; n < N; ++n)
                    for (int64_t d = 0; d < D; ++d) {
                        const int64_t to = layout ? ((n * T + t) * D + d) * H : ((t * D + d) * N + n) * H;
                        std::memcpy(dst + to, src + (t * N + n) * D * H + d * H, std::size_t(H) * sizeof(float));
                    }
        }
        for (auto [from, to] : {std::pair {hn, yh}, std::pair {cn, yc}}) {
            if (to < 0)
                continue;
            if (layout)
                swap01(p.slot(from).as<float>(), p.slot(to).as<float>(), D, N, H);
            else
                std::memcpy(p.slot(to).data(), p.slot(from).data(), p.slot(to).buffer.bytes);
        }
    });
    return true;
}

const bool rnnRegistered = [] {
    registerOp("LSTM", buildRnn);
    registerOp("GRU", buildRnn);
    return true;
}();

} // namespace

} // namespace qs::rt
