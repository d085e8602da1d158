// Subgraphs (If branches, Loop bodies) seen from outside: what they read from enclosing
// scopes, their nodes with those scopes' constants, and If nodes with a constant
// condition replaced by the chosen branch.
#include "graph/subgraphs.h"

#include <set>

namespace qs {

std::vector<std::string> outerReads(const Graph& sub)
{
    std::set<std::string> defined, seen;
    for (const auto& [name, t] : sub.initializers)
        defined.insert(name);
    for (const auto& in : sub.inputs)
        defined.insert(in.name);
    for (const auto& n : sub.nodes)
        defined.insert(n.outputs.begin(), n.outputs.end());
    std::vector<std::string> out;
    auto use = [&](const std::string& v) {
        if (!v.empty() && !defined.count(v) && seen.insert(v).second)
            out.push_back(v);
    };
    for (const auto& n : sub.nodes) {
        for (const auto& in : n.inputs)
            use(in);
        for (const auto& [name, a] : n.attrs)
            for (const auto& g : a.graphs)
                if (g)
                    for (const auto& v : outerReads(*g))
                        use(v);
    }
    for (const auto& o : sub.outputs)
        use(o.name);
    return out;
}

namespace {

void collectNested(const Graph& scope, const std::string& path, std::vector<NestedNode>& out)
{
    for (const Node& n : scope.nodes)
        for (const auto& [attr, a] : n.attrs)
            for (std::size_t k = 0; k < a.graphs.size(); ++k) {
                if (!a.graphs[k])
                    continue;
                auto view = std::make_shared<Graph>(*a.graphs[k]);
                for (const auto& v : outerReads(*view))
                    if (const Tensor* t = scope.constant(v))
                        view->initializers.emplace(v, *t);
                view->opsets = scope.opsets;
                view->sourcePath = scope.sourcePath;
                view->index();
                const std::string p = (path.empty() ? "" : path + "/") + n.name + "/" + attr +
                    (a.graphs.size() > 1 ? "[" + std::to_string(k) + "]" : "");
                for (int i = 0; i < int(view->nodes.size()); ++i)
                    out.push_back({p, view, i});
                collectNested(*view, p, out);
            }
}

} // namespace

std::vector<NestedNode> nestedNodes(const Graph& g)
{
    std::vector<NestedNode> out;
    collectNested(g, "", out);
    return out;
}

int inlineConstantIfs(Graph& g)
{
    int inlined = 0;
    for (bool again = true; again;) {
        again = false;
        for (std::size_t i = 0; i < g.nodes.size() && !again; ++i) {
            const Node& n = g.nodes[i];
            if (n.opType != "If" || !n.domain.empty())
                continue;
            const Tensor* cond = g.constant(n.input(0));
            if (!cond || cond->numel() != 1 || cond->dtype == DType::String)
                continue;
            const bool value = cond->dtype == DType::Bool ? cond->bytes[0] != std::byte {0} : cond->toFloat()[0] != 0;
            auto it = n.attrs.find(value ? "then_branch" : "else_branch");
            if (it == n.attrs.end() || it->second.graphs.empty() || !it->second.graphs[0])
                continue;
            const Graph& branch = *it->second.graphs[0];
            bool clash = branch.outputs.size() != n.outputs.size() || !branch.inputs.empty();
            for (const auto& [name, t] : branch.initializers)
                clash = clash || g.initializers.count(name) || g.producerOf(name) >= 0;
            if (clash) // left to the runtime, which reports what is wrong
                continue;
            std::vector<Node> nodes = branch.nodes;
            for (Node& b : nodes)
                while (g.findNode(b.name) >= 0)
                    b.name = n.name + "/" + b.name;
            for (std::size_t k = 0; k < n.outputs.size(); ++k) {
                Node id;
                id.name = n.name + "/" + n.outputs[k];
                id.opType = "Identity";
                id.inputs = {branch.outputs[k].name};
                id.outputs = {n.outputs[k]};
                nodes.push_back(std::move(id));
            }
            for (const auto& [name, t] : branch.initializers)
                g.initializers.emplace(name, t);
            for (const auto& [name, v] : branch.valueInfo)
                g.valueInfo.emplace(name, v);
            g.nodes.erase(g.nodes.begin() + std::ptrdiff_t(i));
            g.nodes.insert(g.nodes.begin() + std::ptrdiff_t(i), nodes.begin(), nodes.end());
            g.index();
            ++inlined;
            again = true;
        }
    }
    return inlined;
}

} // namespace qs
