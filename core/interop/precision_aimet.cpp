// Reading AIMET encodings (both forms, see export/encodings.h) into a config. A layer
// is quantized where its weight or input has an encoding; a tensor without one is not
// quantized (AIMET's rule), so a layer with neither is kept in float. Per-tensor
// encodings become clipping ranges: the grid's ends, from which qparamsFor() gives the
// same scale and zero point back (AIMET's own symmetric grids, offset -2^(b-1), come
// back on QuantStudio's restricted grid with a scale larger by 2^(b-1)/(2^(b-1)-1)).
#include "interop/precision_detail.h"

#include "util/error.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace qs::interop {
namespace {

using json = nlohmann::json;

// One tensor's encoding, either form, normalized.
struct Encoding {
    std::string where;
    bool isFloat = false;
    int bits = 8;
    bool symmetric = false;
    std::size_t count = 1;     // grids: 1 per tensor, else per channel or block
    int blockSize = 0;         // 1.0.0 PER_BLOCK
    std::string encType;       // 1.0.0 enc_type ("" in 0.6.1)
    std::optional<std::pair<float, float>> range; // per tensor only
};

bool readBool(const json& v, const std::string& where)
{
    if (v.is_boolean())
        return v.get<bool>();
    if (v.is_string() && (v == "True" || v == "False" || v == "true" || v == "false"))
        return v == "True" || v == "true";
    fail(where, ": expected True or False, got ", v.dump());
}

std::pair<float, float> gridRange(double scale, int offset, int bits, bool symmetric, const std::string& where)
{
    if (!(scale > 0))
        fail(where, ": scale must be positive, got ", scale);
    if (symmetric) // centred on zero whatever the grid's extra negative step
        return {float(offset * scale), float(-offset * scale)};
    return {float(offset * scale), float((offset + (1 << bits) - 1) * scale)};
}

void checkBits(Encoding& e)
{
    if (e.isFloat ? (e.bits != 16 && e.bits != 32) : !validIntBits(e.bits))
        fail(e.where, ": ", e.bits, "-bit ", e.isFloat ? "float" : "integers", " are not ",
            e.isFloat ? "16 or 32" : "2..8 bits");
}

Encoding readLegacy(const json& list, const std::string& where)
{
    if (!list.is_array() || list.empty() || !list[0].is_object())
        fail(where, ": expected a non-empty list of encodings");
    Encoding e;
    e.where = where;
    const json& o = list[0];
    try {
        e.isFloat = o.value("dtype", std::string("int")) == "float";
        if (!o.contains("bitwidth"))
            fail(where, "[0]: missing bitwidth");
        e.bits = o["bitwidth"].get<int>();
        checkBits(e);
        if (e.isFloat)
            return e;
        e.symmetric = o.contains("is_symmetric") && readBool(o["is_symmetric"], where + "[0].is_symmetric");
        e.count = list.size();
        if (e.count == 1) {
            if (o.contains("min") && o.contains("max"))
                e.range = std::make_pair(o["min"].get<float>(), o["max"].get<float>());
            else if (o.contains("scale") && o.contains("offset"))
                e.range = gridRange(o["scale"].get<double>(), o["offset"].get<int>(), e.bits, e.symmetric, where);
            else
                fail(where, "[0]: needs min and max, or scale and offset");
            if (!(e.range->first < e.range->second))
                fail(where, "[0]: min must be below max");
        }
    } catch (const json::exception& ex) {
        fail(where, ": wrong type (", ex.what(), ")");
    }
    return e;
}

Encoding readV1(const json& o, const std::string& where)
{
    Encoding e;
    e.where = where;
    try {
        const std::string dtype = o.value("dtype", std::string("INT"));
        e.isFloat = dtype == "FLOAT" || dtype == "float";
        if (!o.contains("bw"))
            fail(where, ": missing bw");
        e.bits = o["bw"].get<int>();
        checkBits(e);
        if (e.isFloat)
            return e;
        e.symmetric = o.contains("is_sym") && readBool(o["is_sym"], where + ".is_sym");
        e.encType = o.value("enc_type", std::string("PER_TENSOR"));
        if (e.encType != "PER_TENSOR" && e.encType != "PER_CHANNEL" && e.encType != "PER_BLOCK")
            fail(where, ".enc_type: ", quoted(e.encType), " is not PER_TENSOR, PER_CHANNEL or PER_BLOCK");
        if (!o.contains("scale") || !o["scale"].is_array() || o["scale"].empty())
            fail(where, ": scale must be a non-empty list");
        const json& scale = o["scale"];
        const json offset = o.value("offset", json::array());
        if (offset.size() != scale.size())
            fail(where, ": ", scale.size(), " scales but ", offset.size(), " offsets");
        e.count = scale.size();
        if (e.encType == "PER_BLOCK") {
            e.blockSize = o.value("block_size", 0);
            if (e.blockSize < 1)
                fail(where, ".block_size: PER_BLOCK needs a positive block_size");
        }
        if (e.encType == "PER_TENSOR") {
            if (e.count != 1)
                fail(where, ": PER_TENSOR with ", e.count, " scales");
            e.range = gridRange(scale[0].get<double>(), offset[0].get<int>(), e.bits, e.symmetric, where);
        }
    } catch (const json::exception& ex) {
        fail(where, ": wrong type (", ex.what(), ")");
    }
    return e;
}

void apply(const Encoding& e, const PrecisionLayer& l, bool weight, QuantSpec& s)
{
    s.bits = e.bits;
    s.range.reset();
    if (e.isFloat)
        return;
    s.symmetric = e.symmetric;
    s.range = e.range;
    if (!weight) {
        if (e.count != 1)
            fail(e.where, ": ", e.count, " encodings for an activation (layer ", quoted(l.name),
                "); activations are quantized per tensor");
        return;
    }
    const int64_t n = int64_t(e.count);
    if (e.encType == "PER_BLOCK" || (e.encType.empty() && n > l.outChannels)) {
        // Blocks along the input channels of every output channel.
        const int64_t perChannel = n / std::max<int64_t>(1, l.outChannels);
        const int64_t size = e.blockSize ? e.blockSize : (perChannel ? l.inChannels / perChannel : 0);
        if (perChannel * l.outChannels != n || size < 1 || (l.inChannels + size - 1) / size != perChannel)
            fail(e.where, ": ", n, " block encodings do not tile layer ", quoted(l.name), "'s weight (", l.outChannels,
                " output x ", l.inChannels, " input channels)");
        s.granularity = Granularity::Group;
        s.groupSize = int(size);
    } else if (n > 1 || e.encType == "PER_CHANNEL") {
        if (n != l.outChannels)
            fail(e.where, ": ", n, " per-channel encodings, layer ", quoted(l.name), " has ", l.outChannels,
                " output channels");
        s.granularity = Granularity::Channel;
    } else {
        s.granularity = Granularity::Tensor;
    }
}

} // namespace

PrecisionImport importAimet(const LayerTable& t, const std::string& text, const std::string& label, const QuantConfig& base)
{
    const json j = parseJsonObject(text, label);
    if (!(j.contains("activation_encodings") || j.contains("param_encodings")))
        fail(label, ": not AIMET encodings (no activation_encodings or param_encodings)");
    PrecisionImport out;
    std::map<std::string, Encoding> params, acts; // by tensor
    std::size_t skipped = 0;
    for (const char* section : {"activation_encodings", "param_encodings"}) {
        if (!j.contains(section))
            continue;
        const json& s = j[section];
        auto& into = std::string(section) == "param_encodings" ? params : acts;
        const bool isParam = &into == &params;
        // Where an encoding sits, with the layer that reads the tensor, for messages.
        auto where = [&](const std::string& key, const std::string& tensor) {
            if (!t.knowsTensor(tensor))
                fail(label, ": ", key, ": the model has no tensor ", quoted(tensor));
            const auto users = isParam ? t.byWeight(tensor) : t.byInput(tensor);
            return users.empty() ? label + ": " + key : str(label, ": ", key, " (layer ", quoted(users[0]->name), ")");
        };
        if (s.is_object()) {
            for (const auto& [tensor, list] : s.items())
                into[tensor] = readLegacy(list, where(str(section, ".", quoted(tensor)), tensor));
        } else if (s.is_array()) {
            for (std::size_t i = 0; i < s.size(); ++i) {
                const std::string key = str(section, "[", i, "]");
                if (!s[i].is_object() || !s[i].contains("name") || !s[i]["name"].is_string())
                    fail(label, ": ", key, ": expected an object with a name");
                const std::string tensor = s[i]["name"].get<std::string>();
                into[tensor] = readV1(s[i], where(key + " " + quoted(tensor), tensor));
            }
        } else {
            fail(label, ": ", section, ": expected an object (0.6.1) or a list (1.0.0)");
        }
    }
    for (const auto& [tensor, e] : params)
        skipped += t.byWeight(tensor).empty();
    for (const auto& [tensor, e] : acts)
        skipped += t.byInput(tensor).empty();
    if (skipped)
        out.notes.push_back(str(label, ": ", skipped,
            " encodings of tensors QuantStudio does not quantize (biases, layer outputs) were skipped"));

    std::set<std::string> excluded;
    if (j.contains("excluded_layers")) {
        if (!j["excluded_layers"].is_array())
            fail(label, ": excluded_layers: expected a list of layer names");
        for (const auto& n : j["excluded_layers"]) {
            if (!n.is_string() || !t.byName(n.get<std::string>()))
                fail(label, ": excluded_layers: ", n.is_string() ? t.unknownLayer(n.get<std::string>()) : "expected names");
            excluded.insert(n.get<std::string>());
        }
    }
    GivenPrecision given;
    for (const auto& l : t.layers()) {
        auto p = params.find(l.weight);
        if (p == params.end())
            p = params.find(l.sourceWeight);
        auto a = acts.find(l.input);
        if (excluded.count(l.name) || (p == params.end() && a == acts.end())) {
            given[l.name] = std::nullopt;
            continue;
        }
        LayerQuant lq = base.forLayer(l.name).value_or(base.defaults);
        if (p != params.end())
            apply(p->second, l, true, lq.weight);
        else
            lq.weight.bits = 32;
        if (a != acts.end())
            apply(a->second, l, false, lq.activation);
        else
            lq.activation.bits = 32;
        given[l.name] = lq;
    }
    out.config = assembleConfig(base, base.defaults, given);
    return out;
}

} // namespace qs::interop
