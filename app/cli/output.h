// Shared by the analysis commands: JSON numbers that may be infinite (util/json_number.h), and progress
// on stderr (silent with --json, whose stdout is the machine-readable result).
#pragma once

#include "cli/args.h"
#include "jobs/progress.h"
#include "util/error.h"
#include "util/json_number.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace qs::cli {

inline Progress stderrProgress(const Args& args)
{
    const bool quiet = args.flag("json");
    return Progress([quiet](const ProgressState& s) {
        if (quiet)
            return;
        const std::string eta = s.etaSeconds >= 0 ? str("ETA ", int(std::lround(s.etaSeconds)), " s") : "ETA ?";
        std::fprintf(stderr, "\r%3d%%  %-10s %-56.56s", int(s.fraction * 100), eta.c_str(), s.stage.c_str());
    });
}

// Clears the progress line before the result is printed.
inline void clearProgress(const Args& args)
{
    if (!args.flag("json"))
        std::fprintf(stderr, "\r%-70s\r", "");
}

} // namespace qs::cli
