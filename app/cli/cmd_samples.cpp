// quantstudio-cli samples: the inputs behind the numbers. --layer NAME: the samples
// whose output diverges most when that layer alone is quantized; --trace INDEX (or
// --trace flipped): one sample's error, layer by layer, in the quantized model.
#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_args.h"
#include "cli/output.h"
#include "cli/quant_args.h"

#include "analysis/samples.h"
#include "graph/onnx_import.h"
#include "util/error.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace qs::cli {
namespace {

nlohmann::json optInt(const std::optional<int64_t>& v)
{
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

int runSamples(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = {"layer", "bits", "mode", "top", "trace", "calib-limit", "batch", "threads",
        "granularity", "calib", "limit"};
    valued.insert(dataOptionNames().begin(), dataOptionNames().end());
    Args args(argv, valued, {"json"});
    const std::string& path = args.required(0, "MODEL (an .onnx file)");
    if (!args.value("layer") == !args.value("trace"))
        fail("give exactly one of --layer NAME (most divergent samples) or --trace INDEX|flipped (error trace)");
    if (!args.value("data"))
        fail("samples needs --data DATA");
    Graph graph = importOnnx(path);
    Dataset data = loadDataset(dataOptions(args), graph);
    SampleOptions o;
    o.bits = args.intValue("bits", 4);
    o.mode = parseSensitivityMode(args.value("mode", "weights"));
    o.calibLimit = args.intValue("calib-limit", 256);
    o.batch = args.intValue("batch", 32);
    o.threads = args.intValue("threads", 0);
    parseBaseQuant(args, o.base);
    Progress progress = stderrProgress(args);
    CancelToken cancel;

    if (auto layer = args.value("layer")) {
        const int64_t top = args.intValue("top", 10);
        const auto rows = divergentSamples(graph, data, *layer, top, o, progress, cancel);
        clearProgress(args);
        if (args.flag("json")) {
            nlohmann::json j = {{"layer", *layer}, {"bits", o.bits}, {"mode", sensitivityModeName(o.mode)},
                {"samples", nlohmann::json::array()}};
            for (const auto& r : rows)
                j["samples"].push_back({{"index", r.index}, {"kl", r.kl}, {"fp32_class", r.fp32Class},
                    {"quant_class", r.quantClass}, {"label", optInt(r.label)}});
            std::printf("%s\n", j.dump(2).c_str());
            return 0;
        }
        std::printf("samples diverging most with only %s quantized (%s, %d bits): KL of softmax outputs\n\n",
            layer->c_str(), sensitivityModeName(o.mode), o.bits);
        const auto names = classNames(graph);
        std::printf("%8s %12s %-14s %-14s %-14s\n", "index", "KL nats", "FP32", "quant", "label");
        for (const auto& r : rows)
            std::printf("%8lld %12.6f %-14s %-14s %-14s\n", (long long)r.index, r.kl,
                classLabel(names, r.fp32Class).c_str(), classLabel(names, r.quantClass).c_str(),
                r.label ? classLabel(names, *r.label).c_str() : "-");
        return 0;
    }

    const std::string which = *args.value("trace");
    std::vector<int64_t> flipped;
    int64_t index = -1;
    if (which == "flipped") {
        Progress p = progress.sub(0, 0.5);
        for (const auto& f : flippedSamples(graph, data, o, p, cancel))
            flipped.push_back(f.index);
        if (flipped.empty())
            fail("no sample is classified right by FP32 and wrong by the model quantized at ", o.bits, " bits");
        index = flipped.front();
    } else {
        index = parseInteger(which, "option --trace (a sample index or \"flipped\")", 0, INT64_MAX);
    }
    Progress tp = progress.sub(which == "flipped" ? 0.5 : 0, 1);
    const SampleTrace t = traceSample(graph, data, index, o, tp, cancel);
    clearProgress(args);
    if (args.flag("json")) {
        nlohmann::json j = {{"index", t.index}, {"bits", o.bits}, {"mode", sensitivityModeName(o.mode)},
            {"label", optInt(t.label)}, {"fp32_class", t.fp32Class}, {"quant_class", t.quantClass},
            {"output_kl", t.outputKl}, {"output_sqnr_db", jsonNumber(t.outputSqnrDb)}, {"layers", nlohmann::json::array()},
            {"flipped", which == "flipped" ? nlohmann::json(flipped) : nlohmann::json(nullptr)}};
        for (const auto& p : t.layers)
            j["layers"].push_back(
                {{"name", p.layer}, {"op", p.op}, {"value", p.value}, {"sqnr_db", jsonNumber(p.sqnrDb)}});
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    if (which == "flipped")
        std::printf("%zu samples are right in FP32 and wrong at %d bits; tracing the first\n", flipped.size(), o.bits);
    const auto names = classNames(graph);
    std::printf("sample %lld: label %s, FP32 says %s, quantized (%d bits) says %s; output KL %.6f, SQNR %.2f dB\n\n",
        (long long)t.index, t.label ? classLabel(names, *t.label).c_str() : "-", classLabel(names, t.fp32Class).c_str(),
        o.bits, classLabel(names, t.quantClass).c_str(), t.outputKl, t.outputSqnrDb);
    std::printf("%-28s %-8s %12s\n", "layer", "op", "output SQNR dB");
    for (const auto& p : t.layers)
        std::printf("%-28s %-8s %12.2f\n", p.layer.c_str(), p.op.c_str(), p.sqnrDb);
    return 0;
}

const bool registered = registerCommand({"samples",
    "MODEL --data DATA (--layer NAME [--top K] | --trace INDEX|flipped) [--bits N] [--mode weights|activations|both] "
    "[--calib-limit N] [--limit N] [--json]",
    "the samples behind the numbers: most divergent inputs for a layer, or one sample's per-layer error trace",
    runSamples});

} // namespace
} // namespace qs::cli
