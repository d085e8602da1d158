// A sensitivity sweep as the experiment store records it (the CLI's `sensitivity --db`
// and the studio's sensitivity view write the same rows), and read back from a run.
#pragma once

#include "analysis/sensitivity.h"
#include "analysis/sensitivity_metrics.h"
#include "store/records.h"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
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

// A metric comparison (measureSensitivityAgreement) as a sensitivity run (the CLI's
// `sensitivity --metrics --db` and the studio's Compare Metrics write the same rows):
// the options as config; per layer every metric's value and 95% interval as the
// detail, the first metric as the headline; the metric summaries, the Spearman matrix
// and the sizes as metrics.
nlohmann::json agreementRunConfig(const MetricsOptions& options);
// {"<metric>": {"value", "ci95": [lo, hi]}, ...} of one layer (null where not computable).
nlohmann::json agreementLayerJson(const SensitivityAgreement& result, std::size_t layer);
// [{"name", "summary", "higher_is_more_sensitive"}, ...] and the matrix, row by row.
nlohmann::json agreementMetricsJson(const SensitivityAgreement& result);
nlohmann::json agreementSpearmanJson(const SensitivityAgreement& result);
std::vector<LayerResult> agreementLayerRows(const SensitivityAgreement& result);
RunMetrics agreementRunMetrics(const SensitivityAgreement& result);

// Whether a stored sensitivity run is a metric comparison (agreementRunConfig), not a
// sweep; and the newest finished sweep of a model (comparisons skipped), whose
// headline column the studio shows as the layers' sensitivity.
bool isMetricComparison(const RunRecord& run);
std::optional<RunRecord> latestSensitivitySweep(const Store& store, const std::string& modelHash);

// The curves of a stored sensitivity run (what sensitivityLayerRows wrote). Throws an
// Error naming the run when it is not a sensitivity run.
SensitivityResult loadSensitivityRun(const Store& store, int64_t runId);

} // namespace qs
