// quantstudio-cli sensitivity and mixed: which layers can take fewer bits, and a
// mixed-precision configuration under a budget, from the Pareto front.
#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_args.h"
#include "cli/latency_args.h"
#include "cli/output.h"
#include "cli/quant_args.h"
#include "cli/recording.h"
#include "cli/stop_signal.h"
#include "cli/slurm_args.h"

#include "analysis/bit_budget.h"
#include "analysis/latency.h"
#include "analysis/latency_front.h"
#include "analysis/mixed_precision.h"
#include "analysis/sensitivity.h"
#include "analysis/sensitivity_metrics.h"
#include "cluster/merge.h"
#include "cluster/sharded_sweep.h"
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "record/mixed_record.h"
#include "record/sensitivity_record.h"
#include "util/error.h"
#include "util/hash.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <utility>
#include <csignal>
#include <iomanip>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

namespace qs::cli {

namespace {

std::vector<int> bitsList(const Args& args)
{
    std::vector<int> bits;
    for (double b : parseNumberList(args.value("bits", "2,3,4,5,6,8"), "--bits")) {
        if (b != std::floor(b) || b < 1 || b > 64)
            fail("option --bits: ", b, " is not a whole bit width 1..64");
        bits.push_back(int(b));
    }
    return bits;
}

SensitivityOptions sensitivityOptions(const Args& args)
{
    SensitivityOptions o;
    o.bits = bitsList(args);
    o.mode = parseSensitivityMode(args.value("mode", "weights"));
    o.method = parseSensitivityMethod(args.value("method", "oneshot"));
    o.limit = args.intValue("limit", 256);
    o.batch = args.intValue("batch", 32);
    o.threads = args.intValue("threads", 0);
    o.naive = args.flag("naive");
    o.hutchinsonSamples = args.intValue("hutchinson", 8);
    if (o.hutchinsonSamples < 1)
        fail("--hutchinson: expected at least 1 random direction, got ", o.hutchinsonSamples);
    if (auto base = args.value("base")) // a whole base configuration (the studio's, for its cluster shards)
        o.base = QuantConfig::load(*base);
    parseBaseQuant(args, o.base);
    o.attention = args.flag("attention");
    if (o.attention)
        parseAttentionArgs(args, o.base);
    return o;
}

// A cancelled sweep prints and stores what it measured, then exits like a cancelled command.
int exitCode(const SensitivityResult& r)
{
    if (r.complete)
        return 0;
    std::fprintf(stderr, "quantstudio-cli sensitivity: cancelled; partial results kept (complete: false)\n");
    return 130;
}

// With --db: the sensitivity run, recorded as running before the sweep starts.
void beginSensitivityRun(std::optional<Store>& store, std::optional<RunGuard>& run, const Graph& graph,
    const std::string& path, const Dataset& data, nlohmann::json config)
{
    if (!store)
        return;
    run.emplace(*store, runStart(*store, RunKind::Sensitivity, graph, path, data, std::move(config)));
}

// --metrics: several metrics side by side with bootstrap intervals and their rank agreement.
int runSensitivityMetrics(const Args& args, const std::string& path)
{
    for (const char* other : {"mode", "method"})
        if (args.value(other))
            fail("--metrics measures weight sensitivity with every method it names; --", other, " does not apply");
    Graph graph = importOnnx(path);
    MetricsOptions o;
    const std::vector<int> bits = args.value("bits") ? bitsList(args) : std::vector<int>{4};
    if (bits.size() != 1)
        fail("--metrics compares metrics at one bit width: give --bits N, got ", bits.size(), " values");
    o.bits = bits.front();
    const std::string list = args.value("metrics", "all");
    o.metrics.clear();
    if (list == "all")
        o.metrics = {"oneshot", "local", "hessian", "kurtosis"};
    else
        for (std::size_t at = 0; at <= list.size();) {
            const std::size_t comma = std::min(list.find(',', at), list.size());
            o.metrics.push_back(list.substr(at, comma - at));
            at = comma + 1;
        }
    o.bootstrap = args.intValue("bootstrap", 200);
    o.seed = uint64_t(args.intValue("seed", 1));
    o.limit = args.intValue("limit", 256);
    o.batch = args.intValue("batch", 32);
    o.threads = args.intValue("threads", 0);
    o.hutchinsonSamples = args.intValue("hutchinson", 8);
    parseBaseQuant(args, o.base);
    DataOptions dopts = dataOptions(args);
    dopts.limit = o.limit;
    Dataset data = loadDataset(dopts, graph);

    std::optional<Store> store = storeFromArgs(args);
    std::optional<RunGuard> run;
    beginSensitivityRun(store, run, graph, path, data, agreementRunConfig(o));
    Progress progress = stderrProgress(args);
    CancelToken cancel;
    StopOnSignal stopOnSignal(cancel);
    const SensitivityAgreement r =
        runRecorded(run, [&] { return measureSensitivityAgreement(graph, data, o, progress, cancel); });
    clearProgress(args);

    if (run) {
        run->addLayers(agreementLayerRows(r));
        run->finish(agreementRunMetrics(r));
    }
    if (args.flag("json")) {
        nlohmann::json names = nlohmann::json::array();
        for (const auto& m : r.metrics)
            names.push_back(m.name);
        nlohmann::json j = {{"run_id", run ? nlohmann::json(run->id()) : nlohmann::json(nullptr)}, {"bits", r.bits},
            {"bootstrap", r.bootstrap}, {"batches", r.batches}, {"samples", r.samples}, {"seconds", r.seconds},
            {"metrics", agreementMetricsJson(r)}, {"spearman", {{"metrics", names}, {"matrix", agreementSpearmanJson(r)}}},
            {"layers", nlohmann::json::array()}};
        for (std::size_t li = 0; li < r.layers.size(); ++li)
            j["layers"].push_back({{"name", r.layers[li]}, {"op", r.ops[li]}, {"metrics", agreementLayerJson(r, li)}});
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("sensitivity metrics at %d bits, %lld samples in %lld batches, %d bootstrap resamples, %.2f s\n",
        r.bits, (long long)r.samples, (long long)r.batches, r.bootstrap, r.seconds);
    for (const auto& m : r.metrics)
        std::printf("  %-16s %s\n", m.name.c_str(), m.summary.c_str());
    std::printf("\n%-24s", "layer");
    for (const auto& m : r.metrics)
        std::printf(" %34s", (m.name + " [95% CI]").c_str());
    std::printf("\n");
    for (std::size_t li = 0; li < r.layers.size(); ++li) {
        std::printf("%-24s", r.layers[li].c_str());
        for (const auto& m : r.metrics)
            std::printf(" %34s", str(std::setprecision(4), m.value[li], " [", m.lo[li], ", ", m.hi[li], "]").c_str());
        std::printf("\n");
    }
    std::printf("\nSpearman rank correlation of the sensitivity rankings (higher score = more sensitive)\n%-16s", "");
    for (const auto& m : r.metrics)
        std::printf(" %16s", m.name.c_str());
    std::printf("\n");
    for (std::size_t i = 0; i < r.metrics.size(); ++i) {
        std::printf("%-16s", r.metrics[i].name.c_str());
        for (double v : r.spearman[i])
            std::printf(" %16.3f", v);
        std::printf("\n");
    }
    return 0;
}

int runSensitivity(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = {"bits", "mode", "method", "limit", "batch", "threads", "db", "granularity", "calib",
        "hutchinson", "metrics", "bootstrap", "seed", "base", "shard"};
    valued.insert(dataOptionNames().begin(), dataOptionNames().end());
    valued.insert(attentionOptionNames().begin(), attentionOptionNames().end());
    valued.insert(clusterValuedOptions().begin(), clusterValuedOptions().end());
    Args args(argv, valued, {"json", "naive", "attention", "kivi", "slurm"});
    const std::string& path = args.required(0, "MODEL (an .onnx file)");
    if (args.value("metrics"))
        return runSensitivityMetrics(args, path);
    for (const char* only : {"bootstrap", "seed"})
        if (args.value(only))
            fail("--", only, " needs --metrics (bootstrap intervals are computed for the side-by-side metrics)");
    Graph graph = importOnnx(path);
    SensitivityOptions opts = sensitivityOptions(args);
    DataOptions dopts = dataOptions(args);
    dopts.limit = opts.limit;
    Dataset data = loadDataset(dopts, graph);
    if (args.flag("slurm")) {
        ShardIdentity expected;
        expected.modelHash = sha256File(path);
        expected.datasetHash = data.hash;
        expected.config = sensitivityRunConfig(opts);
        return runShardsOnSlurm(args, argv, valued, "sensitivity", path, expected);
    }
    refuseClusterOptionsWithoutSlurm(args);
    nlohmann::json config = sensitivityRunConfig(opts);
    if (auto shard = args.value("shard")) {
        const ShardSpec spec = parseShardSpec(*shard);
        if (!args.value("db"))
            fail("--shard ", *shard, ": a shard's results go to its own store; give --db SHARD_STORE");
        opts.shardIndex = spec.index;
        opts.shardCount = spec.count;
        config[kShardConfigKey] = str(spec.index, "/", spec.count);
    }

    std::optional<Store> store = storeFromArgs(args);
    std::optional<RunGuard> run;
    beginSensitivityRun(store, run, graph, path, data, config);
    Progress progress = stderrProgress(args);
    CancelToken cancel;
    StopOnSignal stopOnSignal(cancel);
    SensitivityResult r = runRecorded(run, [&] { return measureSensitivity(graph, data, opts, progress, cancel); });
    if (!args.flag("json"))
        std::fprintf(stderr, "\r%-70s\r", "");
    if (run) {
        run->addLayers(sensitivityLayerRows(r));
        const RunMetrics m = sensitivityRunMetrics(r);
        if (r.complete)
            run->finish(m);
        else
            run->cancel(m);
    }

    if (args.flag("json")) {
        nlohmann::json j;
        j["run_id"] = run ? nlohmann::json(run->id()) : nlohmann::json(nullptr);
        j["method"] = sensitivityMethodName(r.method);
        j["mode"] = sensitivityModeName(r.mode);
        j["estimator"] = r.estimator;
        j["complete"] = r.complete;
        j["samples"] = r.samples;
        j["seconds"] = r.seconds;
        j["spearman"] = r.spearman ? nlohmann::json(*r.spearman) : nlohmann::json(nullptr);
        j["layers"] = nlohmann::json::array();
        for (const auto& l : r.layers) {
            nlohmann::json row = {{"name", l.layer}, {"op", l.op}, {"params", l.params}, {"by_bits", sensitivityByBitsJson(l)}};
            if (l.hessianTrace)
                row["hessian_trace"] = *l.hessianTrace;
            if (l.hessianScore)
                row["hessian_score"] = *l.hessianScore;
            j["layers"].push_back(row);
        }
        std::printf("%s\n", j.dump(2).c_str());
        return exitCode(r);
    }
    std::printf("%s sensitivity (%s), %lld samples, %.2f s%s\n%s\n\n", sensitivityMethodName(r.method),
        sensitivityModeName(r.mode), (long long)r.samples, r.seconds, r.complete ? "" : " [INCOMPLETE]",
        r.estimator.c_str());
    std::printf("%-28s", "layer (output SQNR dB)");
    for (int b : opts.bits)
        std::printf(" %7s", str(b, "-bit").c_str());
    if (r.method == SensitivityMethod::Hessian)
        std::printf(" %12s", "HAWQ score");
    std::printf("\n");
    for (const auto& l : r.layers) {
        std::printf("%-28s", l.layer.c_str());
        for (int b : opts.bits) {
            auto it = l.byBits.find(b);
            if (it == l.byBits.end())
                std::printf(" %7s", "-");
            else
                std::printf(" %7.2f", it->second.sqnrDb);
        }
        if (l.hessianScore)
            std::printf(" %12.4g", *l.hessianScore);
        std::printf("\n");
    }
    if (r.spearman)
        std::printf("\nSpearman rank correlation, Hessian score vs one-shot KL: %.3f\n", *r.spearman);
    return exitCode(r);
}

nlohmann::json measuredJson(const MeasuredPoint& m)
{
    return {{"sqnr_db", jsonNumber(m.sqnrDb)}, {"kl", m.kl}, {"top1_agreement", m.top1Agreement},
        {"top1", m.top1 ? nlohmann::json(*m.top1) : nlohmann::json(nullptr)}, {"model_size_bits", m.sizeBits}};
}

// --budget-bits: an average width a model can have (bits per weight).
double averageBitsOption(const std::string& text)
{
    const double bits = parseNumber(text, "option --budget-bits");
    if (bits <= 0 || bits > 64)
        fail("option --budget-bits: ", text, " is not an average width in (0, 64]");
    return bits;
}

int runMixed(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = {"bits", "limit", "batch", "threads", "db", "budget-bits", "budget-bytes", "verify",
        "shard", "out", "min-bits", "max-bits", "pin", "granularity", "calib", "abits", "eval-limit", "cost",
        "budget-ms", "latency-batch", "repeats", "warmup", "kv-context"};
    valued.insert(dataOptionNames().begin(), dataOptionNames().end());
    valued.insert(attentionOptionNames().begin(), attentionOptionNames().end());
    valued.insert(clusterValuedOptions().begin(), clusterValuedOptions().end());
    Args args(argv, valued, {"json", "remeasure", "kivi", "slurm", "attention"});
    const std::string& path = args.required(0, "MODEL (an .onnx file)");
    if (args.flag("slurm")) { // the shards' kind, hashes and config: the first finished shard's
        if (args.intValue("verify", 0) <= 0)
            fail("--slurm: mixed shards split the --verify K measurements; give --verify");
        return runShardsOnSlurm(args, argv, valued, "mixed", path, ShardIdentity {});
    }
    refuseClusterOptionsWithoutSlurm(args);
    const std::string costAxis = args.value("cost", "size");
    if (costAxis != "size" && costAxis != "latency")
        fail("--cost ", quoted(costAxis), ": expected size or latency");
    const bool byLatency = costAxis == "latency";
    const int budgets = int(args.value("budget-bits").has_value()) + int(args.value("budget-bytes").has_value()) +
                        int(args.value("budget-ms").has_value());
    if (budgets != 1)
        fail("give exactly one of --budget-bits AVG, --budget-bytes N or --budget-ms MS");
    if (args.value("budget-ms").has_value() != byLatency)
        fail(byLatency ? "--cost latency takes its budget as --budget-ms MS"
                       : "--budget-ms needs --cost latency (the size axis takes --budget-bits or --budget-bytes)");
    Graph graph = importOnnx(path);
    SensitivityOptions so;
    so.bits = bitsList(args);
    so.mode = SensitivityMode::Weights;
    so.limit = args.intValue("limit", 256);
    so.batch = args.intValue("batch", 32);
    so.threads = args.intValue("threads", 0);
    parseBaseQuant(args, so.base);
    so.base.defaults.activation.bits = args.intValue("abits", 8);
    if (byLatency && so.base.defaults.activation.bits != 8)
        fail("--cost latency: INT8 kernels take 8-bit activations, got --abits ", so.base.defaults.activation.bits);
    // Attention operands: at fixed widths (--attn-bits, --kv-bits) part of every
    // configuration on the front; with --attention each operand is a choice of the
    // search (its sensitivity swept too), priced by its KV cache over --kv-context tokens.
    parseAttentionArgs(args, so.base);
    so.attention = args.flag("attention");
    if (so.attention && byLatency)
        fail("--attention searches the operands on the size axis; --cost latency prices the layers' kernels only");
    if (args.value("kv-context") && !so.attention)
        fail("--kv-context sizes the KV cache of the searched operands; give --attention");
    // Read (and range-checked) before the sweep, not after it.
    const int kvContext = args.intValue("kv-context", 0); // 0: not given (its range starts at 1)
    DataOptions dopts = dataOptions(args);
    dopts.limit = -1;
    Dataset data = loadDataset(dopts, graph);

    Progress progress = stderrProgress(args);
    CancelToken cancel;
    StopOnSignal stopOnSignal(cancel);
    Progress sensProgress = progress.sub(0, 0.5);
    SensitivityResult sens = measureSensitivity(graph, data, so, sensProgress, cancel);
    if (!sens.complete)
        throw Cancelled(); // a front from part of the sweep would mislead
    // Latency: an INT8 option also quantizes the layer's input to 8 bits; its noise
    // adds to the weights' (the same additive model the front sums layers with).
    std::optional<SensitivityResult> actSens;
    LatencyProfile latency;
    bool latencyCached = false;
    if (byLatency) {
        SensitivityOptions ao = so;
        ao.mode = SensitivityMode::Activations;
        ao.bits = {8};
        Progress p = progress.sub(0.5, 0.6);
        actSens = measureSensitivity(graph, data, ao, p, cancel);
        if (!actSens->complete)
            throw Cancelled();
        Progress lp = progress.sub(0.6, 0.7);
        latency = latencyFromArgs(args, "latency-batch", graph, path, latencyCached, lp, cancel);
    }
    // Per-layer options: predicted noise from the one-shot SQNR, exact stored sizes
    // (or measured latencies, with a float option per layer that can leave INT8).
    QuantizeOptions qo;
    qo.config = so.base;
    QuantSession session(graph, qo);
    const ModelSizeTable sizes = modelSizeTable(session);
    const bool byAverage = args.value("budget-bits").has_value();
    const LayerLinks links = layerLinks(session.graph());
    std::vector<LayerOptions> layers = mixedLayerOptions(sizes, sens, so.bits, so.base, byAverage);
    if (so.attention) {
        ModelSizeTable kv = sizes;
        // Tokens the cache holds: --kv-context, else the model's static length or its
        // metadata, else the data's sequence length.
        resolveOperandShapes(kv, session, data.inputShapes(1));
        if (kvContext > 0)
            kv.kvContext = kvContext;
        if (kv.operands.empty())
            fail(path, ": --attention: the model has no attention operands (no MatMul of Q x K^T or P x V)");
        for (const OperandShape& o : kv.operands)
            if (o.cached && o.tokenElements <= 0)
                fail(path, ": attention operand ", quoted(o.point),
                    ": its per-token size is unknown, so its KV cache cannot be priced");
        for (LayerOptions& o : mixedOperandOptions(kv, sens, so.bits, so.base, byAverage))
            layers.push_back(std::move(o));
    }
    int64_t totalElements = 0;
    for (const LayerOptions& lo : layers)
        totalElements += lo.elements;
    if (byLatency)
        layers = latencyLayerOptions(std::move(layers), sizes, latency, links, so.base, inputNoiseAt8(*actSens));
    MixedConstraints c;
    c.allowedBits = std::set<int>(so.bits.begin(), so.bits.end());
    c.minBits = args.intValue("min-bits", 2);
    c.maxBits = args.intValue("max-bits", byLatency ? kFloatBits : 8);
    if (byLatency)
        c = withFloatOption(c);
    if (auto pins = args.value("pin")) { // layer=bits,layer=bits
        std::string item;
        for (char ch : *pins + ",") {
            if (ch != ',') {
                item += ch;
                continue;
            }
            auto eq = item.rfind('=');
            if (eq == std::string::npos)
                fail("--pin: expected LAYER=BITS, got ", quoted(item));
            c.pinned[item.substr(0, eq)] = int(parseInteger(item.substr(eq + 1), "--pin " + item.substr(0, eq), 1, 64));
            item.clear();
        }
    }
    std::vector<FrontPoint> front = paretoFront(constrain(layers, c));
    // Latency cost: the layers' own kernels and crossings; the other kernels are fixed.
    auto latencyMsOf = [&](const FrontPoint& p) { return chainLatencyMs(latency, p); };
    const int64_t budget = byLatency ? latencyBudgetCost(latency, args.doubleValue("budget-ms", 0))
        : byAverage ? int64_t(std::floor(averageBitsOption(*args.value("budget-bits")) * double(totalElements)))
                    : parseInteger(*args.value("budget-bytes"), "option --budget-bytes", 0, INT64_MAX / 8) * 8;
    std::optional<FrontPoint> chosen = bestWithin(front, budget);
    if (!chosen)
        fail("no configuration fits the budget (the smallest needs ",
            byLatency ? str(latencyMsOf(front.front()), " ms")
            : byAverage ? str(front.front().averageBits, " average bits")
                        : str(front.front().sizeBits / 8, " bytes"),
            ")");

    auto configFor = [&](const FrontPoint& p) { return configForPoint(so.base, p); };

    // Verify K points spread over the front (always including the chosen one) for real.
    const int verify = args.intValue("verify", 0);
    std::vector<std::size_t> toVerify;
    if (verify > 0 && !front.empty()) {
        for (int k = 0; k < verify; ++k)
            toVerify.push_back(
                std::size_t(std::lround(double(k) * double(front.size() - 1) / std::max(1, verify - 1))));
    }
    QuantizeOptions vq;
    vq.batch = so.batch;
    vq.calibLimit = so.limit;
    vq.evalLimit = args.intValue("eval-limit", -1);
    vq.threads = so.threads;
    auto measure = [&](const FrontPoint& p) {
        vq.config = configFor(p);
        Progress quiet;
        QuantizeResult r = quantizeModel(graph, data, data, vq, quiet, cancel);
        MeasuredPoint m;
        m.sqnrDb = r.sqnrDb;
        m.kl = r.kl;
        m.top1Agreement = r.top1Agreement;
        m.top1 = r.top1;
        m.sizeBits = r.sizeBits;
        return m;
    };
    // --shard I/N: verification k (the chosen point's own, when not on the list, is k = K)
    // is this shard's when k mod N = I; the others stay unmeasured for merge to fill.
    std::optional<ShardSpec> shard;
    if (auto spec = args.value("shard")) {
        shard = parseShardSpec(*spec);
        if (!args.value("db"))
            fail("--shard ", *spec, ": a shard's results go to its own store; give --db SHARD_STORE");
        if (verify <= 0)
            fail("--shard ", *spec, ": mixed shards split the --verify K measurements; give --verify");
    }
    auto mine = [&](std::size_t k) { return !shard || int(k % std::size_t(shard->count)) == shard->index; };
    for (std::size_t k = 0; k < toVerify.size(); ++k) {
        progress.report(0.5 + 0.5 * double(k) / double(toVerify.size() + 1), "verifying front points");
        if (mine(k))
            front[toVerify[k]].measured = measure(front[toVerify[k]]);
    }
    if (verify > 0) {
        bool listed = false;
        for (std::size_t k : toVerify)
            if (front[k].bits == chosen->bits && front[k].operandBits == chosen->operandBits) {
                listed = true;
                if (front[k].measured)
                    chosen->measured = front[k].measured;
            }
        if (!listed && mine(toVerify.size()))
            chosen->measured = measure(*chosen);
    }
    if (!args.flag("json"))
        std::fprintf(stderr, "\r%-70s\r", "");
    QuantConfig chosenConfig = configFor(*chosen);
    if (auto out = args.value("out"); out && (!shard || shard->index == 0)) // one shard writes it
        chosenConfig.save(*out);

    std::optional<Store> store = storeFromArgs(args);
    std::optional<int64_t> runId;
    auto pointJson = [&](const FrontPoint& p) {
        nlohmann::json latencyJson = nullptr;
        if (byLatency) {
            latencyJson = {{"chain_ms", latencyMsOf(p)}, {"graph_ms", predictLatencyMs(latency, links, int8Layers(p))}};
        }
        return nlohmann::json {{"size_bits", p.sizeBits}, {"average_bits", p.averageBits},
            {"predicted", jsonNumber(p.predictedSqnrDb)}, {"latency_ms", latencyJson},
            {"kv_cache_bits", p.kvCacheBits}, {"operand_bits", p.operandBits},
            {"measured", p.measured ? measuredJson(*p.measured) : nlohmann::json(nullptr)},
            {"config", configFor(p).toJson()}};
    };
    if (store) {
        nlohmann::json config = {{"bits", so.bits}, {"budget", budget},
            {"budget_kind",
                byLatency       ? "latency-ns"
                    : byAverage ? "average-bits"
                                : "bytes"},
            {"cost", costAxis}, {"latency_profile", byLatency ? nlohmann::json(latency.id) : nlohmann::json(nullptr)},
            {"verify", verify}, {"base", so.base.toJson()}};
        if (shard)
            config[kShardConfigKey] = str(shard->index, "/", shard->count);
        RunGuard run(*store, runStart(*store, RunKind::MixedPrecisionSearch, graph, path, data, std::move(config)));
        run.addLayers(mixedLayerRows(*chosen, so.base.defaults.activation.bits));
        nlohmann::json frontJson = nlohmann::json::array();
        for (const auto& p : front)
            frontJson.push_back(pointJson(p));
        run.finish(mixedRunMetrics(*chosen, std::move(frontJson)));
        runId = run.id();
    }

    if (args.flag("json")) {
        nlohmann::json j;
        j["run_id"] = runId ? nlohmann::json(*runId) : nlohmann::json(nullptr);
        j["front"] = nlohmann::json::array();
        for (const auto& p : front)
            j["front"].push_back(pointJson(p));
        j["chosen"] = pointJson(*chosen);
        j["sensitivity_seconds"] = sens.seconds;
        j["cost"] = costAxis;
        if (byLatency)
            j["latency"] = {{"isa", latency.isa}, {"cpu_flags", latency.cpuFlags}, {"batch", latency.batch},
                {"cached", latencyCached}, {"other_ms", latency.otherMs}, {"fp32_total_ms", latency.fp32TotalMs},
                {"int8_total_ms", latency.int8TotalMs}};
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("Pareto front: %zu points (predicted output SQNR from one-shot sensitivity%s)\n\n", front.size(),
        byLatency ? str("; latency measured on ", latency.isa, latencyCached ? ", cached" : "").c_str() : "");
    std::printf("%12s %10s %14s %13s %13s%s%s\n", "size KiB", "avg bits", "predicted dB", "measured dB",
        "measured top1", byLatency ? "   latency ms" : "", so.attention ? "   of which KV KiB" : "");
    auto top1Text = [](const FrontPoint& p) {
        return p.measured && p.measured->top1 ? str(*p.measured->top1) : std::string("-");
    };
    auto kvKiBText = [](const FrontPoint& p) {
        char text[32];
        std::snprintf(text, sizeof text, "%18.1f", double(p.kvCacheBits) / 8192.0);
        return std::string(text);
    };
    for (const auto& p : front)
        std::printf("%12.1f %10.2f %14.2f %13s %13s%s%s\n", double(p.sizeBits) / 8192.0, p.averageBits, p.predictedSqnrDb,
            p.measured ? str(p.measured->sqnrDb).c_str() : "-", top1Text(p).c_str(),
            byLatency ? str("   ", latencyMsOf(p)).c_str() : "",
            so.attention ? kvKiBText(p).c_str() : "");
    std::printf("\nchosen: %.2f average bits, %.1f KiB, predicted %.2f dB%s\n", chosen->averageBits,
        double(chosen->sizeBits) / 8192.0, chosen->predictedSqnrDb,
        chosen->measured ? str(", measured ", chosen->measured->sqnrDb, " dB, top-1 ", top1Text(*chosen)).c_str() : "");
    for (const auto& [layer, bits] : chosen->bits)
        std::printf("  %-28s %d bits\n", layer.c_str(), bits);
    for (const auto& [point, bits] : chosen->operandBits)
        std::printf("  %-28s %s\n", point.c_str(), bits >= 16 ? "float" : str(bits, " bits").c_str());
    return 0;
}

const bool registeredSensitivity = registerCommand({"sensitivity",
    "MODEL --data DATA [--bits 2,3,4,5,6,8] [--mode weights|activations|both] [--method oneshot|local|hessian] "
    "[--hutchinson N] [--limit N] [--batch N] [--base CONFIG.json] [--granularity G] [--calib C] [--naive] [--db DB] "
    "[--json] [--attention [--attn-granularity G|ROLE=G,...] [--kivi] [--attn-calib C]] (also sweep Q, K, V, P) "
    "[--shard I/N] [--slurm --shards N [--partition P] [--time T] [--mem M] [--cpus-per-task C] [--work-dir DIR]]; "
    "or --metrics all|oneshot,local,hessian,kurtosis [--bits N] [--bootstrap N] [--seed S]: metrics side by side "
    "with 95% bootstrap intervals over batches and their Spearman agreement",
    "measure how much each layer suffers when quantized alone, at each bit width", runSensitivity});

const bool registeredMixed = registerCommand({"mixed",
    "MODEL --data DATA (--budget-bits AVG | --budget-bytes N | --cost latency --budget-ms MS) [--bits LIST] "
    "[--min-bits N] [--max-bits N] [--latency-batch N] [--remeasure] "
    "[--pin LAYER=BITS,...] [--verify K [--shard I/N | --slurm --shards N [--partition P] [--time T] [--mem M] "
    "[--cpus-per-task C] [--work-dir DIR]]] [--out CFG.json] [--limit N] [--db DB] [--json] "
    "[--attn-bits N] [--kv-bits N] [--attn-granularity G|ROLE=G,...] [--kivi] [--attn-calib C] (fixed widths) "
    "[--attention [--kv-context N]] (Q, K, V, P searched too; size and budget include the KV cache)",
    "Pareto front of predicted error vs size from sensitivity; the best configuration within a budget", runMixed});

} // namespace
} // namespace qs::cli
