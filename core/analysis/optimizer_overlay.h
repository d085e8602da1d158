// What the runtime's graph optimizer (runtime/passes) does to each node of a model, for
// the studio's graph overlay: the first pass that changed the node and what became of it
// (fused into another node, folded to a constant, removed, or rewritten in place).
// Quantization and analysis keep the original nodes; this only explains the plan that
// `run` and the benchmarks execute.
#pragma once

#include "graph/graph.h"
#include "jobs/progress.h"

#include <map>
#include <string>
#include <vector>

namespace qs {

struct OptimizerNodeFate {
    enum class Kind { Fused, Folded, Removed, Rewritten };
    Kind kind = Kind::Removed;
    std::string pass; // the first pass that changed the node
    std::string into; // Fused, Rewritten: the optimized graph's node computing it
};

struct OptimizerOverlay {
    std::map<std::string, OptimizerNodeFate> fates; // by original node name; unchanged nodes absent
    std::map<std::string, int> changedByPass;       // nodes each pass changed first
    int nodesBefore = 0, nodesAfter = 0;
    std::string report; // the per-pass report of `inspect --optimized`
};

const char* optimizerFateName(OptimizerNodeFate::Kind k); // "fused", "folded", ...

// Runs the passes `spec` selects (runtime's QS_RUNTIME_PASSES syntax) on the model one
// prefix at a time, so each node's first changing pass is known. Checks `cancel`
// between passes.
OptimizerOverlay optimizerOverlay(const Graph& g, const std::string& spec, Progress& progress,
                                  const CancelToken& cancel);

} // namespace qs
