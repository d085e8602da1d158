// A sensitivity sweep split into shards that run as one job array on a scheduler
// (Slurm): job script, submission, following the tasks, reading each shard's store
// as it finishes (so partial results show), one retry of a failed shard, cancel.
#pragma once

#include "cluster/merge.h"
#include "cluster/scheduler.h"
#include "jobs/progress.h"

#include <functional>
#include <string>
#include <vector>

namespace qs {

struct ShardedSweepOptions {
    // The shard command: the program (absolute) and its arguments, without --shard and
    // --db; each task adds --shard I/N --db WORKDIR/shard-I.db.
    std::vector<std::string> command;
    int shards = 2;
    std::string workDir; // on a filesystem every node sees: job scripts, logs, shard stores
    std::string chdir;   // the tasks' working directory (where the command's relative paths point)
    int retries = 1;     // a failed shard is submitted again this many times
    double pollSeconds = 1;
    // Model and data hashes and config every shard must have (checkShard); count is set
    // from `shards`. Empty hashes: the first finished shard sets them.
    ShardIdentity expected;
    // Fault injection for the tests (QS_CLUSTER_KILL_SHARD=I[:ATTEMPTS]): task I kills
    // itself with SIGKILL on its first ATTEMPTS attempts (default 1).
    int killShard = -1, killAttempts = 0;
};
// killShard/killAttempts from QS_CLUSTER_KILL_SHARD, when set.
void applyKillShardEnvironment(ShardedSweepOptions& options);

enum class ShardState { Pending, Running, Done, Failed };
const char* shardStateName(ShardState s);

struct ShardStatus {
    int index = 0;
    ShardState state = ShardState::Pending;
    int attempt = 1;
    std::string jobId;  // of the current attempt
    std::string log;    // the current attempt's output
    std::string detail; // why it failed: scheduler state, the shard's error, the log's last lines
    double seconds = 0; // the shard's own sweep time (done shards)
};

struct ClusterProgress {
    std::vector<ShardStatus> shards;
    int done = 0, running = 0, pending = 0, failed = 0;
    double elapsedSeconds = 0;
    double etaSeconds = -1;          // from the finished shards' pace; < 0 until one finished
    std::vector<std::string> jobIds; // first submission, then retries
};

struct ShardedSweepResult {
    std::vector<ShardRun> finished; // in shard order
    ClusterProgress progress;       // the final states
    bool cancelled = false;
    double seconds = 0;
    // Failed shards, one per line: "shard I: <detail> (log <path>)".
    std::string failureReport() const;
    // job ids, shard count, per shard seconds, attempts and failures (metrics.extra["cluster"]).
    nlohmann::json clusterJson() const;
};

// Called on every change; `newShard` when a shard finished since the last call
// (`finished` then holds one more).
using ClusterUpdate =
    std::function<void(const ClusterProgress& progress, const std::vector<ShardRun>& finished, bool newShard)>;

// Runs the shards to the end: done, or failed after the retries. Cancel scancels the
// jobs and returns within a poll step (< 0.1 s of waiting). Throws an Error when the
// submission fails or a finished shard belongs to another model, data or config.
ShardedSweepResult runShardedSweep(const ShardedSweepOptions& options, Scheduler& scheduler, const CancelToken& cancel,
    const ClusterUpdate& onUpdate = {});

// The sweep's shards recorded as one run of `store` (recordMergedRun): done when every
// shard finished, failed with the failure report when some did not, cancelled when
// cancelled. Returns the run id.
int64_t recordShardedSweep(Store& store, const ShardedSweepResult& result);

} // namespace qs
