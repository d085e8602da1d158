// Precision interchange: the model's layers as the formats name them, dispatch to the
// format files, assembling imported configs.
#include "interop/precision.h"

#include "export/encodings.h"
#include "interop/precision_detail.h"
#include "measure/activations.h"
#include "measure/layers.h"
#include "quant/session.h"
#include "util/error.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace qs {

PrecisionFormat parsePrecisionFormat(const std::string& name)
{
    if (name == "aimet")
        return PrecisionFormat::Aimet;
    if (name == "aimet1")
        return PrecisionFormat::Aimet1;
    if (name == "ort")
        return PrecisionFormat::Ort;
    if (name == "trt")
        return PrecisionFormat::Trt;
    if (name == "rules")
        return PrecisionFormat::Rules;
    fail("precision format ", quoted(name),
        ": expected aimet (AIMET encodings 0.6.1), aimet1 (AIMET encodings 1.0.0), ort (ONNX Runtime "
        "TensorQuantOverrides), trt (trtexec --layerPrecisions) or rules (pattern=type lines)");
}

const char* precisionFormatName(PrecisionFormat f)
{
    switch (f) {
    case PrecisionFormat::Aimet:
        return "aimet";
    case PrecisionFormat::Aimet1:
        return "aimet1";
    case PrecisionFormat::Ort:
        return "ort";
    case PrecisionFormat::Trt:
        return "trt";
    case PrecisionFormat::Rules:
        return "rules";
    }
    return "rules";
}

std::vector<PrecisionLayer> precisionLayers(const Graph& model)
{
    // The session's working graph is the one the QDQ export and the AIMET encodings name.
    QuantizeOptions all;
    QuantSession s(model, all);
    std::vector<PrecisionLayer> out;
    for (const auto& l : s.layers()) {
        PrecisionLayer p;
        p.name = l.name;
        p.op = l.op;
        p.weight = l.weight;
        p.input = l.input;
        p.outAxis = l.outAxis;
        p.inAxis = l.inAxis;
        if (int idx = model.findNode(l.name); idx >= 0)
            p.sourceWeight = model.weightOf(model.nodes[std::size_t(idx)]);
        if (p.sourceWeight.empty())
            p.sourceWeight = l.weight;
        const Shape& shape = s.graph().constant(l.weight)->shape;
        const int rank = int(shape.size());
        if (rank > 0) {
            p.outChannels = shape[std::size_t((l.outAxis % rank + rank) % rank)];
            p.inChannels = shape[std::size_t((l.inAxis % rank + rank) % rank)];
        }
        out.push_back(p);
    }
    return out;
}

namespace interop {

LayerTable::LayerTable(const Graph& model) : layers_(precisionLayers(model))
{
    for (const auto& v : model.inputs)
        tensors_.insert(v.name);
    for (const auto& [name, t] : model.initializers)
        tensors_.insert(name);
    for (const auto& n : model.nodes)
        tensors_.insert(n.outputs.begin(), n.outputs.end());
    for (const auto& l : layers_)
        tensors_.insert(l.weight);
}

const PrecisionLayer* LayerTable::byName(const std::string& name) const
{
    for (const auto& l : layers_)
        if (l.name == name)
            return &l;
    return nullptr;
}

std::vector<const PrecisionLayer*> LayerTable::byWeight(const std::string& tensor) const
{
    std::vector<const PrecisionLayer*> out;
    for (const auto& l : layers_)
        if (l.weight == tensor || l.sourceWeight == tensor)
            out.push_back(&l);
    return out;
}

std::vector<const PrecisionLayer*> LayerTable::byInput(const std::string& tensor) const
{
    std::vector<const PrecisionLayer*> out;
    for (const auto& l : layers_)
        if (l.input == tensor)
            out.push_back(&l);
    return out;
}

std::string LayerTable::unknownLayer(const std::string& name) const
{
    std::string known;
    for (std::size_t i = 0; i < layers_.size() && i < 4; ++i)
        known += (i ? ", " : "") + quoted(layers_[i].name);
    if (layers_.size() > 4)
        known += ", ...";
    return str("no layer named ", quoted(name), " in the model (", layers_.size(), " quantizable layers: ", known, ")");
}

QuantConfig assembleConfig(const QuantConfig& base, const LayerQuant& defaults, const GivenPrecision& given)
{
    QuantConfig c = base;
    c.defaults = defaults;
    for (const auto& [name, lq] : given) {
        c.layers.erase(name);
        c.excluded.erase(name);
        if (!lq)
            c.excluded.insert(name);
        else if (!(*lq == defaults))
            c.layers[name] = *lq;
    }
    return c;
}

bool validIntBits(int bits)
{
    return bits >= 2 && bits <= 8;
}

nlohmann::json parseJsonObject(const std::string& text, const std::string& label)
{
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        fail(label, ": not valid JSON (", e.what(), ")");
    }
    if (!j.is_object())
        fail(label, ": expected a JSON object");
    return j;
}

int intField(const nlohmann::json& v, const std::string& where)
{
    if (!v.is_number_integer())
        fail(where, ": expected an integer, got ", v.dump());
    const bool fits = v.is_number_unsigned()
        ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<int>::max())
        : v.get<int64_t>() >= std::numeric_limits<int>::min() && v.get<int64_t>() <= std::numeric_limits<int>::max();
    if (!fits)
        fail(where, ": ", v.dump(), " is out of range");
    return int(v.get<int64_t>());
}

std::pair<float, float> floatRange(double lo, double hi, const std::string& where)
{
    const double limit = std::numeric_limits<float>::max();
    if (!(std::abs(lo) <= limit && std::abs(hi) <= limit))
        fail(where, ": range [", lo, ", ", hi, "] is not finite in float");
    if (!(float(lo) < float(hi)))
        fail(where, ": the range's low end ", lo, " must be below its high end ", hi);
    return {float(lo), float(hi)};
}

std::string number(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

} // namespace interop

PrecisionText exportPrecision(
    const Graph& model, const QuantConfig& config, PrecisionFormat f, const QuantSession* calibrated)
{
    const interop::LayerTable t(model);
    PrecisionText out;
    for (const auto& [name, lq] : config.layers)
        if (!t.byName(name))
            out.notes.push_back(
                str("config layer ", quoted(name), " is not a quantizable layer of the model; ignored"));
    PrecisionText body;
    switch (f) {
    case PrecisionFormat::Aimet:
    case PrecisionFormat::Aimet1:
        if (!calibrated)
            fail("AIMET encodings carry scales and offsets: the model must be calibrated first (give --data)");
        body.text =
            encodingsJson(*calibrated, f == PrecisionFormat::Aimet ? AimetVersion::V0_6_1 : AimetVersion::V1_0_0)
                .dump(2) +
            "\n";
        break;
    case PrecisionFormat::Ort:
        body = interop::exportOrt(t, config);
        break;
    case PrecisionFormat::Trt:
        body = interop::exportTrt(t, config);
        break;
    case PrecisionFormat::Rules:
        body = interop::exportRules(t, config);
        break;
    }
    out.text = std::move(body.text);
    out.notes.insert(out.notes.end(), body.notes.begin(), body.notes.end());
    return out;
}

PrecisionImport importPrecision(
    const Graph& model, const std::string& text, PrecisionFormat f, const std::string& label, const QuantConfig& base)
{
    const interop::LayerTable t(model);
    switch (f) {
    case PrecisionFormat::Aimet:
    case PrecisionFormat::Aimet1:
        return interop::importAimet(t, text, label, base);
    case PrecisionFormat::Ort:
        return interop::importOrt(t, text, label, base);
    case PrecisionFormat::Trt:
        return interop::importTrt(t, text, label, base);
    case PrecisionFormat::Rules:
        break;
    }
    return interop::importRules(t, text, label, base);
}

} // namespace qs
