// One recorded quantization run, as `quantstudio-cli quantize --db` and the studio's
// Quantize action both make it: the model and evaluation dataset rows, a run row in
// state `running`, quantizeModel(), then per-layer results (with FP32 and quantized
// histograms) and the metrics; cancelled or failed if the work throws.
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "jobs/progress.h"
#include "quant/session.h"
#include "store/store.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace qs {

struct RecordedQuantization {
    QuantizeResult result;
    int64_t runId = 0; // 0 when no store was given
};

// How a run's data was fed: {data, samples}, plus the normalization applied ("mean",
// "std": from the options or the model's metadata), a text window's "context" and the
// "input_shapes" unknown input dimensions were bound to (Dataset::boundShapes) when
// there are any. Replays (export/replay.h) load the data with them.
nlohmann::json dataConfig(const Dataset& d);

// Samples [from, end) of `d`: an evaluation part disjoint from the first `from` samples
// (those calibration took), its path ("FILE[from:]") and hash saying so; `d` itself when
// from is 0. Throws naming the data when nothing is left (the CLI's --eval-from, the
// studio's held-out evaluation).
Dataset evaluationPart(Dataset d, int64_t from);

// What a quantization run's row records as its configuration: the QuantConfig's
// JSON plus "calibration" and "evaluation" (dataConfig), "int8" and "batch".
nlohmann::json quantizationRunConfig(const QuantizeOptions& options, const Dataset& calib, const Dataset& eval);
// The stored rows of a result: per-layer bits, SQNR, size, scales, clip range and
// histograms (FP32 in weightHist/actHist, quantized in extra "quantized_weight_hist"
// / "quantized_act_hist" on the same edges), and the run metrics.
std::vector<LayerResult> quantizationLayerResults(const QuantizeResult& r);
RunMetrics quantizationMetrics(const QuantizeResult& r);

// Quantizes `graph` (read from `modelPath`, which identifies the model in the store)
// and records the run in `store` when it is not null. Throws what quantizeModel()
// throws (qs::Cancelled when cancelled), after the run row says so.
RecordedQuantization quantizeAndRecord(Store* store, const Graph& graph, const std::string& modelPath,
    const Dataset& calib, const Dataset& eval, const QuantizeOptions& options, Progress& progress,
    const CancelToken& cancel, const std::vector<std::string>& tags = {}, const std::string& note = {});

// A stored histogram from the analysis one (uniform bins between lo and hi).
StoredHistogram toStoredHistogram(const Histogram& h);
// extra["quantized_weight_hist"] and the like back into a histogram; nullopt when absent or malformed.
std::optional<StoredHistogram> histogramFromJson(const nlohmann::json& j);

} // namespace qs
