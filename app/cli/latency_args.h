// The latency profile a command works with (defined in cmd_latency.cpp, used by
// `latency` and `mixed --cost latency`).
#pragma once

#include "cli/args.h"

#include "graph/graph.h"
#include "jobs/progress.h"
#include "store/records.h"

#include <string>

namespace qs::cli {

// MODEL's profile from --db's cache or measured (and then stored there). Reads
// --threads, --repeats, --warmup, --remeasure and the batch from `batchOption`.
LatencyProfile latencyFromArgs(const Args& args, const std::string& batchOption, const Graph& graph,
    const std::string& path, bool& cached, Progress& progress, const CancelToken& cancel);

} // namespace qs::cli
