// Two runs side by side: both configurations and where they differ, metric
// deltas (b - a) and a per-layer table aligned by layer name, which also lines
// up runs of two different models wherever their layer names match.
#pragma once

#include "store/records.h"

#include <optional>
#include <string>
#include <vector>

namespace qs {

class Store;

struct MetricComparison {
    std::string name; // "top1", "sqnr_db", ... or an extra metric's name
    std::optional<double> a, b;
    std::optional<double> delta() const { return a && b ? std::optional(*b - *a) : std::nullopt; }
    // Why the two values do not measure the same thing (latency of simulated against
    // INT8 kernels, or at other batch sizes; accuracy on other evaluation sets); "" when
    // they do. A delta with a reason is shown, never called better or worse.
    std::string incomparable;
};

struct LayerComparison {
    std::string layer;
    LayerResult a, b;
};

struct ConfigDifference {
    std::string key; // JSON pointer into the configuration, e.g. "/weights/bits"
    nlohmann::json a, b; // null where absent
};

struct RunComparison {
    RunRecord a, b;
    std::vector<MetricComparison> metrics;  // the standard metrics, then extras numeric in either run
    std::vector<LayerComparison> layers;    // matched layers, in run a's order
    std::vector<std::string> onlyInA, onlyInB; // unmatched layers, each in its run's order
    std::vector<ConfigDifference> config;   // leaves that differ, sorted by key
};

// How a run's latency was measured: "INT8 kernels" or "simulated" (FP32 with fake
// quantization), at its batch ("simulated at batch 32"); "" when the configuration
// does not say.
std::string latencySetup(const RunRecord& r);

// The number of samples a run's accuracy was measured on: its configuration's
// evaluation.samples, else its eval_samples metric; nullopt when neither says.
std::optional<double> evaluationSamples(const RunRecord& r);

// Throws an Error when either run is not in the store.
RunComparison compareRuns(const Store& store, int64_t runA, int64_t runB);

} // namespace qs
