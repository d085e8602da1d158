// Per-layer sensitivity to quantization: quantize one layer at a time (weights,
// activations or both) at each bit width and measure the model output against
// FP32; a fast local mode (the layer's own output SQNR); and a second-order mode
// (HAWQ-V2 style Hessian trace, Hutchinson estimate by finite differences).
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "jobs/progress.h"
#include "quant/spec.h"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qs {

enum class SensitivityMode { Weights, Activations, Both };
enum class SensitivityMethod { OneShot, Local, Hessian };
const char* sensitivityModeName(SensitivityMode m);
const char* sensitivityMethodName(SensitivityMethod m);
SensitivityMode parseSensitivityMode(const std::string& s);
SensitivityMethod parseSensitivityMethod(const std::string& s);

struct SensitivityOptions {
    std::vector<int> bits = {2, 3, 4, 5, 6, 8};
    SensitivityMode mode = SensitivityMode::Weights;
    SensitivityMethod method = SensitivityMethod::OneShot;
    int64_t limit = 256; // samples
    int64_t batch = 32;
    int threads = 0;
    QuantConfig base;          // granularity, symmetry, calibrator of the tested layer
    int hutchinsonSamples = 8; // Hessian method: random directions per layer
    bool naive = false;        // full re-run per configuration (benchmark baseline)
    bool keepBatches = false;  // record per-batch sums (BitMeasure::batches) for resampling
    // The cached sweep keeps each layer's compiled segment plans (their weight copies)
    // between batches while they fit in this many bytes; the rest are compiled again each
    // batch, and none outlives the last batch. -1: an eighth of the machine's memory.
    int64_t planCacheBytes = -1;
    // Also sweep every attention operand (quant/attention.h) the model has, as entries
    // named "<node>:K" (op "MatMul:K", no params) after the layers, with the granularity,
    // symmetry and calibrator of base.attention; oneshot or local method only.
    bool attention = false;
    // Shard shardIndex of shardCount: only the (layer, bits) pairs whose place in
    // layer-major order is shardIndex modulo shardCount are measured (one-shot and
    // local methods); every layer is still listed. Each pair's numbers are those of
    // the whole sweep, so the shards' union is the whole sweep (core/cluster/merge.h).
    int shardIndex = 0, shardCount = 1;
};

// What one batch added to a measurement: resampling batches and summing these gives
// the measurement on the resampled set (bootstrap).
struct BatchSums {
    int64_t samples = 0;
    double klSum = 0;                     // sum over samples of KL(FP32 || quantized), nats
    double signal = 0, noise = 0;         // model output: sum ref^2, sum (ref - test)^2
    double localSignal = 0, localNoise = 0; // the layer's own output (local method)
};

struct BitMeasure {
    double sqnrDb = 0; // model output vs FP32 (one-shot); the local SQNR for the local method
    double kl = 0;
    double top1Agreement = 1;
    std::optional<double> top1;
    std::optional<double> localSqnrDb; // the layer's own output vs FP32 (local method only)
    int64_t samples = 0;               // what these numbers were measured on (fewer than asked when cancelled)
    std::vector<BatchSums> batches;    // per batch, in order (SensitivityOptions::keepBatches)
};

struct LayerSensitivity {
    std::string layer, op;
    int64_t params = 0;
    std::map<int, BitMeasure> byBits;
    std::optional<double> hessianTrace; // mean diagonal of the KL Hessian w.r.t. the weights
    std::optional<double> hessianScore; // trace/n x ||Q(W) - W||^2 at the reference bit width
    // Hessian method with keepBatches: per direction, per batch, the KL sums at
    // w + eps v and w - eps v, and what the score is made of.
    std::vector<std::vector<BatchSums>> hessianPlus, hessianMinus;
    double hessianEps = 0, weightErrorSq = 0; // eps; ||Q(W) - W||^2 at the reference bits
};

struct SensitivityResult {
    std::vector<LayerSensitivity> layers;
    SensitivityMethod method = SensitivityMethod::OneShot;
    SensitivityMode mode = SensitivityMode::Weights;
    std::string estimator; // what produced the numbers, in words
    bool complete = true;  // false when cancelled part-way (what was measured is kept)
    double seconds = 0;
    int64_t samples = 0;
    std::optional<double> fp32Top1;
    std::optional<double> spearman; // Hessian ranking vs one-shot ranking (Hessian method)
};

// Called as each (layer, bits) result is measured, for live views.
using SensitivityCallback = std::function<void(const LayerSensitivity& layer, int bits)>;

// Throws Cancelled only through `cancel` before anything was measured; a later
// cancel returns the partial result with complete = false.
SensitivityResult measureSensitivity(const Graph& graph, const Dataset& data, const SensitivityOptions& options,
    Progress& progress, const CancelToken& cancel, const SensitivityCallback& onResult = {});

double spearmanCorrelation(const std::vector<double>& a, const std::vector<double>& b);

} // namespace qs
