// Aligning two runs for comparison.
#include "store/compare.h"

#include "store/store.h"

#include <map>
#include <set>
#include <unordered_map>

namespace qs {
namespace {

std::vector<std::pair<std::string, std::optional<double>>> standardMetrics(const RunMetrics& m)
{
    return {{"top1", m.top1}, {"sqnr_db", m.sqnrDb}, {"cosine", m.cosine}, {"top1_agreement", m.top1Agreement},
            {"kl", m.kl}, {"size_bits", m.sizeBits}, {"latency_ms", m.latencyMs}};
}

std::optional<double> numberAt(const nlohmann::json& obj, const std::string& key)
{
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_number())
        return std::nullopt;
    return it->get<double>();
}

void markIncomparable(RunComparison& c)
{
    const std::string la = latencySetup(c.a), lb = latencySetup(c.b);
    const auto na = evaluationSamples(c.a), nb = evaluationSamples(c.b);
    for (MetricComparison& m : c.metrics) {
        const bool latency = m.name == "latency_ms";
        const bool accuracy = m.name == "top1" || m.name == "top1_agreement" || m.name == "fp32_top1";
        if (latency && la != lb && !la.empty() && !lb.empty())
            m.incomparable = "latency of " + la + " against " + lb;
        if (accuracy && na && nb && *na != *nb)
            m.incomparable = "evaluated on " + std::to_string(int64_t(*na)) + " against " +
                             std::to_string(int64_t(*nb)) + " samples";
    }
}

// A quantization configuration states per-layer overrides on top of "default": a layer
// one run states and the other leaves to its default is compared against that default,
// so only real differences remain (not 81 "absent" against explicit values).
nlohmann::json resolveLayerDefaults(const nlohmann::json& config, const std::set<std::string>& layers)
{
    if (!config.is_object() || !config.contains("default") || !config["default"].is_object() || layers.empty())
        return config;
    nlohmann::json out = config;
    if (!out.contains("layers") || !out["layers"].is_object())
        out["layers"] = nlohmann::json::object();
    for (const std::string& name : layers) {
        nlohmann::json spec = config["default"];
        if (out["layers"].contains(name) && out["layers"][name].is_object())
            spec.merge_patch(out["layers"][name]);
        out["layers"][name] = std::move(spec);
    }
    return out;
}

} // namespace

std::string latencySetup(const RunRecord& r)
{
    if (!r.config.is_object() || !r.config.contains("int8"))
        return {};
    std::string s = r.config["int8"] == true ? "INT8 kernels" : "simulated";
    if (auto batch = numberAt(r.config, "batch"))
        s += " at batch " + std::to_string(int64_t(*batch));
    return s;
}

std::optional<double> evaluationSamples(const RunRecord& r)
{
    if (r.config.is_object() && r.config.contains("evaluation") && r.config["evaluation"].is_object())
        if (auto n = numberAt(r.config["evaluation"], "samples"))
            return n;
    return numberAt(r.metrics.extra, "eval_samples");
}

RunComparison compareRuns(const Store& store, int64_t runA, int64_t runB)
{
    RunComparison c;
    c.a = store.run(runA);
    c.b = store.run(runB);

    const auto ma = standardMetrics(c.a.metrics), mb = standardMetrics(c.b.metrics);
    for (std::size_t i = 0; i < ma.size(); ++i)
        c.metrics.push_back({ma[i].first, ma[i].second, mb[i].second});
    std::set<std::string> extras;
    for (const auto* extra : {&c.a.metrics.extra, &c.b.metrics.extra})
        for (auto it = extra->begin(); it != extra->end(); ++it)
            if (it->is_number())
                extras.insert(it.key());
    for (const auto& key : extras)
        c.metrics.push_back({key, numberAt(c.a.metrics.extra, key), numberAt(c.b.metrics.extra, key)});
    markIncomparable(c);

    std::vector<LayerResult> la = store.layerResults(runA), lb = store.layerResults(runB);
    std::unordered_map<std::string, std::size_t> inB;
    for (std::size_t i = 0; i < lb.size(); ++i)
        inB.emplace(lb[i].layer, i);
    std::vector<bool> matchedB(lb.size(), false);
    for (auto& l : la) {
        auto it = inB.find(l.layer);
        if (it == inB.end()) {
            c.onlyInA.push_back(l.layer);
            continue;
        }
        matchedB[it->second] = true;
        c.layers.push_back({l.layer, std::move(l), std::move(lb[it->second])});
    }
    for (std::size_t i = 0; i < lb.size(); ++i)
        if (!matchedB[i])
            c.onlyInB.push_back(lb[i].layer);

    // Flattened configurations (leaf pointer -> value), with defaults resolved first.
    std::set<std::string> layerNames;
    for (const auto* config : {&c.a.config, &c.b.config})
        if (config->is_object() && config->contains("layers") && (*config)["layers"].is_object())
            for (const auto& [name, spec] : (*config)["layers"].items())
                layerNames.insert(name);
    const nlohmann::json ra = resolveLayerDefaults(c.a.config, layerNames);
    const nlohmann::json rb = resolveLayerDefaults(c.b.config, layerNames);
    const nlohmann::json fa = ra.is_structured() ? ra.flatten() : nlohmann::json{{"", ra}};
    const nlohmann::json fb = rb.is_structured() ? rb.flatten() : nlohmann::json{{"", rb}};
    std::map<std::string, std::pair<nlohmann::json, nlohmann::json>> leaves;
    for (auto it = fa.begin(); it != fa.end(); ++it)
        leaves[it.key()].first = *it;
    for (auto it = fb.begin(); it != fb.end(); ++it)
        leaves[it.key()].second = *it;
    for (const auto& [key, ab] : leaves)
        if (ab.first != ab.second)
            c.config.push_back({key, ab.first, ab.second});
    return c;
}

} // namespace qs
