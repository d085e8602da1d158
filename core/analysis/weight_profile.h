// Per-layer weight distributions for plots: a histogram and per-output-channel
// ranges, computed once per model so the layer inspector only draws.
#pragma once

#include "graph/graph.h"
#include "measure/layers.h"
#include "measure/stats.h"

#include <cstdint>

namespace qs {

struct WeightProfile {
    Histogram histogram;     // over [min, max] of the finite weights
    ChannelRanges channels;  // along LayerSummary::channelAxis
};

// A bin count that resolves the shape without leaving most bins empty:
// about 2 sqrt(n), between 16 and 256.
int weightHistogramBins(int64_t count);

// Histogram and channel ranges of `layer`'s weight (bins <= 0: weightHistogramBins).
// Throws Error when the layer's weight is not a constant of `g`.
WeightProfile profileWeight(const Graph& g, const LayerSummary& layer, int bins = 0);

} // namespace qs
