// An evaluation's partial sums batch by batch: what quantizeModel() adds up into its
// metrics, and what a shard of a sharded evaluation (--shard I/N, a contiguous range
// of batches) stores so that merging the shards adds the same sums in the same order
// and so equals the single-machine evaluation bit for bit.
#pragma once

#include "measure/fidelity.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace qs {

struct EvalBatch {
    int64_t index = 0;           // the batch's place in the whole evaluation
    FidelityMeter::Sums fidelity; // FP32 vs quantized final outputs
    double nllFp32 = 0, nllQuant = 0; // text data: summed next-token NLL
    int64_t tokens = 0;
    std::vector<double> layerSignal, layerNoise; // per quantized layer's output, session order
    double fp32Ms = 0, ms = 0;                   // the batch's time, FP32 and quantized
};

// The batches [first, last) of `batches` of size `batch` covering `total` samples that
// shard I of N evaluates: contiguous, every batch in exactly one shard.
struct BatchRange {
    int64_t first = 0, last = 0;
};
BatchRange shardBatches(int64_t total, int64_t batch, int shardIndex, int shardCount);

// The metrics of batches added in their order (the single place both the local run
// and a merge compute them).
struct EvalTotals {
    FidelityMeter meter;
    std::optional<double> perplexity, fp32Perplexity; // when `text`
    std::vector<double> layerSqnrDb;                  // +inf when a layer has no noise
    double latencyMs = 0, fp32LatencyMs = 0;          // medians over the batches
};
EvalTotals combineEvalBatches(const std::vector<EvalBatch>& batches, bool text, std::size_t layers);

nlohmann::json evalBatchJson(const EvalBatch& b);
// Throws a one-line Error naming `where` when a field is missing or of the wrong type.
EvalBatch evalBatchFromJson(const nlohmann::json& j, const std::string& where);

} // namespace qs
