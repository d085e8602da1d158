// quantstudio-cli inspect MODEL [--json] [--optimized]: the model at a glance, one row per layer,
// and with --optimized what each pass of the graph optimizer (runtime/passes) would change.
// A .safetensors checkpoint instead lists its tensors with weight-only W4/W3 statistics.
#include "cli/args.h"
#include "cli/command.h"

#include "analysis/weight_quant_stats.h"
#include "graph/onnx_import.h"
#include "graph/safetensors.h"
#include "measure/layers.h"
#include "runtime/passes/passes.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <optional>

namespace qs::cli {
namespace {

nlohmann::json finiteOrNull(double v)
{
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json valueInfoJson(const ValueInfo& v)
{
    nlohmann::json shape = nlohmann::json::array();
    if (v.dims)
        for (const Dim& d : *v.dims)
            shape.push_back(d.value >= 0 ? nlohmann::json(d.value) : nlohmann::json(d.param.empty() ? "?" : d.param));
    return {{"name", v.name}, {"dtype", dtypeName(v.dtype)}, {"shape", shape}};
}

// Tensors of a safetensors file; float tensors of rank >= 2 get kurtosis and the SQNR
// of symmetric RTN W4/W3 per tensor and per group of --group input columns.
int inspectSafetensors(const std::string& path, const Args& args)
{
    const int group = args.intValue("group", 128);
    if (group < 1)
        fail("--group must be at least 1");
    SafetensorsFile f(path);
    const bool json = args.flag("json");
    nlohmann::json j;
    j["file"] = path;
    j["file_bytes"] = f.fileBytes();
    j["header_bytes"] = f.headerBytes();
    j["metadata"] = f.metadata();
    j["group_size"] = group;
    j["tensors"] = nlohmann::json::array();
    int64_t params = 0;
    if (!json)
        std::printf("file       %s\nsize       %.1f KiB, header %llu bytes, %zu tensors\n\n"
                    "%-40s %-5s %-16s %10s %9s %9s %9s %9s %9s\n",
            path.c_str(), double(f.fileBytes()) / 1024.0, (unsigned long long)f.headerBytes(), f.tensors().size(),
            "tensor", "dtype", "shape", "params", "kurtosis", "W4 tens", str("W4 g", group).c_str(), "W3 tens",
            str("W3 g", group).c_str());
    for (const auto& e : f.tensors()) {
        params += e.numel();
        nlohmann::json t = {{"name", e.name}, {"dtype", e.dtypeName}, {"shape", e.shape}, {"params", e.numel()},
            {"data_offsets", {e.begin, e.end}}};
        std::string cells;
        if (isFloating(e.dtype) && e.shape.size() >= 2 && e.numel() > 0) {
            const std::vector<float> w = f.tensor(e.name).toFloat();
            WeightQuantStats q;
            try {
                q = weightQuantStats(w, e.shape, group);
            } catch (const Error& err) {
                fail(path, ": tensor ", quoted(e.name), ": ", err.what());
            }
            t["kurtosis"] = q.stats.kurtosis;
            t["sqnr_db"] = {{"w4_tensor", finiteOrNull(q.w4TensorDb)}, {"w4_group", finiteOrNull(q.w4GroupDb)},
                {"w3_tensor", finiteOrNull(q.w3TensorDb)}, {"w3_group", finiteOrNull(q.w3GroupDb)}};
            auto cell = [](double v) {
                char b[32];
                std::snprintf(b, sizeof b, "%9.2f", v);
                return std::isfinite(v) ? std::string(b) : std::string("        -");
            };
            cells = str(cell(q.stats.kurtosis), " ", cell(q.w4TensorDb), " ", cell(q.w4GroupDb), " ",
                cell(q.w3TensorDb), " ", cell(q.w3GroupDb));
        }
        j["tensors"].push_back(t);
        if (!json)
            std::printf("%-40s %-5s %-16s %10lld %s\n", e.name.c_str(), e.dtypeName.c_str(),
                shapeString(e.shape).c_str(), (long long)e.numel(), cells.c_str());
    }
    j["params"] = params;
    if (json)
        std::printf("%s\n", j.dump(2).c_str());
    else
        std::printf("\n%lld parameters; SQNR in dB of symmetric round-to-nearest, groups along the input "
                    "(last) dimension\n(\"-\": not a multiple of %d)\n",
            (long long)params, group);
    return 0;
}

// The type of a top-level layer's output (inside subgraphs import keeps none).
const ValueInfo* layerOutput(const Graph& g, const LayerSummary& l)
{
    const int idx = l.scope.empty() ? g.findNode(l.name) : -1;
    return idx >= 0 ? g.info(g.nodes[std::size_t(idx)].outputs.front()) : nullptr;
}

nlohmann::json passesJson(const rt::OptimizedGraph& o)
{
    nlohmann::json passes = nlohmann::json::array();
    for (const auto& r : o.passes)
        passes.push_back({{"pass", r.pass}, {"rewrites", r.rewrites}, {"nodes_before", r.nodesBefore},
            {"nodes_after", r.nodesAfter}, {"ms", r.ms}, {"changes", r.changes}});
    return {{"passes", passes}, {"op_counts", o.graph.opCounts()}};
}

int runInspect(const std::vector<std::string>& argv)
{
    Args args(argv, {"group"}, {"json", "optimized"});
    const std::string& path = args.required(0, "MODEL (an .onnx or .safetensors file)");
    if (path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0)
        return inspectSafetensors(path, args);
    if (args.value("group"))
        fail("--group applies to .safetensors files only");
    Graph g = importOnnx(path);
    std::vector<LayerSummary> layers = summarizeLayers(g);
    std::optional<rt::OptimizedGraph> optimized;
    if (args.flag("optimized")) // the passes QS_RUNTIME_PASSES selects, on the shapes import fixed
        optimized = rt::optimizeGraph(g, rt::passSpecFromEnv());

    if (args.flag("json")) {
        nlohmann::json j;
        j["model"] = path;
        j["file_bytes"] = g.fileBytes;
        j["ir_version"] = g.irVersion;
        j["opset"] = g.opset("");
        j["producer"] = g.producerName;
        j["inputs"] = nlohmann::json::array();
        for (const auto& v : g.inputs)
            j["inputs"].push_back(valueInfoJson(v));
        j["outputs"] = nlohmann::json::array();
        for (const auto& v : g.outputs)
            j["outputs"].push_back(valueInfoJson(v));
        j["op_counts"] = g.opCounts();
        j["params"] = g.parameterCount();
        j["metadata"] = g.metadata;
        j["layers"] = nlohmann::json::array();
        for (const auto& l : layers) {
            const ValueInfo* out = layerOutput(g, l);
            j["layers"].push_back({
                {"name", l.name}, {"scope", l.scope}, {"op", l.op}, {"kind", layerKindName(l.kind)}, {"weight", l.weight},
                {"weight_shape", l.weightShape}, {"output_shape", out ? valueInfoJson(*out)["shape"] : nlohmann::json(nullptr)},
                {"params", l.params},
                {"weight_stats",
                 {{"min", l.stats.min}, {"max", l.stats.max}, {"mean", l.stats.mean}, {"std", l.stats.std},
                  {"kurtosis", l.stats.kurtosis}, {"outlier_fraction", l.stats.outlierFraction},
                  {"channel_range_ratio", finiteOrNull(l.stats.channelRangeRatio)},
                  {"non_finite", l.stats.nonFinite}}},
            });
        }
        if (optimized)
            j["optimized"] = passesJson(*optimized);
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }

    std::printf("model      %s\n", path.c_str());
    std::printf("producer   %s %s, IR %lld, opset %lld\n", g.producerName.c_str(), g.producerVersion.c_str(),
                (long long)g.irVersion, (long long)g.opset(""));
    std::printf("size       %.1f KiB on disk, %lld parameters\n", double(g.fileBytes) / 1024.0,
                (long long)g.parameterCount());
    for (const auto& v : g.inputs)
        std::printf("input      %-20s %-8s %s\n", v.name.c_str(), dtypeName(v.dtype), v.text().c_str());
    for (const auto& v : g.outputs)
        std::printf("output     %-20s %-8s %s\n", v.name.c_str(), dtypeName(v.dtype), v.text().c_str());
    std::printf("ops       ");
    for (const auto& [op, count] : g.opCounts())
        std::printf(" %s:%d", op.c_str(), count);
    std::printf("\n\n%-28s %-13s %-18s %9s %10s %10s %10s %9s %8s %9s %8s\n", "layer", "op", "output", "params",
                "min", "max", "std", "kurtosis", "out>6sd", "ch-range", "nonfin");
    for (const auto& l : layers) {
        const ValueInfo* out = layerOutput(g, l);
        const std::string name = l.scope.empty() ? l.name : l.scope + "/" + l.name;
        std::printf("%-28s %-13s %-18s %9lld %10.4g %10.4g %10.4g %9.3f %8.5f %9.2f %8lld\n", name.c_str(),
                    l.op.c_str(), out ? out->text().c_str() : "?", (long long)l.params, l.stats.min, l.stats.max,
                    l.stats.std, l.stats.kurtosis, l.stats.outlierFraction, l.stats.channelRangeRatio,
                    (long long)l.stats.nonFinite);
    }
    if (optimized) {
        std::printf("\ngraph optimizer (QS_RUNTIME_PASSES=%s): %zu -> %zu nodes\n", rt::passSpecFromEnv().c_str(),
                    g.nodes.size(), optimized->graph.nodes.size());
        std::printf("%s", optimized->reportText().c_str());
    }
    return 0;
}

const bool registered = registerCommand(
    {"inspect", "MODEL|FILE.safetensors [--group N] [--json] [--optimized]",
     "print inputs, outputs, op counts, parameters and per-layer weight statistics (safetensors: per tensor, "
     "with W4/W3 SQNR); --optimized: what each graph optimizer pass changes",
     runInspect});

} // namespace
} // namespace qs::cli
