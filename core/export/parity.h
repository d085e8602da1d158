// Simulation versus deployment: an exported QDQ model, re-imported and run with real
// INT8 kernels (and as written, in float), against the simulated (fake-quant) run of
// the session it was exported from, layer by layer on the same data. A layer drifts
// when the SQNR of its output (INT8 vs simulated) falls below a threshold; an INT8 layer
// is the cause when it drifts alone too, fed the simulation's own input.
#pragma once

#include "data/dataset.h"
#include "export/qdq_lowering.h"
#include "jobs/progress.h"
#include "quant/session.h"
#include "runtime/cpu_isa.h"

#include <limits>
#include <string>
#include <vector>

namespace qs {

struct ParityOptions {
    int64_t limit = 256; // samples of the data (< 0: all)
    int64_t batch = 32;
    double thresholdDb = 30; // output SQNR (INT8 vs simulated) below which a layer drifts
    // Largest difference, in quantization steps of the output, beyond which a layer drifts
    // even at a high SQNR, when it is also more than kStepGrowth times the steps its input
    // was off by: rare large errors such as int16 saturation of u8 x s8 pairs on CPUs
    // without VNNI jump (22-30 steps from 4 on the demo), while rounding differences carried
    // from layer to layer grow by a small factor (at most 2.3 on the demo, with a 4-bit
    // activation upstream).
    double maxSteps = 10;
    static constexpr double kStepGrowth = 4;
    int threads = 0;
};

struct LayerParity {
    std::string layer, op;
    std::string output;  // the value compared: the layer's output after the activations and residual Add it fuses
    bool int8 = false;   // ran as an INT8 kernel (else as written, in float)
    std::string notInt8; // why not, when it did not
    double sqnrDb = std::numeric_limits<double>::infinity(); // INT8 vs simulated
    double maxAbsDiff = 0;
    double maxDiffSteps = -1; // maxAbsDiff in quantization steps of the output (-1: the output is not quantized)
    double inputSqnrDb = std::numeric_limits<double>::infinity(); // the layer's (quantized) input, INT8 vs simulated
    double qdqSqnrDb = std::numeric_limits<double>::infinity();   // the QDQ model as written (float) vs simulated
    double inputMaxDiffSteps = -1;
    // The INT8 layer alone on the first batch: fed the simulation's own input (and fused
    // residual operand) instead of the INT8 run's, so only what this layer adds counts.
    double aloneSqnrDb = std::numeric_limits<double>::infinity();
    double aloneMaxDiffSteps = -1;
    bool drifting = false;               // sqnrDb < threshold, or maxDiffSteps beyond maxSteps (see ParityOptions)
    // The drift starts here: an INT8 layer whose output alone is below the threshold or
    // beyond maxSteps (rounding differences each layer adds, 1 or 2 steps, accumulate
    // over a deep network into drifting layers that introduce nothing); a float layer
    // drifting while its input was not.
    bool introduced = false;
    std::vector<std::string> paramDiffs; // exported scales, zero points or weights that differ from the session's
};

struct ParityResult {
    std::vector<LayerParity> layers;
    double outputSqnrDb = std::numeric_limits<double>::infinity(); // first graph output, INT8 vs simulated
    double top1Agreement = 1;
    int64_t samples = 0;
    double thresholdDb = 30, maxSteps = 10;
    CpuIsa isa;
    std::vector<std::string> int8Kernels; // kernel summary lines of the INT8 layers
    std::vector<std::string> flagged;     // layers that introduced drift
    bool passed() const { return flagged.empty(); }
};

// `reference` is calibrated and weight-quantized (export/replay.h prepareSession);
// `exported` comes from lowerQdqModel(). Throws Error when a reference layer is missing
// from the export, or when the exported model's INT8 lowering fails (naming the layer).
ParityResult checkParity(const QuantSession& reference, const QdqLowered& exported, const Dataset& data,
    const ParityOptions& options, Progress& progress, const CancelToken& cancel);

} // namespace qs
