// Calibration diagnostics: how each calibrator's activation range converges with
// the number of calibration samples, the smallest calibration set that is within a
// tolerance of the full set's ranges, and whether the calibration and evaluation
// data differ in distribution (input channel moments, a two-sample KS statistic on
// the first layer's outputs).
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "jobs/progress.h"

#include <optional>
#include <string>
#include <vector>

namespace qs {

struct CalibDiagOptions {
    std::vector<int64_t> sizes; // empty: 8, 16, 32, ... below the set's size, then the whole set
    double tolerance = 0.02;    // relative range change counted as converged
    int bits = 8;
    bool symmetric = false;     // as activations are calibrated by default (8-bit affine)
    int64_t limit = -1;         // calibration samples (< 0: all)
    int64_t batch = 32;
    int threads = 0;
    // Distribution shift between calibration and evaluation data.
    double ksThreshold = 0.1;         // two-sample KS statistic D on the first layer's outputs
    double meanShiftThreshold = 0.25; // |mean difference| / pooled std, per input channel
    double stdRatioThreshold = 1.25;  // max(std ratio, 1 / std ratio), per input channel
    int64_t ksMaxValues = 200000;     // per set: every k-th value of the first layer's outputs
};

struct RangeAtSize {
    int64_t samples = 0;
    float lo = 0, hi = 0;
    // max(|lo - lo_full|, |hi - hi_full|) / (hi_full - lo_full): 0 at the full set
    double relChange = 0;
};

struct CalibratorConvergence {
    std::string calibrator;
    std::vector<std::vector<RangeAtSize>> ranges; // [layer][size], layers as CalibDiagnostics::layers
    // Smallest size from which every layer stays within the tolerance; the full set
    // when only it is (then more data may still move the ranges).
    int64_t recommended = 0;
    std::string worstLayer;  // the layer that needed the most samples
};

struct ChannelShift {
    int channel = 0;
    double calMean = 0, calStd = 0, evalMean = 0, evalStd = 0;
    double meanShift = 0; // |calMean - evalMean| / pooled std
    double stdRatio = 1;  // max(evalStd / calStd, calStd / evalStd)
};

struct DistributionShift {
    std::vector<ChannelShift> channels; // of the model input, after normalization
    std::string ksValue;                // the first layer's output value the KS statistic is on
    double ks = 0;
    int64_t ksCalValues = 0, ksEvalValues = 0;
    bool warning = false;
    std::vector<std::string> reasons; // why the warning is raised, one line each
};

struct CalibDiagnostics {
    std::vector<std::string> layers; // quantizable layers whose input is calibrated
    std::vector<std::string> values; // the input value of each layer
    std::vector<int64_t> sizes;
    double tolerance = 0;
    std::vector<CalibratorConvergence> calibrators; // every registered calibrator
    int64_t recommended = 0; // the largest recommendation over the calibrators
    std::optional<DistributionShift> shift; // when evaluation data were given
};

CalibDiagnostics diagnoseCalibration(const Graph& graph, const Dataset& calib, const Dataset* eval,
    const CalibDiagOptions& options, Progress& progress, const CancelToken& cancel);

// Two-sample Kolmogorov-Smirnov statistic: sup |F_a(x) - F_b(x)| of the empirical CDFs.
double ksStatistic(std::vector<float> a, std::vector<float> b);

} // namespace qs
