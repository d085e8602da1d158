// Weight-only quantization statistics of a raw weight tensor (a checkpoint entry, no
// graph): kurtosis and the SQNR of symmetric round-to-nearest W4/W3 per tensor and
// per group along the input dimension. Weights are taken as PyTorch stores linear
// layers: [out, in] (higher ranks as [dim 0, everything else]).
#pragma once

#include "graph/tensor.h"
#include "measure/stats.h"

#include <span>

namespace qs {

struct WeightQuantStats {
    TensorStats stats;
    int64_t rows = 0, cols = 0; // the [out, in] view
    int groupSize = 0;
    bool grouped = false;       // cols is a multiple of groupSize (else the group columns are NaN)
    double w4TensorDb = 0, w4GroupDb = 0, w3TensorDb = 0, w3GroupDb = 0;
};

// Throws Error for tensors of rank < 2 or with a non-finite value.
WeightQuantStats weightQuantStats(std::span<const float> w, const Shape& shape, int groupSize);

} // namespace qs
