// An exported QDQ model taken apart again: the float graph that its QuantizeLinear /
// DequantizeLinear nodes wrap, and the quantization they state. From it come two
// Plans of the same graph: the QDQ model executed as written in float (fake quant,
// as ONNX Runtime without graph optimizations) and the real INT8 execution of every
// layer whose weight and input are quantized (runtime/ops/int8.cpp), which is what a
// deployment runs.
#pragma once

#include "graph/graph.h"
#include "quant/quantizer.h"
#include "runtime/input_shapes.h"
#include "runtime/plan.h"

#include <map>
#include <string>
#include <vector>

namespace qs {

// A weight as DequantizeLinear states it.
struct QdqWeight {
    std::string tensor;         // the float weight's name in the lowered graph
    Shape shape;                // of the float weight
    std::vector<int32_t> codes; // in the float weight's element order
    std::vector<float> scales;  // one, or one per slice along `axis`
    std::vector<int32_t> zeroPoints;
    int axis = -1; // of the float weight; -1 per tensor or blocks (grouped)
    bool isSigned = true;
    bool grouped = false; // stored as [blocks, len] and reshaped
};

struct QdqLayer {
    std::string name, op, weight, input; // input: the activation quantized at its input ("" when float)
    bool weightQuantized = false, inputQuantized = false;
};

struct QdqLowered {
    Graph graph;                                 // float graph: QDQ nodes removed, weights dequantized
    std::map<std::string, QParams> activations;  // value -> its grid (Clip-narrowed where the file clips)
    std::map<std::string, QdqWeight> weights;    // by float weight name
    std::vector<QdqLayer> layers;                // quantizable layers, graph order
    std::map<std::string, std::string> metadata; // of the QDQ file

    // The QDQ model as written: dequantized weights, fake quant on every quantized value.
    CompileOptions simulated(const InputShapes& inputShape) const;
    // Real INT8 for every layer whose weight and input are quantized; layers quantized
    // otherwise run as written. A layer whose quantization has no INT8 kernel (affine or
    // group-wise weights, activations narrower than 8 bits) throws an Error naming it,
    // or, with `notInt8`, runs as written and gets its reason recorded there.
    CompileOptions int8(const InputShapes& inputShape, std::map<std::string, std::string>* notInt8 = nullptr) const;

private:
    void addInt8Layer(const QdqLayer& l, CompileOptions& co) const; // throws naming the layer
};

// Throws Error naming `label` and the node when a Q/DQ pattern is not one it can take
// apart (per-axis activations, a QuantizeLinear not followed by its DequantizeLinear,
// non-constant scales).
QdqLowered lowerQdqModel(const Graph& qdq, const std::string& label);

} // namespace qs
