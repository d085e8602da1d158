// The mixed-precision search on the measured-latency axis, shared by `quantstudio-cli
// mixed --cost latency` and the studio's Pareto panel: per-layer options whose cost is
// measured time (integer nanoseconds) with a float option per layer and the precision
// boundaries of the layer chain, and how a front point maps back to a configuration.
#pragma once

#include "analysis/bit_budget.h"
#include "analysis/latency.h"
#include "analysis/mixed_precision.h"
#include "analysis/sensitivity.h"
#include "quant/spec.h"
#include "store/records.h"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace qs {

constexpr double kLatencyNsPerMs = 1e6; // LayerOptions / FrontPoint costs on the latency axis are ns
constexpr int kFloatBits = 32;          // the float option of a layer on the latency axis

// The relative noise of each layer's input quantized to 8 bits, from an activation
// sweep (layerNoise at 8 bits; a layer without a curve adds none).
std::map<std::string, double> inputNoiseAt8(const SensitivityResult& activations);

// `layers` (mixedLayerOptions() of the same model) recast on the latency axis: each integer
// option costs the layer's measured INT8 time and adds its input's noise (`inputNoise`),
// a float option (kFloatBits, the layer's FP32 time, no noise) is added, and the
// quantize/dequantize of the layer's boundaries become enter/exit costs along the chain
// of `links`. A layer without an INT8 kernel keeps only the float option; a layer missing
// from `profile` is an error naming it.
std::vector<LayerOptions> latencyLayerOptions(std::vector<LayerOptions> layers, const ModelSizeTable& sizes,
    const LatencyProfile& profile, const LayerLinks& links, const QuantConfig& base,
    const std::map<std::string, double>& inputNoise);

// `c` allowing the float option the latency axis has per layer (c.maxBits, which the
// caller chooses, must reach kFloatBits for it to stay).
MixedConstraints withFloatOption(MixedConstraints c);

// The Pareto front on the latency axis (paretoFront of the options above, constrained).
std::vector<FrontPoint> latencyFront(const ModelSizeTable& sizes, const SensitivityResult& sensitivity,
    const std::vector<int>& bits, const QuantConfig& base, const LatencyProfile& profile, const LayerLinks& links,
    const std::map<std::string, double>& inputNoise, const MixedConstraints& constraints);

// The chain latency a front point's cost stands for: FrontPoint::cost plus the kernels
// outside the quantizable layers. The whole graph's prediction is predictLatencyMs().
double chainLatencyMs(const LatencyProfile& profile, const FrontPoint& p);
// A budget in ms as a FrontPoint::cost bound (the other kernels are fixed).
int64_t latencyBudgetCost(const LatencyProfile& profile, double budgetMs);

// The layers a front point runs in INT8 (integer bits; the float option is >= 16).
std::set<std::string> int8Layers(const FrontPoint& p);
// The layers of `layers` that `config` runs in INT8: not excluded, integer weight bits and
// 8-bit (or narrower) activations.
std::set<std::string> int8Layers(const QuantConfig& config, const std::vector<std::string>& layers);
// `base` with a front point's integer weight bits, its float layers excluded and its
// attention operands at their bits (withOperandBits).
QuantConfig configForPoint(const QuantConfig& base, const FrontPoint& p);

} // namespace qs
