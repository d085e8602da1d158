// Unary activations (Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid, HardSwish,
// Elu, Gelu, Exp, Log, Sqrt, Abs, Neg) as oneDNN eltwise, Erf in plain C++, the
// erf- and tanh-based GELU patterns, and the post-op fusion helpers the primitives share.
#include "runtime/ops/ops.h"
#include "runtime/ops/plain.h"

#include <algorithm>
#include <cfloat>
#include <cstdlib>
#include <cmath>
#include <limits>

namespace qs::rt {

using dnnl::algorithm;

std::string implName(const dnnl::primitive_desc_base& pd)
{
    const char* s = nullptr;
    dnnl_primitive_desc_query(pd.get(), dnnl_query_impl_info_str, 0, &s);
    return s ? s : "";
}

namespace {

std::optional<float> scalarOf(const NodeContext& c, const std::string& value)
{
    const Tensor* t = c.constantValue(value);
    if (!t || t->numel() != 1)
        return std::nullopt;
    return t->toFloat()[0];
}

} // namespace

std::optional<std::vector<EltwiseStep>> eltwiseSteps(const NodeContext& c, const Node& n)
{
    if (!n.domain.empty() && n.domain != "ai.onnx")
        return std::nullopt;
    const std::string& op = n.opType;
    using V = std::vector<EltwiseStep>;
    if (op == "Relu")
        return V{{algorithm::eltwise_relu, 0, 0}};
    if (op == "LeakyRelu")
        return V{{algorithm::eltwise_relu, n.attrFloat("alpha", 0.01f), 0}};
    if (op == "Elu")
        return V{{algorithm::eltwise_elu, n.attrFloat("alpha", 1.0f), 0}};
    if (op == "Sigmoid")
        return V{{algorithm::eltwise_logistic}};
    if (op == "Tanh")
        return V{{algorithm::eltwise_tanh}};
    if (op == "HardSigmoid")
        return V{{algorithm::eltwise_linear, n.attrFloat("alpha", 0.2f), n.attrFloat("beta", 0.5f)},
                 {algorithm::eltwise_clip_v2, 0.f, 1.f}};
    if (op == "HardSwish")
        return V{{algorithm::eltwise_hardswish}};
    if (op == "Exp")
        return V{{algorithm::eltwise_exp}};
    if (op == "Log")
        return V{{algorithm::eltwise_log}};
    if (op == "Sqrt")
        return V{{algorithm::eltwise_sqrt}};
    if (op == "Abs")
        return V{{algorithm::eltwise_abs}};
    if (op == "Neg")
        return V{{algorithm::eltwise_linear, -1.f, 0.f}};
    if (op == "Gelu") {
        const std::string approx = n.attrString("approximate", "none");
        return V{{approx == "tanh" ? algorithm::eltwise_gelu_tanh : algorithm::eltwise_gelu_erf}};
    }
    if (op == "Clip") {
        float lo = -FLT_MAX, hi = FLT_MAX;
        if (c.graph().opset(n.domain) < 11) {
            lo = n.attrFloat("min", lo);
            hi = n.attrFloat("max", hi);
        } else {
            if (n.inputs.size() > 1 && !n.inputs[1].empty()) {
                auto v = scalarOf(c, n.inputs[1]);
                if (!v)
                    return std::nullopt;
                lo = *v;
            }
            if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
                auto v = scalarOf(c, n.inputs[2]);
                if (!v)
                    return std::nullopt;
                hi = *v;
            }
        }
        if (lo == 0.f && hi == FLT_MAX)
            return V{{algorithm::eltwise_relu, 0, 0}};
        return V{{algorithm::eltwise_clip_v2, lo, hi}};
    }
    return std::nullopt;
}

std::optional<std::pair<algorithm, float>> scalarBinaryStep(const NodeContext& c, const Node& n, const std::string& flow)
{
    if ((n.opType != "Mul" && n.opType != "Add" && n.opType != "Sub") || !n.domain.empty() || n.inputs.size() != 2 ||
        n.outputs.size() != 1 || n.inputs[0] == n.inputs[1] || (n.inputs[0] != flow && n.inputs[1] != flow))
        return std::nullopt;
    const std::size_t k = n.inputs[0] == flow ? 1 : 0; // the constant's side
    if (n.opType == "Sub" && k == 0)
        return std::nullopt; // c - x: a binary post-op computes x - c
    const Tensor* t = c.constantValue(n.inputs[k]);
    const ValueInfo* vi = c.graph().info(flow);
    const std::size_t rank = vi && vi->dims ? vi->dims->size() : 0;
    if (!t || t->dtype != DType::Float || t->numel() != 1 || t->shape.size() > rank)
        return std::nullopt; // a constant of higher rank would broadcast the output to it
    const algorithm alg = n.opType == "Mul" ? algorithm::binary_mul
                        : n.opType == "Add" ? algorithm::binary_add
                                            : algorithm::binary_sub;
    return std::make_pair(alg, t->toFloat()[0]);
}

FusedTail planTail(NodeContext& c, const std::string& value, const Shape& shape, const memory::desc* dstMd,
                   bool allowEltwise, bool useSum, bool allowScalars)
{
    FusedTail t;
    t.output = value;
    bool binaryUsed = false;
    std::vector<EltwiseStep> used;
    while (const Node* n = c.fusableConsumer(t.output)) {
        if (n->outputs.size() != 1)
            break;
        auto steps = allowEltwise ? eltwiseSteps(c, *n) : std::nullopt;
        const auto scalar = allowScalars && !steps ? scalarBinaryStep(c, *n, t.output) : std::nullopt;
        if (steps) {
            // oneDNN 2.6 gives every eltwise post-op of one algorithm the first one's alpha
            // and beta (measured: linear(2, 0) then linear(1, 10) computed 2 * 2 x).
            const bool clash = std::any_of(steps->begin(), steps->end(), [&](const EltwiseStep& s) {
                return std::any_of(used.begin(), used.end(), [&](const EltwiseStep& u) {
                    return u.alg == s.alg && (u.alpha != s.alpha || u.beta != s.beta);
                });
            });
            if (clash)
                break;
            for (const auto& s : *steps) {
                t.ops.append_eltwise(1.f, s.alg, s.alpha, s.beta);
                used.push_back(s);
            }
        } else if (scalar) {
            // Exact as the node: x * c, x + c or x - c with one rounding, c a [1 ... 1] operand.
            t.scalars.emplace_back(t.ops.len(), scalar->second);
            t.ops.append_binary(scalar->first, plainDesc(Shape(std::max<std::size_t>(shape.size(), 1), 1), DType::Float));
        } else if (n->opType == "Add" && n->domain.empty() && dstMd && !binaryUsed && n->inputs.size() == 2) {
            const std::string& other = n->inputs[0] == t.output ? n->inputs[1] : n->inputs[0];
            if (!c.defined(other) || c.constantValue(other))
                break;
            const int s = c.slotOfValue(other);
            if (c.slot(s).shape != shape || c.slot(s).dtype != DType::Float)
                break;
            const int src1 = c.valueAs(other, *dstMd);
            if (useSum) {
                if (t.ops.len() != 0)
                    break; // the sum must come first: dst holds the residual only before any other post-op
                t.sumSlot = src1;
                t.ops.append_sum(1.f);
            } else {
                t.binarySlots.push_back({t.ops.len(), src1});
                t.ops.append_binary(algorithm::binary_add, *dstMd);
            }
            binaryUsed = true;
        } else {
            break;
        }
        t.nodes.push_back(n);
        t.output = n->outputs[0];
    }
    return t;
}

void absorbTail(NodeContext& c, const FusedTail& t)
{
    for (const Node* n : t.nodes)
        c.absorb(*n);
}

void bindTail(NodeContext& c, const FusedTail& t, std::map<int, int>& args)
{
    for (const auto& [index, slot] : t.binarySlots)
        args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1] = slot;
}

void bindScalars(const FusedTail& t, std::size_t rank, std::unordered_map<int, memory>& fixed, std::vector<Buffer>& owned)
{
    const memory::desc md = plainDesc(Shape(std::max<std::size_t>(rank, 1), 1), DType::Float);
    for (const auto& [index, value] : t.scalars)
        fixed[DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1] = copiedConstant(md, &value, owned);
}

namespace {

bool buildEltwise(NodeContext& c)
{
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    auto steps = eltwiseSteps(c, c.node);
    if (!steps) {
        // Clip with run-time bounds: plain C++.
        for (std::size_t i = 1; i <= 2; ++i)
            if (c.has(i) && (c.in(i).numel() != 1 || c.dtype(i) != DType::Float))
                c.fail("input ", i, " (", i == 1 ? "min" : "max", ") must be one float32 value, got ",
                    dtypeName(c.dtype(i)), " ", shapeString(c.shape(i)));
        const int src = c.plainInput(0);
        const int lo = c.has(1) ? c.plainInput(1) : -1, hi = c.has(2) ? c.plainInput(2) : -1;
        const int dst = c.output(0, DType::Float, c.shape(0));
        std::vector<int> reads{src};
        for (int b : {lo, hi})
            if (b >= 0)
                reads.push_back(b);
        c.addFn(reads, {dst}, [src, lo, hi, dst](Program& p) {
            const float a = lo >= 0 ? p.slot(lo).as<float>()[0] : -FLT_MAX;
            const float b = hi >= 0 ? p.slot(hi).as<float>()[0] : FLT_MAX;
            const float* x = p.slot(src).as<float>();
            float* y = p.slot(dst).as<float>();
            for (int64_t i = 0, n = p.slot(src).numel(); i < n; ++i)
                y[i] = std::min(std::max(x[i], a), b);
        });
        return true;
    }
    const int src = c.input(0);
    const memory::desc md = c.slot(src).md;
    const Shape shape = c.shape(0);
    int dst = c.output(0, DType::Float, shape, &md);
    bool first = true;
    for (const auto& s : *steps) {
        dnnl::eltwise_forward::primitive_desc pd(
            {dnnl::prop_kind::forward_inference, s.alg, md, s.alpha, s.beta}, cpuEngine());
        c.addPrimitive(dnnl::eltwise_forward(pd), implName(pd),
                       {{DNNL_ARG_SRC, first ? src : dst}, {DNNL_ARG_DST, dst}});
        first = false;
    }
    return true;
}

// Clip: float32 through buildEltwise; other numeric types (opset 12+) in plain C++ in their
// own type. The bounds, when given, are scalars of the input's type.
bool buildClip(NodeContext& c)
{
    const DType t = c.dtype(0);
    for (std::size_t i : {1, 2})
        if (c.has(i)) {
            const char* bound = i == 1 ? "min " : "max ";
            if (c.dtype(i) != t)
                c.fail(bound, quoted(c.node.inputs[i]), " is ", dtypeName(c.dtype(i)), ", the input ", dtypeName(t));
            if (numelOf(c.shape(i)) != 1)
                c.fail(bound, quoted(c.node.inputs[i]), " has shape ", shapeString(c.shape(i)), ", expected a scalar");
        }
    if (t == DType::Float)
        return buildEltwise(c);
    if (t == DType::Bool || !dispatchType(t, [](auto) {}))
        c.fail("input type ", dtypeName(t), " is not supported (numeric types only)");
    const int src = c.plainInput(0);
    const int lo = c.has(1) ? c.plainInput(1) : -1, hi = c.has(2) ? c.plainInput(2) : -1;
    const int dst = c.output(0, t, c.shape(0));
    std::vector<int> reads {src};
    for (int b : {lo, hi})
        if (b >= 0)
            reads.push_back(b);
    dispatchType(t, [&](auto zero) {
        using T = decltype(zero);
        c.addFn(reads, {dst}, [src, lo, hi, dst](Program& p) {
            const T a = lo >= 0 ? p.slot(lo).as<T>()[0] : std::numeric_limits<T>::lowest();
            const T b = hi >= 0 ? p.slot(hi).as<T>()[0] : std::numeric_limits<T>::max();
            const T* x = p.slot(src).as<T>();
            T* y = p.slot(dst).as<T>();
            for (int64_t i = 0, n = p.slot(src).numel(); i < n; ++i)
                y[i] = std::min(std::max(x[i], a), b);
        });
    });
    return true;
}

// Erf has no oneDNN eltwise; it only survives when not part of a GELU.
bool buildErf(NodeContext& c)
{
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const int src = c.plainInput(0);
    const int dst = c.output(0, DType::Float, c.shape(0));
    c.addFn({src}, {dst}, [src, dst](Program& p) {
        const float* x = p.slot(src).as<float>();
        float* y = p.slot(dst).as<float>();
        const int64_t n = p.slot(src).numel();
#pragma omp parallel for
        for (int64_t i = 0; i < n; ++i)
            y[i] = std::erf(x[i]);
    });
    return true;
}

// PRelu: y = x < 0 ? slope * x : x, slope broadcast to x (unidirectionally).
bool buildPRelu(NodeContext& c)
{
    if (c.dtype(0) != DType::Float || c.dtype(1) != DType::Float)
        c.fail("input types must be float32");
    const Shape x = c.shape(0);
    Shape slope = c.shape(1);
    // Before opset 7 a [C] slope applies per channel (axis 1), not along the last axis.
    if (c.opset() < 7 && slope.size() == 1 && x.size() > 2 && slope[0] == x[1] && slope[0] != 1) {
        slope = Shape(x.size() - 1, 1);
        slope[0] = x[1];
    }
    if (broadcastShapes(x, slope, c) != x)
        c.fail("slope ", shapeString(slope), " does not broadcast to ", shapeString(x));
    Shape sx = x.empty() ? Shape{1} : x;
    Shape ws(sx.size() - std::min(sx.size(), slope.size()), 1);
    ws.insert(ws.end(), slope.begin(), slope.end());
    if (ws.size() > sx.size())
        ws.erase(ws.begin(), ws.begin() + std::ptrdiff_t(ws.size() - sx.size()));
    const int src = c.plainInput(0);
    const int w = c.plainInput(1);
    const memory::desc md = plainDesc(sx, DType::Float), wmd = plainDesc(ws, DType::Float);
    dnnl::prelu_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, md, wmd}, cpuEngine());
    const int dst = c.output(0, DType::Float, x);
    Kernel* k = c.addPrimitive(dnnl::prelu_forward(pd), implName(pd), {},
                               {{DNNL_ARG_SRC, c.view(src, md)}, {DNNL_ARG_WEIGHTS, c.view(w, wmd)},
                                {DNNL_ARG_DST, c.view(dst, md)}});
    k->reads = {src, w};
    k->writes = {dst};
    return true;
}

bool isConstNear(const NodeContext& c, const std::string& v, float want)
{
    const Tensor* t = c.constantValue(v);
    if (!t || t->numel() != 1 || !isFloating(t->dtype))
        return false;
    return std::fabs(t->toFloat()[0] - want) < 1e-3f * std::fabs(want);
}

const std::string& otherInput(const Node& n, const std::string& v)
{
    return n.inputs[0] == v ? n.inputs[1] : n.inputs[0];
}

// The not yet computed Mul node h = x * 0.5 whose only consumer is `user` (GELU
// spellings that halve x before the product), or nullptr.
const Node* halfOf(const NodeContext& c, const std::string& x, const std::string& h, const Node* user)
{
    for (int idx : c.graph().consumersOf(x)) {
        const Node& n = c.graph().nodes[std::size_t(idx)];
        if (n.opType == "Mul" && n.outputs.size() == 1 && n.outputs[0] == h && n.inputs.size() == 2 &&
            isConstNear(c, otherInput(n, x), 0.5f))
            return c.fusableConsumer(h) == user && !c.defined(h) ? &n : nullptr;
    }
    return nullptr;
}

// Computes `out` = GELU(x) with one oneDNN eltwise, absorbing the pattern's nodes.
bool addGelu(NodeContext& c, const std::string& x, const std::string& out, const std::vector<const Node*>& chain,
             algorithm alg)
{
    if (!c.defined(x))
        return false;
    const int src = c.input(0);
    const memory::desc md = c.slot(src).md;
    for (const Node* n : chain)
        c.absorb(*n);
    const int dst = c.outputNamed(out, DType::Float, c.shape(0), &md);
    dnnl::eltwise_forward::primitive_desc pd({dnnl::prop_kind::forward_inference, alg, md, 0.f, 0.f}, cpuEngine());
    c.addPrimitive(dnnl::eltwise_forward(pd), implName(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
    return true;
}

// GELU as exported by PyTorch: y = (x * (erf(x / sqrt2) + 1)) * 0.5, also with the
// 0.5 multiplied first. Becomes one eltwise_gelu_erf.
bool buildGeluPattern(NodeContext& c)
{
    const Node& div = c.node;
    if (div.inputs.size() != 2 || !c.has(0) || c.dtype(0) != DType::Float || !isConstNear(c, div.inputs[1], std::sqrt(2.f)))
        return false;
    const std::string& x = div.inputs[0];
    const Node* erf = c.fusableConsumer(div.outputs[0]);
    if (!erf || erf->opType != "Erf")
        return false;
    const Node* add = c.fusableConsumer(erf->outputs[0]);
    if (!add || add->opType != "Add" || add->inputs.size() != 2 || !isConstNear(c, otherInput(*add, erf->outputs[0]), 1.f))
        return false;
    const Node* mul1 = c.fusableConsumer(add->outputs[0]);
    if (!mul1 || mul1->opType != "Mul" || mul1->inputs.size() != 2)
        return false;
    std::vector<const Node*> chain{erf, add, mul1};
    std::string out;
    const std::string& m1other = otherInput(*mul1, add->outputs[0]);
    if (m1other == x) {
        const Node* mul2 = c.fusableConsumer(mul1->outputs[0]);
        if (!mul2 || mul2->opType != "Mul" || mul2->inputs.size() != 2 ||
            !isConstNear(c, otherInput(*mul2, mul1->outputs[0]), 0.5f))
            return false;
        chain.push_back(mul2);
        out = mul2->outputs[0];
    } else {
        // (x * 0.5) * (erf(...) + 1): the half is computed from x by a Mul node.
        const Node* half = halfOf(c, x, m1other, mul1);
        if (!half)
            return false;
        chain.push_back(half);
        out = mul1->outputs[0];
    }
    return addGelu(c, x, out, chain, algorithm::eltwise_gelu_erf);
}

// The consumer of `v` that is a two-input `op` whose other input is a constant near
// `k` (k = NaN: any other input `other`), when `v` may be fused away.
const Node* chainNext(const NodeContext& c, const std::string& v, const char* op, float k, const std::string& other = {})
{
    const Node* n = c.fusableConsumer(v);
    if (!n || n->opType != op || n->inputs.size() != 2)
        return nullptr;
    const std::string& o = otherInput(*n, v);
    return (other.empty() ? isConstNear(c, o, k) : o == other) ? n : nullptr;
}

// GELU, tanh approximation (Hendrycks & Gimpel 2016), as torch (nn.GELU(approximate=
// "tanh")) and GPT-2 style code export it:
//   0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x^3)))
// with x^3 as x * (x * x) or Pow(x, 3), and the 0.5 applied last or to x first.
// Starts at the Mul(x, x) or Pow(x, 3) node; becomes one eltwise_gelu_tanh.
bool buildGeluTanhPattern(NodeContext& c)
{
    const Node& start = c.node;
    if (start.inputs.size() != 2 || !c.has(0) || c.dtype(0) != DType::Float)
        return false;
    const std::string& x = start.inputs[0];
    std::vector<const Node*> chain;
    std::string cube;
    if (start.opType == "Pow") {
        if (!isConstNear(c, start.inputs[1], 3.f))
            return false;
        cube = start.outputs[0];
    } else {
        if (start.inputs[1] != x)
            return false;
        const Node* m = chainNext(c, start.outputs[0], "Mul", 0.f, x);
        if (!m)
            return false;
        chain.push_back(m);
        cube = m->outputs[0];
    }
    const Node* scaled = chainNext(c, cube, "Mul", 0.044715f);
    const Node* inner = scaled ? chainNext(c, scaled->outputs[0], "Add", 0.f, x) : nullptr;
    const Node* arg = inner ? chainNext(c, inner->outputs[0], "Mul", std::sqrt(2.f / 3.14159265f)) : nullptr;
    const Node* tanh = arg ? c.fusableConsumer(arg->outputs[0]) : nullptr;
    if (!tanh || tanh->opType != "Tanh")
        return false;
    const Node* plus1 = chainNext(c, tanh->outputs[0], "Add", 1.f);
    if (!plus1)
        return false;
    chain.insert(chain.end(), {scaled, inner, arg, tanh, plus1});
    const Node* times = c.fusableConsumer(plus1->outputs[0]);
    if (!times || times->opType != "Mul" || times->inputs.size() != 2)
        return false;
    chain.push_back(times);
    std::string out;
    if (otherInput(*times, plus1->outputs[0]) == x) {
        const Node* half = chainNext(c, times->outputs[0], "Mul", 0.5f);
        if (!half)
            return false;
        chain.push_back(half);
        out = half->outputs[0];
    } else { // (0.5 * x) * (1 + tanh(...))
        const Node* half = halfOf(c, x, otherInput(*times, plus1->outputs[0]), times);
        if (!half)
            return false;
        chain.push_back(half);
        out = times->outputs[0];
    }
    return addGelu(c, x, out, chain, algorithm::eltwise_gelu_tanh);
}

// HardSwish as paddle2onnx writes it, x * Clip(x + 3, 0, 6) / 6 (or * (1/6)), with the
// scalar Mul / Add / Sub steps after it (PP-LCNet's learnable affine): one plain loop
// doing exactly those float operations in that order, so it equals the nodes run one by
// one. oneDNN's hardswish computes x * clip(x / 6 + 1/2, 0, 1), which rounds otherwise:
// over PaddleOCR's detector's 24 of them the probability map moved by 1.4e-5 relative.
// Starts at the Add; the constants are the graph's own (only the structure is matched).
bool buildDecomposedHardSwish(NodeContext& c)
{
    const Node& add = c.node;
    if (add.inputs.size() != 2 || add.outputs.size() != 1 || !c.has(0) || !c.has(1) || std::getenv("QS_RUNTIME_NO_EXACT_HARDSWISH"))
        return false;
    const std::size_t xi = c.constant(1) ? 0 : 1;
    const Tensor* shiftT = c.constant(1 - xi);
    if (!shiftT || shiftT->numel() != 1 || shiftT->dtype != DType::Float || c.constant(xi) || c.dtype(xi) != DType::Float)
        return false;
    const std::string& x = add.inputs[xi];
    const Node* clip = c.fusableConsumer(add.outputs[0]);
    if (!clip || clip->opType != "Clip" || !clip->domain.empty() || clip->outputs.size() != 1)
        return false;
    const auto clipSteps = eltwiseSteps(c, *clip);
    if (!clipSteps || clipSteps->size() != 1 || clipSteps->front().alg != algorithm::eltwise_clip_v2)
        return false;
    const Node* mul = chainNext(c, clip->outputs[0], "Mul", 0.f, x);
    const Node* last = mul ? c.fusableConsumer(mul->outputs[0]) : nullptr;
    if (!last || (last->opType != "Div" && last->opType != "Mul") || !last->domain.empty() || last->inputs.size() != 2 ||
        last->inputs[0] != mul->outputs[0])
        return false;
    const Tensor* kT = c.constantValue(last->inputs[1]);
    if (!kT || kT->numel() != 1 || kT->dtype != DType::Float)
        return false;
    const float shift = shiftT->toFloat()[0], lo = clipSteps->front().alpha, hi = clipSteps->front().beta,
                k = kT->toFloat()[0];
    const bool divide = last->opType == "Div";
    std::vector<const Node*> nodes {clip, mul, last};
    std::vector<std::pair<algorithm, float>> affine; // y * v, y + v or y - v, in order
    std::string out = last->outputs[0];
    while (const Node* n = c.fusableConsumer(out)) {
        const auto step = scalarBinaryStep(c, *n, out);
        if (!step)
            break;
        affine.push_back(*step);
        nodes.push_back(n);
        out = n->outputs[0];
    }
    int src = c.input(xi);
    const Shape shape = c.slot(src).shape;
    if (c.slot(src).md.get_size() != std::size_t(numelOf(shape)) * sizeof(float))
        src = c.plainInput(xi); // padded blocked channels must stay zero
    const memory::desc md = c.slot(src).md;
    for (const Node* n : nodes)
        c.absorb(*n);
    const int dst = c.outputNamed(out, DType::Float, shape, &md);
    c.addFn({src}, {dst}, [=](Program& p) {
        const float* in = p.slot(src).as<float>();
        float* out = p.slot(dst).as<float>();
        const int64_t n = p.slot(src).numel();
        // Chunks of L1 size, each step one vectorizable pass over the chunk.
        constexpr int64_t kChunk = 4096;
#pragma omp parallel for if (n > 16 * kChunk)
        for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
            const int64_t len = std::min(n - c0, kChunk);
            const float* x = in + c0;
            float* y = out + c0;
            if (divide) {
#pragma omp simd
                for (int64_t i = 0; i < len; ++i)
                    y[i] = x[i] * std::min(std::max(x[i] + shift, lo), hi) / k;
            } else {
#pragma omp simd
                for (int64_t i = 0; i < len; ++i)
                    y[i] = x[i] * std::min(std::max(x[i] + shift, lo), hi) * k;
            }
            for (const auto& step : affine) {
                const float v = step.second;
                if (step.first == algorithm::binary_mul) {
#pragma omp simd
                    for (int64_t i = 0; i < len; ++i)
                        y[i] *= v;
                } else if (step.first == algorithm::binary_add) {
#pragma omp simd
                    for (int64_t i = 0; i < len; ++i)
                        y[i] += v;
                } else {
#pragma omp simd
                    for (int64_t i = 0; i < len; ++i)
                        y[i] -= v;
                }
            }
        }
    });
    return true;
}

const bool eltwiseRegistered = [] {
    for (const char* op : {"Relu", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Exp", "Log",
             "Sqrt", "Abs", "Neg", "Gelu"})
        registerOp(op, buildEltwise);
    registerOp("Clip", buildClip);
    registerOp("Erf", buildErf);
    registerOp("PRelu", buildPRelu);
    registerOp("Div", buildGeluPattern, 10);
    registerOp("Add", buildDecomposedHardSwish, 10);
    registerOp("Mul", buildGeluTanhPattern, 10);
    registerOp("Pow", buildGeluTanhPattern, 10);
    return true;
}();

} // namespace
} // namespace qs::rt
