#include "record/parity_record.h"

#include "record/quantize_run.h"
#include "record/recording.h"

#include <cmath>

namespace qs {

nlohmann::json parityNumber(double v)
{
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(v > 0 ? "inf" : "-inf");
}

nlohmann::json parityLayerJson(const LayerParity& p)
{
    return {{"layer", p.layer}, {"op", p.op}, {"output", p.output}, {"int8", p.int8}, {"not_int8", p.notInt8},
        {"sqnr_db", parityNumber(p.sqnrDb)}, {"max_abs_diff", p.maxAbsDiff}, {"max_diff_steps", p.maxDiffSteps},
        {"input_sqnr_db", parityNumber(p.inputSqnrDb)}, {"qdq_sqnr_db", parityNumber(p.qdqSqnrDb)},
        {"input_max_diff_steps", p.inputMaxDiffSteps}, {"alone_sqnr_db", parityNumber(p.aloneSqnrDb)},
        {"alone_max_diff_steps", p.aloneMaxDiffSteps}, {"drifting", p.drifting}, {"introduced", p.introduced},
        {"param_diffs", p.paramDiffs}};
}

RunStart parityRunStart(Store& store, const Graph& exported, const std::string& exportedPath, const Dataset& data,
    const Dataset& calib, const std::string& referencePath, std::optional<int64_t> replayedRun,
    const QuantizeOptions& options, const ParityOptions& parity)
{
    RunStart start;
    start.modelId = recordModel(store, exported, exportedPath);
    start.datasetId = recordDataset(store, data);
    start.kind = RunKind::Inference;
    nlohmann::json config = options.config.toJson();
    config["parity"] = {{"reference", referencePath},
        {"run", replayedRun ? nlohmann::json(*replayedRun) : nlohmann::json(nullptr)},
        {"threshold_db", parity.thresholdDb}, {"max_steps", parity.maxSteps}, {"samples", data.count()}};
    config["calibration"] = dataConfig(calib);
    config["batch"] = options.batch;
    start.config = config;
    start.tags = {"parity"};
    return start;
}

std::vector<LayerResult> parityLayerRows(const ParityResult& r)
{
    std::vector<LayerResult> layers;
    for (const auto& p : r.layers) {
        LayerResult lr;
        lr.layer = p.layer;
        lr.op = p.op;
        if (std::isfinite(p.sqnrDb))
            lr.sqnrDb = p.sqnrDb;
        lr.extra = parityLayerJson(p);
        layers.push_back(lr);
    }
    return layers;
}

RunMetrics parityRunMetrics(const ParityResult& r)
{
    RunMetrics m;
    if (std::isfinite(r.outputSqnrDb))
        m.sqnrDb = r.outputSqnrDb;
    m.top1Agreement = r.top1Agreement;
    m.extra = {{"parity_passed", r.passed()}, {"flagged", r.flagged}, {"cpu_isa", r.isa.summary()},
        {"saturation_risk", r.isa.saturationRisk()}, {"samples", r.samples}};
    return m;
}

} // namespace qs
