#include "train/optim.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace qs::train {

void Adam::update(AdamState& state, std::span<float> value, std::span<const float> grad, double lr) const
{
    if (state.m.size() != value.size()) {
        state.m.assign(value.size(), 0.f);
        state.v.assign(value.size(), 0.f);
    }
    const double c1 = 1 - std::pow(o_.beta1, double(t_)), c2 = 1 - std::pow(o_.beta2, double(t_));
    const float b1 = float(o_.beta1), b2 = float(o_.beta2);
    const float step = float(lr / c1), eps = float(o_.epsilon), rc2 = float(1 / std::sqrt(c2));
    for (std::size_t i = 0; i < value.size(); ++i) {
        const float g = grad[i];
        state.m[i] = b1 * state.m[i] + (1 - b1) * g;
        state.v[i] = b2 * state.v[i] + (1 - b2) * g * g;
        value[i] -= step * state.m[i] / (std::sqrt(state.v[i]) * rc2 + eps);
    }
}

double LrSchedule::at(int64_t step) const
{
    if (step < warmupSteps)
        return peak * double(step + 1) / double(warmupSteps);
    const double rest = double(std::max<int64_t>(totalSteps - warmupSteps - 1, 1));
    const double p = std::clamp(double(step - warmupSteps) / rest, 0.0, 1.0);
    const double floor = peak * floorFraction;
    return floor + (peak - floor) * (1 + std::cos(std::numbers::pi * p)) / 2;
}

} // namespace qs::train
