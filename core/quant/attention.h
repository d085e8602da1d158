// Attention operands as quantization points: the inputs of the activation-by-activation
// MatMuls of decomposed attention (Q and K of Q x K^T, P and V of P x V, with the
// past keys/values a KV-cache export concatenates in), their calibration per tensor,
// head or channel, and their fake quantization (per token: dynamic, as KIVI's values).
#pragma once

#include "graph/graph.h"
#include "measure/observer.h"
#include "quant/calibrator.h"
#include "quant/quantizer.h"
#include "quant/spec.h"

#include <string>
#include <vector>

namespace qs {

struct AttentionPoint {
    std::string name;  // "<MatMul node>:Q" (:K, :V, :P)
    std::string node;  // the MatMul
    std::string value; // the MatMul input the point quantizes (K^T for K)
    OperandRole role = OperandRole::Q;
    int input = 0;     // which input of the MatMul
    std::string cache; // K, V: the graph input of past keys/values concatenated in ("" when none)
};

// A node that looks like attention but whose operands cannot be mapped, and why.
struct UnmappedAttention {
    std::string node, op, reason;
};

struct AttentionPatterns {
    std::vector<AttentionPoint> points; // graph order, Q K before P V of the same block
    std::vector<UnmappedAttention> unmapped;
};

// Q x K^T: a MatMul of two activations whose output reaches a Softmax through
// elementwise scaling/masking; P x V: a MatMul of two activations whose first input
// comes from a Softmax. Fused attention operators, Einsum of two activations and other
// MatMuls of two activations are listed as unmapped with the reason.
AttentionPatterns findAttentionOperands(const Graph& g);

// The axes of an operand of rank `rank` as the MatMul reads it: the token axis, the
// channel axis (the head dimension; for P the key positions) and the head axis (-3 of a
// rank >= 4 operand, else -1). K is read transposed: [.., dim, tokens].
struct OperandAxes {
    int token = -1, channel = -1, head = -1;
};
OperandAxes operandAxes(OperandRole role, int rank);

// The axis whose slices get their own range for a static granularity (-1: per tensor).
// Throws naming the point when its operand of `shape` has no such axis (per head on a
// rank-3 operand, per channel of P) or the granularity is not static (per token).
int staticSliceAxis(const AttentionPoint& p, OperandGranularity g, const Shape& shape);

// Calibration of one point: an observer per slice of its static granularity.
class OperandObserver {
public:
    OperandObserver(AttentionPoint point, OperandGranularity granularity);
    void observe(const Tensor& t);
    const std::vector<ActivationObserver>& slices() const { return slices_; }
    const AttentionPoint& point() const { return point_; }
    int rank() const { return int(firstShape_.size()); }

private:
    AttentionPoint point_;
    OperandGranularity granularity_;
    std::vector<ActivationObserver> slices_;
    Shape firstShape_;
};

struct OperandQuant {
    AttentionPoint point;
    OperandSpec spec;
    int rank = 0;                  // the operand's rank as calibrated (0: per token, not observed)
    std::vector<QParams> params;   // static granularities: one per slice
    std::vector<ClipRange> ranges; // the calibrated ranges behind params
};

// The quantization of a point from its observation: the spec's calibrator on each
// slice. Per token needs no observation (min-max of each token at run time) and takes
// only the minmax calibrator.
OperandQuant chooseOperandQuant(const AttentionPoint& point, const OperandSpec& spec, const OperandObserver* observed);

// Quantize-dequantize an operand in place. Throws naming the point when the tensor's
// slice count differs from the calibrated one.
void fakeQuantOperand(Tensor& t, const OperandQuant& q);

} // namespace qs
