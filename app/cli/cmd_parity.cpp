// quantstudio-cli parity: an exported QDQ model run with real INT8 kernels against
// the simulated quantization of its reference model, layer by layer; recorded with --db.
#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_args.h"
#include "cli/recording.h"

#include "export/parity.h"
#include "export/replay.h"
#include "graph/onnx_import.h"
#include "record/parity_record.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace qs::cli {
namespace {

constexpr int kDriftExit = 3; // parity ran and found drifting layers

int runParity(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = {"reference", "run", "config", "calib-data", "calib-limit", "limit", "batch",
        "threshold", "max-steps", "threads", "db"};
    valued.insert(dataOptionNames().begin(), dataOptionNames().end());
    Args args(argv, valued, {"json"});
    const std::string& exportedPath = args.required(0, "EXPORTED (a QDQ .onnx file written by `export --format qdq`)");
    // --run: the reference session re-derived from a stored quantization run (its model,
    // config and calibration data), as `export` does; else from --reference and options.
    std::optional<RunReplay> replay;
    if (auto runArg = args.value("run")) {
        for (const char* o : {"reference", "config", "calib-data", "calib-limit", "batch", "mean", "std", "context"})
            if (args.value(o))
                fail(
                    "--run takes the reference, config, calibration and preprocessing from the stored run; drop --", o);
        const Store source = Store::open(args.value("db", defaultStorePath()), {.mode = OpenMode::ReadOnly});
        Progress quiet;
        CancelToken none;
        replay = replayRun(source, parseRunId(*runArg), quiet, none);
    }
    std::optional<std::string> refPath = args.value("reference");
    if (replay)
        refPath = replay->source.sourcePath;
    if (!refPath)
        fail("missing --reference MODEL (the float model the export was quantized from) or --run RUN");
    QuantizeOptions opts;
    if (replay)
        opts = replay->session->options();
    else if (auto c = args.value("config"))
        opts.config = QuantConfig::load(*c);
    if (!replay) {
        opts.batch = args.intValue("batch", 32);
        opts.calibLimit = args.intValue("calib-limit", 256);
    }
    opts.threads = args.intValue("threads", 0);
    if (opts.batch < 1)
        fail("--batch must be at least 1");
    ParityOptions po;
    po.batch = opts.batch;
    po.limit = args.intValue("limit", 256);
    po.thresholdDb = args.doubleValue("threshold", 30);
    po.maxSteps = args.doubleValue("max-steps", 10);
    po.threads = opts.threads;

    Graph reference = replay ? replay->source : importOnnx(*refPath);
    Graph exported = importOnnx(exportedPath);
    DataOptions evalOpts = dataOptions(args);
    evalOpts.limit = po.limit;
    if (replay) { // the data fed as the run fed it: its normalization, text window and tokenizer
        const DataOptions ran =
            dataOptionsFromRunConfig(replay->run.config.at("calibration"), "run config.calibration");
        evalOpts.mean = ran.mean;
        evalOpts.std = ran.std;
        evalOpts.context = ran.context;
        if (evalOpts.inputShapes.empty())
            evalOpts.inputShapes = ran.inputShapes;
        if (evalOpts.preprocess.empty())
            evalOpts.preprocess = ran.preprocess;
        if (evalOpts.tokenizer.empty() && evalOpts.spec.rfind("text:", 0) == 0)
            evalOpts.tokenizer = ran.tokenizer;
    }
    Dataset data = loadDataset(evalOpts, reference);
    Dataset calib = replay ? replay->calib : calibrationData(args, evalOpts, reference, opts.calibLimit);

    std::optional<Store> store = storeFromArgs(args);
    std::optional<RunGuard> run;
    if (store)
        run.emplace(*store,
            parityRunStart(*store, exported, exportedPath, data, calib, *refPath,
                replay ? std::optional<int64_t>(replay->run.id) : std::nullopt, opts, po));
    const bool json = args.flag("json");
    Progress progress([&](const ProgressState& s) {
        if (!json)
            std::fprintf(stderr, "\r%3d%%  %-60.60s", int(s.fraction * 100), s.stage.c_str());
    });
    CancelToken cancel;
    ParityResult r = runRecorded(run, [&] {
        Progress prep = progress.sub(0, 0.4), cmp = progress.sub(0.4, 1);
        std::unique_ptr<QuantSession> session =
            replay ? std::move(replay->session) : prepareSession(reference, opts, calib, prep, cancel);
        QdqLowered lowered = lowerQdqModel(exported, exportedPath);
        return checkParity(*session, lowered, data, po, cmp, cancel);
    });
    if (!json)
        std::fprintf(stderr, "\r%-70s\r", "");

    if (run) {
        run->addLayers(parityLayerRows(r));
        run->finish(parityRunMetrics(r));
    }

    if (json) {
        nlohmann::json j = {{"run_id", run ? nlohmann::json(run->id()) : nlohmann::json(nullptr)},
            {"passed", r.passed()}, {"flagged", r.flagged}, {"threshold_db", r.thresholdDb}, {"max_steps", r.maxSteps},
            {"samples", r.samples}, {"output_sqnr_db", parityNumber(r.outputSqnrDb)}, {"top1_agreement", r.top1Agreement},
            {"cpu",
                {{"avx2", r.isa.avx2}, {"avx512", r.isa.avx512}, {"avx512_vnni", r.isa.avx512Vnni},
                    {"avx_vnni", r.isa.avxVnni}, {"amx", r.isa.amx}, {"onednn_isa", r.isa.onednn},
                    {"saturation_risk", r.isa.saturationRisk()}}},
            {"int8_kernels", r.int8Kernels}, {"layers", nlohmann::json::array()}};
        for (const auto& p : r.layers)
            j["layers"].push_back(parityLayerJson(p));
        std::printf("%s\n", j.dump(2).c_str());
        return r.passed() ? 0 : kDriftExit;
    }
    std::printf("exported       %s\nreference      %s\n", exportedPath.c_str(), refPath->c_str());
    std::printf("cpu            %s%s\n", r.isa.summary().c_str(),
        !r.isa.saturationRisk()        ? ""
            : int8UsesReferenceKernels() ? " (no VNNI: INT8 runs oneDNN's exact reference kernels, slowly)"
                                         : " (no VNNI, QS_INT8_SATURATING=1: u8 x s8 products may saturate at int16)");
    std::printf("output         SQNR %.2f dB, top-1 agreement %.2f%% on %lld samples (INT8 vs simulated)\n",
        r.outputSqnrDb, r.top1Agreement * 100, (long long)r.samples);
    std::printf("\n%-28s %-5s %12s %12s %10s %12s %12s %12s  %s\n", "layer", "int8", "SQNR dB", "max |diff|", "steps",
        "input SQNR", "QDQ SQNR", "alone SQNR", "verdict");
    for (const auto& p : r.layers) {
        std::printf("%-28s %-5s %12.2f %12.4g %10.2f %12.2f %12.2f %12.2f  %s\n", p.layer.c_str(),
            p.int8 ? "yes" : "no", p.sqnrDb, p.maxAbsDiff, p.maxDiffSteps, p.inputSqnrDb, p.qdqSqnrDb, p.aloneSqnrDb,
            p.introduced     ? "DRIFT STARTS HERE"
                : p.drifting ? "drifting (inherited)"
                             : "ok");
        if (!p.notInt8.empty())
            std::printf("    not INT8: %s\n", p.notInt8.c_str());
        for (const auto& d : p.paramDiffs)
            std::printf("    %s\n", d.c_str());
    }
    if (run)
        std::printf("\nrun            %lld recorded in %s\n", (long long)run->id(), store->path().c_str());
    if (r.passed()) {
        const bool drift = std::any_of(r.layers.begin(), r.layers.end(), [](const LayerParity& p) { return p.drifting; });
        if (drift)
            std::printf("\nparity         passed: each INT8 layer alone (fed the simulation's input) is above %.1f dB "
                        "SQNR and within %.0f steps; the drifting layers inherit rounding differences that accumulate "
                        "over the network\n",
                r.thresholdDb, r.maxSteps);
        else
            std::printf("\nparity         passed: every layer above %.1f dB SQNR and within %.0f steps of the "
                        "simulation\n",
                r.thresholdDb, r.maxSteps);
        return 0;
    }
    std::string names;
    for (const auto& f : r.flagged)
        names += (names.empty() ? "" : ", ") + quoted(f);
    std::printf("\nparity         FAILED: drift (below %.1f dB or beyond %.0f steps) starts at %s\n", r.thresholdDb,
        r.maxSteps, names.c_str());
    return kDriftExit;
}

const bool registered = registerCommand({"parity",
    "EXPORTED.onnx (--reference MODEL [--config C.json] | --run RUN) --data DATA [--calib-data DATA] [--calib-limit N] "
    "[--limit N] "
    "[--batch N] [--threshold DB] [--max-steps N] [--threads N] [--db DB] [--json]",
    "run an exported QDQ model with real INT8 kernels against the simulated quantization of its reference, per layer "
    "(exit 3 when a layer drifts)",
    runParity});

} // namespace
} // namespace qs::cli
