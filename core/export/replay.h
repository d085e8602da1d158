// Re-derives the exact quantizer of a stored quantization run: the store keeps only
// summaries per layer (scale min/max, activation clip range, size), so the session
// is rebuilt deterministically from the run's config, model file and calibration
// data, and checked against what the store recorded.
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "jobs/progress.h"
#include "quant/session.h"
#include "store/store.h"

#include <memory>
#include <string>
#include <vector>

namespace qs {

struct RunReplay {
    RunRecord run;
    std::vector<LayerResult> stored; // the run's layer rows
    Graph source;                    // the model as imported
    Dataset calib;
    std::unique_ptr<QuantSession> session; // calibrated, weights quantized, algorithms applied
    int checkedLayers = 0;                 // layers whose stored values matched
};

// The steps quantizeModel takes before it evaluates: BN folding, the algorithms before
// calibration, calibration on `calib`, weight quantization, the algorithms after it.
std::unique_ptr<QuantSession> prepareSession(const Graph& source, const QuantizeOptions& options, const Dataset& calib,
    Progress& progress, const CancelToken& cancel);

// The quantization options a run's config describes (its QuantConfig plus batch and
// calibration sample count). Throws Error naming the field when the config lacks them.
QuantizeOptions optionsFromRunConfig(const nlohmann::json& config);

// The data options a run's "calibration" or "evaluation" entry records (record/
// quantize_run.h dataConfig): the spec, the normalization applied, a text window's
// length, the shapes unknown input dimensions took. Throws naming `where` and the field when one is malformed.
DataOptions dataOptionsFromRunConfig(const nlohmann::json& entry, const std::string& where);

// Throws Error when the run is not a finished quantization run, the model file is
// gone or changed (hash), the data cannot be loaded, or a re-derived value differs
// from the stored one (naming the layer and the value).
RunReplay replayRun(const Store& store, int64_t runId, Progress& progress, const CancelToken& cancel);

} // namespace qs
