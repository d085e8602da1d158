// Activations streamed through the runtime's taps over a dataset, batch by batch,
// into observers (moments, a histogram, per-channel ranges). The per-layer profile
// with each calibrator's range is analysis/activation_profile.h.
#pragma once

#include "data/dataset.h"
#include "graph/graph.h"
#include "jobs/progress.h"
#include "measure/observer.h"
#include "measure/stats.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qs {

struct ProfileOptions {
    int64_t batch = 32;
    int64_t limit = -1;  // samples (< 0: all)
    int bins = 2048;
    int threads = 0;
    bool inputs = true;  // profile layer inputs (what activation quantization acts on)
    bool outputs = true;
};

class Plan;

// Runs the first `total` samples of `data` in batches of at most `batch`, compiling one
// plan per batch size n with `compile(input shapes)`: `attach(plan, n)` adds its taps to
// each new plan, `done(samples so far)` follows every batch. Checks `cancel` between batches.
void runInBatches(const Dataset& data, int64_t total, int64_t batch,
    const std::function<std::unique_ptr<Plan>(const std::map<std::string, Shape>& inputShapes)>& compile,
    const std::function<void(Plan&, int64_t n)>& attach, const CancelToken& cancel,
    const std::function<void(int64_t done)>& done = {});
// runInBatches on the FP32 `graph` with `threads` threads.
void runFp32Batches(const Graph& graph, const Dataset& data, int64_t total, int64_t batch, int threads,
    const std::function<void(Plan&, int64_t n)>& attach, const CancelToken& cancel,
    const std::function<void(int64_t done)>& done);

// Runs the FP32 model over `data` and observes the given tensors. Checks `cancel`
// between batches. Returns one observer per value.
std::map<std::string, ActivationObserver> observeActivations(const Graph& graph, const Dataset& data,
                                                             const std::vector<std::string>& values,
                                                             const ProfileOptions& options, Progress& progress,
                                                             const CancelToken& cancel);

// The tensor a layer's activation quantization acts on: its non-weight data input.
std::string layerInputOf(const Graph& graph, const Node& node);

} // namespace qs
