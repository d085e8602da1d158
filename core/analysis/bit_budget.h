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

struct ModelSizeTable {
    std::vector<LayerShape> layers; // the quantized layers, as QuantSession sees them
    int64_t otherBits = 0;          // every other initializer (biases, ...) at its stored float size
    int64_t floatBits = 0;          // the whole model in float

    // Stored bits of one layer's weight under `weight` (scales and zero points included).
    int64_t layerBits(const LayerShape& l, const QuantSpec& weight) const;
    // The whole model under `config`, as QuantSession::sizeBits() counts it (excluded layers stay float).
    int64_t sizeBits(const QuantConfig& config) const;
};

// From a session's working graph (BatchNorm folded): the same numbers its sizeBits() gives.
ModelSizeTable modelSizeTable(const QuantSession& session);
ModelSizeTable modelSizeTable(const Graph& graph);

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

// Predicted output SQNR of `config` from `sensitivity` (the sum-of-noise model the Pareto front uses).
ErrorPrediction predictError(const SensitivityResult& sensitivity, const QuantConfig& config,
    const std::vector<std::string>& layers);

// Per-layer options for paretoFront(): for every layer of `sizes` and each of `bits`, the
// stored size of its weight at those bits (on the base spec) and the predicted noise.
// cost is the stored size, or elements x bits when `byAverageBits`.
std::vector<LayerOptions> mixedLayerOptions(const ModelSizeTable& sizes, const SensitivityResult& sensitivity,
    const std::vector<int>& bits, const QuantConfig& base, bool byAverageBits);

// `base` with the given weight bits per layer.
QuantConfig configForBits(const QuantConfig& base, const std::map<std::string, int>& weightBits);

} // namespace qs
