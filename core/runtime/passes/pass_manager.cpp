// The pass manager: which passes QS_RUNTIME_PASSES selects, the shared PassContext,
// and the report of what each pass changed.
#include "runtime/passes/pass_context.h"

#include "graph/subgraphs.h"
#include "util/error.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>

namespace qs::rt {

namespace {

// optimizeGraph(borrow): initializers of this size and more are read from the original.
constexpr std::size_t kBorrowBytes = 64 * 1024;

std::atomic<std::size_t> optimizeGraphCount {0};

struct PassEntry {
    const char* name;
    int (*run)(passes::PassContext&);
};

const std::vector<PassEntry>& passTable()
{
    static const std::vector<PassEntry> table = {
        {"constant_fold", passes::constantFold},
        {"cleanup", passes::cleanup},
        {"transpose", passes::transposeCancel},
        {"pad_fold", passes::padFold},
        {"conv_affine", passes::convAffineFold},
        {"hardswish", passes::hardSwishFusion},
        {"layernorm", passes::layerNormFusion},
    };
    return table;
}

std::vector<std::string> splitList(const std::string& spec)
{
    std::vector<std::string> out;
    std::string cur;
    for (char ch : spec + ",") {
        if (ch == ',') {
            if (!cur.empty())
                out.push_back(cur);
            cur.clear();
        } else if (ch != ' ') {
            cur += ch;
        }
    }
    return out;
}

} // namespace

const std::vector<std::string>& graphPassNames()
{
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (const auto& e : passTable())
            v.push_back(e.name);
        return v;
    }();
    return names;
}

std::vector<std::string> selectPasses(const std::string& spec)
{
    const auto& all = graphPassNames();
    std::set<std::string> chosen;
    bool onlyRemovals = true;
    const std::vector<std::string> items = splitList(spec);
    for (const auto& item : items)
        onlyRemovals = onlyRemovals && item[0] == '-';
    if (onlyRemovals)
        chosen.insert(all.begin(), all.end());
    for (const auto& item : items) {
        const bool remove = item[0] == '-';
        const std::string name = remove ? item.substr(1) : item;
        if (name == "all") {
            if (!remove)
                chosen.insert(all.begin(), all.end());
            else
                chosen.clear();
            continue;
        }
        if (name == "none") {
            chosen.clear();
            continue;
        }
        if (std::find(all.begin(), all.end(), name) == all.end()) {
            std::string known;
            for (const auto& n : all)
                known += (known.empty() ? "" : ", ") + n;
            fail("QS_RUNTIME_PASSES: unknown pass ", quoted(name), " (known: all, none, ", known, ")");
        }
        if (remove)
            chosen.erase(name);
        else
            chosen.insert(name);
    }
    std::vector<std::string> out;
    for (const auto& n : all)
        if (chosen.count(n))
            out.push_back(n);
    return out;
}

std::string passSpecFromEnv()
{
    const char* env = std::getenv("QS_RUNTIME_PASSES");
    return env ? std::string(env) : std::string("all");
}

std::vector<std::string> OptimizedGraph::sourcesOf(const std::string& node) const
{
    auto it = sources.find(node);
    return it == sources.end() ? std::vector<std::string> {node} : it->second;
}

std::string OptimizedGraph::reportText() const
{
    std::string out;
    for (const auto& r : passes) {
        char ms[32];
        std::snprintf(ms, sizeof ms, "%.1f", r.ms);
        out += str(r.pass, ": ", r.rewrites, " rewrite", r.rewrites == 1 ? "" : "s", ", nodes ", r.nodesBefore, " -> ",
            r.nodesAfter, " (", ms, " ms)\n");
        for (const auto& line : r.changes)
            out += "  " + line + "\n";
    }
    if (passes.empty())
        out += "no passes selected (QS_RUNTIME_PASSES)\n";
    return out;
}

OptimizedGraph optimizeGraph(
    const Graph& graph, const std::string& spec, const std::set<std::string>& keep, bool borrow)
{
    const std::vector<std::string> selected = selectPasses(spec);
    ++optimizeGraphCount;
    OptimizedGraph out;
    if (borrow) { // every field but the large initializers
        Graph& g = out.graph;
        g.name = graph.name;
        g.nodes = graph.nodes;
        for (const auto& [name, t] : graph.initializers)
            if (t.bytes.size() < kBorrowBytes)
                g.initializers.emplace(name, t);
        g.inputs = graph.inputs;
        g.outputs = graph.outputs;
        g.valueInfo = graph.valueInfo;
        g.opsets = graph.opsets;
        g.metadata = graph.metadata;
        g.producerName = graph.producerName;
        g.producerVersion = graph.producerVersion;
        g.docString = graph.docString;
        g.irVersion = graph.irVersion;
        g.sourcePath = graph.sourcePath;
        g.fileBytes = graph.fileBytes;
        g.warnings = graph.warnings;
    } else {
        out.graph = graph;
    }
    out.graph.index();
    std::set<std::string> protectedValues = keep;
    for (const auto& o : graph.outputs)
        protectedValues.insert(o.name);
    for (const auto& n : graph.nodes)
        for (const auto& [name, a] : n.attrs)
            for (const auto& sub : a.graphs)
                if (sub)
                    for (const auto& v : outerReads(*sub))
                        protectedValues.insert(v);
    for (const auto& e : passTable()) {
        if (std::find(selected.begin(), selected.end(), e.name) == selected.end())
            continue;
        PassResult r;
        r.pass = e.name;
        r.nodesBefore = int(out.graph.nodes.size());
        const auto t0 = std::chrono::steady_clock::now();
        passes::PassContext ctx(out.graph, protectedValues, out.sources, r, borrow ? &graph : nullptr);
        r.rewrites = e.run(ctx);
        ctx.commit(true);
        r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        r.nodesAfter = int(out.graph.nodes.size());
        out.passes.push_back(std::move(r));
    }
    if (borrow && rewritesBeyondFolds(out)) { // the borrowed weights still read, copied in now
        std::set<std::string> read = protectedValues;
        for (const auto& n : out.graph.nodes)
            read.insert(n.inputs.begin(), n.inputs.end());
        for (const auto& [name, t] : graph.initializers)
            if (t.bytes.size() >= kBorrowBytes && read.count(name) && out.graph.producerOf(name) < 0)
                out.graph.initializers.emplace(name, t);
        out.graph.index();
    }
    return out;
}

std::size_t optimizeGraphRuns()
{
    return optimizeGraphCount.load();
}

bool rewritesBeyondFolds(const OptimizedGraph& o)
{
    for (const auto& r : o.passes)
        if (r.rewrites > 0 && r.pass != "constant_fold")
            return true;
    return false;
}

namespace passes {

PassContext::PassContext(Graph& graph, const std::set<std::string>& protectedValues,
    std::map<std::string, std::vector<std::string>>& sources, PassResult& result, const Graph* lender)
    : g(graph), lender(lender), protected_(protectedValues), sources_(sources), result_(result)
{
    if (lender)
        for (const auto& [name, t] : lender->initializers)
            names_.insert(name);
    for (const auto& n : g.nodes) {
        names_.insert(n.name);
        for (const auto& o : n.outputs)
            names_.insert(o);
    }
    for (const auto& [name, t] : g.initializers)
        names_.insert(name);
    for (const auto& in : g.inputs)
        names_.insert(in.name);
    for (const auto& [name, v] : g.valueInfo)
        names_.insert(name);
}

const Tensor* PassContext::constant(const std::string& value) const
{
    if (value.empty())
        return nullptr;
    if (const Tensor* t = g.constant(value))
        return t;
    if (lender && g.producerOf(value) < 0)
        if (auto it = lender->initializers.find(value); it != lender->initializers.end())
            return &it->second;
    return nullptr;
}

int PassContext::soleConsumer(const std::string& value) const
{
    if (value.empty() || isProtected(value))
        return -1;
    const auto& consumers = g.consumersOf(value);
    int found = -1;
    for (int n : consumers) {
        if (dead_.count(n))
            continue;
        if (found >= 0 && found != n)
            return -1;
        found = n;
    }
    if (found < 0)
        return -1;
    int uses = 0;
    for (const auto& in : g.nodes[std::size_t(found)].inputs)
        uses += in == value ? 1 : 0;
    return uses == 1 ? found : -1;
}

std::optional<float> PassContext::scalar(const std::string& value) const
{
    const Tensor* t = constant(value);
    if (!t || t->numel() != 1 || !isFloating(t->dtype))
        return std::nullopt;
    return t->toFloat()[0];
}

std::optional<std::vector<int64_t>> PassContext::ints(const std::string& value) const
{
    const Tensor* t = constant(value);
    if (!t || isFloating(t->dtype) || t->dtype == DType::String || t->dtype == DType::Bool)
        return std::nullopt;
    return t->toInt64();
}

std::optional<std::size_t> PassContext::rank(const std::string& value) const
{
    if (const Tensor* t = constant(value))
        return t->shape.size();
    const ValueInfo* vi = g.info(value);
    if (!vi || !vi->dims)
        return std::nullopt;
    return vi->dims->size();
}

std::string PassContext::freshName(const std::string& base)
{
    std::string name = base;
    for (int i = 1; names_.count(name); ++i)
        name = str(base, "_", i);
    names_.insert(name);
    return name;
}

std::string PassContext::addInitializer(const std::string& base, Tensor t)
{
    const std::string name = freshName(base);
    t.name = name;
    g.initializers[name] = std::move(t);
    return name;
}

void PassContext::replaceUses(const std::string& from, const std::string& to)
{
    for (std::size_t i = 0; i < g.nodes.size(); ++i)
        if (!dead_.count(int(i)))
            for (auto& in : g.nodes[i].inputs)
                if (in == from)
                    in = to;
}

std::vector<std::string> PassContext::sourcesOf(const std::string& node) const
{
    auto it = sources_.find(node);
    return it == sources_.end() ? std::vector<std::string> {node} : it->second;
}

void PassContext::record(const std::string& node, const std::vector<std::string>& from, const std::string& what)
{
    std::vector<std::string> all;
    for (const auto& f : from)
        for (const auto& s : sourcesOf(f))
            if (std::find(all.begin(), all.end(), s) == all.end())
                all.push_back(s);
    std::string line = what;
    if (!node.empty()) {
        sources_[node] = all;
        line += str(": ", quoted(node), " <-");
        for (const auto& s : all)
            line += " " + quoted(s);
    }
    result_.changes.push_back(line);
}

void PassContext::commit(bool dropUnread)
{
    if (!dead_.empty()) {
        std::vector<Node> kept;
        kept.reserve(g.nodes.size());
        for (std::size_t i = 0; i < g.nodes.size(); ++i)
            if (!dead_.count(int(i)))
                kept.push_back(std::move(g.nodes[i]));
            else
                sources_.erase(g.nodes[i].name);
        g.nodes = std::move(kept);
        dead_.clear();
    }
    if (dropUnread) { // folded inputs, replaced weights and pads
        std::set<std::string> read(protected_.begin(), protected_.end());
        for (const auto& n : g.nodes)
            read.insert(n.inputs.begin(), n.inputs.end());
        std::erase_if(g.initializers, [&](const auto& e) { return !read.count(e.first); });
    }
    g.index();
}

} // namespace passes

} // namespace qs::rt
