// Per-channel affine steps folded into a convolution's weights and bias: a Mul or Add by
// a constant varying per output channel after a Conv (paddle2onnx writes
// BatchNormalization as those): Conv(x, W * s, B * s + b), which rounds each weight once,
// as BatchNormalization folding does. A scalar Mul / Add (PP-LCNet's learnable affine
// blocks) is left to the compiler, which joins it to the Conv's post-ops exactly
// as binary post-ops (ops/eltwise.cpp scalarBinaryStep).
#include "runtime/passes/pass_context.h"

namespace qs::rt::passes {

namespace {

// The values of a float constant varying at most along axis 1 of a rank-`rank` value
// with `channels` channels, one per channel; nothing when it varies elsewhere.
std::optional<std::vector<float>> perChannel(const Tensor* k, std::size_t rank, int64_t channels)
{
    if (!k || k->dtype != DType::Float || k->shape.size() > rank)
        return std::nullopt;
    Shape dims(rank - k->shape.size(), 1);
    dims.insert(dims.end(), k->shape.begin(), k->shape.end());
    for (std::size_t i = 0; i < rank; ++i)
        if (dims[i] != 1 && !(i == 1 && dims[i] == channels))
            return std::nullopt;
    std::vector<float> v = k->toFloat();
    if (v.size() == 1)
        v.assign(std::size_t(channels), v[0]);
    return v;
}

struct ConvParts {
    const Tensor* w = nullptr;
    std::vector<float> bias; // zeros when the Conv has none
};

std::optional<ConvParts> convParts(const PassContext& c, const Node& conv)
{
    if (conv.opType != "Conv" || !conv.domain.empty() || conv.outputs.size() != 1)
        return std::nullopt;
    ConvParts p;
    p.w = c.constant(conv.input(1));
    if (!p.w || p.w->dtype != DType::Float || p.w->shape.size() < 3 || p.w->numel() == 0)
        return std::nullopt;
    p.bias.assign(std::size_t(p.w->shape[0]), 0.f);
    if (!conv.input(2).empty()) {
        const Tensor* b = c.constant(conv.input(2));
        if (!b || b->dtype != DType::Float || b->numel() != p.w->shape[0])
            return std::nullopt;
        p.bias = b->toFloat();
    }
    return p;
}

void setWeights(PassContext& c, Node& conv, Tensor w, const std::vector<float>& bias)
{
    const std::string wName = conv.input(1);
    conv.inputs[1] = c.addInitializer(wName + "_folded", std::move(w));
    const std::string bBase = conv.input(2).empty() ? wName + "_bias" : conv.input(2);
    conv.inputs.resize(3);
    conv.inputs[2] = c.addInitializer(bBase + "_folded", Tensor::fromVector<float>({int64_t(bias.size())}, bias));
}

// Mul / Add by a per-channel constant after the Conv at `i`; true when folded.
bool foldAfter(PassContext& c, std::size_t i)
{
    Node& conv = c.g.nodes[i];
    const auto parts = convParts(c, conv);
    if (!parts)
        return false;
    const int k = c.soleConsumer(conv.outputs[0]);
    if (k < 0)
        return false;
    const Node& step = c.g.nodes[std::size_t(k)];
    if ((step.opType != "Mul" && step.opType != "Add") || !step.domain.empty() || step.inputs.size() != 2)
        return false;
    const std::string other = step.inputs[0] == conv.outputs[0] ? step.inputs[1] : step.inputs[0];
    const int64_t m = parts->w->shape[0];
    const Tensor* kt = c.constant(other);
    const auto v = perChannel(kt, parts->w->shape.size(), m);
    if (!v || kt->numel() == 1)
        return false;
    Tensor w = *parts->w;
    std::vector<float> bias = parts->bias;
    if (step.opType == "Mul") {
        auto wd = w.data<float>();
        const std::size_t per = wd.size() / std::size_t(m);
        for (std::size_t o = 0; o < std::size_t(m); ++o) {
            for (std::size_t j = 0; j < per; ++j)
                wd[o * per + j] *= (*v)[o];
            bias[o] *= (*v)[o];
        }
    } else {
        for (std::size_t o = 0; o < std::size_t(m); ++o)
            bias[o] += (*v)[o];
    }
    setWeights(c, conv, std::move(w), bias);
    conv.outputs[0] = step.outputs[0]; // the Conv now computes what the step did
    c.record(conv.name, {conv.name, step.name}, str("folded ", step.opType, " by a per-channel constant into Conv"));
    c.remove(k);
    return true;
}

} // namespace

int convAffineFold(PassContext& c)
{
    int rewrites = 0;
    for (std::size_t i = 0; i < c.g.nodes.size(); ++i) {
        if (foldAfter(c, i)) {
            c.commit();
            // Again from this Conv (it may fold more).
            i = i >= 1 ? i - 1 : std::size_t(-1);
            ++rewrites;
        }
    }
    return rewrites;
}

} // namespace qs::rt::passes
