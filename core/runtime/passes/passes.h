// The graph optimizer between import and compile: named, exact passes run on a copy
// of the Graph (constant folding, clean-up, Transpose cancellation, Pad folding,
// per-channel affine steps folded into Conv, HardSigmoid x input and LayerNormalization
// fusion),
// chosen by QS_RUNTIME_PASSES.
#pragma once

#include "graph/graph.h"
#include "runtime/plan.h"

#include <memory>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace qs {

// compilePlan() for inference: the graph optimizer (the passes QS_RUNTIME_PASSES selects)
// runs on a copy of the graph first. Only while the plan just computes: with taps,
// transforms, kept values, initializer overrides or INT8 layers the original graph is
// compiled, and a value the optimizer removed that valueOf() or runFrom() asks for (or
// a tap on any value) recompiles the original graph, so observing never sees other
// numbers than compilePlan() gives. Kernels name the original nodes they compute
// ("conv+pad"). Analysis and quantization use compilePlan(): they time and compare the
// kernels of the original layers.
std::unique_ptr<Plan> compileOptimizedPlan(const Graph& graph, const CompileOptions& options = {});
// The same on a graph the plan shares instead of copying: its initializers are the
// plan's constants in place (no copy of the weights in the plan, only the layouts its
// kernels reorder them into); the caller must not change the graph while the plan lives.
std::unique_ptr<Plan> compileOptimizedPlan(std::shared_ptr<const Graph> graph, const CompileOptions& options = {});

} // namespace qs

namespace qs::rt {

// What one pass changed: one line per rewrite, naming the node it left and the nodes
// of the original graph that node stands for.
struct PassResult {
    std::string pass;
    int rewrites = 0;
    int nodesBefore = 0, nodesAfter = 0;
    double ms = 0; // wall time the pass took
    std::vector<std::string> changes;
};

struct OptimizedGraph {
    Graph graph;
    std::vector<PassResult> passes; // in the order they ran
    // Node of `graph` -> the nodes of the original graph it computes (only for nodes a
    // pass made or changed; any other node stands for the node of the same name).
    std::map<std::string, std::vector<std::string>> sources;

    // The original nodes behind a node of `graph`.
    std::vector<std::string> sourcesOf(const std::string& node) const;
    // The report `inspect --optimized` prints: per pass its rewrites and node counts.
    std::string reportText() const;
};

// Every pass in the order the optimizer runs them.
const std::vector<std::string>& graphPassNames();

// The passes a spec selects, in run order: "all" (or empty), "none", a comma list of
// names ("constant_fold,pad_fold"), or "all" minus names ("-pad_fold", "all,-transpose").
// An unknown name is an error naming QS_RUNTIME_PASSES and the known passes.
std::vector<std::string> selectPasses(const std::string& spec);

// QS_RUNTIME_PASSES, or "all" when it is not set.
std::string passSpecFromEnv();

// Runs the selected passes on a copy of `graph`. Values in `keep`, the graph's outputs
// and values read inside subgraphs are never removed or renamed, and a value name left
// in the result always holds the same tensor as in `graph` (a rewrite that changes a
// value's contents or layout gives it a new name).
// `borrow`: the passes read initializers of 64 KiB and more from `graph` instead of a
// copy, copied in at the end only when a pass rewrote more than constant folds; else the
// result's graph lacks them (a plan then compiles `graph` itself, see plan.cpp).
OptimizedGraph optimizeGraph(
    const Graph& graph, const std::string& spec, const std::set<std::string>& keep = {}, bool borrow = false);
// How many times optimizeGraph() ran in this process (plans on one graph share a run).
std::size_t optimizeGraphRuns();
// Whether some pass rewrote more than constant folds (the compiler folds those itself).
bool rewritesBeyondFolds(const OptimizedGraph& o);

} // namespace qs::rt
