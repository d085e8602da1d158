// What a bit-width configuration costs and is predicted to lose: the stored model size
// from the weight shapes alone (no values needed, so cheap enough to follow every edit),
// the output noise predicted from per-layer sensitivity curves, and the per-layer
// options the mixed-precision search (mixed_precision.h) runs on.
#pragma once

#include "analysis/mixed_precision.h"
#include "analysis/sensitivity.h"
#include "graph/tensor.h"
#include "quant/spec.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qs {

class Graph;
class QuantSession;

struct LayerShape {
    std::string layer;  // node name
    Shape weightShape;
    int outAxis = 0, inAxis = 1;
    int64_t elements = 0;
};

// An attention operand (quant/attention.h) as the search prices it: what one token adds
// to it, and whether a KV cache keeps it for every past token (K and V do; Q and P are
// transient and cost nothing on the size axis).
struct OperandShape {
    std::string point; // "<MatMul>:K"
    OperandRole role = OperandRole::Q;
    int64_t tokenElements = 0; // per token of one sequence (heads x head dim); 0: not known statically
    int64_t heads = 1;         // ranges per token when quantized per token
    bool cached = false;       // K, V
};

struct ModelSizeTable {
    std::vector<LayerShape> layers; // the quantized layers, as QuantSession sees them
    int64_t otherBits = 0;          // every other initializer (biases, ...) at its stored float size
    int64_t floatBits = 0;          // the whole model in float
    // Attention operands, graph order; per-token sizes from the graph's shapes, else from
    // a plan compiled for one token (every unknown input dim 1).
    std::vector<OperandShape> operands;
    // Tokens the KV cache is sized for: the operands' static token count, else the
    // model's quantstudio.context metadata; 0 when neither says (callers ask for it).
    int64_t kvContext = 0;

    // Bits of one operand's KV cache over kvContext tokens at `spec` (float: 32 bits an
    // element; ranges included: per token one per head and token, else one per slice);
    // 0 for operands no cache keeps.
    int64_t operandBits(const OperandShape& o, const OperandSpec& spec) const;
    // Elements of one operand's KV cache (0 for Q and P).
    int64_t operandElements(const OperandShape& o) const;

    // Stored bits of one layer's weight under `weight` (scales and zero points included).
    int64_t layerBits(const LayerShape& l, const QuantSpec& weight) const;
    // The whole model under `config`, as QuantSession::sizeBits() counts it (excluded layers stay float).
    int64_t sizeBits(const QuantConfig& config) const;
};

// From a session's working graph (BatchNorm folded): the same numbers its sizeBits() gives.
ModelSizeTable modelSizeTable(const QuantSession& session);
ModelSizeTable modelSizeTable(const Graph& graph);

// The operands' per-token sizes from a plan compiled for `inputShapes` (one sample
// suffices), for exports whose heads and head dim come from Shape ops and stay symbolic
// in the graph; kvContext, when still unknown, becomes the token count of those shapes.
void resolveOperandShapes(
    ModelSizeTable& table, const QuantSession& session, const std::map<std::string, Shape>& inputShapes);

// Relative output noise power (10^(-SQNR/10)) of a layer quantized alone at `bits`, from its
// sensitivity curve. Float bits (>= 16) add none; bits between measured ones are interpolated
// linearly in dB; beyond the curve the nearest measured end is used. A non-finite SQNR
// (no error at all) is no noise. Returns a negative value when the curve is empty.
double layerNoise(const LayerSensitivity& layer, int bits);

struct ErrorPrediction {
    double noise = 0;          // sum over layers (noise powers add for independent errors)
    double sqnrDb = 0;         // -10 log10(noise); +inf when no noise is predicted
    int layersPredicted = 0;   // layers with a curve
    int layersMissing = 0;     // quantized layers the sensitivity result has no curve for
    int interpolated = 0;      // layers whose bits were not measured exactly
};

// The bits a sensitivity mode measured for a layer: weight bits for weights, activation
// bits for activations, and the lower of both when both were quantized together.
int sensitivityBits(SensitivityMode mode, const LayerQuant& q);

// Predicted output SQNR of `config` from `sensitivity` (the sum-of-noise model the Pareto front
// uses): the layers of `layers`, and the attention operands the sensitivity has curves for.
ErrorPrediction predictError(const SensitivityResult& sensitivity, const QuantConfig& config,
    const std::vector<std::string>& layers);

// Per-layer options for paretoFront(): for every layer of `sizes` and each of `bits`, the
// stored size of its weight at those bits (on the base spec) and the predicted noise.
// cost is the stored size, or elements x bits when `byAverageBits`.
std::vector<LayerOptions> mixedLayerOptions(const ModelSizeTable& sizes, const SensitivityResult& sensitivity,
    const std::vector<int>& bits, const QuantConfig& base, bool byAverageBits);

// Options for the attention operands that `sensitivity` has curves for (entries named
// "<MatMul>:K", measured with SensitivityOptions::attention): each of `bits` plus float,
// priced by their KV cache (operandBits, or elements x bits when `byAverageBits`) on
// the spec `base` gives the point (its granularity, symmetry, calibrator).
std::vector<LayerOptions> mixedOperandOptions(const ModelSizeTable& sizes, const SensitivityResult& sensitivity,
    const std::vector<int>& bits, const QuantConfig& base, bool byAverageBits);

// `base` with the given weight bits per layer.
QuantConfig configForBits(const QuantConfig& base, const std::map<std::string, int>& weightBits);

// `config` with the given bits per attention operand point (>= 16: float), each on the
// spec the point has in `config` (its override, else its role's).
QuantConfig withOperandBits(QuantConfig config, const std::map<std::string, int>& operandBits);

} // namespace qs
