// One row per quantizable layer: what the layer table, `inspect` and the store show.
#pragma once

#include "graph/graph.h"
#include "measure/stats.h"

#include <string>
#include <vector>

namespace qs {

struct LayerSummary {
    std::string name;     // node name
    std::string scope;    // "" at the top; inside a subgraph its path, e.g. "If_25/then_branch"
    std::string op;       // op type
    LayerKind kind = LayerKind::None;
    std::string weight;   // initializer name
    Shape weightShape;
    Shape outputShape;    // from shape inference; -1 for unknown dims
    int channelAxis = 0;  // output-channel axis of the weight
    int64_t params = 0;   // weight + bias elements
    TensorStats stats;    // of the weight (channelRangeRatio filled in)
};

// Axis of the weight tensor that indexes output channels (what per-channel scales run along).
int weightChannelAxis(const Graph& g, const Node& n);

// Summaries of every quantizable layer in graph order, then those inside subgraphs
// (If branches, Loop bodies; LayerSummary::scope says where). The weight statistics,
// most of the time on a large model, run on the OpenMP threads a layer each; without
// `withStats` they are left empty (layerWeightStats() fills one row later).
std::vector<LayerSummary> summarizeLayers(const Graph& g, bool withStats = true);

// LayerSummary::stats of a layer whose weight is a constant of `scope` (the top graph,
// or the subgraph a nested row's scope names): computeStats() of the weight with the
// channel range ratio along `channelAxis`, in two passes over the values.
TensorStats layerWeightStats(const Graph& scope, const LayerSummary& row);
// The same of plain values: moments from power sums about a pilot mean (the exact mean
// when the pilot is off by more than a standard deviation), then the outliers.
TensorStats weightStats(std::span<const float> values, const Shape& shape, int channelAxis);

} // namespace qs
