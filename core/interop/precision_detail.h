// Shared by the precision format files (core/interop/precision_*.cpp): the model's
// layers by name and tensor, and assembling an imported config.
#pragma once

#include "interop/precision.h"

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace qs::interop {

class LayerTable {
public:
    explicit LayerTable(const Graph& model);
    const std::vector<PrecisionLayer>& layers() const { return layers_; }
    const PrecisionLayer* byName(const std::string& name) const;
    // Layers whose weight (either name) or quantized input is `tensor`.
    std::vector<const PrecisionLayer*> byWeight(const std::string& tensor) const;
    std::vector<const PrecisionLayer*> byInput(const std::string& tensor) const;
    // Any value, initializer or node output of the model (before or after BN folding).
    bool knowsTensor(const std::string& tensor) const { return tensors_.count(tensor) != 0; }
    // "no layer named X in the model (8 layers: a, b, c, ...)"
    std::string unknownLayer(const std::string& name) const;

private:
    std::vector<PrecisionLayer> layers_;
    std::set<std::string> tensors_;
};

// Per layer: the precision a file gives it, nullopt for "kept in float".
using GivenPrecision = std::map<std::string, std::optional<LayerQuant>>;

// `base` with `defaults` and every given layer set (excluded, overridden, or equal to
// the defaults and so dropped from the overrides).
QuantConfig assembleConfig(const QuantConfig& base, const LayerQuant& defaults, const GivenPrecision& given);

bool validIntBits(int bits);
// A JSON object from `text`, or an Error naming `label`.
nlohmann::json parseJsonObject(const std::string& text, const std::string& label);
std::string number(double v); // shortest text that reads back as the same float

PrecisionText exportRules(const LayerTable& t, const QuantConfig& c);
PrecisionImport importRules(const LayerTable& t, const std::string& text, const std::string& label, const QuantConfig& base);
PrecisionText exportTrt(const LayerTable& t, const QuantConfig& c);
PrecisionImport importTrt(const LayerTable& t, const std::string& text, const std::string& label, const QuantConfig& base);
PrecisionText exportOrt(const LayerTable& t, const QuantConfig& c);
PrecisionImport importOrt(const LayerTable& t, const std::string& text, const std::string& label, const QuantConfig& base);
PrecisionImport importAimet(const LayerTable& t, const std::string& text, const std::string& label, const QuantConfig& base);

} // namespace qs::interop
