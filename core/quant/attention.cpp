#include "quant/attention.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace qs {
namespace {

bool isActivation(const Graph& g, const std::string& value)
{
    return !value.empty() && !g.constant(value);
}

const Node* producer(const Graph& g, const std::string& value)
{
    const int p = g.producerOf(value);
    return p < 0 ? nullptr : &g.nodes[std::size_t(p)];
}

// Whether `value` comes from a Softmax through ops that keep its values (casts,
// dropout at inference, a mask applied after it).
bool fromSoftmax(const Graph& g, std::string value)
{
    static const std::set<std::string> through = {"Cast", "Dropout", "Identity", "Where", "Reshape"};
    for (int hops = 0; hops < 8; ++hops) {
        const Node* n = producer(g, value);
        if (!n || !n->domain.empty())
            return false;
        if (n->opType == "Softmax")
            return true;
        if (!through.count(n->opType))
            return false;
        value = n->opType == "Where" ? n->input(1) : n->input(0);
    }
    return false;
}

// Whether the MatMul's output reaches a Softmax through scaling, masking and casts.
bool toSoftmax(const Graph& g, std::string value)
{
    static const std::set<std::string> through = {
        "Mul", "Div", "Add", "Sub", "Where", "Cast", "Identity", "Reshape", "Tanh", "Clip"};
    for (int hops = 0; hops < 8; ++hops) {
        const auto& users = g.consumersOf(value);
        if (users.size() != 1)
            return false;
        const Node& n = g.nodes[std::size_t(users.front())];
        if (!n.domain.empty() || n.outputs.empty())
            return false;
        if (n.opType == "Softmax")
            return true;
        if (!through.count(n.opType))
            return false;
        value = n.outputs.front();
    }
    return false;
}

// The graph input a KV-cache export concatenates with the present keys or values
// before they reach the MatMul ("" when there is none).
std::string pastInput(const Graph& g, std::string value)
{
    static const std::set<std::string> through = {
        "Transpose", "Reshape", "Cast", "Identity", "Unsqueeze", "Squeeze", "Expand"};
    std::set<std::string> graphInputs;
    for (const auto& in : g.inputs)
        graphInputs.insert(in.name);
    for (int hops = 0; hops < 8; ++hops) {
        const Node* n = producer(g, value);
        if (!n || !n->domain.empty())
            return "";
        if (n->opType == "Concat") {
            for (const auto& in : n->inputs) {
                std::string v = in;
                for (int up = 0; up < 4 && !graphInputs.count(v); ++up) {
                    const Node* p = producer(g, v);
                    if (!p || !through.count(p->opType))
                        break;
                    v = p->input(0);
                }
                if (graphInputs.count(v))
                    return v;
            }
            return "";
        }
        if (!through.count(n->opType))
            return "";
        value = n->input(0);
    }
    return "";
}

const std::set<std::string>& fusedAttentionOps()
{
    static const std::set<std::string> ops = {"Attention", "MultiHeadAttention", "GroupQueryAttention",
        "PackedAttention", "PackedMultiHeadAttention", "DecoderMaskedMultiHeadAttention", "DecoderMaskedSelfAttention",
        "SparseAttention", "LongformerAttention", "QAttention"};
    return ops;
}

int64_t product(const Shape& s, std::size_t from, std::size_t to)
{
    int64_t p = 1;
    for (std::size_t i = from; i < to; ++i)
        p *= s[i];
    return p;
}

} // namespace

AttentionPatterns findAttentionOperands(const Graph& g)
{
    AttentionPatterns out;
    for (const Node& n : g.nodes) {
        if (fusedAttentionOps().count(n.opType)) {
            out.unmapped.push_back({n.name, n.opType,
                "fused attention: Q, K, V and the probabilities are inside one operator; export the attention "
                "decomposed (MatMul, Softmax, MatMul) to quantize them"});
            continue;
        }
        if (!n.domain.empty() || n.inputs.size() < 2 || !isActivation(g, n.input(0)) || !isActivation(g, n.input(1)))
            continue;
        if (n.opType == "Einsum") {
            out.unmapped.push_back({n.name, n.opType,
                "Einsum of two activations: its operand axes are not mapped; export attention with MatMul"});
            continue;
        }
        if (n.opType != "MatMul")
            continue;
        auto point = [&](OperandRole role, int input) {
            AttentionPoint p;
            p.name = n.name + ":" + operandRoleName(role);
            p.node = n.name;
            p.value = n.input(std::size_t(input));
            p.role = role;
            p.input = input;
            if (role == OperandRole::K || role == OperandRole::V)
                p.cache = pastInput(g, p.value);
            return p;
        };
        if (fromSoftmax(g, n.input(0))) {
            out.points.push_back(point(OperandRole::P, 0));
            out.points.push_back(point(OperandRole::V, 1));
        } else if (!n.outputs.empty() && toSoftmax(g, n.outputs.front())) {
            out.points.push_back(point(OperandRole::Q, 0));
            out.points.push_back(point(OperandRole::K, 1));
        } else {
            out.unmapped.push_back({n.name, n.opType,
                "MatMul of two activations that is neither Q x K^T (its output feeding a Softmax) nor P x V (its "
                "first input a Softmax output)"});
        }
    }
    return out;
}

OperandAxes operandAxes(OperandRole role, int rank)
{
    OperandAxes a;
    if (rank < 2)
        return a;
    // Q [.., tq, d], V [.., tk, d], P [.., tq, tk]: tokens on rows; K^T [.., d, tk].
    a.token = role == OperandRole::K ? rank - 1 : rank - 2;
    a.channel = role == OperandRole::K ? rank - 2 : rank - 1;
    a.head = rank >= 4 ? rank - 3 : -1;
    return a;
}

int staticSliceAxis(const AttentionPoint& p, OperandGranularity g, const Shape& shape)
{
    const int rank = int(shape.size());
    const OperandAxes a = operandAxes(p.role, rank);
    switch (g) {
    case OperandGranularity::Tensor:
        return -1;
    case OperandGranularity::Head:
        if (a.head < 0)
            fail("attention operand ", quoted(p.name), " (", quoted(p.value), ", shape ", shapeString(shape),
                "): per-head needs a [batch, heads, tokens, dim] operand; use tensor, token or channel");
        return a.head;
    case OperandGranularity::Channel:
        if (p.role == OperandRole::P || a.channel < 0)
            fail("attention operand ", quoted(p.name),
                ": per-channel is for Q, K and V (P's last axis is key "
                "positions, which grow with the sequence); use tensor, head or token");
        return a.channel;
    case OperandGranularity::Token:
        break;
    }
    fail("attention operand ", quoted(p.name), ": per-token ranges are chosen at run time, not calibrated");
}

OperandObserver::OperandObserver(AttentionPoint point, OperandGranularity granularity)
    : point_(std::move(point)), granularity_(granularity)
{
}

void OperandObserver::observe(const Tensor& t)
{
    if (granularity_ == OperandGranularity::Token)
        return;
    const int axis = staticSliceAxis(point_, granularity_, t.shape);
    const auto x = t.data<float>();
    if (axis < 0) {
        if (slices_.empty()) {
            slices_.emplace_back();
            firstShape_ = t.shape;
        }
        slices_.front().observe(t);
        return;
    }
    const std::size_t ax = std::size_t(axis);
    const int64_t outer = product(t.shape, 0, ax), dim = t.shape[ax], inner = product(t.shape, ax + 1, t.shape.size());
    if (slices_.empty()) {
        slices_.resize(std::size_t(dim));
        firstShape_ = t.shape;
    } else if (int64_t(slices_.size()) != dim) {
        fail("attention operand ", quoted(point_.name), ": ", operandGranularityName(granularity_), " axis has ", dim,
            " slices in shape ", shapeString(t.shape), ", ", slices_.size(), " in ", shapeString(firstShape_));
    }
    std::vector<float> part(std::size_t(outer * inner));
    for (int64_t c = 0; c < dim; ++c) {
        std::size_t k = 0;
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i)
                part[k++] = x[std::size_t((o * dim + c) * inner + i)];
        slices_[std::size_t(c)].observe(Tensor::fromVector(Shape {int64_t(part.size())}, part));
    }
}

OperandQuant chooseOperandQuant(const AttentionPoint& point, const OperandSpec& spec, const OperandObserver* observed)
{
    OperandQuant q;
    q.point = point;
    q.spec = spec;
    if (spec.granularity == OperandGranularity::Token) {
        if (spec.calibrator != "minmax")
            fail("attention operand ", quoted(point.name),
                ": per-token ranges are each token's min-max at run time; "
                "calibrator ",
                quoted(spec.calibrator), " needs a static granularity (tensor, head or channel)");
        return q;
    }
    if (!observed || observed->slices().empty())
        fail("attention operand ", quoted(point.name), " (", quoted(point.value), ") was not observed");
    const CalibratorInfo& c = calibrator(spec.calibrator);
    const double param = spec.calibratorParam != 0 ? spec.calibratorParam : c.defaultParam;
    for (const auto& s : observed->slices()) {
        const ClipRange r = c.choose(s.calibration(), spec.bits, spec.symmetric, param);
        q.ranges.push_back(r);
        q.params.push_back(qparamsFor(r.lo, r.hi, spec.bits, spec.symmetric));
    }
    q.rank = observed->rank();
    return q;
}

void fakeQuantOperand(Tensor& t, const OperandQuant& q)
{
    auto x = t.data<float>();
    if (q.spec.granularity == OperandGranularity::Token) {
        const OperandAxes a = operandAxes(q.point.role, int(t.shape.size()));
        if (a.channel < 0)
            fail("attention operand ", quoted(q.point.name), ": per-token needs a matrix operand, got shape ",
                shapeString(t.shape));
        const std::size_t ax = std::size_t(a.channel);
        const int64_t outer = product(t.shape, 0, ax), dim = t.shape[ax],
                      inner = product(t.shape, ax + 1, t.shape.size());
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t i = 0; i < inner; ++i) {
                float* v = x.data() + o * dim * inner + i;
                float lo = INFINITY, hi = -INFINITY;
                for (int64_t c = 0; c < dim; ++c) {
                    lo = std::min(lo, v[c * inner]);
                    hi = std::max(hi, v[c * inner]);
                }
                const QParams p = qparamsFor(lo, hi, q.spec.bits, q.spec.symmetric);
                for (int64_t c = 0; c < dim; ++c)
                    v[c * inner] = fakeQuant(v[c * inner], p);
            }
        return;
    }
    if (q.params.empty())
        fail("attention operand ", quoted(q.point.name), " has no calibrated range");
    if (q.spec.granularity == OperandGranularity::Tensor) {
        for (float& v : x)
            v = fakeQuant(v, q.params.front());
        return;
    }
    const std::size_t ax = std::size_t(staticSliceAxis(q.point, q.spec.granularity, t.shape));
    const int64_t outer = product(t.shape, 0, ax), dim = t.shape[ax], inner = product(t.shape, ax + 1, t.shape.size());
    if (dim != int64_t(q.params.size()))
        fail("attention operand ", quoted(q.point.name), ": ", operandGranularityName(q.spec.granularity), " axis ", ax,
            " of shape ", shapeString(t.shape), " has ", dim, " slices, calibrated with ", q.params.size());
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < dim; ++c) {
            const QParams& p = q.params[std::size_t(c)];
            float* v = x.data() + (o * dim + c) * inner;
            for (int64_t i = 0; i < inner; ++i)
                v[i] = fakeQuant(v[i], p);
        }
}

} // namespace qs
