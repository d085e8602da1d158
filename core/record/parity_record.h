// A parity check (export/parity.h) as the experiment store records it: the CLI's
// `parity --db` writes an inference run tagged "parity" on the exported model, with
// the reference, the options and the calibration data as config, one row per layer
// and the output SQNR, top-1 agreement and verdict as metrics.
#pragma once

#include "data/dataset.h"
#include "export/parity.h"
#include "graph/graph.h"
#include "quant/session.h"
#include "store/store.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qs {

// A finite number as is, an infinite one as "inf" or "-inf" (SQNR of identical outputs).
nlohmann::json parityNumber(double v);
// One layer's parity: {layer, op, output, int8, not_int8, sqnr_db, max_abs_diff, ...}.
nlohmann::json parityLayerJson(const LayerParity& p);

// The start of the run of a parity check of `exported` (read from `exportedPath`) on
// `data`, against the float model at `referencePath` (replayed from stored run
// `replayedRun` when set) quantized with `options` on `calib`.
RunStart parityRunStart(Store& store, const Graph& exported, const std::string& exportedPath, const Dataset& data,
    const Dataset& calib, const std::string& referencePath, std::optional<int64_t> replayedRun,
    const QuantizeOptions& options, const ParityOptions& parity);
// One row per layer (parityLayerJson as the detail) and the run's metrics.
std::vector<LayerResult> parityLayerRows(const ParityResult& r);
RunMetrics parityRunMetrics(const ParityResult& r);

} // namespace qs
