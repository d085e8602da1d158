// The samples behind the numbers: which inputs a sensitive layer hurts most when it
// alone is quantized, and, for one sample, how the quantization error grows layer by
// layer along the graph.
#pragma once

#include "analysis/sensitivity.h"

#include <optional>
#include <string>
#include <vector>

namespace qs {

struct SampleOptions {
    int bits = 4;                    // weight bits (and activation bits in Activations/Both mode)
    SensitivityMode mode = SensitivityMode::Weights;
    QuantConfig base;                // granularity, symmetry, calibrator
    int64_t calibLimit = 256;        // calibration samples (activation ranges)
    int64_t limit = -1;              // samples examined (< 0: all)
    int64_t batch = 32;
    int threads = 0;
};

struct SampleDivergence {
    int64_t index = 0;
    double kl = 0; // KL(softmax FP32 || softmax quantized), nats
    int64_t fp32Class = 0, quantClass = 0;
    std::optional<int64_t> label;
};

// Every sample's output KL with only `layer` quantized (as sensitivity's one-shot
// mode does), the `top` largest first (ties: lower index first).
std::vector<SampleDivergence> divergentSamples(const Graph& graph, const Dataset& data, const std::string& layer,
    int64_t top, const SampleOptions& options, Progress& progress, const CancelToken& cancel);

// Class names from the model's metadata (quantstudio.classes = "name0,name1,..."),
// empty when it has none; classLabel gives a class's name, or its index.
std::vector<std::string> classNames(const Graph& graph);
std::string classLabel(const std::vector<std::string>& names, int64_t c);

struct TracePoint {
    std::string layer, op, value; // value: the layer's output
    double sqnrDb = 0;            // that value in the quantized model vs FP32, this sample
};

struct SampleTrace {
    int64_t index = 0;
    std::optional<int64_t> label;
    int64_t fp32Class = 0, quantClass = 0;
    double outputKl = 0, outputSqnrDb = 0;
    std::vector<TracePoint> layers; // graph order
};

// Samples the model quantized with every layer at options.bits (weights; activations
// 8-bit unless the mode says otherwise) classifies wrongly while FP32 is right, in
// index order, with both classes and the output KL (needs labels).
std::vector<SampleDivergence> flippedSamples(const Graph& graph, const Dataset& data, const SampleOptions& options,
    Progress& progress, const CancelToken& cancel);

// One sample through FP32 and the quantized model of flippedSamples(): each quantized
// layer's output SQNR against FP32, and the output's.
SampleTrace traceSample(const Graph& graph, const Dataset& data, int64_t index, const SampleOptions& options,
    Progress& progress, const CancelToken& cancel);

} // namespace qs
