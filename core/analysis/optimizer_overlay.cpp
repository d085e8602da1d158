#include "analysis/optimizer_overlay.h"

#include "runtime/passes/passes.h"

#include <set>

namespace qs {

const char* optimizerFateName(OptimizerNodeFate::Kind k)
{
    switch (k) {
    case OptimizerNodeFate::Kind::Fused: return "fused";
    case OptimizerNodeFate::Kind::Folded: return "folded";
    case OptimizerNodeFate::Kind::Removed: return "removed";
    case OptimizerNodeFate::Kind::Rewritten: return "rewritten";
    }
    return "changed";
}

namespace {

// Where each original node stands in one optimized graph: absent from the map when it
// is still there unchanged.
std::map<std::string, OptimizerNodeFate> fatesIn(const Graph& original, const rt::OptimizedGraph& o)
{
    std::map<std::string, std::string> computedBy; // original node -> optimized node
    for (const auto& [node, sources] : o.sources)
        for (const auto& s : sources)
            computedBy[s] = node;
    std::set<std::string> present;
    for (const auto& n : o.graph.nodes)
        present.insert(n.name);
    // Values still read in the optimized graph; one no node produces is a constant (with
    // borrowed weights the graph need not hold it as an initializer).
    std::set<std::string> read, produced;
    for (const auto& n : o.graph.nodes) {
        read.insert(n.inputs.begin(), n.inputs.end());
        produced.insert(n.outputs.begin(), n.outputs.end());
    }
    for (const auto& v : o.graph.outputs)
        read.insert(v.name);
    for (const auto& [name, t] : o.graph.initializers)
        read.insert(name);
    std::map<std::string, OptimizerNodeFate> fates;
    for (const auto& n : original.nodes) {
        OptimizerNodeFate f;
        if (auto it = computedBy.find(n.name); it != computedBy.end()) {
            f.into = it->second;
            f.kind = it->second == n.name ? OptimizerNodeFate::Kind::Rewritten : OptimizerNodeFate::Kind::Fused;
        } else if (present.count(n.name)) {
            continue; // unchanged
        } else {
            bool folded = !n.outputs.empty();
            for (const auto& out : n.outputs)
                folded = folded && (out.empty() || (read.count(out) && !produced.count(out)));
            f.kind = folded ? OptimizerNodeFate::Kind::Folded : OptimizerNodeFate::Kind::Removed;
        }
        fates[n.name] = f;
    }
    return fates;
}

} // namespace

OptimizerOverlay optimizerOverlay(const Graph& g, const std::string& spec, Progress& progress,
                                  const CancelToken& cancel)
{
    const std::vector<std::string> passes = rt::selectPasses(spec);
    OptimizerOverlay out;
    out.nodesBefore = int(g.nodes.size());
    out.nodesAfter = out.nodesBefore;
    std::string prefix;
    for (std::size_t i = 0; i < passes.size(); ++i) {
        cancel.check();
        prefix += (prefix.empty() ? "" : ",") + passes[i];
        const rt::OptimizedGraph o = rt::optimizeGraph(g, prefix, {}, /*borrow=*/true);
        for (auto& [node, fate] : fatesIn(g, o)) {
            auto it = out.fates.find(node);
            if (it == out.fates.end()) {
                fate.pass = passes[i];
                ++out.changedByPass[passes[i]];
                out.fates.emplace(node, fate);
            } else { // later passes decide what became of it; the first one changed it
                fate.pass = it->second.pass;
                it->second = fate;
            }
        }
        if (i + 1 == passes.size()) {
            out.nodesAfter = int(o.graph.nodes.size());
            out.report = o.reportText();
        }
        progress.report(double(i + 1) / double(passes.size()), "graph optimizer: " + passes[i]);
    }
    return out;
}

} // namespace qs
