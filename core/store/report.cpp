// JSON and CSV forms of stored runs and comparisons.
#include "store/report.h"

#include "util/error.h"

#include <cmath>
#include <ctime>

namespace qs {

using nlohmann::json;

namespace {

json num(const std::optional<double>& v)
{
    return v && std::isfinite(*v) ? json(*v) : json(nullptr);
}

template <typename T>
json opt(const std::optional<T>& v)
{
    return v ? json(*v) : json(nullptr);
}

json clip(const std::optional<StoredRange>& r)
{
    return r ? json::array({r->lo, r->hi}) : json(nullptr);
}

json layerSummary(const LayerResult& l)
{
    return {{"weight_bits", opt(l.weightBits)}, {"act_bits", opt(l.actBits)}, {"granularity", l.granularity},
            {"sqnr_db", num(l.sqnrDb)}, {"sensitivity", num(l.sensitivity)}, {"size_bits", opt(l.sizeBits)}};
}

std::optional<double> diff(const std::optional<double>& a, const std::optional<double>& b)
{
    return a && b ? std::optional(*b - *a) : std::nullopt;
}

std::optional<double> asDouble(const std::optional<int64_t>& v)
{
    return v ? std::optional(double(*v)) : std::nullopt;
}

std::string csvNumber(const std::optional<double>& v)
{
    if (!v || !std::isfinite(*v))
        return {};
    return json(*v).dump(); // shortest round-trip form
}

} // namespace

std::string csvField(const std::string& s)
{
    if (s.find_first_of(",\"\r\n") == std::string::npos)
        return s;
    std::string out = "\"";
    for (char c : s)
        out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::string isoTimeUtc(int64_t ms)
{
    const std::time_t seconds = std::time_t(ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return str(buf, ".", std::string(3 - std::to_string(ms % 1000).size(), '0'), ms % 1000, "Z");
}

json metricsToJson(const RunMetrics& m)
{
    return {{"top1", num(m.top1)}, {"sqnr_db", num(m.sqnrDb)}, {"cosine", num(m.cosine)},
            {"top1_agreement", num(m.top1Agreement)}, {"kl", num(m.kl)}, {"size_bits", num(m.sizeBits)},
            {"latency_ms", num(m.latencyMs)}, {"extra", m.extra}};
}

json runToJson(const RunRecord& r)
{
    json j = {{"id", r.id},
              {"model", {{"id", r.modelId}, {"name", r.modelName}, {"hash", r.modelHash}}},
              {"dataset", r.datasetId ? json{{"id", *r.datasetId}, {"path", r.datasetPath}} : json(nullptr)},
              {"kind", runKindName(r.kind)},
              {"state", runStateName(r.state)},
              {"config", r.config},
              {"started", isoTimeUtc(r.startedMs)},
              {"finished", r.finishedMs ? json(isoTimeUtc(*r.finishedMs)) : json(nullptr)},
              {"error", r.error},
              {"metrics", metricsToJson(r.metrics)},
              {"tags", r.tags},
              {"note", r.note},
              {"layer_count", r.layerCount},
              {"writer", {{"pid", r.writerPid}, {"host", r.writerHost}}}};
    j["machine"] = r.machine ? json{{"hostname", r.machine->hostname}, {"os", r.machine->os}, {"cpu", r.machine->cpu},
                                    {"cores", r.machine->cores}, {"memory_bytes", r.machine->memoryBytes}}
                             : json(nullptr);
    return j;
}

json histogramToJson(const StoredHistogram& h)
{
    return {{"edges", h.edges}, {"counts", h.counts}};
}

json layerToJson(const LayerResult& l, bool withHistograms)
{
    json j = {{"layer", l.layer},
              {"op", l.op},
              {"position", l.position},
              {"weight_bits", opt(l.weightBits)},
              {"act_bits", opt(l.actBits)},
              {"granularity", l.granularity},
              {"symmetric", opt(l.symmetric)},
              {"scales", l.scales},
              {"sqnr_db", num(l.sqnrDb)},
              {"sensitivity", num(l.sensitivity)},
              {"sensitivity_detail", l.sensitivityDetail},
              {"size_bits", opt(l.sizeBits)},
              {"weight_clip", clip(l.weightClip)},
              {"act_clip", clip(l.actClip)},
              {"extra", l.extra}};
    if (withHistograms) {
        j["weight_hist"] = l.weightHist ? histogramToJson(*l.weightHist) : json(nullptr);
        j["act_hist"] = l.actHist ? histogramToJson(*l.actHist) : json(nullptr);
    }
    return j;
}

json artifactToJson(const ArtifactRecord& a)
{
    return {{"id", a.id},     {"path", a.path},          {"format", a.format},
            {"hash", a.hash}, {"size_bytes", a.sizeBytes}, {"created", isoTimeUtc(a.createdMs)}};
}

json comparisonToJson(const RunComparison& c)
{
    json j;
    j["a"] = runToJson(c.a);
    j["b"] = runToJson(c.b);
    j["config_diff"] = json::array();
    for (const auto& d : c.config)
        j["config_diff"].push_back({{"key", d.key}, {"a", d.a}, {"b", d.b}});
    j["metrics_delta"] = json::object();
    for (const auto& m : c.metrics)
    {
        j["metrics_delta"][m.name] = {{"a", num(m.a)}, {"b", num(m.b)}, {"delta", num(m.delta())}};
        if (!m.incomparable.empty())
            j["metrics_delta"][m.name]["incomparable"] = m.incomparable;
    }
    j["layers"] = json::array();
    for (const auto& l : c.layers) {
        const auto a = l.a, b = l.b;
        j["layers"].push_back({{"layer", l.layer},
                               {"op", a.op.empty() ? b.op : a.op},
                               {"a", layerSummary(a)},
                               {"b", layerSummary(b)},
                               {"delta",
                                {{"sqnr_db", num(diff(a.sqnrDb, b.sqnrDb))},
                                 {"sensitivity", num(diff(a.sensitivity, b.sensitivity))},
                                 {"size_bits", num(diff(asDouble(a.sizeBits), asDouble(b.sizeBits)))}}}});
    }
    j["unmatched"] = {{"a", c.onlyInA}, {"b", c.onlyInB}};
    return j;
}

std::string runsToCsv(const std::vector<RunRecord>& runs)
{
    std::string out = "id,model,model_hash,dataset,kind,state,started,finished,top1,sqnr_db,cosine,top1_agreement,kl,"
                      "size_bits,latency_ms,layers,tags,note,error\r\n";
    for (const auto& r : runs) {
        std::string tags;
        for (const auto& t : r.tags)
            tags += (tags.empty() ? "" : ";") + t;
        const std::vector<std::string> fields = {
            std::to_string(r.id), r.modelName, r.modelHash, r.datasetPath, runKindName(r.kind),
            runStateName(r.state), isoTimeUtc(r.startedMs), r.finishedMs ? isoTimeUtc(*r.finishedMs) : "",
            csvNumber(r.metrics.top1), csvNumber(r.metrics.sqnrDb), csvNumber(r.metrics.cosine),
            csvNumber(r.metrics.top1Agreement), csvNumber(r.metrics.kl), csvNumber(r.metrics.sizeBits),
            csvNumber(r.metrics.latencyMs), std::to_string(r.layerCount), tags, r.note, r.error};
        for (std::size_t i = 0; i < fields.size(); ++i)
            out += (i ? "," : "") + csvField(fields[i]);
        out += "\r\n";
    }
    return out;
}

} // namespace qs
