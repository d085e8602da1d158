#include "analysis/sensitivity_record.h"

#include "store/store.h"
#include "util/error.h"

#include <cmath>

namespace qs {
namespace {

nlohmann::json num(double v)
{
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

std::optional<double> optNumber(const nlohmann::json& j, const char* key)
{
    return j.contains(key) && j[key].is_number() ? std::optional(j[key].get<double>()) : std::nullopt;
}

} // namespace

nlohmann::json sensitivityByBitsJson(const LayerSensitivity& l)
{
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [bits, m] : l.byBits)
        j[std::to_string(bits)] = {{"sqnr_db", num(m.sqnrDb)}, {"kl", m.kl}, {"top1_agreement", m.top1Agreement},
            {"top1", m.top1 ? nlohmann::json(*m.top1) : nlohmann::json(nullptr)},
            {"local_sqnr_db", m.localSqnrDb ? num(*m.localSqnrDb) : nlohmann::json(nullptr)}, {"samples", m.samples}};
    return j;
}

nlohmann::json sensitivityRunConfig(const SensitivityOptions& o)
{
    return {{"bits", o.bits}, {"mode", sensitivityModeName(o.mode)}, {"method", sensitivityMethodName(o.method)},
        {"limit", o.limit}, {"batch", o.batch}, {"base", o.base.toJson()}, {"naive", o.naive}};
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
