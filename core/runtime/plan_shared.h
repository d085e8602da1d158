// compilePlan() on a graph the plan shares instead of copying (quantization and analysis
// compile several plans of one graph at once: each would hold a copy of every weight).
#pragma once

#include "graph/graph.h"
#include "runtime/plan.h"

#include <memory>

namespace qs {

// compilePlan() without the copy: the graph's initializers are the plan's constants in
// place (a plain constant of 64 KiB and more is read in the graph's tensor; only the
// layouts its kernels reorder weights into are the plan's own). The caller must not
// change the graph while the plan lives; CompileOptions::initializerOverrides are still
// copied into the plan (give a graph holding the replaced weights instead).
std::unique_ptr<Plan> compileSharedPlan(std::shared_ptr<const Graph> graph, const CompileOptions& options = {});

} // namespace qs
