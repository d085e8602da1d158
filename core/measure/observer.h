// Streaming observation of one tensor over many batches, for calibration and
// activation statistics: nothing keeps every activation.
#pragma once

#include "graph/tensor.h"
#include "measure/stats.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace qs {

// What an observer keeps of one tensor over calibration: exact min/max, the
// histogram (exact counts, growing range) and each batch's min/max.
struct CalibrationData {
    double min = 0, max = 0;
    Histogram histogram;
    std::vector<std::pair<float, float>> batchRanges;
};

// Streams batches of one tensor: exact moments, a histogram whose range grows by
// merging bin pairs (so counts stay exact), per-batch and per-channel ranges.
class ActivationObserver {
public:
    explicit ActivationObserver(int bins = 2048) : bins_(bins) {}
    void observe(const Tensor& batch);
    TensorStats stats() const;
    const CalibrationData& calibration() const { return data_; }
    const std::vector<float>& channelMin() const { return chMin_; }
    const std::vector<float>& channelMax() const { return chMax_; }

private:
    void grow(double lo, double hi);
    int bins_;
    CalibrationData data_;
    int64_t count_ = 0, nonFinite_ = 0;
    double shift_ = 0, s1_ = 0, s2_ = 0, s3_ = 0, s4_ = 0; // power sums of (x - shift)
    std::vector<float> chMin_, chMax_;
};

} // namespace qs
