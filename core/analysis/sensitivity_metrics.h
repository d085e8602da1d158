// Several sensitivity metrics side by side, and how far they agree: per layer the
// one-at-a-time output KL, the layer's own output SQNR, the HAWQ-V2 Hessian score
// and the weight kurtosis; Spearman rank correlation between every pair; and 95%
// bootstrap confidence intervals from resampling the calibration batches.
#pragma once

#include "analysis/sensitivity.h"

#include <string>
#include <vector>

namespace qs {

struct MetricsOptions {
    int bits = 4;           // the bit width every metric is measured at
    int bootstrap = 200;    // resamples (0: no intervals)
    uint64_t seed = 1;      // of the resampling
    int64_t limit = 256;    // samples
    int64_t batch = 32;     // a batch is the unit that is resampled
    int threads = 0;
    int hutchinsonSamples = 8;
    QuantConfig base;
    // Any of "oneshot", "local", "hessian", "kurtosis" (hessian also yields oneshot).
    std::vector<std::string> metrics = {"oneshot", "local", "hessian", "kurtosis"};
};

// One metric for every layer. `score` orients it so that higher means more
// sensitive (the local SQNR is negated); correlations are of scores.
struct MetricColumn {
    std::string name;    // "oneshot_kl", "local_sqnr_db", "hessian_score", "weight_kurtosis"
    std::string summary; // what it is, in words
    bool higherIsMoreSensitive = true;
    std::vector<double> value;  // per layer, in the metric's own unit
    std::vector<double> lo, hi; // 95% percentile bootstrap interval (== value when it needs no data)
    double score(std::size_t layer) const { return higherIsMoreSensitive ? value[layer] : -value[layer]; }
};

struct SensitivityAgreement {
    int bits = 4;
    std::vector<std::string> layers, ops;
    std::vector<MetricColumn> metrics;
    std::vector<std::vector<double>> spearman; // [i][j] over layers, between metrics i and j
    int bootstrap = 0;
    int64_t batches = 0, samples = 0;
    double seconds = 0;
};

SensitivityAgreement measureSensitivityAgreement(const Graph& graph, const Dataset& data,
    const MetricsOptions& options, Progress& progress, const CancelToken& cancel);

// The resamples behind the intervals: `replicates` draws of `batches` batch indices,
// uniform with replacement, from std::mt19937_64(seed) through
// std::uniform_int_distribution<int64_t>(0, batches - 1), row by row.
std::vector<std::vector<int64_t>> bootstrapDraws(int64_t batches, int replicates, uint64_t seed);

// The percentile interval [2.5%, 97.5%] of `values` (linear interpolation between order statistics).
std::pair<double, double> percentileInterval(std::vector<double> values);

} // namespace qs
