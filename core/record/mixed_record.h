// A mixed-precision search as the experiment store records it (the CLI's `mixed --db`):
// one row per layer with the chosen point's weight bits and the activation bits, which
// the studio reads back as the layers' bits (ui/document/model_document.cpp), and the
// chosen point's size, predicted SQNR, average bits, measured top-1 and SQNR and the
// whole front as metrics.
#pragma once

#include "analysis/mixed_precision.h"
#include "store/records.h"

#include <nlohmann/json.hpp>

#include <vector>

namespace qs {

std::vector<LayerResult> mixedLayerRows(const FrontPoint& chosen, int activationBits);
// `front`: a JSON array, one object per point of the front (as the CLI prints them).
RunMetrics mixedRunMetrics(const FrontPoint& chosen, nlohmann::json front);

} // namespace qs
