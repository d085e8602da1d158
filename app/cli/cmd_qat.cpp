// quantstudio-cli qat: quantization-aware training of a model against its FP32 self
// (distillation on logits, cross-entropy with --ce-weight), printing loss and learning
// rate per step and held-out evaluations; every checkpoint is written as an ONNX file
// and, with --db, recorded as a quantization run tagged "qat" (resume with --resume RUN).
#include "cli/args.h"
#include "cli/command.h"
#include "cli/data_args.h"
#include "cli/quant_args.h"
#include "cli/recording.h"
#include "cli/stop_signal.h"

#include "graph/onnx_import.h"
#include "record/qat_record.h"
#include "runtime/cpu_isa.h"
#include "train/qat.h"
#include "util/error.h"
#include "util/json_number.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace qs::cli {
namespace {

// --config FILE: a QuantConfig whose optional "qat" object holds training options.
void readConfig(const std::string& path, QuantConfig& config, train::QatOptions& qat)
{
    std::ifstream in(path);
    if (!in)
        fail("--config: cannot read ", quoted(path));
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        fail(path, ": not JSON (", e.what(), ")");
    }
    if (!j.is_object())
        fail(path, ": expected an object");
    if (j.contains("qat")) {
        qat.apply(j.at("qat"), path + ": qat");
        j.erase("qat");
    }
    try {
        config = QuantConfig::fromJson(j);
    } catch (const Error& e) {
        fail(path, ": ", e.what());
    }
}

std::string pct(const std::optional<double>& v)
{
    return v ? str(std::round(*v * 10000) / 100, "%") : std::string("n/a");
}

int runQat(const std::vector<std::string>& argv)
{
    std::set<std::string> valued = {"config", "wbits", "abits", "granularity", "calib", "steps", "batch", "lr",
        "scale-lr", "warmup", "temperature", "ce-weight", "kd-weight", "attention-weight", "eval-data", "eval-limit",
        "eval-every", "checkpoint-every", "calib-limit", "threads", "db", "out", "resume", "seed", "limit", "mode"};
    valued.insert(dataOptionNames().begin(), dataOptionNames().end());
    valued.insert(attentionOptionNames().begin(), attentionOptionNames().end());
    Args args(argv, valued, {"json", "freeze-weights", "freeze-scales", "kivi"});

    std::optional<Store> store = storeFromArgs(args);
    train::QatOptions o;
    o.config.defaults.weight.granularity = Granularity::Channel;
    std::string teacherPath, studentPath;
    int64_t stepOffset = 0;
    if (auto resume = args.value("resume")) {
        // A checkpoint run: its model is the student, its config the grids and options.
        if (!store)
            fail("--resume: needs --db, the store the checkpoint run is in");
        const RunRecord run = store->run(parseRunId(*resume));
        if (!run.config.contains("qat"))
            fail("--resume: run ", run.id, " is not a QAT checkpoint (its config has no \"qat\" entry)");
        const nlohmann::json& q = run.config.at("qat");
        o.apply(q.at("options"), str("run ", run.id, " qat.options"));
        teacherPath = q.at("teacher").get<std::string>();
        stepOffset = q.at("step").get<int64_t>();
        if (q.contains("state")) { // end to end: continue the same schedule with Adam's moments
            o.resume = std::make_shared<train::QatTrainState>(train::loadQatTrainState(q.at("state").get<std::string>()));
            stepOffset = 0; // steps are counted from the start of the original run
        }
        nlohmann::json qc = nlohmann::json::object();
        for (const char* key : {"default", "layers", "exclude", "ranges", "attention"})
            if (run.config.contains(key))
                qc[key] = run.config.at(key);
        o.config = QuantConfig::fromJson(qc);
        auto model = store->model(run.modelId);
        if (!model)
            fail("--resume: the model of run ", run.id, " is not in the store");
        studentPath = model->path;
        if (!args.positional().empty() && args.positional()[0] != teacherPath)
            fail("--resume: run ", run.id, " trains ", teacherPath, ", not ", args.positional()[0]);
    } else {
        teacherPath = studentPath = args.required(0, "MODEL (an .onnx file)");
        if (auto c = args.value("config"))
            readConfig(*c, o.config, o);
    }
    parseBitOptions(args, o.config);
    parseBaseQuant(args, o.config);
    parseAttentionArgs(args, o.config);
    o.steps = args.intValue("steps", int(o.steps));
    if (o.resume && args.value("steps")) // --steps N more; else the original run's total
        o.steps += o.resume->step;
    o.batch = args.intValue("batch", int(o.batch));
    o.lr = args.doubleValue("lr", o.lr);
    o.scaleLr = args.doubleValue("scale-lr", o.scaleLr);
    o.warmupSteps = args.intValue("warmup", int(std::min<int64_t>(o.warmupSteps, o.steps / 10)));
    o.temperature = args.doubleValue("temperature", o.temperature);
    o.ceWeight = args.doubleValue("ce-weight", o.ceWeight);
    o.kdWeight = args.doubleValue("kd-weight", o.kdWeight);
    o.attentionWeight = args.doubleValue("attention-weight", o.attentionWeight);
    o.evalLimit = args.intValue("eval-limit", int(o.evalLimit));
    o.evalEvery = args.intValue("eval-every", int(o.evalEvery));
    o.checkpointEvery = args.intValue("checkpoint-every", int(o.checkpointEvery));
    o.calibLimit = args.intValue("calib-limit", int(o.calibLimit));
    o.threads = args.intValue("threads", 0);
    o.seed = uint64_t(args.intValue("seed", int(o.seed)));
    if (auto m = args.value("mode"))
        o.apply(nlohmann::json {{"mode", *m == "end-to-end" ? "end_to_end" : *m}}, "--mode");
    if (args.flag("freeze-weights"))
        o.learnWeights = false;
    if (args.flag("freeze-scales"))
        o.learnScales = false;
    o.apply(nlohmann::json::object(), "options"); // range checks of what the flags set
    if (o.steps < 1 || o.batch < 1)
        fail("--steps and --batch must be at least 1");

    Graph teacher = importOnnx(teacherPath);
    std::optional<Graph> resumed; // a checkpoint's graph; else the student is the teacher (no copy)
    if (studentPath != teacherPath)
        resumed = importOnnx(studentPath);
    const Graph& student = resumed ? *resumed : teacher;
    DataOptions trainOpts = dataOptions(args);
    const Dataset train = loadDataset(trainOpts, teacher);
    DataOptions heldOpts = trainOpts;
    heldOpts.labelsPath.reset();
    heldOpts.limit = o.evalLimit;
    if (auto e = args.value("eval-data"))
        heldOpts.spec = *e;
    else
        fail("--eval-data: required (held-out data, not the training data)");
    const Dataset heldOut = loadDataset(heldOpts, teacher);

    const bool json = args.flag("json");
    const std::filesystem::path outDir = args.value("out") ? std::filesystem::path(*args.value("out"))
        : store                                            ? std::filesystem::path(store->path()).parent_path() / "qat"
                                                           : std::filesystem::path();
    const std::string stem = std::filesystem::path(teacherPath).stem().string();
    if (!json)
        std::printf("qat %s: %s, %lld training samples, %lld held-out, %lld steps of %lld, CPU %s\n",
            teacherPath.c_str(), o.config.toJson()["default"].dump().c_str(), (long long)train.count(),
            (long long)heldOut.count(), (long long)o.steps, (long long)o.batch, detectCpuIsa().summary().c_str());

    train::QatResult live; // the curves so far, for the checkpoints' metrics
    QatRecordInput rec;
    rec.teacherPath = teacherPath;
    rec.options = o;
    rec.progress = &live;
    rec.stepOffset = stepOffset;
    rec.evalLimit = o.evalLimit;
    nlohmann::json checkpoints = nlohmann::json::array();
    train::QatCallbacks cb;
    CancelToken cancel;
    Progress none;
    cb.onStep = [&](const train::QatStep& s) {
        live.steps.push_back(s);
        const struct Flush { // a line per step, also through a pipe
            ~Flush() { std::fflush(stdout); }
        } flush;
        if (!json && s.block >= 0)
            std::printf("step %6lld  block %d  loss %.6f  kd %.6f  mse %.6g  lr %.3g\n",
                (long long)(stepOffset + s.step), s.block, s.loss, s.kd, s.mse, s.lr);
        else if (!json)
            std::printf("step %6lld  loss %.6f  kd %.6f  ce %.6f%s  lr %.3g\n", (long long)(stepOffset + s.step),
                s.loss, s.kd, s.ce, o.attentionWeight > 0 ? str("  attn ", s.attention).c_str() : "", s.lr);
    };
    cb.onEval = [&](const train::QatEval& e) {
        live.evals.push_back(e);
        if (live.evals.size() == 1)
            live.initialScales = e.scales;
        if (json)
            return;
        double maxChange = 0;
        for (const auto& [value, s] : e.scales)
            maxChange = std::max(maxChange, std::abs(double(s) / double(live.initialScales.at(value)) - 1));
        std::printf("eval  %6lld  held-out kd %.6f  %s  (%lld samples; scales moved up to %.1f%%)\n",
            (long long)(stepOffset + e.step), e.kd,
            e.perplexity ? str("perplexity ", *e.perplexity).c_str() : str("top-1 ", pct(e.top1)).c_str(),
            (long long)e.samples, maxChange * 100);
        std::fflush(stdout);
    };
    cb.onCheckpoint = [&](const train::QatCheckpoint& c) {
        if (outDir.empty())
            return; // neither --db nor --out: nothing is written
        rec.modelPath = (outDir / str(stem, ".qat-step", stepOffset + c.step, ".onnx")).string();
        rec.statePath.clear();
        if (c.state) {
            std::filesystem::create_directories(outDir);
            rec.statePath = rec.modelPath + ".state.safetensors";
            train::saveQatTrainState(*c.state, rec.statePath);
        }
        Progress p;
        const RecordedQuantization r =
            recordQatCheckpoint(store ? &*store : nullptr, c, rec, train, heldOut, p, cancel);
        checkpoints.push_back({{"step", stepOffset + c.step}, {"model", rec.modelPath},
            {"run_id", store ? nlohmann::json(r.runId) : nlohmann::json(nullptr)},
            {"top1", r.result.top1 ? jsonNumber(*r.result.top1) : nlohmann::json(nullptr)},
            {"perplexity", r.result.perplexity ? jsonNumber(*r.result.perplexity) : nlohmann::json(nullptr)},
            {"fp32_perplexity",
                r.result.fp32Perplexity ? jsonNumber(*r.result.fp32Perplexity) : nlohmann::json(nullptr)}});
        if (!json)
            std::printf("checkpoint %lld: %s%s, quantized %s\n", (long long)(stepOffset + c.step),
                rec.modelPath.c_str(), store ? str(", run ", r.runId).c_str() : "",
                r.result.perplexity ? str("perplexity ", *r.result.perplexity).c_str()
                                    : str("top-1 ", pct(r.result.top1)).c_str());
    };
    StopOnSignal stopOnSignal(cancel);
    // Not resumed: the model is handed over (the session trains its weights in place, and
    // block by block holds them once).
    const train::QatResult r = resumed ? train::trainQat(teacher, student, train, heldOut, o, cb, none, cancel)
                                       : train::trainQat(std::move(teacher), train, heldOut, o, cb, none, cancel);
    if (json) {
        nlohmann::json j = qatCurves(r, stepOffset);
        j["initial_top1"] = r.initialTop1 ? jsonNumber(*r.initialTop1) : nlohmann::json(nullptr);
        j["final_top1"] = r.finalTop1 ? jsonNumber(*r.finalTop1) : nlohmann::json(nullptr);
        // As trained (learned scales); the checkpoints quantize the trained graph with
        // the learned activation and attention-operand grids (config ranges).
        j["initial_perplexity"] = !r.evals.empty() && r.evals.front().perplexity
            ? jsonNumber(*r.evals.front().perplexity)
            : nlohmann::json(nullptr);
        j["final_perplexity"] = !r.evals.empty() && r.evals.back().perplexity ? jsonNumber(*r.evals.back().perplexity)
                                                                               : nlohmann::json(nullptr);
        j["checkpoints"] = checkpoints;
        j["cpu_isa"] = detectCpuIsa().summary();
        j["options"] = o.toJson();
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("top-1 held-out: FP32 %s, quantized before training %s, after %s; %.1f ms per step\n",
        pct(r.fp32Top1).c_str(), pct(r.initialTop1).c_str(), pct(r.finalTop1).c_str(), r.secondsPerStep * 1000);
    return 0;
}

const bool registered = registerCommand({"qat",
    "MODEL --data TRAIN [--limit N] --eval-data HELD_OUT [--config CFG.json (a quantization config; \"qat\": {training "
    "options})] [--steps N] [--mode end-to-end|blocks] [--batch N] [--lr X] [--scale-lr X] [--warmup N] [--temperature "
    "T] [--kd-weight X] "
    "[--ce-weight X] [--attention-weight X] [--wbits N --abits N --granularity tensor|channel|group:N] [--attn-bits "
    "N] [--kv-bits N] [--attn-granularity G|ROLE=G,...] [--kivi] [--attn-calib C] [--eval-limit N] "
    "[--eval-every N] "
    "[--checkpoint-every N] [--calib-limit N] [--freeze-weights] [--freeze-scales] [--seed N] [--threads N] "
    "[--db DB [--resume RUN]] [--out DIR] [--json]",
    "quantization-aware training against the FP32 model (distillation, LSQ scales); checkpoints are ONNX files "
    "and, with --db, quantization runs; --resume continues an end-to-end run's schedule to its total steps (or "
    "--steps N more) with its Adam state",
    runQat});

} // namespace
} // namespace qs::cli
