// Transformer outlier inspection: at every linear layer (Gemm, MatMul with a constant
// weight) the input's per-channel max |x| over all tokens (outlier feature channels,
// Dettmers et al. 2022, LLM.int8()), its per-token max |x| (massive activations, Sun et
// al. 2024), and the kurtosis of the layer's weight; streamed over a dataset.
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "jobs/progress.h"

#include <string>
#include <vector>

namespace qs {

struct LinearInputOutliers {
    std::string layer, op;
    std::string input;                 // the value observed (the layer's activation input)
    int64_t channels = 0;              // input features (the last axis)
    int64_t positions = 0;             // rows of the input per sample (tokens of a sequence)
    int64_t tokens = 0;                // rows observed in all
    std::vector<float> channelMaxAbs;  // [channels]: max over every token of |x_c|
    std::vector<float> channelMeanAbs; // [channels]: mean over every token of |x_c|
    std::vector<float> positionMaxAbs; // [positions]: max over samples and channels of |x| at that position
    float tokenMaxAbs = 0;             // the largest |x| of any token
    float tokenMedianMaxAbs = 0;       // median over tokens of a token's max |x|
    int64_t peakPosition = 0, peakChannel = 0; // where the largest |x| sat
    double weightKurtosis = 0;         // Pearson kurtosis (3 for a normal) of the layer's weight
    double weightMaxOverStd = 0;

    // max / median of channelMaxAbs: how far the worst channel sticks out.
    double channelOutlierRatio() const;
    // tokenMaxAbs / tokenMedianMaxAbs: how massive the largest activation is.
    double massiveRatio() const;
    // Indices of the k channels with the largest max |x|, largest first.
    std::vector<int64_t> topChannels(int k) const;
};

struct OutlierOptions {
    int64_t batch = 8;
    int64_t limit = 64; // samples (< 0: all)
    int threads = 0;
};

// Runs the FP32 model over `data` and profiles the input of every Gemm/MatMul layer
// with a constant weight (graph order). Checks `cancel` between batches.
std::vector<LinearInputOutliers> profileLinearOutliers(const Graph& graph, const Dataset& data,
    const OutlierOptions& options, Progress& progress, const CancelToken& cancel);

} // namespace qs
