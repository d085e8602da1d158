// The base quantization options the analysis commands share: --granularity for the
// weights and --calib for the activations of every layer they quantize.
#pragma once

#include "cli/args.h"

#include "quant/spec.h"
#include "util/error.h"

namespace qs::cli {

// --wbits N and --abits N: the default layer's weight and activation bits (2..8, or 16
// and 32 for float).
inline void parseBitOptions(const Args& args, QuantConfig& c)
{
    for (const char* option : {"wbits", "abits"}) {
        auto v = args.value(option);
        if (!v)
            continue;
        const int bits = args.intValue(option, 8);
        if (!((bits >= 2 && bits <= 8) || bits == 16 || bits == 32))
            fail("--", option, ": ", *v, " is not 2..8, 16 or 32");
        (std::string(option) == "wbits" ? c.defaults.weight : c.defaults.activation).bits = bits;
    }
}

inline void parseBaseQuant(const Args& args, QuantConfig& base)
{
    if (auto g = args.value("granularity"))
        parseGranularity(*g, base.defaults.weight);
    if (auto c = args.value("calib"))
        parseCalibrator(*c, base.defaults.activation);
}

} // namespace qs::cli
