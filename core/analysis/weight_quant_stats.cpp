#include "analysis/weight_quant_stats.h"

#include "measure/fidelity.h"
#include "quant/quantizer.h"
#include "util/error.h"

#include <cmath>

namespace qs {

WeightQuantStats weightQuantStats(std::span<const float> w, const Shape& shape, int groupSize)
{
    if (shape.size() < 2)
        fail("weight of shape ", shapeString(shape), ": quantization statistics need at least 2 dimensions");
    if (groupSize < 1)
        fail("group size ", groupSize, " must be at least 1");
    WeightQuantStats r;
    r.stats = computeStats(w);
    r.rows = shape[0];
    r.cols = r.rows > 0 ? int64_t(w.size()) / r.rows : 0;
    r.groupSize = groupSize;
    r.grouped = r.cols > 0 && r.cols % groupSize == 0;
    const Shape view {r.rows, r.cols};
    auto sqnr = [&](int bits, Granularity g) {
        QuantSpec s;
        s.bits = bits;
        s.granularity = g;
        s.groupSize = groupSize;
        const std::vector<float> q = fakeQuantWeight(w, view, 0, 1, s);
        return sqnrDb(w.data(), q.data(), w.size());
    };
    r.w4TensorDb = sqnr(4, Granularity::Tensor);
    r.w3TensorDb = sqnr(3, Granularity::Tensor);
    r.w4GroupDb = r.grouped ? sqnr(4, Granularity::Group) : NAN;
    r.w3GroupDb = r.grouped ? sqnr(3, Granularity::Group) : NAN;
    return r;
}

} // namespace qs
