#include "record/sensitivity_record.h"

#include "store/store.h"
#include "util/error.h"
#include "util/json_number.h"

#include <cmath>

namespace qs {
namespace {

std::optional<double> optNumber(const nlohmann::json& j, const char* key)
{
    return j.contains(key) && j[key].is_number() ? std::optional(j[key].get<double>()) : std::nullopt;
}

} // namespace

nlohmann::json sensitivityByBitsJson(const LayerSensitivity& l)
{
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [bits, m] : l.byBits)
        j[std::to_string(bits)] = {{"sqnr_db", jsonNumber(m.sqnrDb)}, {"kl", m.kl}, {"top1_agreement", m.top1Agreement},
            {"top1", m.top1 ? nlohmann::json(*m.top1) : nlohmann::json(nullptr)},
            {"local_sqnr_db", m.localSqnrDb ? jsonNumber(*m.localSqnrDb) : nlohmann::json(nullptr)}, {"samples", m.samples}};
    return j;
}

nlohmann::json sensitivityRunConfig(const SensitivityOptions& o)
{
    nlohmann::json c = {{"bits", o.bits}, {"mode", sensitivityModeName(o.mode)},
        {"method", sensitivityMethodName(o.method)}, {"limit", o.limit}, {"batch", o.batch}, {"base", o.base.toJson()},
        {"naive", o.naive}};
    if (o.attention) // written only when set: stored configurations (and their hashes) stay as they were
        c["attention"] = true;
    return c;
}

std::vector<LayerResult> sensitivityLayerRows(const SensitivityResult& r)
{
    std::vector<LayerResult> rows;
    for (const auto& l : r.layers) {
        LayerResult lr;
        lr.layer = l.layer;
        lr.op = l.op;
        lr.sensitivityDetail = sensitivityByBitsJson(l);
        if (l.hessianScore)
            lr.sensitivity = *l.hessianScore;
        else if (!l.byBits.empty() && std::isfinite(l.byBits.begin()->second.sqnrDb))
            lr.sensitivity = l.byBits.begin()->second.sqnrDb; // SQNR at the lowest bit width
        if (l.hessianTrace)
            lr.extra["hessian_trace"] = *l.hessianTrace;
        lr.extra["params"] = l.params;
        rows.push_back(lr);
    }
    return rows;
}

RunMetrics sensitivityRunMetrics(const SensitivityResult& r)
{
    RunMetrics m;
    m.top1 = r.fp32Top1;
    m.extra = {{"seconds", r.seconds}, {"estimator", r.estimator}, {"complete", r.complete}, {"samples", r.samples}};
    if (r.spearman)
        m.extra["spearman_vs_oneshot"] = *r.spearman;
    return m;
}

nlohmann::json agreementRunConfig(const MetricsOptions& o)
{
    return {{"bits", o.bits}, {"metrics", o.metrics}, {"bootstrap", o.bootstrap}, {"seed", o.seed},
        {"limit", o.limit}, {"batch", o.batch}, {"hutchinson", o.hutchinsonSamples}, {"base", o.base.toJson()}};
}

nlohmann::json agreementLayerJson(const SensitivityAgreement& r, std::size_t li)
{
    nlohmann::json j = nlohmann::json::object();
    for (const auto& m : r.metrics)
        j[m.name] = {{"value", jsonNumber(m.value[li])}, {"ci95", {jsonNumber(m.lo[li]), jsonNumber(m.hi[li])}}};
    return j;
}

nlohmann::json agreementMetricsJson(const SensitivityAgreement& r)
{
    nlohmann::json metrics = nlohmann::json::array();
    for (const auto& m : r.metrics)
        metrics.push_back({{"name", m.name}, {"summary", m.summary}, {"higher_is_more_sensitive", m.higherIsMoreSensitive}});
    return metrics;
}

nlohmann::json agreementSpearmanJson(const SensitivityAgreement& r)
{
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& row : r.spearman) {
        nlohmann::json jr = nlohmann::json::array();
        for (double v : row)
            jr.push_back(jsonNumber(v));
        rows.push_back(jr);
    }
    return rows;
}

std::vector<LayerResult> agreementLayerRows(const SensitivityAgreement& r)
{
    std::vector<LayerResult> rows;
    for (std::size_t li = 0; li < r.layers.size(); ++li) {
        LayerResult lr;
        lr.layer = r.layers[li];
        lr.op = r.ops[li];
        lr.weightBits = r.bits;
        lr.sensitivityDetail = agreementLayerJson(r, li);
        if (!r.metrics.empty() && std::isfinite(r.metrics.front().value[li]))
            lr.sensitivity = r.metrics.front().value[li];
        rows.push_back(lr);
    }
    return rows;
}

RunMetrics agreementRunMetrics(const SensitivityAgreement& r)
{
    RunMetrics m;
    m.extra = {{"metrics", agreementMetricsJson(r)}, {"spearman", agreementSpearmanJson(r)}, {"bootstrap", r.bootstrap},
        {"batches", r.batches}, {"samples", r.samples}, {"seconds", r.seconds}};
    return m;
}

bool isMetricComparison(const RunRecord& run)
{
    return run.kind == RunKind::Sensitivity && run.config.contains("metrics") && !run.config.contains("method");
}

std::optional<RunRecord> latestSensitivitySweep(const Store& store, const std::string& modelHash)
{
    RunFilter f;
    f.model = modelHash;
    f.kind = RunKind::Sensitivity;
    f.state = RunState::Done;
    for (const RunRecord& r : store.runs(f)) // newest first
        if (!isMetricComparison(r))
            return r;
    return std::nullopt;
}

SensitivityResult loadSensitivityRun(const Store& store, int64_t runId)
{
    const RunRecord run = store.run(runId);
    if (run.kind != RunKind::Sensitivity)
        fail("run ", runId, " is a ", runKindName(run.kind), " run, not a sensitivity run");
    SensitivityResult r;
    r.method = parseSensitivityMethod(run.config.value("method", std::string("oneshot")));
    r.mode = parseSensitivityMode(run.config.value("mode", std::string("weights")));
    r.fp32Top1 = run.metrics.top1;
    r.estimator = run.metrics.extra.value("estimator", std::string());
    r.complete = run.metrics.extra.value("complete", run.state == RunState::Done);
    r.samples = run.metrics.extra.value("samples", int64_t(0));
    r.seconds = run.metrics.extra.value("seconds", 0.0);
    for (const LayerResult& lr : store.layerResults(runId)) {
        LayerSensitivity l;
        l.layer = lr.layer;
        l.op = lr.op;
        l.params = lr.extra.value("params", int64_t(0));
        if (lr.extra.contains("hessian_trace"))
            l.hessianTrace = lr.extra["hessian_trace"].get<double>();
        if (r.method == SensitivityMethod::Hessian)
            l.hessianScore = lr.sensitivity;
        for (const auto& [key, v] : lr.sensitivityDetail.items()) {
            BitMeasure m;
            // null is what a non-finite SQNR (no error at all) was stored as.
            m.sqnrDb = v.contains("sqnr_db") && v["sqnr_db"].is_number() ? v["sqnr_db"].get<double>() : INFINITY;
            m.kl = v.value("kl", 0.0);
            m.top1Agreement = v.value("top1_agreement", 1.0);
            m.top1 = optNumber(v, "top1");
            m.localSqnrDb = optNumber(v, "local_sqnr_db");
            m.samples = v.value("samples", int64_t(0));
            l.byBits[std::stoi(key)] = m;
        }
        r.layers.push_back(std::move(l));
    }
    return r;
}

} // namespace qs
