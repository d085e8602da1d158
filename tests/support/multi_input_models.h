// Small models with several inputs for the data, CLI and runtime tests of multi-input
// datasets (NPZ, folders of NPY files, random:N per input type, --input-value).
#pragma once

#include "support/onnx_builder.h"

#include <string>
#include <vector>

namespace qs::test {

// x float [N,4], attention_mask int64 [N,4]: y = x * float(mask) [N,4], z = y @ W [N,2]
// with W = kMaskedW (row-major [4,2]).
inline const std::vector<float> kMaskedW = {0.5f, -1.f, 2.f, 0.25f, -0.75f, 1.5f, 1.f, -2.f};
inline OnnxBuilder maskedMatMulModel()
{
    OnnxBuilder b;
    b.input("x", {-1, 4});
    b.input("attention_mask", {-1, 4}, onnx::TensorProto::INT64);
    b.initializer("W", {4, 2}, kMaskedW);
    OnnxBuilder::intAttr(b.node("Cast", {"attention_mask"}, {"maskf"}, "cast"), "to", onnx::TensorProto::FLOAT);
    b.node("Mul", {"x", "maskf"}, {"y"}, "mul");
    b.node("MatMul", {"y", "W"}, {"z"}, "matmul");
    b.output("y", {-1, 4});
    b.output("z", {-1, 2});
    return b;
}

// input_ids int64 [N,5] -> Gather(E [vocab,3], ids) [N,5,3].
inline OnnxBuilder embeddingModel(int64_t vocab)
{
    OnnxBuilder b;
    b.input("input_ids", {-1, 5}, onnx::TensorProto::INT64);
    std::vector<float> e(std::size_t(vocab * 3));
    for (std::size_t i = 0; i < e.size(); ++i)
        e[i] = float(i);
    b.initializer("E", {vocab, 3}, e);
    b.node("Gather", {"E", "input_ids"}, {"emb"}, "embed");
    b.output("emb", {-1, 5, 3});
    return b;
}

// A recurrent-state shape as silero VAD has: x float [N,3], h float [2,N,3] (batch in
// the middle, named like x's), sr int64 scalar: hn = (h + x) * float(sr) [2,N,3].
inline OnnxBuilder stateModel()
{
    OnnxBuilder b;
    b.input("x", {-1, 3});
    b.input("h", {2, -1, 3});
    b.input("sr", {}, onnx::TensorProto::INT64);
    OnnxBuilder::intAttr(b.node("Cast", {"sr"}, {"srf"}, "cast"), "to", onnx::TensorProto::FLOAT);
    b.node("Add", {"h", "x"}, {"a"}, "add");
    b.node("Mul", {"a", "srf"}, {"hn"}, "mul");
    b.output("hn", {2, -1, 3});
    return b;
}

} // namespace qs::test
