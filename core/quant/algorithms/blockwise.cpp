// Block-by-block calibration passes (findBlocks, forEachBlock in linear_layer.h): one
// block of the working graph compiled and run at a time on the values live at its start,
// as GPTQ quantizes large models (Frantar et al. 2022, sec. 4 and App. A).
#include "quant/algorithms/linear_layer.h"

#include "data/input_binding.h"
#include "util/error.h"

#include <algorithm>
#include <numeric>

namespace qs::algo {
namespace {

bool hasSubgraphs(const Graph& g)
{
    for (const Node& n : g.nodes)
        for (const auto& entry : n.attrs)
            if (entry.second.kind == Attribute::Kind::Graph || entry.second.kind == Attribute::Kind::Graphs)
                return true;
    return false;
}

// Computed values (graph inputs and node outputs that are not constants) -> the index
// of their last reader (nodes.size() for a graph output), and of their producer (-1 for
// a graph input).
struct ValueSpan {
    int producer = -1, lastUse = -1;
};

std::map<std::string, ValueSpan> valueSpans(const Graph& g)
{
    std::map<std::string, ValueSpan> spans;
    for (const ValueInfo& in : g.inputs)
        spans[in.name] = {-1, -1};
    for (int i = 0; i < int(g.nodes.size()); ++i)
        for (const std::string& o : g.nodes[std::size_t(i)].outputs)
            if (!o.empty() && !g.constant(o))
                spans[o] = {i, i};
    for (int i = 0; i < int(g.nodes.size()); ++i)
        for (const std::string& in : g.nodes[std::size_t(i)].inputs)
            if (auto it = spans.find(in); it != spans.end())
                it->second.lastUse = std::max(it->second.lastUse, i);
    for (const ValueInfo& o : g.outputs)
        if (auto it = spans.find(o.name); it != spans.end())
            it->second.lastUse = int(g.nodes.size());
    return spans;
}

} // namespace

std::vector<ModelBlock> findBlocks(const Graph& g, const std::vector<std::string>& layers)
{
    const int n = int(g.nodes.size());
    std::vector<int> at;
    for (const std::string& name : layers)
        if (int i = g.findNode(name); i >= 0)
            at.push_back(i);
    std::sort(at.begin(), at.end());
    if (at.size() < 2 || hasSubgraphs(g))
        return {{0, n - 1}};
    // live[p]: computed values produced before node p and read at p or later.
    std::vector<int> live(std::size_t(n + 2), 0);
    for (const auto& entry : valueSpans(g)) {
        const ValueSpan& v = entry.second;
        if (v.lastUse <= v.producer)
            continue;
        ++live[std::size_t(v.producer + 1)];
        --live[std::size_t(v.lastUse + 1)];
    }
    std::partial_sum(live.begin(), live.end(), live.begin());
    int fewest = INT32_MAX;
    for (int p = at.front() + 1; p <= at.back(); ++p)
        fewest = std::min(fewest, live[std::size_t(p)]);
    std::vector<ModelBlock> blocks;
    int start = 0;
    std::size_t nextLayer = 0; // the first layer at or after `start`
    for (int p = at.front() + 1; p <= at.back(); ++p) {
        if (live[std::size_t(p)] != fewest)
            continue;
        if (nextLayer < at.size() && at[nextLayer] < p) { // the block [start, p) holds a layer
            blocks.push_back({start, p - 1});
            start = p;
            while (nextLayer < at.size() && at[nextLayer] < p)
                ++nextLayer;
        }
    }
    blocks.push_back({start, n - 1});
    return blocks;
}

std::size_t forEachBlock(QuantSession& s, const Dataset& calib, const std::vector<LinearLayer>& layers, int64_t limit,
    bool sequential, const std::function<void(std::size_t, const Tensor&)>& sink,
    const std::function<void(const std::vector<std::size_t>&)>& blockDone, Progress& progress,
    const CancelToken& cancel)
{
    const Graph& g = s.graph();
    std::vector<std::string> names;
    for (const LinearLayer& L : layers)
        names.push_back(L.info.name);
    const std::vector<ModelBlock> blocks = findBlocks(g, names);
    if (blocks.size() == 1) { // the whole model at once: nothing comes before a layer's block
        streamLayerInputs(s, calib, layers, limit, sink, progress, cancel);
        std::vector<std::size_t> all(layers.size());
        std::iota(all.begin(), all.end(), std::size_t(0));
        blockDone(all);
        return 1;
    }
    const int64_t total = limit >= 0 ? std::min(limit, calib.count()) : calib.count();
    if (total <= 0)
        fail("calibration dataset ", quoted(calib.path), " has no samples");
    const int64_t batch = std::max<int64_t>(1, std::min(batchFor(g, s.options().batch), total));
    const std::map<std::string, ValueSpan> spans = valueSpans(g);

    // The values live at the current cut, per calibration batch.
    std::vector<std::map<std::string, Tensor>> live;
    for (int64_t start = 0; start < total; start += batch) {
        const std::vector<Tensor> inputs = calib.batch(start, std::min(batch, total - start));
        auto& values = live.emplace_back();
        for (std::size_t i = 0; i < inputs.size() && i < g.inputs.size(); ++i)
            values[g.inputs[i].name] = inputs[i];
    }

    for (std::size_t b = 0; b < blocks.size(); ++b) {
        const ModelBlock& block = blocks[b];
        // The block alone: its nodes, the constants they read, the live values it reads
        // as inputs and the values later nodes (or the graph's outputs) read as outputs.
        Graph sub;
        sub.name = str(g.name, " block ", b);
        sub.opsets = g.opsets;
        sub.sourcePath = g.sourcePath;
        sub.irVersion = g.irVersion;
        std::vector<std::string> inputs;
        for (int i = block.first; i <= block.last; ++i) {
            const Node& n = g.nodes[std::size_t(i)];
            sub.nodes.push_back(n);
            for (const std::string& in : n.inputs) {
                if (in.empty())
                    continue;
                const int producer = g.producerOf(in);
                if (producer >= block.first && producer <= block.last)
                    continue;
                if (const Tensor* t = g.constant(in)) {
                    if (!sub.initializers.count(in)) {
                        Tensor& c = sub.initializers[in] = *t;
                        c.name = in;
                    }
                } else if (std::find(inputs.begin(), inputs.end(), in) == inputs.end()) {
                    inputs.push_back(in);
                }
            }
            for (const std::string& o : n.outputs) {
                if (auto vi = g.valueInfo.find(o); vi != g.valueInfo.end())
                    sub.valueInfo[o] = vi->second;
                auto span = spans.find(o);
                if (span != spans.end() && span->second.lastUse > block.last) {
                    const ValueInfo* vi = g.info(o);
                    ValueInfo out = vi ? *vi : ValueInfo{};
                    out.name = o;
                    sub.outputs.push_back(out);
                }
            }
        }
        for (const std::string& in : inputs) {
            if (!live.front().count(in))
                fail(g.sourcePath, ": block ", b, " of the model reads ", quoted(in), ", which no earlier block computes");
            ValueInfo vi;
            vi.name = in;
            vi.dtype = live.front().at(in).dtype;
            sub.inputs.push_back(vi);
        }
        sub.index();
        std::vector<std::size_t> inBlock;
        for (std::size_t i = 0; i < layers.size(); ++i)
            if (const int at = g.findNode(layers[i].info.name); at >= block.first && at <= block.last)
                inBlock.push_back(i);

        // Runs every batch through the block compiled with `overrides`, the block's
        // layer inputs tapped when `tapped`; `keep` stores the outputs as live values.
        auto runBlock = [&](const std::map<std::string, Tensor>& overrides, bool tapped, bool keep) {
            std::unique_ptr<Plan> plan;
            for (auto& values : live) {
                cancel.check();
                std::vector<Tensor> in;
                CompileOptions co;
                co.threads = s.options().threads;
                co.initializerOverrides = overrides;
                for (const std::string& name : inputs) {
                    in.push_back(values.at(name));
                    co.inputShapes[name] = in.back().shape;
                }
                if (!plan) {
                    plan = compilePlan(sub, co);
                    if (tapped)
                        for (std::size_t i : inBlock)
                            plan->addTap(layers[i].info.input,
                                [&sink, i](const std::string&, const Tensor& t) { sink(i, t); });
                }
                std::vector<Tensor> out = plan->run(in);
                if (keep)
                    for (std::size_t o = 0; o < out.size(); ++o)
                        values[sub.outputs[o].name] = std::move(out[o]);
            }
        };
        runBlock({}, true, !sequential);
        blockDone(inBlock);
        if (sequential && b + 1 < blocks.size()) {
            std::map<std::string, Tensor> quantized;
            for (const auto& entry : sub.initializers)
                if (auto q = s.weightOverrides.find(entry.first); q != s.weightOverrides.end())
                    quantized.emplace(entry.first, q->second);
            runBlock(quantized, false, true);
        }
        // Values no later block reads leave.
        for (auto& values : live)
            for (auto it = values.begin(); it != values.end();) {
                auto span = spans.find(it->first);
                it = span == spans.end() || span->second.lastUse <= block.last ? values.erase(it) : std::next(it);
            }
        progress.report(double(b + 1) / double(blocks.size()),
            str("block ", b + 1, " of ", blocks.size(), ": ", total, " samples"));
    }
    return blocks.size();
}

} // namespace qs::algo
