// Quantized ONNX in QDQ form: integer weights behind DequantizeLinear (per channel
// along the layer's output axis), QuantizeLinear/DequantizeLinear on every quantized
// activation, float parts as they were. Mirrors QuantSession's simulation exactly.
// A grid narrower than its storage type (4-bit, symmetric [-127, 127]) is clamped by a
// Clip after the DequantizeLinear: ONNX Runtime's optimizer mishandles one in front of
// the QuantizeLinear (tests/export: 168 of 200 agreeing at A4, 200 with it after).
#pragma once

#include "export/opset_upgrade.h"
#include "graph/graph.h"
#include "quant/session.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qs {

struct QdqLayerInfo {
    std::string layer, weight;
    int weightBits = 32, actBits = 32; // the true bit widths (storage may be wider)
    int64_t blocks = 0;                // scales of the weight
    int64_t trueBits = 0;              // weight at its real bit width, scales and zero points included
    int64_t storedBits = 0;            // as stored in the ONNX file (int8 containers)
};

struct QdqModel {
    Graph graph;
    std::vector<QdqLayerInfo> layers;
    int64_t trueSizeBits = 0;   // whole model at the real bit widths (QuantSession::sizeBits)
    int64_t storedSizeBits = 0; // whole model as the ONNX file stores the tensors
    OpsetUpgrade upgrade;       // what was upgraded to reach opset 13 (also in metadata_props)
};

// Weights below 8 bits are stored as int8/uint8 on their low-bit grid (opset 13: the
// libonnx checker here knows no INT4 and no opset 21); the true widths go to
// metadata_props "quantstudio.weight_bits" / "quantstudio.activation_bits" (JSON by
// layer). A model below opset 13 is upgraded first (export/opset_upgrade.h; an op the
// converter cannot carry is an error naming it). Throws Error when a layer's weight
// cannot be expressed (group granularity across non-contiguous blocks). `inputShapes`
// (the calibration data's, Dataset::inputShapes) help the upgrade where import could
// not infer a value's rank.
QdqModel buildQdqModel(const QuantSession& session, const std::map<std::string, Shape>& inputShapes = {});

// onnx::checker::check_model (full check) on serialized bytes; throws Error with the
// checker's message, prefixed by `what`.
void checkOnnxBytes(const std::string& bytes, const std::string& what);

} // namespace qs
