// Uniform integer quantization: ranges to (scale, zero point), and the quantize-
// dequantize ("fake quant") of tensors per tensor, per channel or per group.
#pragma once

#include "graph/tensor.h"
#include "quant/spec.h"

#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

namespace qs {

struct QParams {
    float scale = 1;
    int32_t zeroPoint = 0;
    int32_t qmin = -127, qmax = 127;
};

// Symmetric: signed restricted grid [-(2^(b-1)-1), 2^(b-1)-1], zero point 0,
// scale = max(|lo|, |hi|) / qmax. Affine: unsigned [0, 2^b - 1] over [min(lo,0), max(hi,0)],
// zero point = round(-lo / scale). A degenerate range gives scale 1 (nothing to resolve).
QParams qparamsFor(float lo, float hi, int bits, bool symmetric);

// The integer code of x on q's grid (as a float): round half to even, clamp.
inline float quantCode(float x, const QParams& q)
{
    const float v = std::nearbyint(x / q.scale) + float(q.zeroPoint);
    return v < float(q.qmin) ? float(q.qmin) : v > float(q.qmax) ? float(q.qmax) : v;
}

// Round half to even, clamp, dequantize.
inline float fakeQuant(float x, const QParams& q)
{
    return (quantCode(x, q) - float(q.zeroPoint)) * q.scale;
}

// How a weight tensor is split into quantization blocks: the block index of every
// element, and one QParams per block.
struct WeightQuantization {
    std::vector<QParams> params;      // per block
    std::vector<int32_t> blockOf;     // per element
    int64_t blocks() const { return int64_t(params.size()); }
};

// How many blocks (scales) `spec` splits a weight of `shape` into: 1 per tensor, one per
// output channel, or per output channel and group of input channels. Needs no values.
int64_t weightBlockCount(const Shape& shape, int outAxis, int inAxis, const QuantSpec& spec);

// Blocks for `spec` on a weight of `shape` with output channels along `outAxis` and
// input channels along `inAxis` (for groups). Ranges are each block's min/max
// unless spec.range is set.
WeightQuantization planWeightQuantization(std::span<const float> w, const Shape& shape, int outAxis, int inAxis,
                                          const QuantSpec& spec);

// Quantize-dequantize a weight; stochastic rounding uses `seed`.
std::vector<float> fakeQuantWeight(std::span<const float> w, const Shape& shape, int outAxis, int inAxis,
                                   const QuantSpec& spec, uint64_t seed = 0);

// The same on a given plan (blocks and their grids).
std::vector<float> fakeQuantWeight(std::span<const float> w, const WeightQuantization& plan, Rounding rounding,
                                   uint64_t seed = 0);

// Bits actually stored for a weight under `spec`: elements x bits, plus a 32-bit
// scale per block and a zero point (of `bits`) per block when affine.
int64_t storedBits(int64_t elements, int64_t blocks, const QuantSpec& spec);

} // namespace qs
