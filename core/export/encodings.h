// Quantization encodings in AIMET's JSON format: activation_encodings and
// param_encodings for the tensors of the exported QDQ model (layer inputs, weights).
// Version 0.6.1: objects keyed by tensor name, each a list of {bitwidth, dtype,
// is_symmetric, max, min, offset, scale} (one per channel/block). Version 1.0.0: lists
// of {name, dtype "INT", enc_type PER_TENSOR|PER_CHANNEL|PER_BLOCK, bw, is_sym, scale[],
// offset[], block_size}. core/interop/precision.cpp reads both back.
#pragma once

#include "quant/session.h"

#include <nlohmann/json.hpp>

namespace qs {

enum class AimetVersion { V0_6_1, V1_0_0 };

// offset = qmin - zero_point, so x = (q_unsigned + offset) * scale with
// q_unsigned = q - qmin in [0, qmax - qmin]; min = offset * scale,
// max = (offset + qmax - qmin) * scale. is_symmetric is "True"/"False" (AIMET's strings)
// in 0.6.1, a JSON bool (is_sym) in 1.0.0. Layers kept in float are listed in
// excluded_layers; a tensor without an encoding is not quantized.
nlohmann::json encodingsJson(const QuantSession& session, AimetVersion version = AimetVersion::V0_6_1);

} // namespace qs
