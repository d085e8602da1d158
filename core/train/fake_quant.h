// Fake quantization for training: the forward is quant/quantizer.h's fakeQuant; the
// backward passes the gradient straight through inside the grid and stops it outside
// (STE), and gives the gradient of the scale as LSQ does (Esser et al. 2019, "Learned
// Step Size Quantization", eq. 3), with the zero point held fixed.
#pragma once

#include "quant/quantizer.h"

#include <cstdint>
#include <span>

namespace qs::train {

// y = fakeQuant(x, q), element by element.
void fakeQuantForward(std::span<const float> x, const QParams& q, std::span<float> y);

// Adds dL/dx (dy where x's code is inside [qmin, qmax], else 0) into dx (when not
// empty) and returns dL/ds: the sum of dy times round(x/s) - x/s inside the grid,
// qmin - z below it, qmax - z above it. Accumulates in double.
double fakeQuantBackward(std::span<const float> x, const QParams& q, std::span<const float> dy, std::span<float> dx);

// LSQ's gradient scale for a quantizer of `elements` values with `qmax` positive
// levels: 1 / sqrt(elements * qmax).
float lsqGradScale(int64_t elements, int32_t qmax);

} // namespace qs::train
