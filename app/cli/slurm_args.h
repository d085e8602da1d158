// --slurm for the commands that split into shards (sensitivity, mixed --verify,
// quantize's evaluation): the cluster options, the shard command, the run through the
// cluster driver (core/cluster/sharded_sweep.h); and Ctrl-C as a cancel.
#pragma once

#include "cli/args.h"

#include "cluster/merge.h"
#include "jobs/progress.h"

#include <set>
#include <string>
#include <vector>

namespace qs::cli {

// The options only --slurm takes: Args' valued names and flags to add.
const std::set<std::string>& clusterValuedOptions();
// Fails naming the first cluster option given without --slurm.
void refuseClusterOptionsWithoutSlurm(const Args& args);

// --slurm: the command (`sensitivity`, `mixed --verify`, `quantize --eval-data`) as a
// job array of --shards shards; the shards are merged into the --db store as one run
// as they finish. Every shard must match `expected` (empty hashes: the first finished
// shard's). QS_CLUSTER_SCHEDULER=local runs the tasks as child processes of this one.
int runShardsOnSlurm(const Args& args, const std::vector<std::string>& argv, const std::set<std::string>& valued,
    const std::string& command, const std::string& path, const ShardIdentity& expected);

} // namespace qs::cli
