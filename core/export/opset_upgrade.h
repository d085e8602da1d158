// Upgrading a model to a newer ai.onnx opset with libonnx's version converter, so
// exporters that need opset 13 (per-axis DequantizeLinear) accept models exported at
// opsets 7 to 12 (paddle2onnx, tf2onnx).
//
//   OpsetUpgrade up;
//   Graph g13 = upgradeOpset(model, 13, &up); // up.from == 9, up.ops == {"Clip", "Slice", ...}
#pragma once

#include "graph/graph.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qs {

struct OpsetUpgrade {
    int64_t from = 0, to = 0;     // equal when nothing was upgraded
    std::vector<std::string> ops; // op types of the model whose definition changed on the way

    bool upgraded() const { return from != to; }
    std::string text() const; // "opset 9 -> 13 (Clip, Slice)", or "" when not upgraded
};

// `g` itself when its ai.onnx opset is at least `target`, else the converted model,
// re-imported (node and value names kept; constants the converter adds become
// initializers). An op the converter cannot carry over is an error naming it.
// Softmax, LogSoftmax and Hardmax before opset 13 need their input's rank: where import
// could not infer it, a plan compiled for `inputShapes` (Dataset::inputShapes) gives it.
Graph upgradeOpset(const Graph& g, int64_t target, OpsetUpgrade* record = nullptr,
    const std::map<std::string, Shape>& inputShapes = {});

} // namespace qs
