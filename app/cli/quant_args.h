// The base quantization options the analysis commands share: --granularity for the
// weights and --calib for the activations of every layer they quantize.
#pragma once

#include "cli/args.h"

#include "quant/spec.h"

namespace qs::cli {

inline void parseBaseQuant(const Args& args, QuantConfig& base)
{
    if (auto g = args.value("granularity"))
        parseGranularity(*g, base.defaults.weight);
    if (auto c = args.value("calib"))
        parseCalibrator(*c, base.defaults.activation);
}

} // namespace qs::cli
