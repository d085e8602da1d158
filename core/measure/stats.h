// Descriptive statistics of tensors: moments, outliers, histograms, per-channel ranges.
#pragma once

#include "graph/tensor.h"

#include <cstdint>
#include <utility>
#include <span>
#include <vector>

namespace qs {

struct TensorStats {
    int64_t count = 0;       // finite values
    int64_t nonFinite = 0;   // NaN and Inf values, excluded from everything else
    double min = 0, max = 0, mean = 0, std = 0;
    double kurtosis = 0;     // Pearson kurtosis: 3 for a normal distribution
    double outlierFraction = 0; // share of values with |x - mean| > 6 std
    double channelRangeRatio = 1; // max / median of per-channel ranges (1 when one channel)
};

TensorStats computeStats(std::span<const float> values);

// Per-channel (along `axis`) min, max and 99.9th percentile of |x|.
struct ChannelRanges {
    std::vector<float> min, max, absP999;
};
ChannelRanges channelRanges(std::span<const float> values, const Shape& shape, int axis);
// The same min and max (absP999 left empty) in one pass in memory order, no copy.
ChannelRanges channelMinMax(std::span<const float> values, const Shape& shape, int axis);
double rangeRatio(const ChannelRanges& r); // max / median of (max - min)

struct Histogram {
    double lo = 0, hi = 0;           // bin edges are lo + i * (hi - lo) / bins
    std::vector<uint64_t> counts;
    uint64_t below = 0, above = 0;   // values outside [lo, hi]

    int bins() const { return int(counts.size()); }
    double binWidth() const { return counts.empty() ? 0 : (hi - lo) / double(counts.size()); }
    void add(std::span<const float> values);
    uint64_t total() const;
};
Histogram makeHistogram(std::span<const float> values, int bins); // range = [min, max] of finite values

// Percentile (0..100) of |x| or of x by linear interpolation; copies and partially sorts.
double percentile(std::span<const float> values, double p);

// Wilson score interval of a proportion `p` observed on `n` samples at normal quantile
// `z` (1.96: 95 %), as (lo, hi) within [0, 1]; (0, 1) when n <= 0. Used for top-1 on
// a sample: 92 % of 1000 is [90.2, 93.5] %, of 256 is [88.0, 94.8] %.
std::pair<double, double> wilsonInterval(double p, int64_t n, double z = 1.96);

} // namespace qs
