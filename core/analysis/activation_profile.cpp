#include "analysis/activation_profile.h"

#include <set>

namespace qs {

std::vector<ActivationProfile> profileActivations(const Graph& graph, const Dataset& data,
                                                  const ProfileOptions& options, Progress& progress,
                                                  const CancelToken& cancel)
{
    struct Wanted {
        std::string layer, value, role;
    };
    std::vector<Wanted> wanted;
    std::vector<std::string> values;
    std::set<std::string> seen;
    for (int idx : graph.quantizableLayers()) {
        const Node& n = graph.nodes[std::size_t(idx)];
        if (options.inputs)
            wanted.push_back({n.name, layerInputOf(graph, n), "input"});
        if (options.outputs)
            wanted.push_back({n.name, n.outputs.front(), "output"});
    }
    for (const auto& w : wanted)
        if (seen.insert(w.value).second)
            values.push_back(w.value);
    auto observers = observeActivations(graph, data, values, options, progress, cancel);

    std::vector<ActivationProfile> out;
    for (const auto& w : wanted) {
        const ActivationObserver& o = observers.at(w.value);
        ActivationProfile p;
        p.layer = w.layer;
        p.value = w.value;
        p.role = w.role;
        p.stats = o.stats();
        p.calibration = o.calibration();
        p.channelMin = o.channelMin();
        p.channelMax = o.channelMax();
        if (p.stats.count > 0)
            for (const auto& c : calibrators())
                p.clipRanges[c.name] = c.choose(p.calibration, 8, false, c.defaultParam);
        out.push_back(std::move(p));
    }
    return out;
}

} // namespace qs
