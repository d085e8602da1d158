// Per-layer latency from per-kernel timings (Plan::timeKernels) of the FP32 plan and
// of one plan per layer with only that layer in INT8.
#include "analysis/latency.h"

#include "data/dataset.h"
#include "measure/activations.h"
#include "quant/session.h"
#include "runtime/cpu_isa.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <algorithm>
#include <map>

namespace qs {

std::vector<std::string> cpuIsaFlagNames(const CpuIsa& cpu)
{
    std::vector<std::string> out;
    auto add = [&](bool on, std::initializer_list<const char*> names) {
        if (on)
            out.insert(out.end(), names.begin(), names.end());
    };
    add(cpu.avx2, {"avx2"});
    add(cpu.avx512, {"avx512f", "avx512bw"});
    add(cpu.avx512Vnni, {"avx512_vnni"});
    add(cpu.avxVnni, {"avx_vnni"});
    add(cpu.amx, {"amx_tile", "amx_int8"});
    return out;
}

namespace {

std::string firstNode(const std::string& kernelNode)
{
    return kernelNode.substr(0, kernelNode.find('+'));
}

bool startsWith(const std::string& s, const char* prefix)
{
    return s.rfind(prefix, 0) == 0;
}

} // namespace

LatencyProfile measureLatency(const Graph& graph, const std::string& modelHash, const LatencyOptions& options,
    Progress& progress, const CancelToken& cancel)
{
    if (options.batch < 1 || options.repeats < 1 || options.warmup < 0 || options.threads < 0)
        fail("latency: batch ", options.batch, ", repeats ", options.repeats, ", warmup ", options.warmup,
             ", threads ", options.threads, ": expected batch >= 1, repeats >= 1, warmup >= 0, threads >= 0");
    progress.report(0, "latency: calibrating on random inputs");
    DataOptions random;
    random.spec = str("random:", std::max(options.batch, 8));
    random.inputValues = options.inputValues;
    random.inputShapes = options.inputShapes;
    const Dataset data = loadDataset(random, graph);
    const std::map<std::string, Shape> shape = data.inputShapes(options.batch);
    const std::vector<Tensor> batchInput = data.batch(0, options.batch); // random:N holds at least the batch

    QuantizeOptions qo;
    qo.batch = options.batch;
    qo.calibLimit = data.count();
    qo.threads = options.threads;
    QuantSession probe(graph, qo);
    for (const auto& l : probe.layers())
        if (!probe.int8Obstacle(l).empty())
            qo.config.excluded.insert(l.name);
    QuantSession session(graph, qo);
    {
        Progress p = progress.sub(0, 0.05);
        session.calibrate(data, p, cancel);
    }
    session.quantizeWeights();

    LatencyProfile profile;
    profile.modelHash = modelHash;
    profile.batch = options.batch;
    profile.threads = options.threads;
    const CpuIsa cpu = detectCpuIsa();
    profile.isa = cpu.onednn;
    profile.cpuFlags = cpuIsaFlagNames(cpu);
    profile.warmup = options.warmup;
    profile.repeats = options.repeats;

    std::map<std::string, std::size_t> index;
    for (const auto& l : probe.layers()) {
        index[l.name] = profile.layers.size();
        profile.layers.push_back({l.name, l.op, 0, std::nullopt, std::nullopt, std::nullopt});
    }
    const std::size_t steps = session.layers().size() + 2;
    std::size_t step = 0;
    auto report = [&](const std::string& what) {
        cancel.check();
        progress.report(0.05 + 0.95 * double(step++) / double(steps), "latency: " + what);
    };

    report("FP32 model");
    std::multiset<std::tuple<std::string, std::string, std::string>> floatKernels;
    {
        auto plan = session.compile(false, shape);
        for (const KernelTime& k :
            plan->timeKernels(batchInput, options.warmup, options.repeats, &profile.fp32TotalMs)) {
            floatKernels.insert({k.node, k.op, k.impl});
            auto it = index.find(firstNode(k.node));
            if (it != index.end())
                profile.layers[it->second].fp32Ms += k.ms;
            else
                profile.otherMs += k.ms;
        }
    }
    if (!session.layers().empty()) {
        report("INT8 model");
        session.compileInt8(shape)->timeKernels(batchInput, options.warmup, options.repeats, &profile.int8TotalMs);
    } else {
        profile.int8TotalMs = profile.fp32TotalMs;
    }

    const CompileOptions all = session.int8CompileOptions(shape);
    for (const SessionLayer& l : session.layers()) {
        report(l.name + " in INT8");
        CompileOptions co = all;
        co.int8Layers = {{l.name, all.int8Layers.at(l.name)}};
        co.int8Values = {{l.input, all.int8Values.at(l.input)}};
        auto plan = compilePlan(session.graph(), co);
        LayerLatency& row = profile.layers[index.at(l.name)];
        row.int8Ms = row.quantizeMs = row.dequantizeMs = 0.0;
        auto unchanged = floatKernels;
        for (const KernelTime& k : plan->timeKernels(batchInput, options.warmup, options.repeats)) {
            if (startsWith(k.impl, "quantize")) {
                *row.quantizeMs += k.ms;
            } else if (firstNode(k.node) == l.name && !startsWith(k.impl, "dequantize")) {
                *row.int8Ms += k.ms;
            } else if (auto it = unchanged.find({k.node, k.op, k.impl}); it != unchanged.end()) {
                unchanged.erase(it); // a float kernel the FP32 plan has as well
            } else {
                *row.dequantizeMs += k.ms; // back to float: dequantize, layout reorders
            }
        }
    }
    progress.report(1, "latency: done");
    return profile;
}

LayerLinks layerLinks(const Graph& g)
{
    LayerLinks links;
    std::map<std::string, std::size_t> byOutput;
    std::vector<int> nodes = g.quantizableLayers();
    const std::set<int> layerNodes(nodes.begin(), nodes.end());
    for (int idx : nodes) {
        byOutput[g.nodes[std::size_t(idx)].outputs.front()] = links.layers.size();
        links.layers.push_back(g.nodes[std::size_t(idx)].name);
    }
    const std::size_t n = links.layers.size();
    links.producers.assign(n, {});
    links.consumers.assign(n, {});
    links.floatIn.assign(n, 0);
    links.floatOut.assign(n, 0);
    auto passes = [](const Node& node) {
        // BatchNormalization is folded into the conv before anything runs.
        static const std::set<std::string> kept8 = {"Relu", "MaxPool", "Add", "Identity", "BatchNormalization"};
        return node.domain.empty() && kept8.count(node.opType) != 0;
    };
    for (std::size_t li = 0; li < n; ++li) {
        const Node& layer = g.nodes[std::size_t(nodes[li])];
        // Backwards from the layer's data input through ops that stay 8-bit.
        std::vector<std::string> todo = {layerInputOf(g, layer)};
        std::set<std::string> seen;
        while (!todo.empty()) {
            std::string v = todo.back();
            todo.pop_back();
            if (v.empty() || !seen.insert(v).second || g.constant(v))
                continue;
            if (auto it = byOutput.find(v); it != byOutput.end()) {
                links.producers[li].insert(it->second);
                links.consumers[it->second].insert(li);
                continue;
            }
            const int p = g.producerOf(v);
            if (p < 0 || !passes(g.nodes[std::size_t(p)])) {
                links.floatIn[li] = 1;
                continue;
            }
            for (const auto& in : g.nodes[std::size_t(p)].inputs)
                todo.push_back(in);
        }
    }
    // Forwards from each layer's output: a graph output or an op leaving the 8-bit path means float.
    std::set<std::string> outputs;
    for (const auto& o : g.outputs)
        outputs.insert(o.name);
    for (std::size_t li = 0; li < n; ++li) {
        // (value, direct): direct while the value is the layer's own output through
        // single-consumer ops, where a residual Add is the layer's to absorb; elsewhere
        // an Add reads this value as its 8-bit skip operand.
        std::vector<std::pair<std::string, bool>> todo = {{g.nodes[std::size_t(nodes[li])].outputs.front(), true}};
        std::set<std::string> seen;
        while (!todo.empty()) {
            auto [v, direct] = todo.back();
            todo.pop_back();
            if (!seen.insert(v).second)
                continue;
            if (outputs.count(v))
                links.floatOut[li] = 1;
            const auto& consumers = g.consumersOf(v);
            const bool stillDirect = direct && consumers.size() == 1;
            for (int c : consumers) {
                const Node& node = g.nodes[std::size_t(c)];
                if (layerNodes.count(c))
                    continue; // a layer reading it: linked above
                if (node.opType == "Add" && node.domain.empty() && !stillDirect)
                    continue; // the skip operand of a residual Add another INT8 layer absorbs
                if (!passes(node)) {
                    links.floatOut[li] = 1;
                    continue;
                }
                todo.push_back({node.outputs.front(), stillDirect});
            }
        }
    }
    return links;
}

namespace {

// The profile's row of every layer of `links` (same order); throws naming a missing one.
std::vector<const LayerLatency*> profileRows(const LatencyProfile& profile, const LayerLinks& links,
    const std::set<std::string>& int8)
{
    std::map<std::string, const LayerLatency*> byName;
    for (const auto& l : profile.layers)
        byName[l.layer] = &l;
    for (const auto& name : int8)
        if (!byName.count(name))
            fail("latency: layer ", quoted(name), " is not in the latency profile");
    std::vector<const LayerLatency*> rows;
    for (const auto& name : links.layers) {
        auto it = byName.find(name);
        if (it == byName.end())
            fail("latency: layer ", quoted(name), " is not in the latency profile");
        rows.push_back(it->second);
    }
    return rows;
}

bool runsInt8(const LayerLatency& l, const std::set<std::string>& int8)
{
    return int8.count(l.layer) && l.int8Ms;
}

} // namespace

std::vector<PrecisionBoundary> precisionBoundaries(const LatencyProfile& profile, const LayerLinks& links,
    const std::set<std::string>& int8)
{
    const std::vector<const LayerLatency*> rows = profileRows(profile, links, int8);
    std::vector<PrecisionBoundary> out;
    for (std::size_t li = 0; li < rows.size(); ++li) {
        const LayerLatency& l = *rows[li];
        if (!runsInt8(l, int8))
            continue;
        auto isInt8 = [&](std::size_t k) { return int8.count(links.layers[k]) != 0; };
        bool allIn = !links.floatIn[li] && !links.producers[li].empty();
        for (std::size_t p : links.producers[li])
            allIn = allIn && isInt8(p);
        bool allOut = !links.floatOut[li] && !links.consumers[li].empty();
        for (std::size_t c : links.consumers[li])
            allOut = allOut && isInt8(c);
        if (!allIn)
            out.push_back({li, PrecisionBoundary::Kind::Quantize, l.quantizeMs.value_or(0)});
        if (!allOut)
            out.push_back({li, PrecisionBoundary::Kind::Dequantize, l.dequantizeMs.value_or(0)});
    }
    return out;
}

double predictLatencyMs(const LatencyProfile& profile, const LayerLinks& links, const std::set<std::string>& int8)
{
    double ms = profile.otherMs;
    for (const LayerLatency* l : profileRows(profile, links, int8))
        ms += runsInt8(*l, int8) ? *l->int8Ms : l->fp32Ms;
    for (const PrecisionBoundary& b : precisionBoundaries(profile, links, int8))
        ms += b.ms;
    return ms;
}

} // namespace qs
