// A tiny random one-block GPT built in code (no training, no download): token ids ->
// Gather embedding -> LayerNorm -> single-head causal attention (q/k/v/out MatMuls with
// [in, out] weights) -> residual -> LayerNorm -> Gemm MLP (transB=1, then transB=0)
// -> residual -> LayerNorm -> MatMul LM head. LayerNorm gains with a few large
// channels give the projections outlier input channels, as trained LMs have.
#pragma once

#include "algo_fixtures.h"

#include <cmath>
#include <random>

namespace qs::test {

struct TransformerDims {
    int64_t vocab = 48, dModel = 64, ffn = 128, context = 16;
};

inline Attribute intAttribute(int64_t v)
{
    Attribute a;
    a.kind = Attribute::Kind::Int;
    a.i = v;
    return a;
}

inline Graph tinyTransformer(const TransformerDims& d = {}, uint64_t seed = 11)
{
    const int64_t D = d.dModel, F = d.ffn, V = d.vocab, T = d.context;
    GraphBuilder b(Shape {1, T});
    b.g.opsets[""] = 17; // LayerNormalization
    b.seed = seed;
    const float ws = 1.f / std::sqrt(float(D));
    auto weight = [&](const std::string& name, Shape shape, float stddev) {
        b.init(name, randomTensor(shape, b.seed++, stddev));
        return name;
    };
    auto layerNorm = [&](const std::string& x, const std::string& tag, std::vector<int64_t> outliers) {
        std::vector<float> gain(std::size_t(D), 1.f), bias(std::size_t(D), 0.f);
        for (int64_t c : outliers)
            gain[std::size_t(c)] = 12.f;
        b.init(tag + ".gamma", Tensor::fromVector(Shape {D}, gain));
        b.init(tag + ".beta", Tensor::fromVector(Shape {D}, bias));
        Node& n = b.add("LayerNormalization", {x, tag + ".gamma", tag + ".beta"});
        n.name = tag;
        n.outputs = {tag + "_out"};
        n.attrs["axis"] = intAttribute(-1);
        b.last = n.outputs[0];
        return b.last;
    };
    auto named = [&](const std::string& op, std::vector<std::string> in, const std::string& name) -> Node& {
        Node& n = b.add(op, std::move(in));
        n.name = name;
        n.outputs = {name + "_out"};
        b.last = n.outputs[0];
        return n;
    };

    named("Cast", {"input"}, "ids").attrs["to"] = intAttribute(int64_t(7)); // INT64
    const std::string emb = named("Gather", {weight("tok_emb", {V, D}, 1.f), "ids_out"}, "embed").outputs[0];
    const std::string a = layerNorm(emb, "ln1", {5, 17});
    const std::string q = named("MatMul", {a, weight("wq", {D, D}, ws)}, "q_proj").outputs[0];
    const std::string k = named("MatMul", {a, weight("wk", {D, D}, ws)}, "k_proj").outputs[0];
    const std::string v = named("MatMul", {a, weight("wv", {D, D}, ws)}, "v_proj").outputs[0];
    Node& kt = named("Transpose", {k}, "k_t");
    Attribute perm;
    perm.kind = Attribute::Kind::Ints;
    perm.ints = {0, 2, 1};
    kt.attrs["perm"] = perm;
    named("MatMul", {q, "k_t_out"}, "scores");
    b.init("attn_scale", Tensor::fromVector(Shape {1}, std::vector<float> {1.f / std::sqrt(float(D))}));
    named("Mul", {"scores_out", "attn_scale"}, "scaled");
    std::vector<float> mask(std::size_t(T * T), 0.f);
    for (int64_t i = 0; i < T; ++i)
        for (int64_t j = i + 1; j < T; ++j)
            mask[std::size_t(i * T + j)] = -1e9f;
    b.init("causal_mask", Tensor::fromVector(Shape {T, T}, mask));
    named("Add", {"scaled_out", "causal_mask"}, "masked");
    named("Softmax", {"masked_out"}, "probs").attrs["axis"] = intAttribute(-1);
    named("MatMul", {"probs_out", v}, "attend");
    named("MatMul", {"attend_out", weight("wo", {D, D}, ws)}, "o_proj");
    named("Add", {"o_proj_out", weight("bo", {D}, 0.1f)}, "o_bias");
    const std::string h1 = named("Add", {emb, "o_bias_out"}, "resid1").outputs[0];
    layerNorm(h1, "ln2", {3});
    b.init("flat_shape", Tensor::fromVector(Shape {2}, std::vector<int64_t> {-1, D}));
    named("Reshape", {"ln2_out", "flat_shape"}, "flatten");
    named("Gemm", {"flatten_out", weight("w1", {F, D}, ws), weight("b1", {F}, 0.1f)}, "fc1").attrs["transB"] =
        intAttribute(1);
    named("Relu", {"fc1_out"}, "act");
    named("Gemm", {"act_out", weight("w2", {F, D}, 1.f / std::sqrt(float(F))), weight("b2", {D}, 0.1f)}, "fc2");
    b.init("seq_shape", Tensor::fromVector(Shape {3}, std::vector<int64_t> {-1, T, D}));
    named("Reshape", {"fc2_out", "seq_shape"}, "unflatten");
    const std::string h2 = named("Add", {h1, "unflatten_out"}, "resid2").outputs[0];
    const std::string f = layerNorm(h2, "ln_f", {9});
    named("MatMul", {f, weight("lm_head_w", {D, V}, ws)}, "lm_head");
    Graph g = b.finish();
    // A graph output needs its shape for ONNX's checker (ValueInfo without dims has none).
    g.outputs.front().dims = std::vector<Dim> {Dim {-1, "N"}, Dim {T, ""}, Dim {V, ""}};
    return g;
}

// Random token ids in [0, vocab) as the float [n, context] samples a Dataset holds.
inline Dataset tokenData(const TransformerDims& d, int64_t n, uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int64_t> tok(0, d.vocab - 1);
    std::vector<float> v(std::size_t(n * d.context));
    for (float& x : v)
        x = float(tok(rng));
    Dataset data;
    data.kind = "random";
    data.path = "test:tokens";
    data.inputs = {{"", data.path, Tensor::fromVector(Shape {n, d.context}, v)}};
    return data;
}

} // namespace qs::test
