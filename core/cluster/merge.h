// Shards of a sensitivity sweep (SensitivityOptions::shardIndex/shardCount), each a
// run in its own store file, merged into one run of the main store that equals the
// run of the whole sweep on one machine; and the exact comparison of two stored runs.
#pragma once

#include "analysis/sensitivity.h"
#include "store/records.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qs {

class Store;

struct ShardSpec {
    int index = 0, count = 1;
};
// "I/N" with 0 <= I < N, or a one-line Error naming `option`.
ShardSpec parseShardSpec(const std::string& text, const std::string& option = "--shard");

// The shard's entry in the sensitivity run config ("shard": "I/N"); a merged run and a
// single-machine run have none.
constexpr const char* kShardConfigKey = "shard";

// One finished shard as read from its store file.
struct ShardRun {
    std::string file;
    ShardSpec shard;
    RunRecord run;
    ModelRecord model;
    DatasetRecord dataset;
    SensitivityResult result;      // sensitivity shards
    std::vector<LayerResult> rows; // as stored
};

// The newest finished shard run (a sensitivity sweep, or a mixed-precision search
// whose --verify measurements were split) of a shard store, opened read-only. Throws
// an Error naming the file when it has none or it did not finish.
ShardRun readShard(const std::string& file);

// What every shard of one sweep must share: model and data hashes and the config
// without its shard entry. The first shard sets them unless given.
struct ShardIdentity {
    RunKind kind = RunKind::Sensitivity;
    std::string modelHash, datasetHash;
    nlohmann::json config; // without "shard"
    int count = 0;
};
ShardIdentity identityOf(const ShardRun& shard);
// Throws a one-line Error naming the shard's file and the field that differs
// (model hash, dataset hash, config.<key>, shard count) or a repeated shard index.
void checkShard(const ShardRun& shard, const ShardIdentity& expected);

// The sweep from its shards' results (any subset; missing shards leave their
// pairs out): layers in the shards' order, each (layer, bits) from the shard that
// measured it. complete when every shard of the count is there and complete.
SensitivityResult mergeShardResults(const std::vector<ShardRun>& shards);

// The shards as one run of `store` (mixed shards as recordMergedMixed describes for
// merge below; sensitivity shards as follows) (model and dataset rows upserted from
// the shards): config, layer rows and metrics as a single-machine run writes them,
// plus metrics.extra["cluster"] = `cluster` (job ids, shard seconds); finished as
// done when complete, else failed with `error` (or cancelled when `cancelled`).
// Returns the run id.
struct MergeRecord {
    nlohmann::json cluster = nlohmann::json::object();
    double seconds = 0; // wall time of the whole sharded sweep
    std::string error;  // why shards are missing, when they are
    bool cancelled = false;
};
int64_t recordMergedRun(Store& store, const std::vector<ShardRun>& shards, const MergeRecord& record);

// Reads, checks and merges shard files into `store` (quantstudio-cli merge): all N
// shards of one sweep must be given. Sensitivity shards merge by (layer, bits); mixed
// shards take each front point's measurement (and the chosen point's) from the shard
// that verified it. Returns the run id.
int64_t mergeShardFiles(Store& store, const std::vector<std::string>& files);

// Every difference between two stored runs, one line each (empty when equal): kind,
// state, model and dataset hashes, config, metrics and every layer row field, numbers
// compared bit for bit. Wall-clock values (metrics latency_ms, metrics.extra seconds,
// fp32_latency_ms, cluster) and ids,
// times and machine are not compared.
std::vector<std::string> storedRunDifferences(const Store& a, int64_t runA, const Store& b, int64_t runB);

} // namespace qs
