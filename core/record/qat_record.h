// A quantization-aware training checkpoint recorded as a quantization run: the trained
// graph is written as an ONNX file (the run's model), its config holds the learned
// activation grids as per-tensor ranges plus a "qat" entry (hyper-parameters, teacher,
// step, curves), so the run evaluates, compares, replays and exports like any other.
#pragma once

#include "record/quantize_run.h"
#include "train/qat.h"

#include <string>

namespace qs {

struct QatRecordInput {
    std::string modelPath;   // where the checkpoint's ONNX file is written
    std::string teacherPath; // the FP32 model trained against
    train::QatOptions options;
    const train::QatResult* progress = nullptr; // the curves so far (steps, evaluations)
    int64_t stepOffset = 0;                     // steps trained before this job (a resumed checkpoint's)
    int64_t evalLimit = -1;                     // samples the recorded evaluation uses (< 0: all)
    std::string statePath; // the checkpoint's training state (saveQatTrainState), "" when none
};

// The "qat" entry of the run config: options, teacher, step (offset included), and the
// training state file when there is one ("state").
nlohmann::json qatRunInfo(const QatRecordInput& in, int64_t step);
// The curves of `r` for the run's metrics: loss, lr and held-out evaluations by step,
// and every learned scale's initial and latest value.
nlohmann::json qatCurves(const train::QatResult& r, int64_t stepOffset);

// Writes c.graph to in.modelPath and quantizes it with c.config on `calib`/`eval`
// (quantizeAndRecord's work), recording a run tagged "qat" when `store` is set.
RecordedQuantization recordQatCheckpoint(Store* store, const train::QatCheckpoint& c, const QatRecordInput& in,
    const Dataset& calib, const Dataset& eval, Progress& progress, const CancelToken& cancel);

} // namespace qs
