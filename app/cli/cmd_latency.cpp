// quantstudio-cli latency MODEL: the measured per-layer latency table of this CPU
// (FP32, INT8, and the cost of crossing between them), cached per machine in the store.
#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_args.h"
#include "cli/latency_args.h"
#include "cli/output.h"
#include "cli/recording.h"

#include "analysis/latency.h"
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "record/latency_record.h"
#include "util/hash.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace qs::cli {

// Shared with `mixed --cost latency`: the profile for MODEL from --db's cache or measured.
LatencyProfile latencyFromArgs(const Args& args, const std::string& batchOption, const Graph& graph,
    const std::string& path, bool& cached, Progress& progress, const CancelToken& cancel);

LatencyProfile latencyFromArgs(const Args& args, const std::string& batchOption, const Graph& graph,
    const std::string& path, bool& cached, Progress& progress, const CancelToken& cancel)
{
    LatencyOptions o;
    o.batch = args.intValue(batchOption, 1);
    o.threads = args.intValue("threads", 0);
    o.repeats = args.intValue("repeats", o.repeats);
    o.warmup = args.intValue("warmup", o.warmup);
    o.inputValues = inputValues(args);
    o.inputShapes = inputShapes(args);
    std::optional<Store> store = storeFromArgs(args);
    if (store)
        recordModel(*store, graph, path);
    return cachedLatency(store ? &*store : nullptr, graph, sha256File(path), o, args.flag("remeasure"), cached,
        progress, cancel);
}

namespace {

nlohmann::json optMs(const std::optional<double>& v)
{
    return v ? jsonNumber(*v) : nlohmann::json(nullptr);
}

int runLatency(const std::vector<std::string>& argv)
{
    Args args(
        argv, {"batch", "threads", "repeats", "warmup", "db", "input-value", "input-shape"}, {"json", "remeasure"});
    const std::string& path = args.required(0, "MODEL (an .onnx file)");
    Graph graph = importOnnx(path);
    Progress progress = stderrProgress(args);
    CancelToken cancel;
    bool cached = false;
    const LatencyProfile p = latencyFromArgs(args, "batch", graph, path, cached, progress, cancel);
    clearProgress(args);
    QuantSession folded(graph, {});
    const LayerLinks links = layerLinks(folded.graph());
    std::set<std::string> allInt8;
    for (const auto& l : p.layers)
        if (l.int8Ms)
            allInt8.insert(l.layer);
    const double predictedInt8 = predictLatencyMs(p, links, allInt8);
    const double predictedFp32 = predictLatencyMs(p, links, {});

    if (args.flag("json")) {
        nlohmann::json j = {{"model", path}, {"batch", p.batch}, {"threads", p.threads}, {"isa", p.isa},
            {"cpu_flags", p.cpuFlags}, {"warmup", p.warmup}, {"repeats", p.repeats}, {"cached", cached},
            {"profile_id", p.id ? nlohmann::json(p.id) : nlohmann::json(nullptr)},
            {"fp32_total_ms", p.fp32TotalMs}, {"int8_total_ms", p.int8TotalMs}, {"other_ms", p.otherMs},
            {"predicted_fp32_ms", predictedFp32}, {"predicted_int8_ms", predictedInt8},
            {"layers", nlohmann::json::array()}};
        for (const auto& l : p.layers)
            j["layers"].push_back({{"name", l.layer}, {"op", l.op}, {"fp32_ms", l.fp32Ms}, {"int8_ms", optMs(l.int8Ms)},
                {"quantize_ms", optMs(l.quantizeMs)}, {"dequantize_ms", optMs(l.dequantizeMs)}});
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("ISA (oneDNN): %s; CPU flags: ", p.isa.c_str());
    for (const auto& f : p.cpuFlags)
        std::printf("%s ", f.c_str());
    std::printf("\nbatch %d, threads %d, median of %d after %d warm-up%s\n\n", p.batch, p.threads, p.repeats, p.warmup,
        cached ? " (cached in the store)" : "");
    std::printf("%-28s %10s %10s %8s %12s %12s\n", "layer", "FP32 ms", "INT8 ms", "speedup", "quantize ms",
        "dequant ms");
    auto fixed = [](const std::optional<double>& v, const char* format) {
        char buf[32] = "-";
        if (v)
            std::snprintf(buf, sizeof buf, format, *v);
        return std::string(buf);
    };
    for (const auto& l : p.layers) {
        const auto speedup = l.int8Ms && *l.int8Ms > 0 ? std::optional(l.fp32Ms / *l.int8Ms) : std::nullopt;
        std::printf("%-28s %10.4f %10s %8s %12s %12s\n", l.layer.c_str(), l.fp32Ms, fixed(l.int8Ms, "%.4f").c_str(),
            fixed(speedup, "%.2fx").c_str(), fixed(l.quantizeMs, "%.4f").c_str(), fixed(l.dequantizeMs, "%.4f").c_str());
    }
    std::printf("\nother kernels %.4f ms\nwhole model: FP32 %.4f ms predicted (%.4f ms per whole pass), all INT8 %.4f ms "
                "predicted (%.4f ms per whole pass)\n"
                "(each number a median; a whole pass also holds the time the process waited for a CPU, which on a\n"
                "loaded machine the medians of single kernels mostly escape)\n",
        p.otherMs, predictedFp32, p.fp32TotalMs, predictedInt8, p.int8TotalMs);
    return 0;
}

const bool registered = registerCommand({"latency",
    "MODEL [--batch N] [--threads N] [--repeats N] [--warmup N] "
    "[--input-value NAME=V,...] [--input-shape NAME=1x3x48x320]... [--db DB] [--remeasure] [--json]",
    "measured per-layer latency on this CPU: FP32, INT8 and precision-boundary costs (cached per machine with --db)",
    runLatency});

} // namespace
} // namespace qs::cli
