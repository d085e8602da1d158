// What the runtime's INT8 layers need, shared by the session's lowering
// (int8_lowering.cpp) and the re-import of exported QDQ models (export/qdq_lowering.cpp).
#pragma once

#include "graph/graph.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace qs {

// Why node `n` (weight `weight`) cannot run as a oneDNN int8 primitive whatever its
// quantization: op type, Gemm transA, MatMul without a constant 2-D right operand
// ("" when it can).
std::string int8StructureObstacle(const Graph& g, const Node& n, const std::string& weight);

// Why the weights an algorithm (quant/algorithms/) leaves cannot be lowered to INT8 ("" when
// they can): SpQR's float outliers and the FP8 formats are on no int8 grid. FP4 E2M1 is
// (its values are multiples of half its scale, at most 12 of them).
std::string int8AlgorithmObstacle(const std::string& algorithm);

// A float bias in accumulator units (input scale x weight scale, one weight scale or
// one per output channel), with Gemm's alpha and beta folded in; rounded, saturated.
// Throws naming `layer` when the bias has not one element per output channel.
std::vector<int32_t> int8Bias(const Node& n, std::span<const float> bias, float inputScale,
    const std::vector<float>& weightScales, int64_t outChannels, const std::string& layer);

} // namespace qs
