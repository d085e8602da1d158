// ONNX Runtime's TensorQuantOverrides (extra_options of onnxruntime.quantization's
// quantize_static): tensor name -> list of {quant_type, scale, zero_point, symmetric,
// reduce_range, axis, rmin, rmax}, one dict per tensor or per channel. Written as
// {"TensorQuantOverrides": {...}, "nodes_to_exclude": [...]}; read from that or from a
// bare overrides object. Weights are named as the model file names them. Bit widths:
// QInt8/QUInt8 (8), QInt4/QUInt4 (4), reduce_range one bit less (7, 3).
#include "interop/precision_detail.h"

#include "graph/graph.h"
#include "util/error.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace qs::interop {
namespace {

using json = nlohmann::json;

json overrideFor(const std::string& layer, const QuantSpec& s, int axis, bool weight)
{
    const int container = s.bits == 7 || s.bits == 8 ? 8 : s.bits == 3 || s.bits == 4 ? 4 : 0;
    if (!container)
        fail("layer ", quoted(layer), ": ", s.bits, "-bit ", weight ? "weights" : "activations",
            " have no ONNX Runtime quant_type (QInt8/QUInt8, QInt4/QUInt4, reduce_range for 7 and 3 bits)");
    json o = {{"quant_type", std::string(s.symmetric ? "QInt" : "QUInt") + std::to_string(container)},
        {"symmetric", s.symmetric}};
    if (s.bits != container)
        o["reduce_range"] = true;
    if (weight && s.granularity == Granularity::Group)
        fail("layer ", quoted(layer),
            ": group-wise weights have no TensorQuantOverrides form (per tensor, or per channel with axis)");
    if (weight && s.granularity == Granularity::Channel)
        o["axis"] = axis;
    if (s.range) {
        o["rmin"] = s.range->first;
        o["rmax"] = s.range->second;
    }
    return o;
}

// One tensor's override list -> `spec` (bits, symmetry, granularity, range).
void readOverride(const json& list, const std::string& where, const PrecisionLayer& l, bool weight, QuantSpec& spec,
    std::vector<std::string>& notes)
{
    if (!list.is_array() || list.empty() || !list[0].is_object())
        fail(where, ": expected a non-empty list of objects (one per tensor or per channel)");
    const json& o = list[0];
    static const std::set<std::string> keys = {
        "quant_type", "scale", "zero_point", "symmetric", "reduce_range", "axis", "rmin", "rmax", "convert", "domain"};
    for (const auto& [k, v] : o.items())
        if (!keys.count(k))
            fail(where, "[0].", k, ": unknown key (expected quant_type, scale, zero_point, symmetric, reduce_range, "
                                  "axis, rmin, rmax)");
    try {
        bool isSigned = spec.symmetric;
        int bits = spec.bits > 8 ? 8 : spec.bits;
        if (o.contains("quant_type")) {
            const std::string qt = o["quant_type"].get<std::string>();
            if (qt == "QInt8" || qt == "QUInt8" || qt == "QInt4" || qt == "QUInt4") {
                isSigned = qt[1] == 'I';
                bits = qt.back() == '8' ? 8 : 4;
            } else {
                fail(where, "[0].quant_type: ", quoted(qt), " is not QInt8, QUInt8, QInt4 or QUInt4 (layer ",
                    quoted(l.name), ": QuantStudio holds 2..8 integer bits)");
            }
            spec.symmetric = isSigned; // ORT: signed types default to symmetric, unsigned to affine
        }
        if (o.contains("symmetric"))
            spec.symmetric = o["symmetric"].get<bool>();
        if (o.value("reduce_range", false))
            --bits;
        spec.bits = bits;
        spec.range.reset();
        if (o.contains("convert"))
            notes.push_back(str(where, ": convert (a second type for some consumers) is not held; ignored"));
        if (o.contains("axis")) {
            if (!weight)
                fail(where, "[0].axis: per-channel activations are not supported (layer ", quoted(l.name), ")");
            const int axis = o["axis"].get<int>();
            if (axis != l.outAxis && axis != l.outAxis - 4) // rank-relative negative axes of 4-D weights
                fail(where, "[0].axis: ", axis, ", but layer ", quoted(l.name), " has its output channels on axis ",
                    l.outAxis);
            spec.granularity = Granularity::Channel;
        } else if (weight) {
            spec.granularity = list.size() > 1 ? Granularity::Channel : Granularity::Tensor;
        }
        if (weight && list.size() > 1 && int64_t(list.size()) != l.outChannels)
            fail(where, ": ", list.size(), " per-channel entries, layer ", quoted(l.name), " has ", l.outChannels,
                " output channels");
        if (o.contains("rmin") != o.contains("rmax"))
            fail(where, "[0]: rmin and rmax go together");
        if (o.contains("rmin")) {
            const float lo = o["rmin"].get<float>(), hi = o["rmax"].get<float>();
            if (!(lo < hi))
                fail(where, "[0]: rmin must be below rmax");
            spec.range = std::make_pair(lo, hi);
        }
        if (o.contains("scale") != o.contains("zero_point"))
            fail(where, "[0]: scale and zero_point go together");
        if (o.contains("scale") && list.size() == 1) {
            // The range whose grid this is: qparamsFor() gives the same scale back.
            const double scale = o["scale"].get<double>();
            const int zp = o["zero_point"].get<int>();
            if (!(scale > 0))
                fail(where, "[0].scale: must be positive");
            const int qmax = spec.symmetric ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
            const int qmin = spec.symmetric ? -qmax : 0;
            if (spec.symmetric && zp != 0)
                fail(where, "[0].zero_point: ", zp, " with symmetric quantization (expected 0)");
            spec.range = std::make_pair(float((qmin - zp) * scale), float((qmax - zp) * scale));
        }
    } catch (const json::exception& e) {
        fail(where, ": wrong type (", e.what(), ")");
    }
}

} // namespace

PrecisionText exportOrt(const LayerTable& t, const QuantConfig& c)
{
    PrecisionText out;
    json overrides = json::object(), exclude = json::array();
    for (const auto& l : t.layers()) {
        auto lq = c.forLayer(l.name);
        if (!lq || (lq->weight.isFloat() && lq->activation.isFloat())) {
            if (lq && (lq->weight.bits == 16 || lq->activation.bits == 16))
                out.notes.push_back(str("layer ", quoted(l.name), ": 16-bit float is kept as the model's float"));
            exclude.push_back(l.name);
            continue;
        }
        if (lq->weight.isFloat() != lq->activation.isFloat())
            fail("layer ", quoted(l.name), ": W", lq->weight.bits, "A", lq->activation.bits,
                ": ONNX Runtime's QDQ quantizer quantizes a node's weight and input together (or exclude the node)");
        if (overrides.contains(l.sourceWeight))
            fail("layer ", quoted(l.name), ": weight ", quoted(l.sourceWeight), " is shared with another layer");
        overrides[l.sourceWeight] = json::array({overrideFor(l.name, lq->weight, l.outAxis, true)});
        json act = overrideFor(l.name, lq->activation, 0, false);
        if (overrides.contains(l.input) && overrides[l.input][0] != act)
            out.notes.push_back(str("layer ", quoted(l.name), ": input ", quoted(l.input),
                " is shared with an earlier layer of another activation precision; the earlier one is written"));
        else
            overrides[l.input] = json::array({act});
    }
    out.text = json({{"TensorQuantOverrides", overrides}, {"nodes_to_exclude", exclude}}).dump(2) + "\n";
    return out;
}

PrecisionImport importOrt(const LayerTable& t, const std::string& text, const std::string& label, const QuantConfig& base)
{
    const json j = parseJsonObject(text, label);
    json overrides = j, exclude = json::array();
    std::string prefix = label + ": ";
    if (j.contains("TensorQuantOverrides")) {
        for (const auto& [k, v] : j.items())
            if (k != "TensorQuantOverrides" && k != "nodes_to_exclude")
                fail(label, ": ", k, ": unknown key (expected TensorQuantOverrides, nodes_to_exclude)");
        overrides = j["TensorQuantOverrides"];
        if (!overrides.is_object())
            fail(label, ": TensorQuantOverrides: expected an object of tensor name -> list");
        if (j.contains("nodes_to_exclude"))
            exclude = j["nodes_to_exclude"];
        if (!exclude.is_array())
            fail(label, ": nodes_to_exclude: expected a list of node names");
        prefix = label + ": TensorQuantOverrides.";
    }
    PrecisionImport out;
    std::map<std::string, LayerQuant> specs;
    auto specOf = [&](const PrecisionLayer& l) -> LayerQuant& {
        auto it = specs.find(l.name);
        if (it == specs.end())
            it = specs.emplace(l.name, base.forLayer(l.name).value_or(base.defaults)).first;
        return it->second;
    };
    for (const auto& [tensor, list] : overrides.items()) {
        const std::string where = prefix + quoted(tensor);
        auto weights = t.byWeight(tensor), inputs = t.byInput(tensor);
        if (weights.empty() && inputs.empty()) {
            if (!t.knowsTensor(tensor))
                fail(where, ": the model has no tensor of that name");
            out.notes.push_back(str(where, ": neither a layer weight nor a layer input; ignored"));
            continue;
        }
        for (const auto* l : weights)
            readOverride(list, where, *l, true, specOf(*l).weight, out.notes);
        for (const auto* l : inputs)
            readOverride(list, where, *l, false, specOf(*l).activation, out.notes);
    }
    GivenPrecision given(specs.begin(), specs.end());
    for (const auto& n : exclude) {
        if (!n.is_string())
            fail(label, ": nodes_to_exclude: expected node names (strings)");
        const std::string name = n.get<std::string>();
        if (!t.byName(name))
            fail(label, ": nodes_to_exclude: ", t.unknownLayer(name));
        given[name] = std::nullopt;
    }
    out.config = assembleConfig(base, base.defaults, given);
    return out;
}

} // namespace qs::interop
