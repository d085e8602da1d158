// Activation statistics of every quantizable layer's input and output over a dataset
// (measure/activations.h streams them): moments, a histogram, per-channel ranges, and
// the clipping range each registered calibrator would choose.
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "jobs/progress.h"
#include "measure/activations.h"
#include "measure/observer.h"
#include "measure/stats.h"
#include "quant/calibrator.h"

#include <map>
#include <string>
#include <vector>

namespace qs {

struct ActivationProfile {
    std::string layer;           // node name of the quantizable layer
    std::string value;           // tensor name (the layer's output, or its input when role == "input")
    std::string role;            // "input" or "output"
    TensorStats stats;           // exact count/min/max/mean/std/kurtosis; outliers from the histogram
    CalibrationData calibration; // histogram (range grows as needed, counts exact) and batch ranges
    std::vector<float> channelMin, channelMax; // along axis 1 (NCHW / [N, C])
    std::map<std::string, ClipRange> clipRanges; // calibrator name -> range it chooses (8-bit affine)
};

// Profiles every quantizable layer's input and output over `data`, with the range
// each registered calibrator chooses (8-bit, affine).
std::vector<ActivationProfile> profileActivations(const Graph& graph, const Dataset& data,
                                                  const ProfileOptions& options, Progress& progress,
                                                  const CancelToken& cancel);

} // namespace qs
