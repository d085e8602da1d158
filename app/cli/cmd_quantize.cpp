// quantstudio-cli quantize: calibrate, quantize (simulated, or INT8 on oneDNN),
// evaluate against FP32, record the run, print the metrics.
#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_args.h"
#include "cli/quant_args.h"
#include "cli/recording.h"
#include "cli/slurm_args.h"

#include "cluster/merge.h"
#include "data/input_binding.h"
#include "graph/onnx_import.h"
#include "graph/subgraphs.h"
#include "quant/session.h"
#include "record/quantize_run.h"
#include "util/error.h"
#include "util/json_number.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace qs::cli {
namespace {

nlohmann::json opt(const std::optional<double>& v)
{
    return v ? jsonNumber(*v) : nlohmann::json(nullptr);
}

QuantConfig configFromArgs(const Args& args)
{
    QuantConfig c = args.value("config") ? QuantConfig::load(*args.value("config")) : QuantConfig{};
    parseBitOptions(args, c);
    if (auto g = args.value("granularity"))
        parseGranularity(*g, c.defaults.weight);
    if (auto cal = args.value("calib"))
        parseCalibrator(*cal, c.defaults.activation);
    if (auto wr = args.value("wrange")) {
        if (*wr != "minmax" && *wr != "mse" && *wr != "output-mse")
            fail("--wrange: ", quoted(*wr), " is not minmax, mse or output-mse");
        c.defaults.weight.calibrator = *wr;
        c.defaults.weight.calibratorParam = 0;
    }
    auto addAlgo = [&](const std::string& name) {
        for (const auto& a : c.algorithms)
            if (a.name == name)
                return;
        c.algorithms.push_back({name, nlohmann::json::object()});
    };
    if (args.flag("cle")) // before calibration, so first in order
        c.algorithms.insert(c.algorithms.begin(), AlgorithmUse{"cle", nlohmann::json::object()});
    if (args.flag("bias-correction"))
        addAlgo("bias_correction");
    if (auto list = args.value("algo")) {
        std::string item;
        for (char ch : *list + ",") {
            if (ch == ',') {
                if (!item.empty())
                    addAlgo(item);
                item.clear();
            } else {
                item += ch;
            }
        }
    }
    for (const auto& a : c.algorithms)
        (void)algorithm(a.name); // unknown names fail here, listing the known ones
    parseAttentionArgs(args, c);
    return c;
}

int runQuantize(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = {"config", "wbits", "abits", "granularity", "calib", "wrange", "calib-limit", "eval-limit", "eval-from",
                                    "batch", "threads", "db", "algo", "calib-data", "save-config", "shard"};
    valued.insert(dataOptionNames().begin(), dataOptionNames().end());
    valued.insert(attentionOptionNames().begin(), attentionOptionNames().end());
    valued.insert(clusterValuedOptions().begin(), clusterValuedOptions().end());
    Args args(argv, valued, {"bias-correction", "cle", "int8", "json", "kivi", "slurm"});
    const std::string& path = args.required(0, "MODEL (an .onnx file)");
    if (args.flag("slurm")) // the evaluation's batches as shards; kind, hashes and config: the first shard's
        return runShardsOnSlurm(args, argv, valued, "quantize", path, ShardIdentity {});
    refuseClusterOptionsWithoutSlurm(args);

    QuantizeOptions opts;
    opts.config = configFromArgs(args);
    opts.int8 = args.flag("int8");
    opts.batch = args.intValue("batch", 32);
    opts.calibLimit = args.intValue("calib-limit", 256);
    opts.evalLimit = args.intValue("eval-limit", -1);
    opts.threads = args.intValue("threads", 0);
    if (opts.batch < 1)
        fail("--batch must be at least 1");
    if (auto shard = args.value("shard")) { // a contiguous range of the evaluation's batches
        const ShardSpec spec = parseShardSpec(*shard);
        if (!args.value("db"))
            fail("--shard ", *shard, ": a shard's results go to its own store; give --db SHARD_STORE");
        opts.evalShard = spec.index;
        opts.evalShards = spec.count;
    }
    if (auto out = args.value("save-config"); out && opts.evalShard <= 0) // under --slurm, shard 0 writes it
        opts.config.save(*out);

    Graph graph = importOnnx(path);
    DataOptions evalOpts = dataOptions(args);
    inlineIfsForInputs(graph, evalOpts.inputValues); // an If that --input-value decides: ordinary layers
    const int64_t evalFrom = args.intValue("eval-from", 0);
    evalOpts.limit = opts.evalLimit >= 0 ? evalFrom + opts.evalLimit : -1; // --eval-limit counts from --eval-from
    Dataset eval = evaluationPart(loadDataset(evalOpts, graph), evalFrom); // --eval-from: held out from calibration
    Dataset calib = calibrationData(args, evalOpts, graph, opts.calibLimit);

    std::optional<Store> store = storeFromArgs(args);
    Progress progress([&](const ProgressState& s) {
        if (!args.flag("json"))
            std::fprintf(stderr, "\r%3d%%  %-60.60s", int(s.fraction * 100), s.stage.c_str());
    });
    CancelToken cancel;
    const RecordedQuantization recorded =
        quantizeAndRecord(store ? &*store : nullptr, graph, path, calib, eval, opts, progress, cancel);
    const QuantizeResult& r = recorded.result;
    if (!args.flag("json"))
        std::fprintf(stderr, "\r%-70s\r", "");

    if (args.flag("json")) {
        nlohmann::json j;
        j["run_id"] = store ? nlohmann::json(recorded.runId) : nlohmann::json(nullptr);
        j["top1"] = opt(r.top1);
        j["fp32_top1"] = opt(r.fp32Top1);
        j["perplexity"] = opt(r.perplexity);
        j["fp32_perplexity"] = opt(r.fp32Perplexity);
        j["top1_agreement"] = r.top1Agreement;
        j["sqnr_db"] = jsonNumber(r.sqnrDb);
        j["cosine"] = r.cosine;
        j["kl"] = r.kl;
        j["size_bits"] = r.sizeBits;
        j["fp32_size_bits"] = r.fp32SizeBits;
        j["compression"] = r.compression;
        j["latency_ms"] = r.latencyMs;
        j["fp32_latency_ms"] = r.fp32LatencyMs;
        j["int8"] = opts.int8; // latency_ms of real INT8 kernels, else of simulated quantization
        j["eval_samples"] = r.evalSamples;
        j["algorithms"] = r.applied;
        j["algorithm_notes"] = r.algorithmNotes;
        j["config"] = r.config;
        j["layers"] = nlohmann::json::array();
        for (const auto& l : r.layers)
            j["layers"].push_back({{"name", l.name}, {"op", l.op}, {"wbits", l.wbits}, {"abits", l.abits},
                                   {"granularity", l.granularity}, {"sqnr_db", jsonNumber(l.outputSqnrDb)},
                                   {"weight_sqnr_db", jsonNumber(l.weightSqnrDb)}, {"size_bits", l.sizeBits}});
        j["attention_operands"] = nlohmann::json::array();
        for (const auto& o : r.operands)
            j["attention_operands"].push_back({{"name", o.name}, {"role", o.role}, {"value", o.value}, {"bits", o.bits},
                {"granularity", o.granularity}, {"cache", o.cache}, {"sqnr_db", jsonNumber(o.sqnrDb)}});
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    auto pct = [](const std::optional<double>& v) { return v ? str(std::round(*v * 10000) / 100, "%") : std::string("n/a"); };
    std::printf("model          %s\n", path.c_str());
    std::printf("top-1          %s (FP32 %s) on %lld samples\n", pct(r.top1).c_str(), pct(r.fp32Top1).c_str(),
                (long long)r.evalSamples);
    if (r.perplexity && r.fp32Perplexity)
        std::printf("perplexity     %.4f (FP32 %.4f, %+.4f)\n", *r.perplexity, *r.fp32Perplexity,
            *r.perplexity - *r.fp32Perplexity);
    std::printf("agreement      %.2f%% of top-1 predictions match FP32\n", r.top1Agreement * 100);
    std::printf("output         SQNR %.2f dB, cosine %.6f, KL %.3g nats\n", r.sqnrDb, r.cosine, r.kl);
    std::printf("size           %.1f KiB (FP32 %.1f KiB), compression %.2fx\n", double(r.sizeBits) / 8192.0,
                double(r.fp32SizeBits) / 8192.0, r.compression);
    std::printf("latency        %.3f ms per batch of %lld (FP32 %.3f ms, %.2fx) %s\n", r.latencyMs,
        (long long)batchFor(graph, opts.batch), r.fp32LatencyMs, r.latencyMs > 0 ? r.fp32LatencyMs / r.latencyMs : 0.0,
        opts.int8 ? "[INT8 kernels, oneDNN]" : "[simulated quantization]");
    if (store)
        std::printf("run            %lld recorded in %s\n", (long long)recorded.runId, store->path().c_str());
    std::printf("\n%-28s %-6s %5s %5s %-10s %12s %12s\n", "layer", "op", "W", "A", "granular.", "weight SQNR",
                "output SQNR");
    for (const auto& l : r.layers)
        std::printf("%-28s %-6s %5d %5d %-10s %12.2f %12.2f\n", l.name.c_str(), l.op.c_str(), l.wbits, l.abits,
                    l.granularity.c_str(), l.weightSqnrDb, l.outputSqnrDb);
    for (const auto& o : r.operands)
        std::printf("%-28s %-6s %5s %5d %-10s %12s %12.2f%s\n", o.name.c_str(), o.role.c_str(), "-", o.bits,
            o.granularity.c_str(), "-", o.sqnrDb, o.cache.empty() ? "" : str("  (cache ", o.cache, ")").c_str());
    if (r.algorithmNotes.contains("attention"))
        for (const auto& u : r.algorithmNotes["attention"]["unmapped"])
            std::fprintf(stderr, "attention: node %s (%s) not quantized: %s\n", u["node"].get<std::string>().c_str(),
                u["op"].get<std::string>().c_str(), u["reason"].get<std::string>().c_str());
    return 0;
}

const bool registered = registerCommand({"quantize",
    "MODEL --data DATA [--config CFG.json | --wbits N --abits N --granularity tensor|channel|group:N "
    "--calib minmax|ema|percentile:P|mse|entropy --wrange minmax|mse|output-mse] [--bias-correction] [--cle] [--algo "
    "A,B] [--int8] [--attn-bits N] [--kv-bits N] [--attn-granularity G|ROLE=G,...] [--kivi] [--attn-calib C] "
    "[--calib-data DATA] [--context N] [--tokenizer spm:FILE|hf:FILE] [--calib-limit N] [--eval-limit N] [--eval-from "
    "N] [--batch N] [--threads N] [--save-config "
    "PATH] "
    "[--db DB] [--json] [--shard I/N | --slurm --shards N [--partition P] [--time T] [--mem M] [--cpus-per-task C] "
    "[--work-dir DIR]]",
    "calibrate, quantize and evaluate a model against FP32 (language models on text:FILE or tokens:FILE windows, "
    "scored by perplexity); record the run with --db",
    runQuantize});

} // namespace
} // namespace qs::cli
