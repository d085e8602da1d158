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

} // namespace

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

    // Flattened configurations: leaf pointer -> value.
    const nlohmann::json fa = c.a.config.is_structured() ? c.a.config.flatten() : nlohmann::json{{"", c.a.config}};
    const nlohmann::json fb = c.b.config.is_structured() ? c.b.config.flatten() : nlohmann::json{{"", c.b.config}};
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
