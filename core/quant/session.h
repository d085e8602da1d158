// A quantization run in the making: a working copy of the graph (BatchNorm folded,
// algorithms applied), calibrated activation ranges, quantized-dequantized weights,
// and the compile options that turn them into a simulated-quantization Plan.
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "jobs/progress.h"
#include "quant/attention.h"
#include "measure/activations.h"
#include "quant/eval_batches.h"
#include "quant/calibrator.h"
#include "quant/quantizer.h"
#include "quant/spec.h"
#include "runtime/input_shapes.h"
#include "runtime/plan.h"

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace qs {

struct QuantizeOptions {
    QuantConfig config;
    int64_t batch = 32;
    int64_t calibLimit = 256; // calibration samples
    int64_t evalLimit = -1;   // evaluation samples (< 0: all)
    int threads = 0;
    bool int8 = false;        // run real INT8 kernels instead of simulated quantization
    uint64_t seed = 1;        // stochastic rounding
    // --shard I/N of the evaluation (evalShards > 0): only shard I's contiguous range of
    // batches is evaluated (shardBatches); QuantizeResult::evalBatches holds their sums.
    int evalShard = 0, evalShards = 0;
};

// One quantized layer as the session sees it.
struct SessionLayer {
    std::string name;       // node name
    std::string op;
    std::string weight;     // initializer name in the working graph
    std::string bias;       // "" when none
    std::string input;      // activation value quantized at the layer's input
    int outAxis = 0, inAxis = 1;
    LayerQuant spec;
};

// A quantizable layer node `n` of `g` as a session sees it (spec left default): what
// refreshLayers() derives, with no copy of the graph (the studio's size table reads it
// from the imported graph's shapes). isSessionLayer: false for nodes a session never
// quantizes whatever the configuration (rotation's online MatMuls).
SessionLayer sessionLayerOf(const Graph& g, const Node& n);
bool isSessionLayer(const Node& n);

struct ActivationQuant {
    ClipRange range;
    QParams params;
};
// The quantization of every quantized layer input, as calibration sets it: the spec of
// the value's first quantized user, its range from config.ranges, else the spec's own
// range, else its calibrator on the observation. Throws naming a value not observed.
std::map<std::string, ActivationQuant> chooseActivationQuantization(const std::vector<SessionLayer>& layers,
    const QuantConfig& config, const std::map<std::string, ActivationObserver>& observers);

class QuantSession {
public:
    QuantSession(const Graph& source, QuantizeOptions options);
    // The same, taking `source`'s storage for the working graph instead of copying it.
    QuantSession(Graph&& source, QuantizeOptions options);

    Graph& graph() { return graph_; }
    const Graph& graph() const { return graph_; }
    const QuantizeOptions& options() const { return options_; }
    std::vector<SessionLayer>& layers() { return layers_; }
    const std::vector<SessionLayer>& layers() const { return layers_; }
    // Re-derives layers() after an algorithm changed the graph.
    void refreshLayers();
    // The spec refreshLayers() gives a layer node under `config` (nullopt: excluded).
    std::optional<LayerQuant> specFor(const Node& n, const QuantConfig& config) const;
    // Attention operands found in the working graph (findAttentionOperands), and those
    // the configuration quantizes with their spec (refreshLayers()).
    const AttentionPatterns& attentionPatterns() const { return attention_; }
    struct Operand {
        AttentionPoint point;
        OperandSpec spec;
    };
    const std::vector<Operand>& operands() const { return operands_; }
    // The quantization of each quantized operand by point name, after calibrate().
    std::map<std::string, OperandQuant> operandQuant;
    // Sets operandQuant from observations of the operands (calibrate() does).
    void setOperandQuantization(const std::map<std::string, OperandObserver>& observers);
    // Observes every quantized operand's value on `calib` (static granularities).
    std::map<std::string, OperandObserver> observeOperands(
        const Dataset& calib, int64_t limit, Progress& progress, const CancelToken& cancel) const;

    // Throws naming the tensor when a per-tensor range (QuantConfig::ranges) names
    // neither a quantized layer's input nor its weight.
    void checkRanges() const;

    // Observes every quantized layer's input on `calib` and sets activation ranges.
    void calibrate(const Dataset& calib, Progress& progress, const CancelToken& cancel);
    // The values calibrate() observes: each quantized layer input once, graph order.
    std::vector<std::string> activationValues() const;
    // Sets activationRanges/Params/Stats from observations of activationValues() (what
    // calibrate() does after observing; the what-if session re-chooses from stored ones).
    void setActivationQuantization(const std::map<std::string, ActivationObserver>& observers);
    // Quantizes every layer's weight (into weightOverrides) with its spec.
    void quantizeWeights();
    // Chooses the grid of every weight whose spec asks for "output-mse" (and sets no
    // range) from the Gram matrix of the layer's FP32 inputs on `calib` (up to the
    // calibrator param, else options().calibLimit, samples): algo::outputMseGrid.
    // Layers without a matrix view keep the weight-space MSE grid. Before quantizeWeights().
    void chooseWeightGrids(const Dataset& calib, Progress& progress, const CancelToken& cancel);
    // Grids chosen from data, by weight name, for the spec they were chosen under.
    struct WeightGrid {
        QuantSpec spec;
        std::vector<QParams> params; // per block, as planWeightQuantization() orders them
    };
    std::map<std::string, WeightGrid> weightGrids;
    // How `l`'s weight is quantized under `config`: planWeightQuantization() of
    // weightSpec(l, config), with the grid chosen from data when one is for that spec.
    WeightQuantization weightPlan(const SessionLayer& l) const { return weightPlan(l, options_.config); }
    WeightQuantization weightPlan(const SessionLayer& l, const QuantConfig& config) const;
    // The spec a layer's weight is quantized with: its own, with the config's per-tensor
    // range for the weight (QuantConfig::ranges) when one is set.
    QuantSpec weightSpec(const SessionLayer& l) const { return weightSpec(l, options_.config); }
    static QuantSpec weightSpec(const SessionLayer& l, const QuantConfig& config);
    // The quantized-dequantized weight of one layer under weightSpec(l) (named l.weight).
    Tensor quantizedWeight(const SessionLayer& l) const { return quantizedWeight(l, options_.config); }
    Tensor quantizedWeight(const SessionLayer& l, const QuantConfig& config) const;

    // Float weights replaced by their quantized-dequantized values (and corrected biases).
    std::map<std::string, Tensor> weightOverrides;
    // The grid of every quantized weight (by name): one scale per block, as
    // planWeightQuantization() orders them. weightOverrides hold multiples of these;
    // an algorithm choosing its own grid (AdaRound, GPTQ) updates both.
    std::map<std::string, std::vector<float>> weightScales;
    // Weights kept in float beside the grid (SpQR's outliers), count by weight name:
    // stored as kFloatOutlierBits each on top of the layer's grid (layerSizeBits).
    std::map<std::string, int64_t> floatOutliers;
    // Activation quantization per value (the layer inputs), after calibration.
    std::map<std::string, QParams> activationParams;
    std::map<std::string, ClipRange> activationRanges;
    std::map<std::string, TensorStats> activationStats;
    // The calibration histogram of each quantized activation (FP32 values, the observer's bins).
    std::map<std::string, Histogram> activationHistograms;
    // Hook for the research algorithms (quant/algorithms/): algorithm name -> what it did
    // and with which effective parameters; copied into QuantizeResult::algorithmNotes.
    nlohmann::json notes = nlohmann::json::object();
    // The image preprocessing of the calibration data (Dataset::preprocess; "" for other
    // data): export writes it to the model's metadata_props.
    std::string dataPreprocess;

    // Options for a Plan of the working graph: FP32 (quantized = false) or simulated quantized.
    CompileOptions compileOptions(bool quantized, const InputShapes& inputShape) const;
    // The same for other quantized weights and activation quantization (what-if variants).
    CompileOptions compileOptions(const InputShapes& inputShape, const std::map<std::string, Tensor>& weights,
        const std::map<std::string, QParams>& activations) const;
    std::unique_ptr<Plan> compile(bool quantized, const InputShapes& inputShape) const;
    // Runs the first `total` samples of `calib` through the working graph (FP32 or
    // simulated quantized) in batches of options().batch: one plan per batch size,
    // `attach` adds its taps when a plan is compiled, `done` sees the samples so far.
    void runBatches(const Dataset& calib, int64_t total, bool quantized, const std::function<void(Plan&)>& attach,
        const CancelToken& cancel, const std::function<void(int64_t done)>& done = {}) const;
    // Options for a Plan running every quantized layer in real INT8 (quant/int8_lowering.cpp):
    // s8 weights and s32 biases from weightOverrides and weightScales, 8-bit activations
    // from activationParams. Throws naming the layer when its spec has no INT8 kernel.
    CompileOptions int8CompileOptions(const InputShapes& inputShape) const;
    std::unique_ptr<Plan> compileInt8(const InputShapes& inputShape) const;
    // Why `layer` cannot run as an INT8 primitive with its spec ("" when it can).
    std::string int8Obstacle(const SessionLayer& layer) const;

    // Stored size in bits of the quantized model (scales, zero points and float
    // outliers included) and of the FP32 model.
    int64_t sizeBits() const;
    int64_t floatSizeBits() const;
    int64_t layerSizeBits(const SessionLayer& l) const;

private:
    QuantizeOptions options_;
    Graph graph_;
    std::vector<SessionLayer> layers_;
    AttentionPatterns attention_;
    std::vector<Operand> operands_;
    std::map<std::string, std::string> foldedWeights_; // source weight name -> its BN-folded name
};

// Algorithms plug in here, one file each under quant/algorithms/, registering themselves.
struct AlgorithmInfo {
    enum class Stage { BeforeCalibration, AfterWeights };
    std::string name;
    std::string summary;
    Stage stage;
    std::function<void(QuantSession&, const Dataset& calib, const nlohmann::json& params, Progress&,
                       const CancelToken&)>
        apply;
};
bool registerAlgorithm(AlgorithmInfo info);
const std::vector<AlgorithmInfo>& algorithms();
const AlgorithmInfo& algorithm(const std::string& name);

// A weight kept in float beside the grid (SpQR) is stored as its float32 value and a
// 32-bit element index.
constexpr int64_t kFloatOutlierBits = 64;
// How many of a layer's `elements` weights SpQR keeps in float at `percent` (0..100).
int64_t spqrOutlierCount(int64_t elements, double percent);
// The float-outlier bits `config`'s algorithms (SpQR) add to a quantized layer of
// `elements` weights, as the session will count them (for sizes predicted from shapes).
int64_t floatOutlierBits(const QuantConfig& config, int64_t elements);

// Conv + BatchNormalization -> Conv with folded weight and bias (inference BN, constant
// parameters, the conv output used only by the BN). Returns how many were folded.
int foldBatchNorms(Graph& g);

struct LayerQuantResult {
    std::string name, op;
    int wbits = 32, abits = 32;
    std::string granularity;
    int64_t params = 0;
    int64_t sizeBits = 0;
    double weightSqnrDb = 0;  // quantized weight vs float weight
    double outputSqnrDb = 0;  // layer output in the quantized model vs FP32
    std::optional<ClipRange> activationRange;
    std::optional<ClipRange> weightRange; // a user-set weight clipping range (spec or QuantConfig::ranges)
    float scaleMin = 0, scaleMax = 0; // weight scales
    // FP32 and quantized distributions on shared bins (no bins when not quantized):
    // the weight as the working graph holds it and as quantized-dequantized; the layer
    // input over the calibration data, its quantized values mapped from the
    // calibration histogram's 2048-bin resolution.
    Histogram weightHist, quantizedWeightHist, actHist, quantizedActHist;
};

// One quantized attention operand in a quantization result: the layer table's row.
struct OperandQuantResult {
    std::string name, node, value; // point ("<node>:K"), its MatMul, the quantized value
    std::string role;              // "Q", "K", "V", "P"
    int bits = 32;
    std::string granularity;
    std::string cache;             // the past keys/values input concatenated in ("" when none)
    double sqnrDb = 0;             // the operand in the quantized model vs FP32
    std::optional<ClipRange> range; // per tensor; the union of slices otherwise (none per token)
};

struct QuantizeResult {
    std::optional<double> top1, fp32Top1;
    std::optional<double> perplexity, fp32Perplexity; // text data: exp(mean next-token NLL)
    double top1Agreement = 0, sqnrDb = 0, cosine = 0, kl = 0;
    int64_t sizeBits = 0, fp32SizeBits = 0;
    double compression = 1;
    double latencyMs = 0, fp32LatencyMs = 0; // median per batch
    int64_t evalSamples = 0;
    std::vector<LayerQuantResult> layers;
    std::vector<OperandQuantResult> operands; // attention operands (QuantConfig::attention)
    nlohmann::json config;
    std::vector<std::string> applied; // algorithms, in order, with what they changed
    nlohmann::json algorithmNotes = nlohmann::json::object(); // QuantSession::notes
    std::vector<EvalBatch> evalBatches; // the evaluated batches' sums, in order
    int64_t evalBatchCount = 0;         // batches of the whole evaluation (every shard's)
};

// The whole flow: fold BN, algorithms, calibrate, quantize weights, evaluate
// against FP32 on `eval`.
QuantizeResult quantizeModel(const Graph& source, const Dataset& calib, const Dataset& eval,
                             const QuantizeOptions& options, Progress& progress, const CancelToken& cancel);

} // namespace qs
