// A stack of identical transformer-like blocks built in code (29 operators each, six of
// them layers), named like a PyTorch export ("/model/layers.3/mlp/fc1/MatMul"), for the
// graph view's tests: 24 blocks make a 697-operator model.
#pragma once

#include "support/onnx_builder.h"

#include <string>

namespace qs::test {

inline OnnxBuilder blockStackModel(int blocks, bool pathNames = true, int64_t width = 16)
{
    OnnxBuilder b;
    const int64_t seq = 8, hidden = 2 * width;
    b.input("x", {-1, seq, width});
    int counter = 0;
    auto weights = [&](const std::string& name, std::vector<int64_t> dims) {
        int64_t n = 1;
        for (int64_t d : dims)
            n *= d;
        std::vector<float> v(static_cast<std::size_t>(n));
        for (std::size_t i = 0; i < v.size(); ++i)
            v[i] = float(int((i * 7 + std::size_t(counter) * 3) % 11) - 5) * 0.02f;
        ++counter;
        b.initializer(name, dims, v);
        return name;
    };
    b.initializer("eps", {1}, {1e-5f});
    b.initializer("scale", {1}, {0.25f});
    std::string x = "x";
    for (int l = 0; l < blocks; ++l) {
        const std::string p = "/model/layers." + std::to_string(l) + "/";
        auto name = [&](const std::string& path, const std::string& op) {
            return pathNames ? p + (path.empty() ? op : path + "/" + op) : "node_" + std::to_string(counter++);
        };
        auto v = [&](const std::string& s) { return p + s; };
        // Layer norm, written out as exporters do.
        OnnxBuilder::intsAttr(b.node("ReduceMean", {x}, {v("mean")}, name("norm", "ReduceMean")), "axes", {-1});
        b.node("Sub", {x, v("mean")}, {v("centred")}, name("norm", "Sub"));
        b.node("Mul", {v("centred"), v("centred")}, {v("sq")}, name("norm", "Mul"));
        OnnxBuilder::intsAttr(b.node("ReduceMean", {v("sq")}, {v("var")}, name("norm", "ReduceMean_1")), "axes", {-1});
        b.node("Add", {v("var"), "eps"}, {v("vareps")}, name("norm", "Add"));
        b.node("Sqrt", {v("vareps")}, {v("std")}, name("norm", "Sqrt"));
        b.node("Div", {v("centred"), v("std")}, {v("normed")}, name("norm", "Div"));
        b.node("Mul", {v("normed"), weights(v("gamma"), {width})}, {v("scaled")}, name("norm", "Mul_1"));
        b.node("Add", {v("scaled"), weights(v("beta"), {width})}, {v("h")}, name("norm", "Add_1"));
        // Attention.
        for (const char* w : {"q", "k", "v"}) {
            const std::string proj = std::string("self_attn/") + w + "_proj";
            b.node("MatMul", {v("h"), weights(v(proj + ".weight"), {width, width})}, {v(proj + "_mm")},
                name(proj, "MatMul"));
            b.node("Add", {v(proj + "_mm"), weights(v(proj + ".bias"), {width})}, {v(w)}, name(proj, "Add"));
        }
        OnnxBuilder::intsAttr(
            b.node("Transpose", {v("k")}, {v("kt")}, name("self_attn", "Transpose")), "perm", {0, 2, 1});
        b.node("MatMul", {v("q"), v("kt")}, {v("scores")}, name("self_attn", "MatMul"));
        b.node("Mul", {v("scores"), "scale"}, {v("scaled_scores")}, name("self_attn", "Mul"));
        OnnxBuilder::intAttr(
            b.node("Softmax", {v("scaled_scores")}, {v("probs")}, name("self_attn", "Softmax")), "axis", -1);
        b.node("MatMul", {v("probs"), v("v")}, {v("att")}, name("self_attn", "MatMul_1"));
        b.node("MatMul", {v("att"), weights(v("o_proj.weight"), {width, width})}, {v("o_mm")},
            name("self_attn/o_proj", "MatMul"));
        b.node("Add", {v("o_mm"), weights(v("o_proj.bias"), {width})}, {v("o")}, name("self_attn/o_proj", "Add"));
        b.node("Add", {x, v("o")}, {v("res1")}, name("", "Add"));
        // MLP.
        b.node(
            "MatMul", {v("res1"), weights(v("fc1.weight"), {width, hidden})}, {v("fc1_mm")}, name("mlp/fc1", "MatMul"));
        b.node("Add", {v("fc1_mm"), weights(v("fc1.bias"), {hidden})}, {v("fc1")}, name("mlp/fc1", "Add"));
        b.node("Relu", {v("fc1")}, {v("act")}, name("mlp", "Relu"));
        b.node(
            "MatMul", {v("act"), weights(v("fc2.weight"), {hidden, width})}, {v("fc2_mm")}, name("mlp/fc2", "MatMul"));
        b.node("Add", {v("fc2_mm"), weights(v("fc2.bias"), {width})}, {v("fc2")}, name("mlp/fc2", "Add"));
        b.node("Add", {v("res1"), v("fc2")}, {v("out")}, name("", "Add_1"));
        x = v("out");
    }
    b.node("MatMul", {x, weights("head.weight", {width, 10})}, {"logits"}, pathNames ? "/head/MatMul" : "node_head");
    b.output("logits", {-1, seq, 10});
    return b;
}

} // namespace qs::test
