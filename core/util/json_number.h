// JSON numbers for values that may be infinite or NaN, which JSON cannot hold: null.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>

namespace qs {

inline nlohmann::json jsonNumber(double v)
{
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

} // namespace qs
