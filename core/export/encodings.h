// Quantization encodings in AIMET's JSON format: activation_encodings and
// param_encodings, keyed by tensor name of the exported QDQ model, each a list of
// {bitwidth, dtype, is_symmetric, max, min, offset, scale} (one per channel/block).
#pragma once

#include "quant/session.h"

#include <nlohmann/json.hpp>

namespace qs {

// offset = qmin - zero_point, so x = (q_unsigned + offset) * scale with
// q_unsigned = q - qmin in [0, qmax - qmin]; min = offset * scale,
// max = (offset + qmax - qmin) * scale. is_symmetric is "True"/"False" (AIMET's strings).
nlohmann::json encodingsJson(const QuantSession& session);

} // namespace qs
