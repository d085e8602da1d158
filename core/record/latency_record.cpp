#include "record/latency_record.h"

#include "store/store.h"

namespace qs {

LatencyProfile cachedLatency(Store* store, const Graph& graph, const std::string& modelHash,
    const LatencyOptions& options, bool remeasure, bool& cached, Progress& progress, const CancelToken& cancel)
{
    cached = false;
    if (store && !remeasure)
        if (auto p = store->latestLatencyProfile(modelHash, options.batch, options.threads)) {
            cached = true;
            return *p;
        }
    LatencyProfile p = measureLatency(graph, modelHash, options, progress, cancel);
    if (store)
        p.id = store->addLatencyProfile(p);
    return p;
}

} // namespace qs
