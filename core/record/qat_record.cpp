#include "record/qat_record.h"

#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "record/recording.h"
#include "util/json_number.h"

#include <filesystem>

namespace qs {

nlohmann::json qatRunInfo(const QatRecordInput& in, int64_t step)
{
    nlohmann::json j = {{"options", in.options.toJson()},
        {"teacher", std::filesystem::absolute(in.teacherPath).string()}, {"step", in.stepOffset + step}};
    if (!in.statePath.empty())
        j["state"] = std::filesystem::absolute(in.statePath).string();
    return j;
}

nlohmann::json qatCurves(const train::QatResult& r, int64_t stepOffset)
{
    nlohmann::json steps = nlohmann::json::array(), evals = nlohmann::json::array();
    for (const auto& s : r.steps)
        steps.push_back({{"step", stepOffset + s.step}, {"loss", jsonNumber(s.loss)}, {"kd", jsonNumber(s.kd)},
            {"ce", jsonNumber(s.ce)}, {"mse", jsonNumber(s.mse)}, {"block", s.block}, {"lr", s.lr}});
    for (const auto& e : r.evals)
        evals.push_back({{"step", stepOffset + e.step}, {"kd", jsonNumber(e.kd)},
            {"top1", e.top1 ? jsonNumber(*e.top1) : nlohmann::json(nullptr)},
            {"perplexity", e.perplexity ? jsonNumber(*e.perplexity) : nlohmann::json(nullptr)}, {"samples", e.samples}});
    nlohmann::json scales = nlohmann::json::object();
    if (!r.evals.empty())
        for (const auto& [value, s] : r.evals.back().scales) {
            auto init = r.initialScales.find(value);
            scales[value] = {{"initial", init != r.initialScales.end() ? init->second : s}, {"latest", s}};
        }
    return {{"steps", steps}, {"held_out", evals}, {"scales", scales}, {"seconds_per_step", r.secondsPerStep},
        {"fp32_top1", r.fp32Top1 ? jsonNumber(*r.fp32Top1) : nlohmann::json(nullptr)}};
}

RecordedQuantization recordQatCheckpoint(Store* store, const train::QatCheckpoint& c, const QatRecordInput& in,
    const Dataset& calib, const Dataset& eval, Progress& progress, const CancelToken& cancel)
{
    if (auto dir = std::filesystem::path(in.modelPath).parent_path(); !dir.empty())
        std::filesystem::create_directories(dir);
    saveOnnx(c.graph, in.modelPath);
    const Graph model = importOnnx(in.modelPath); // as the store and a replay will read it
    QuantizeOptions qo;
    qo.config = c.config;
    qo.batch = in.options.batch;
    qo.calibLimit = std::min(in.options.calibLimit, calib.count());
    qo.evalLimit = in.evalLimit;
    qo.threads = in.options.threads;
    RecordedQuantization out;
    if (!store) {
        out.result = quantizeModel(model, calib, eval, qo, progress, cancel);
        return out;
    }
    nlohmann::json config = quantizationRunConfig(qo, calib, eval);
    config["qat"] = qatRunInfo(in, c.step);
    RunStart start = runStart(*store, RunKind::Quantization, model, in.modelPath, eval, config, {"qat"});
    start.note = str("QAT step ", in.stepOffset + c.step, " of ", in.teacherPath);
    out.runId = recordRun(*store, start, [&](RunGuard& run) {
        out.result = quantizeModel(model, calib, eval, qo, progress, cancel);
        run.addLayers(quantizationLayerResults(out.result));
        RunMetrics m = quantizationMetrics(out.result);
        if (in.progress)
            m.extra["qat"] = qatCurves(*in.progress, in.stepOffset);
        return m;
    });
    return out;
}

} // namespace qs
