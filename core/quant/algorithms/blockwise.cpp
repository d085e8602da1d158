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

namespace {

// One block alone: its nodes, the constants they read, the live values it reads as
// inputs and the values later nodes (or the graph's outputs) read as outputs.
struct BlockGraph {
    Graph graph;
    std::vector<std::string> inputs;
};

BlockGraph blockGraph(const Graph& g, const ModelBlock& block, std::size_t index,
    const std::map<std::string, ValueSpan>& spans, const std::map<std::string, Tensor>& live)
{
    BlockGraph out;
    Graph& sub = out.graph;
    sub.name = str(g.name, " block ", index);
    sub.opsets = g.opsets;
    sub.sourcePath = g.sourcePath;
    sub.irVersion = g.irVersion;
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
            } else if (std::find(out.inputs.begin(), out.inputs.end(), in) == out.inputs.end()) {
                out.inputs.push_back(in);
            }
        }
        for (const std::string& o : n.outputs) {
            if (auto vi = g.valueInfo.find(o); vi != g.valueInfo.end())
                sub.valueInfo[o] = vi->second;
            auto span = spans.find(o);
            if (span != spans.end() && span->second.lastUse > block.last) {
                const ValueInfo* vi = g.info(o);
                ValueInfo v = vi ? *vi : ValueInfo {};
                v.name = o;
                sub.outputs.push_back(v);
            }
        }
    }
    for (const std::string& in : out.inputs) {
        auto it = live.find(in);
        if (it == live.end())
            fail(g.sourcePath, ": block ", index, " of the model reads ", quoted(in), ", which no earlier block computes");
        ValueInfo vi;
        vi.name = in;
        vi.dtype = it->second.dtype;
        sub.inputs.push_back(vi);
    }
    sub.index();
    return out;
}

// Runs every batch's values through the block compiled with `overrides` (taps added by
// `attach`), returning each batch's outputs by name.
std::vector<std::map<std::string, Tensor>> runBlockBatches(const BlockGraph& block,
    const std::vector<std::map<std::string, Tensor>>& batches, const std::map<std::string, Tensor>& overrides,
    int threads, const std::function<void(Plan&)>& attach, const CancelToken& cancel)
{
    std::unique_ptr<Plan> plan;
    std::vector<std::map<std::string, Tensor>> outputs;
    for (const auto& values : batches) {
        cancel.check();
        std::vector<Tensor> in;
        CompileOptions co;
        co.threads = threads;
        co.initializerOverrides = overrides;
        for (const std::string& name : block.inputs) {
            in.push_back(values.at(name));
            co.inputShapes[name] = in.back().shape;
        }
        if (!plan) {
            plan = compilePlan(block.graph, co);
            if (attach)
                attach(*plan);
        }
        std::vector<Tensor> out = plan->run(in);
        auto& named = outputs.emplace_back();
        for (std::size_t o = 0; o < out.size(); ++o)
            named[block.graph.outputs[o].name] = std::move(out[o]);
    }
    return outputs;
}

// The block's layers (indices into `layers`) and a tap on each one's input into `sink`.
std::vector<std::size_t> layersIn(const Graph& g, const ModelBlock& block, const std::vector<LinearLayer>& layers)
{
    std::vector<std::size_t> in;
    for (std::size_t i = 0; i < layers.size(); ++i)
        if (const int at = g.findNode(layers[i].info.name); at >= block.first && at <= block.last)
            in.push_back(i);
    return in;
}

std::function<void(Plan&)> tapInputs(const std::vector<std::size_t>& inBlock, const std::vector<LinearLayer>& layers,
    const std::function<void(std::size_t, const Tensor&)>& sink)
{
    return [&inBlock, &layers, &sink](Plan& plan) {
        for (std::size_t i : inBlock)
            plan.addTap(layers[i].info.input, [&sink, i](const std::string&, const Tensor& t) { sink(i, t); });
    };
}

// The calibration batches as the graph inputs' values.
std::vector<std::map<std::string, Tensor>> inputBatches(const Graph& g, const Dataset& calib, int64_t total, int64_t batch)
{
    std::vector<std::map<std::string, Tensor>> live;
    for (int64_t start = 0; start < total; start += batch) {
        const std::vector<Tensor> inputs = calib.batch(start, std::min(batch, total - start));
        auto& values = live.emplace_back();
        for (std::size_t i = 0; i < inputs.size() && i < g.inputs.size(); ++i)
            values[g.inputs[i].name] = inputs[i];
    }
    return live;
}

// Drops the values no node after `last` reads.
void dropDead(std::vector<std::map<std::string, Tensor>>& live, const std::map<std::string, ValueSpan>& spans, int last)
{
    for (auto& values : live)
        for (auto it = values.begin(); it != values.end();) {
            auto span = spans.find(it->first);
            it = span == spans.end() || span->second.lastUse <= last ? values.erase(it) : std::next(it);
        }
}

// findBlocks of the layers' nodes.
std::vector<ModelBlock> blocksOf(const Graph& g, const std::vector<LinearLayer>& layers)
{
    std::vector<std::string> names;
    for (const LinearLayer& L : layers)
        names.push_back(L.info.name);
    return findBlocks(g, names);
}

// How many calibration samples go through (up to `limit`), in batches of how many.
std::pair<int64_t, int64_t> calibrationBatches(const QuantSession& s, const Dataset& calib, int64_t limit)
{
    const int64_t total = limit >= 0 ? std::min(limit, calib.count()) : calib.count();
    if (total <= 0)
        fail("calibration dataset ", quoted(calib.path), " has no samples");
    return {total, std::max<int64_t>(1, std::min(batchFor(s.graph(), s.options().batch), total))};
}

// The block's outputs become live values; those no node after it reads leave.
void passOn(std::vector<std::map<std::string, Tensor>>& live, std::vector<std::map<std::string, Tensor>>& outputs,
    const std::map<std::string, ValueSpan>& spans, int last)
{
    for (std::size_t k = 0; k < live.size(); ++k)
        for (auto& [name, t] : outputs[k])
            live[k][name] = std::move(t);
    dropDead(live, spans, last);
}

} // namespace

std::size_t forEachBlock(QuantSession& s, const Dataset& calib, const std::vector<LinearLayer>& layers, int64_t limit,
    bool sequential, const std::function<void(std::size_t, const Tensor&)>& sink,
    const std::function<void(const std::vector<std::size_t>&)>& blockDone, Progress& progress,
    const CancelToken& cancel)
{
    const Graph& g = s.graph();
    const std::vector<ModelBlock> blocks = blocksOf(g, layers);
    if (blocks.size() == 1) { // the whole model at once: nothing comes before a layer's block
        streamLayerInputs(s, calib, layers, limit, sink, progress, cancel);
        std::vector<std::size_t> all(layers.size());
        std::iota(all.begin(), all.end(), std::size_t(0));
        blockDone(all);
        return 1;
    }
    const auto [total, batch] = calibrationBatches(s, calib, limit);
    const std::map<std::string, ValueSpan> spans = valueSpans(g);
    std::vector<std::map<std::string, Tensor>> live = inputBatches(g, calib, total, batch); // at the current cut

    for (std::size_t b = 0; b < blocks.size(); ++b) {
        const BlockGraph block = blockGraph(g, blocks[b], b, spans, live.front());
        const std::vector<std::size_t> inBlock = layersIn(g, blocks[b], layers);
        auto outputs =
            runBlockBatches(block, live, {}, s.options().threads, tapInputs(inBlock, layers, sink), cancel);
        blockDone(inBlock);
        if (sequential && b + 1 < blocks.size()) {
            std::map<std::string, Tensor> quantized;
            for (const auto& entry : block.graph.initializers)
                if (auto q = s.weightOverrides.find(entry.first); q != s.weightOverrides.end())
                    quantized.emplace(entry.first, q->second);
            outputs = runBlockBatches(block, live, quantized, s.options().threads, {}, cancel);
        }
        passOn(live, outputs, spans, blocks[b].last);
        progress.report(double(b + 1) / double(blocks.size()),
            str("block ", b + 1, " of ", blocks.size(), ": ", total, " samples"));
    }
    return blocks.size();
}

std::size_t forEachBlockBackwards(QuantSession& s, const Dataset& calib, const std::vector<LinearLayer>& layers,
    int64_t limit, const std::function<void(std::size_t, const Tensor&)>& sink,
    const std::function<void(const std::vector<std::size_t>&)>& blockDone, Progress& progress,
    const CancelToken& cancel)
{
    const Graph& g = s.graph();
    const std::vector<ModelBlock> blocks = blocksOf(g, layers);
    if (blocks.size() == 1)
        return forEachBlock(s, calib, layers, limit, false, sink, blockDone, progress, cancel);
    const auto [total, batch] = calibrationBatches(s, calib, limit);
    Progress forward = progress.sub(0.0, 0.3), backward = progress.sub(0.3, 1.0);

    // Forward, FP32: each block's input values, per batch.
    std::vector<std::vector<std::map<std::string, Tensor>>> blockInputs(blocks.size());
    {
        const std::map<std::string, ValueSpan> spans = valueSpans(g);
        std::vector<std::map<std::string, Tensor>> live = inputBatches(g, calib, total, batch);
        for (std::size_t b = 0; b < blocks.size(); ++b) {
            const BlockGraph block = blockGraph(g, blocks[b], b, spans, live.front());
            for (const auto& values : live) {
                auto& in = blockInputs[b].emplace_back();
                for (const std::string& name : block.inputs)
                    in[name] = values.at(name);
            }
            if (b + 1 == blocks.size())
                break;
            auto outputs = runBlockBatches(block, live, {}, s.options().threads, {}, cancel);
            passOn(live, outputs, spans, blocks[b].last);
            forward.report(double(b + 1) / double(blocks.size()), str("block inputs: ", b + 1, " of ", blocks.size()));
        }
    }
    // Backward: a block's edits (a node inserted before its layer, weights folded into
    // producers) change neither the earlier blocks' node ranges nor any earlier layer's input.
    for (std::size_t b = blocks.size(); b-- > 0;) {
        s.graph().index();
        const BlockGraph block = blockGraph(g, blocks[b], b, valueSpans(g), blockInputs[b].front());
        const std::vector<std::size_t> inBlock = layersIn(g, blocks[b], layers);
        runBlockBatches(block, blockInputs[b], {}, s.options().threads, tapInputs(inBlock, layers, sink), cancel);
        blockInputs[b].clear();
        blockDone(inBlock);
        backward.report(double(blocks.size() - b) / double(blocks.size()),
            str("block ", blocks.size() - b, " of ", blocks.size(), " (last first)"));
    }
    return blocks.size();
}

} // namespace qs::algo
