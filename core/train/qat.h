// The quantization-aware training job: a QuantSession on the student (BatchNorm folded,
// grids calibrated) gives the fake quantization, a Net trains weights and LSQ scales
// against the FP32 teacher (distillation on logits, plus cross-entropy where the data
// has labels) with Adam, warm-up and cosine decay; held-out evaluation and checkpoints
// (the trained graph and the config whose per-tensor ranges hold the learned scales,
// so a checkpoint quantizes, records and exports like any configuration).
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "jobs/progress.h"
#include "quant/spec.h"
#include "train/optim.h"

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace qs::train {

// End-to-end training's state at a checkpoint, to resume exactly: the steps done, Adam's
// step count and moments, and every param's value (the LSQ scales as learned), by name.
struct QatTrainState {
    int64_t step = 0;
    int64_t adamSteps = 0;
    std::map<std::string, AdamState> moments;
    std::map<std::string, std::vector<float>> values;
};
// As a safetensors file ("value/<param>", "m/<param>", "v/<param>"; metadata step and
// adam_steps); the loader fails naming the file and the tensor at fault.
void saveQatTrainState(const QatTrainState& s, const std::string& path);
QatTrainState loadQatTrainState(const std::string& path);

struct QatOptions {
    QuantConfig config; // the bits and grids trained for (no algorithms)
    int64_t steps = 500;
    int64_t batch = 64;
    int64_t calibLimit = 256;    // samples calibrating the initial activation grids
    int64_t evalLimit = 1000;    // held-out samples evaluated (< 0: all)
    int64_t evalEvery = 100;     // steps between held-out evaluations (0: at the end only)
    int64_t checkpointEvery = 0; // steps between checkpoints (0: at the end only)
    double lr = 1e-4;            // peak rate of weights, biases and normalization parameters
    double scaleLr = 1e-3;       // peak rate of the LSQ scales
    int64_t warmupSteps = 50;
    double floorFraction = 0.01;
    double temperature = 2.0; // distillation
    double kdWeight = 1.0;
    double ceWeight = 0.0; // cross-entropy on labels (when the data has them)
    // Attention-map distillation (EdgeQAT, Shen et al. 2024), end to end: KL between the
    // FP32 and the student's attention probabilities (Softmax outputs read by a MatMul of
    // two computed values), mean over maps, added with this weight.
    double attentionWeight = 0.0;
    bool learnScales = true, learnWeights = true;
    // Block by block (as BRECQ, Li et al. 2021): each block between two single-value cuts
    // of the graph learns to reconstruct its FP32 output (MSE; the last block distils the
    // logits) from its input in the quantized model (the blocks before it trained),
    // steps / blocks steps each, backpropagating through one block; else end to end.
    bool blockwise = false;
    uint64_t seed = 1; // sample order
    // Resume end-to-end training from a checkpoint's state: its params and Adam moments,
    // then steps state.step + 1 .. steps of the same schedule and sample order, as if
    // never interrupted. Not in toJson().
    std::shared_ptr<const QatTrainState> resume;
    int threads = 0;   // the FP32 plans (0: all cores); the training primitives use OpenMP's count

    nlohmann::json toJson() const; // the hyper-parameters, as a run records them
    // Fields of `j` override this; unknown fields fail naming them.
    void apply(const nlohmann::json& j, const std::string& where);
};

struct QatStep {
    int64_t step = 0; // 1-based
    double loss = 0, kd = 0, ce = 0, mse = 0, lr = 0;
    double attention = 0; // mean attention-map KL (with QatOptions::attentionWeight)
    int block = -1;       // the block trained (block by block), else -1
};

// A block of block-by-block training: graph nodes (in order) from the value `input` to
// the value `output`, the only value that leaves them.
struct QatBlock {
    std::vector<int> nodes;
    std::string input, output;
};
// The blocks of `g` (one input, one output): cuts where a single computed value is live,
// right before a node of `layers` or where that value has several readers (a residual
// stream), each block holding at least one of `layers`.
std::vector<QatBlock> partitionBlocks(const Graph& g, const std::set<std::string>& layers);

struct QatEval {
    int64_t step = 0;
    double kd = 0;              // held-out distillation loss
    std::optional<double> top1; // held-out, quantized (labels only)
    // Held-out next-token perplexity of the student as trained (text data: its learned
    // activation and attention-operand scales), else nullopt.
    std::optional<double> perplexity;
    int64_t samples = 0;
    // Every learned scale: activations by value, attention operands by point ("<point>[slice]"
    // per head or channel).
    std::map<std::string, float> scales;
};

struct QatCheckpoint {
    int64_t step = 0;
    Graph graph;        // the student's working graph with the trained weights (BN folded)
    // options.config with ranges holding the learned grids: activations (ranges) and
    // attention operands per slice (attention.ranges)
    QuantConfig config;
    std::shared_ptr<QatTrainState> state; // end to end: to resume exactly (else null)
};

struct QatCallbacks {
    std::function<void(const QatStep&)> onStep;
    std::function<void(const QatEval&)> onEval;
    std::function<void(const QatCheckpoint&)> onCheckpoint;
};

struct QatResult {
    std::optional<double> fp32Top1, initialTop1, finalTop1; // held-out: teacher, student before and after
    std::vector<QatStep> steps;
    std::vector<QatEval> evals;
    std::map<std::string, float> initialScales; // activation scales as calibrated
    double secondsPerStep = 0;
};

// Trains `student` (the FP32 model to quantize; a checkpoint's graph to resume) to
// follow `teacher` (the FP32 model) on `train`, evaluating on `heldOut`. Ranges in
// options.config (a checkpoint's) override calibration, so training resumes from
// the learned grids. Checks `cancel` every step and every evaluated batch.
QatResult trainQat(const Graph& teacher, const Graph& student, const Dataset& train, const Dataset& heldOut,
    const QatOptions& options, const QatCallbacks& callbacks, Progress& progress, const CancelToken& cancel);
// The same with `model` (the FP32 model) as teacher and student, handed over: the
// session's working graph takes its storage, and training writes the weights there
// (params borrow the graph's tensors). Block by block, this holds the weights once: the
// FP32 outputs come from the graph before training (held-out logits) and from a copy of
// one block's weights while it trains; end to end keeps a copy as the teacher.
QatResult trainQat(Graph&& model, const Dataset& train, const Dataset& heldOut, const QatOptions& options,
    const QatCallbacks& callbacks, Progress& progress, const CancelToken& cancel);

} // namespace qs::train
