// Subgraphs (If branches, Loop bodies) seen from outside: what they read from enclosing
// scopes, their nodes with those scopes' constants, and constant-condition Ifs inlined.
//   for (const NestedNode& nn : nestedNodes(g))
//       if (nn.scope->layerKind(nn.node()) != LayerKind::None) ...
#pragma once

#include "graph/graph.h"

#include <map>
#include <string>

namespace qs {

// Values a subgraph (or any subgraph inside it) reads from enclosing scopes, in first-use order.
std::vector<std::string> outerReads(const Graph& sub);

// A node inside a subgraph (an If branch, a Loop body), seen through `scope`: the
// subgraph plus the enclosing graphs' constants it reads, so layerKind(), weightOf()
// and constant() work on it.
struct NestedNode {
    std::string path; // "If_25/then_branch", levels joined by '/'
    std::shared_ptr<const Graph> scope;
    int index = -1; // into scope->nodes
    const Node& node() const { return scope->nodes[std::size_t(index)]; }
};
// Every node inside the graph's subgraphs, depth first.
std::vector<NestedNode> nestedNodes(const Graph& g);

// Replaces each If whose condition is a constant (an initializer or Constant node)
// with its chosen branch, repeatedly, so layers inside become ordinary nodes. Returns
// how many were inlined.
int inlineConstantIfs(Graph& g);

// inlineConstantIfs() for conditions that follow from single-element graph inputs given a
// value (`inputValues`, e.g. --input-value sr=16000) through Identity, Cast, Not, Equal,
// Greater, Less(OrEqual), And, Or and Xor on constants: the branch those values choose becomes
// ordinary nodes, so its layers can be quantized. The inputs stay; the graph then holds for
// those values only. Returns how many were inlined.
int inlineIfsForInputs(Graph& g, const std::map<std::string, double>& inputValues);

} // namespace qs
