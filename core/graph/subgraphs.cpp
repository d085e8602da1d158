// Subgraphs (If branches, Loop bodies) seen from outside: what they read from enclosing
// scopes, their nodes with those scopes' constants, and If nodes with a constant
// condition replaced by the chosen branch.
#include "graph/subgraphs.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>
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

namespace {

// Inlines each If for which `condition` knows the value of its condition input.
int inlineIfs(Graph& g, const std::function<std::optional<bool>(const Graph&, const std::string&)>& condition)
{
    int inlined = 0;
    for (bool again = true; again;) {
        again = false;
        for (std::size_t i = 0; i < g.nodes.size() && !again; ++i) {
            const Node& n = g.nodes[i];
            if (n.opType != "If" || !n.domain.empty())
                continue;
            const std::optional<bool> value = condition(g, n.input(0));
            if (!value)
                continue;
            auto it = n.attrs.find(*value ? "then_branch" : "else_branch");
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

// The single element of a constant, as a double; nullopt for anything else.
std::optional<double> constantScalar(const Graph& g, const std::string& value)
{
    const Tensor* t = g.constant(value);
    if (!t || t->numel() != 1 || t->dtype == DType::String)
        return std::nullopt;
    return t->dtype == DType::Bool ? (t->bytes[0] != std::byte {0} ? 1.0 : 0.0) : double(t->toFloat()[0]);
}

// A single-element value computed from constants and the given inputs by the comparison and
// logic operators a condition is made of; nullopt when it depends on anything else.
std::optional<double> scalarOf(
    const Graph& g, const std::string& value, const std::map<std::string, double>& inputValues, int depth)
{
    if (auto c = constantScalar(g, value))
        return c;
    if (auto it = inputValues.find(value); it != inputValues.end()) {
        for (const ValueInfo& in : g.inputs)
            if (in.name == value && in.dims &&
                std::all_of(in.dims->begin(), in.dims->end(), [](const Dim& d) { return d.value == 1; }))
                return it->second;
        return std::nullopt; // not a single-element input: the condition would not be a scalar
    }
    const int p = g.producerOf(value);
    if (p < 0 || depth > 32)
        return std::nullopt;
    const Node& n = g.nodes[std::size_t(p)];
    if (!n.domain.empty() || n.outputs.size() != 1)
        return std::nullopt;
    std::vector<double> a;
    for (const std::string& in : n.inputs) {
        auto v = scalarOf(g, in, inputValues, depth + 1);
        if (!v)
            return std::nullopt;
        a.push_back(*v);
    }
    const std::string& op = n.opType;
    auto truth = [](bool b) { return b ? 1.0 : 0.0; };
    if (a.size() == 1 && op == "Identity")
        return a[0];
    if (a.size() == 1 && op == "Not")
        return truth(a[0] == 0);
    if (a.size() == 1 && op == "Cast") {
        const auto to = DType(n.attrInt("to", 0));
        if (to == DType::Bool)
            return truth(a[0] != 0);
        if (to == DType::Float || to == DType::Double)
            return a[0];
        if (to == DType::Int64 || to == DType::Int32)
            return std::trunc(a[0]);
        return std::nullopt;
    }
    if (a.size() != 2)
        return std::nullopt;
    if (op == "Equal")
        return truth(a[0] == a[1]);
    if (op == "Greater")
        return truth(a[0] > a[1]);
    if (op == "GreaterOrEqual")
        return truth(a[0] >= a[1]);
    if (op == "Less")
        return truth(a[0] < a[1]);
    if (op == "LessOrEqual")
        return truth(a[0] <= a[1]);
    if (op == "And")
        return truth(a[0] != 0 && a[1] != 0);
    if (op == "Or")
        return truth(a[0] != 0 || a[1] != 0);
    if (op == "Xor")
        return truth((a[0] != 0) != (a[1] != 0));
    return std::nullopt;
}

} // namespace

int inlineConstantIfs(Graph& g)
{
    return inlineIfs(g, [](const Graph& graph, const std::string& cond) -> std::optional<bool> {
        if (auto v = constantScalar(graph, cond))
            return *v != 0;
        return std::nullopt;
    });
}

int inlineIfsForInputs(Graph& g, const std::map<std::string, double>& inputValues)
{
    if (inputValues.empty())
        return 0;
    return inlineIfs(g, [&](const Graph& graph, const std::string& cond) -> std::optional<bool> {
        if (auto v = scalarOf(graph, cond, inputValues, 0))
            return *v != 0;
        return std::nullopt;
    });
}

} // namespace qs
