// Stored records as JSON (for the CLI's --json, notebooks and the GUI's export)
// and as CSV (for spreadsheets). Key names are snake_case and stable: scripts
// depend on them.
#pragma once

#include "store/compare.h"
#include "store/records.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace qs {

// "2024-05-01T12:00:00.123Z"
std::string isoTimeUtc(int64_t ms);

nlohmann::json metricsToJson(const RunMetrics& m); // absent or non-finite metrics are null
nlohmann::json runToJson(const RunRecord& r);
nlohmann::json layerToJson(const LayerResult& l, bool withHistograms = true);
nlohmann::json artifactToJson(const ArtifactRecord& a);
nlohmann::json histogramToJson(const StoredHistogram& h); // {"edges": [...], "counts": [...]}
// Keys: a, b (runs with their configurations), config_diff, metrics_delta
// ({name: {a, b, delta}}), layers ([{layer, a, b, delta}]), unmatched ({a: [...], b: [...]}).
nlohmann::json comparisonToJson(const RunComparison& c);

// One CSV field, quoted per RFC 4180 when it holds a comma, quote or line break.
std::string csvField(const std::string& s);

// One row per run, a header first; RFC 4180 quoting.
std::string runsToCsv(const std::vector<RunRecord>& runs);

} // namespace qs
