// Live what-if: change one layer's spec (bits, granularity, ...) or one tensor's clipping
// range and see that layer's SQNR, the model output against FP32 and top-1 at once. The
// session keeps the FP32 outputs and the current configuration's activations of every
// evaluation batch, and re-runs only the graph downstream of a change from them.
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "jobs/progress.h"
#include "quant/session.h"
#include "quant/spec.h"
#include "runtime/plan.h"
#include "util/lru_cache.h"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace qs {

struct SignalNoise;

struct WhatIfChange {
    std::string layer;               // the layer whose SQNR is reported; "" = first user of the first range
    std::optional<LayerQuant> spec;  // the layer's new spec (whole LayerQuant)
    std::map<std::string, std::pair<float, float>> setRanges; // per-tensor ranges set (QuantConfig::ranges)
    std::set<std::string> clearRanges;                        // per-tensor ranges removed
    // An attention operand point ("<MatMul>:K", quant/attention.h) and its new spec (bits
    // 16 or 32: float). Its raw value is not cached, so the changed configuration is
    // evaluated by a full quantized run of the evaluation batches; `layer` may stay "".
    std::string operand;
    std::optional<OperandSpec> operandSpec;
};

// Model output of a configuration against FP32 on the evaluation set.
struct WhatIfMetrics {
    double outputSqnrDb = 0, kl = 0, cosine = 0, top1Agreement = 1;
    std::optional<double> top1;
};

struct WhatIfResult {
    std::string layer;          // the reported layer, or the changed attention operand point
    double layerSqnrDb = 0;     // the layer's output, changed configuration vs FP32 (NaN for an operand)
    double baseLayerSqnrDb = 0; // the same under the current configuration
    double weightSqnrDb = 0;    // the layer's quantized weight vs its float weight (+inf: float)
    WhatIfMetrics metrics, base;
    std::optional<double> fp32Top1;
    std::optional<ClipRange> activationRange; // of the layer's input, changed configuration
    QuantConfig config;         // what was evaluated
    std::vector<std::string> changedWeights, changedActivations;
    int64_t samples = 0;
    double seconds = 0;
    std::optional<double> top1Delta() const
    {
        return metrics.top1 && base.top1 ? std::optional<double>(*metrics.top1 - *base.top1) : std::nullopt;
    }
};

class WhatIfSession {
public:
    // Calibrates on the first options.calibLimit samples of `calib` (once: the observations
    // are kept), quantizes, and caches FP32 and quantized activations of the first
    // options.evalLimit samples of `eval` in batches of options.batch. Configurations with
    // algorithms or INT8 execution are refused.
    // The cached activations stay within `cacheBudget` bytes (<= 0: cacheBudgetBytes(),
    // util/memory_budget.h): batches beyond it are evicted least recently used first and
    // recomputed, bitwise equal, when a change needs them.
    WhatIfSession(const Graph& source, const Dataset& calib, const Dataset& eval, QuantizeOptions options,
                  Progress& progress, const CancelToken& cancel, int64_t cacheBudget = 0);
    ~WhatIfSession();

    // These accessors are for the thread that applies changes; others use snapshot().
    const QuantConfig& config() const { return options_.config; }
    const QuantSession& session() const { return *session_; }
    // The current configuration against FP32, with every layer's output SQNR.
    const WhatIfMetrics& current() const { return base_; }
    double layerSqnrDb(const std::string& layer) const;
    std::optional<double> fp32Top1() const { return fp32Top1_; }
    int64_t samples() const { return samples_; }
    int64_t cachedBytes() const;   // held by the batch cache now
    int64_t cacheBudget() const;
    int64_t cacheEvictions() const; // batches dropped for the budget so far
    void setCacheBudget(int64_t bytes); // <= 0: cacheBudgetBytes(); evicts down to it

    // `config()` with the change applied; throws naming the layer or tensor at fault.
    QuantConfig changed(const WhatIfChange& change) const;
    // Evaluates the change without keeping it. Thread-safe (calls are serialised);
    // checks `cancel` between batches.
    WhatIfResult evaluate(const WhatIfChange& change, const CancelToken& cancel = {});
    // Makes the change the current configuration (re-caches the quantized activations).
    void apply(const WhatIfChange& change, Progress& progress, const CancelToken& cancel);
    // Makes `config` the current configuration unless it already is; returns whether it changed.
    bool setConfig(const QuantConfig& config, Progress& progress, const CancelToken& cancel);

    // A consistent copy while other threads may evaluate or apply: the current
    // configuration, its layers and the activation range of each layer's input.
    struct Snapshot {
        QuantConfig config;
        std::vector<SessionLayer> layers;
        std::map<std::string, ClipRange> activationRanges;
        std::set<std::string> sourceWeights; // weight names of the source model (not BN-folded)
        // With foldedWeights = true: every quantized weight that is not the source model's
        // own (a BatchNorm-folded conv's), by name, as the session quantizes it.
        std::map<std::string, Tensor> foldedWeights;
    };
    Snapshot snapshot(bool foldedWeights = false);

private:
    struct Batch;
    struct Fp32Values;
    struct BatchValues;
    void rebuild(const QuantConfig& config, Progress& progress, const CancelToken& cancel);
    // A session of `config` quantized from the kept calibration observations.
    std::unique_ptr<QuantSession> makeSession(const QuantConfig& config) const;
    // The model output of `config` against FP32 over every evaluation batch, in full.
    WhatIfMetrics runInFull(const QuantConfig& config, const CancelToken& cancel);
    const SessionLayer& layerNamed(const std::string& name) const;
    // Batch bi's values: from the cache, else recomputed (and cached).
    std::shared_ptr<const BatchValues> valuesOf(std::size_t bi);
    std::shared_ptr<const Fp32Values> fp32ValuesOf(std::size_t bi);
    std::shared_ptr<const Fp32Values> runFp32(std::size_t bi);
    std::unique_ptr<Plan> fp32Plan(const std::map<std::string, Shape>& shapes, Fp32Values* const* filling) const;
    std::unique_ptr<Plan> currentPlan(const QuantSession& s, const std::map<std::string, Shape>& shapes,
        BatchValues* const* filling, std::map<std::string, SignalNoise>* power) const;
    void runCurrent(Plan& plan, BatchValues& values) const;

    Graph source_;
    Dataset eval_;
    QuantizeOptions options_;
    std::unique_ptr<QuantSession> session_;
    std::map<std::string, ActivationObserver> observers_; // every layer input, FP32, on the calibration set
    // Every attention operand, FP32, on the calibration set, per static granularity its
    // shape allows: (point, OperandGranularity) -> observation.
    std::map<std::pair<std::string, int>, OperandObserver> operandObservers_;
    std::vector<std::unique_ptr<Batch>> batches_;
    std::unique_ptr<LruCache<std::size_t, BatchValues>> cache_;
    // Plans that recompute evicted batches under the current session (reset with it).
    struct Recompute {
        std::unique_ptr<Plan> fp, current;
        std::map<std::string, Shape> fpShapes, currentShapes;
        Fp32Values* fpFilling = nullptr;
        BatchValues* currentFilling = nullptr;
    } recompute_;
    bool fp32TopKnown_ = false;
    std::set<std::string> inputs_;   // every quantizable layer's input
    std::set<std::string> frontier_; // values re-runs read besides the changed ones (kept in every plan)
    std::map<std::string, std::string> outputOf_; // layer -> its output value
    std::map<std::string, double> layerSqnr_;
    WhatIfMetrics base_;
    std::optional<double> fp32Top1_;
    int64_t samples_ = 0;
    std::mutex mutex_;
};

// Quantization error of a tensor under a clipping range, estimated from its histogram
// (each bin's mass at its centre): what the GUI shows while a range is dragged.
struct TensorQuantError {
    double mse = 0;
    double sqnrDb = 0;
    double clippedFraction = 0; // of the values, outside [lo, hi]
};
TensorQuantError histogramQuantError(const Histogram& h, float lo, float hi, int bits, bool symmetric);

} // namespace qs
