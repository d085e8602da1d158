#include "analysis/weight_profile.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>

namespace qs {

int weightHistogramBins(int64_t count)
{
    const double bins = 2.0 * std::sqrt(double(std::max<int64_t>(count, 0)));
    return int(std::clamp(bins, 16.0, 256.0));
}

WeightProfile profileWeight(const Graph& g, const LayerSummary& layer, int bins)
{
    const Tensor* w = g.constant(layer.weight);
    if (!w)
        fail(g.sourcePath, ": layer ", quoted(layer.name), ": weight ", quoted(layer.weight), " is not a constant");
    const std::vector<float> values = w->toFloat();
    WeightProfile p;
    p.histogram = makeHistogram(values, bins > 0 ? bins : weightHistogramBins(int64_t(values.size())));
    if (!w->shape.empty())
        p.channels = channelRanges(values, w->shape, layer.channelAxis);
    return p;
}

} // namespace qs
