// What every graph pass shares: the graph being rewritten, the values it must leave
// alone, fresh names, new initializers, node removal and the record of each rewrite.
#pragma once

#include "runtime/passes/passes.h"
#include "util/error.h"

#include <optional>

namespace qs::rt::passes {

class PassContext {
public:
    PassContext(Graph& g, const std::set<std::string>& protectedValues,
        std::map<std::string, std::vector<std::string>>& sources, PassResult& result, const Graph* lender = nullptr);

    Graph& g;
    // The original graph whose large initializers `g` borrows (optimizeGraph's `borrow`).
    const Graph* lender = nullptr;

    // A graph output, a kept value or one a subgraph reads: never removed or renamed.
    bool isProtected(const std::string& value) const { return protected_.count(value) != 0; }
    // The one node reading `value` (reading it once), when the value is not protected.
    int soleConsumer(const std::string& value) const;
    // An initializer or Constant output; nullptr otherwise.
    const Tensor* constant(const std::string& value) const;
    std::optional<float> scalar(const std::string& value) const;
    // A constant's integers (pads, axes, shapes).
    std::optional<std::vector<int64_t>> ints(const std::string& value) const;
    // The rank of a value when import knows it.
    std::optional<std::size_t> rank(const std::string& value) const;

    // A value or node name not used in the graph, from `base`.
    std::string freshName(const std::string& base);
    // Adds an initializer under a fresh name and returns the name.
    std::string addInitializer(const std::string& base, Tensor t);
    // Every read of `from` (outside the nodes marked for removal) reads `to` instead.
    void replaceUses(const std::string& from, const std::string& to);

    // The original nodes behind a node of the graph being rewritten.
    std::vector<std::string> sourcesOf(const std::string& node) const;
    // Marks nodes for removal (by index); commit() removes them and re-indexes, and with
    // `dropUnread` also drops the initializers nothing reads any more (the pass manager's
    // last commit of each pass).
    void remove(int node) { dead_.insert(node); }
    // Records a rewrite: `node` now computes what `from` computed.
    void record(const std::string& node, const std::vector<std::string>& from, const std::string& what);
    void commit(bool dropUnread = false);

private:
    std::set<std::string> protected_;
    std::map<std::string, std::vector<std::string>>& sources_;
    PassResult& result_;
    std::set<int> dead_;
    std::set<std::string> names_;
};

// Each pass rewrites the graph through the context and returns the rewrites it made.
int constantFold(PassContext& c);
int cleanup(PassContext& c);
int transposeCancel(PassContext& c);
int padFold(PassContext& c);
int convAffineFold(PassContext& c);
int hardSwishFusion(PassContext& c);
int layerNormFusion(PassContext& c);

} // namespace qs::rt::passes
