// A model's latency profile on this machine as the experiment store keeps it: read
// back when this machine measured it before, else measured (analysis/latency.h) and added.
#pragma once

#include "analysis/latency.h"
#include "graph/graph.h"
#include "jobs/progress.h"
#include "store/records.h"

#include <string>

namespace qs {

class Store;
// The newest profile of this machine for (model, batch, threads) from `store`, else
// measured and added to it (store may be null: always measured, nothing stored).
// `cached` tells which happened. `remeasure` skips the lookup.
LatencyProfile cachedLatency(Store* store, const Graph& graph, const std::string& modelHash,
    const LatencyOptions& options, bool remeasure, bool& cached, Progress& progress, const CancelToken& cancel);

} // namespace qs
