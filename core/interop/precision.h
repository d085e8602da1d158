// Per-layer precision settings to and from other tools: AIMET encodings JSON (0.6.1
// dicts and 1.0.0 lists), ONNX Runtime's TensorQuantOverrides, TensorRT trtexec's
// --layerPrecisions/--layerOutputTypes, and regex rule lists in the style of
// llama.cpp's --tensor-type ("pattern=type" lines, first match wins).
#pragma once

#include "graph/graph.h"
#include "quant/spec.h"

#include <optional>
#include <string>
#include <vector>

namespace qs {

class QuantSession;

enum class PrecisionFormat { Aimet, Aimet1, Ort, Trt, Rules };
// "aimet" (encodings 0.6.1), "aimet1" (1.0.0), "ort", "trt", "rules"; the error lists them.
PrecisionFormat parsePrecisionFormat(const std::string& name);
const char* precisionFormatName(PrecisionFormat f);

// A quantizable layer as the formats name it: node name, the weight as the model file
// names it and as the exported QDQ model does (after BatchNorm folding), the activation
// quantized at its input, and the weight's channel layout.
struct PrecisionLayer {
    std::string name, op;
    std::string weight, sourceWeight;
    std::string input;
    int outAxis = 0, inAxis = 1;
    int64_t outChannels = 1, inChannels = 1;
};
std::vector<PrecisionLayer> precisionLayers(const Graph& model);

struct PrecisionText {
    std::string text;
    std::vector<std::string> notes; // what the format could not say exactly (printed as warnings)
};

// The effective precision of every layer of `model` under `config` in format `f`.
// AIMET encodings carry scales: they need a calibrated, weight-quantized session of the
// same model and config (`calibrated`); the other formats do not read it. Throws Error
// naming the layer when its precision has no equivalent in the format.
PrecisionText exportPrecision(const Graph& model, const QuantConfig& config, PrecisionFormat f,
    const QuantSession* calibrated = nullptr);

struct PrecisionImport {
    QuantConfig config;
    std::vector<std::string> notes;
};

// Reads `text` (from the file `label`, for messages) into a config for `model`: `base`
// gives the defaults, the algorithms and the settings of layers the file does not name.
// Errors name the file, the line or key, and the layer: unknown layer or tensor names,
// bit widths the config cannot hold, bad regular expressions.
PrecisionImport importPrecision(const Graph& model, const std::string& text, PrecisionFormat f,
    const std::string& label, const QuantConfig& base = {});

// The rule type text of one layer's precision ("float", "w4a8 w:sym,group:32 a:affine,minmax"),
// and its parser (`where` prefixes errors).
std::string ruleType(const std::optional<LayerQuant>& lq);
std::optional<LayerQuant> parseRuleType(const std::string& text, const LayerQuant& base, const std::string& where);

} // namespace qs
