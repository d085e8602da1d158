// The quantstudio-cli command line of a sensitivity sweep the studio starts on a
// cluster: what each shard task runs (without --shard and --db), so shards measure
// exactly the studio's sweep (model, data options, bit widths, base configuration).
#pragma once

#include "analysis/sensitivity.h"
#include "data/dataset.h"

#include <string>
#include <vector>

namespace qs {

// cliPath sensitivity MODEL --data ... --bits ... --mode --method --limit --batch
// --base BASE_JSON: the data options as the CLI's data options take them; the base
// configuration is read from `baseConfigFile` (written by the caller from options.base).
std::vector<std::string> sensitivityCommand(const std::string& cliPath, const std::string& modelPath,
    const DataOptions& data, const SensitivityOptions& options, const std::string& baseConfigFile);

} // namespace qs
