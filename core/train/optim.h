// Adam (Kingma & Ba 2015, with bias correction) over a set of parameter tensors, and
// the learning-rate schedule of a training job: linear warm-up, then cosine decay
// (Loshchilov & Hutter 2017, one cycle without restarts) to a floor.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace qs::train {

struct AdamOptions {
    double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
};

// The moments of one parameter tensor.
struct AdamState {
    std::vector<float> m, v;
};

class Adam {
public:
    explicit Adam(AdamOptions o = {}) : o_(o) { }
    // Starts the next step (the bias corrections count steps from 1).
    void beginStep() { ++t_; }
    int64_t steps() const { return t_; }
    void setSteps(int64_t t) { t_ = t; } // resuming: the steps taken before
    // value -= lr * mhat / (sqrt(vhat) + eps) with this step's moments of `grad`.
    void update(AdamState& state, std::span<float> value, std::span<const float> grad, double lr) const;

private:
    AdamOptions o_;
    int64_t t_ = 0;
};

struct LrSchedule {
    double peak = 1e-3;
    int64_t warmupSteps = 0;
    int64_t totalSteps = 1;
    double floorFraction = 0.01; // the last step's rate as a fraction of the peak
    // The rate of step `step` (0-based): peak * (step + 1) / warmup during warm-up, then
    // floor + (peak - floor) * (1 + cos(pi * p)) / 2 with p going 0 -> 1 over the rest.
    double at(int64_t step) const;
};

} // namespace qs::train
