// A sensitivity sweep as the experiment store records it (the CLI's `sensitivity --db`
// and the studio's sensitivity view write the same rows), and read back from a run.
#pragma once

#include "analysis/sensitivity.h"
#include "store/records.h"

#include <nlohmann/json.hpp>
#include <vector>

namespace qs {

class Store;

// {"<bits>": {"sqnr_db", "kl", "top1_agreement", "top1", "local_sqnr_db", "samples"}, ...}
nlohmann::json sensitivityByBitsJson(const LayerSensitivity& layer);
// The run's config column: bits, mode, method, limit, batch, base config, naive.
nlohmann::json sensitivityRunConfig(const SensitivityOptions& options);
// One row per layer: the by-bits curve as the detail, the headline (Hessian score, else
// the SQNR at the lowest bit width), the trace and parameter count as extras.
std::vector<LayerResult> sensitivityLayerRows(const SensitivityResult& result);
RunMetrics sensitivityRunMetrics(const SensitivityResult& result);

// The curves of a stored sensitivity run (what sensitivityLayerRows wrote). Throws an
// Error naming the run when it is not a sensitivity run.
SensitivityResult loadSensitivityRun(const Store& store, int64_t runId);

} // namespace qs
