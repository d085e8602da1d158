#include "quant/spec.h"

#include "util/error.h"
#include "util/file.h"

#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>
#include <fstream>

namespace qs {

std::optional<LayerQuant> QuantConfig::forLayer(const std::string& layer) const
{
    if (excluded.count(layer))
        return std::nullopt;
    auto it = layers.find(layer);
    return it == layers.end() ? defaults : it->second;
}

std::optional<OperandSpec> QuantConfig::forOperand(const std::string& point, OperandRole role) const
{
    if (excluded.count(point))
        return std::nullopt;
    auto it = attention.points.find(point);
    const OperandSpec& s = it == attention.points.end() ? attention.role(role) : it->second;
    if (s.isFloat())
        return std::nullopt;
    return s;
}

const char* operandRoleName(OperandRole r)
{
    switch (r) {
    case OperandRole::Q:
        return "Q";
    case OperandRole::K:
        return "K";
    case OperandRole::V:
        return "V";
    case OperandRole::P:
        return "P";
    }
    return "Q";
}

const char* operandGranularityName(OperandGranularity g)
{
    switch (g) {
    case OperandGranularity::Tensor:
        return "tensor";
    case OperandGranularity::Head:
        return "head";
    case OperandGranularity::Token:
        return "token";
    case OperandGranularity::Channel:
        return "channel";
    }
    return "tensor";
}

OperandGranularity parseOperandGranularity(const std::string& text, const std::string& where)
{
    for (auto g :
        {OperandGranularity::Tensor, OperandGranularity::Head, OperandGranularity::Token, OperandGranularity::Channel})
        if (text == operandGranularityName(g))
            return g;
    fail(where, ": granularity ", quoted(text), ": expected tensor, head, token or channel");
}

const char* granularityName(Granularity g)
{
    switch (g) {
    case Granularity::Tensor: return "tensor";
    case Granularity::Channel: return "channel";
    case Granularity::Group: return "group";
    }
    return "tensor";
}

void parseGranularity(const std::string& text, QuantSpec& spec)
{
    if (text == "tensor") {
        spec.granularity = Granularity::Tensor;
    } else if (text == "channel") {
        spec.granularity = Granularity::Channel;
    } else if (text.rfind("group:", 0) == 0 || text == "group") {
        spec.granularity = Granularity::Group;
        if (text.size() > 6) {
            // Whole and in range: "group:4294967300" must not wrap around to 4.
            int n = 0;
            const char* last = text.data() + text.size();
            const auto [end, ec] = std::from_chars(text.data() + 6, last, n);
            if (ec != std::errc() || end != last || n < 1)
                fail("granularity ", quoted(text), ": group size must be an integer 1..", INT_MAX);
            spec.groupSize = n;
        }
    } else {
        fail("granularity ", quoted(text), ": expected tensor, channel or group:N");
    }
}

void parseCalibrator(const std::string& text, QuantSpec& spec)
{
    std::string name = text, param;
    if (auto colon = text.find(':'); colon != std::string::npos) {
        name = text.substr(0, colon);
        param = text.substr(colon + 1);
    }
    // output-mse: weights only (their range by the layer's output error on calibration data).
    static const std::set<std::string> known = {"minmax", "ema", "percentile", "mse", "entropy", "output-mse"};
    if (!known.count(name))
        fail("calibrator ", quoted(text), ": expected minmax, ema[:momentum], percentile:P, mse, entropy or output-mse");
    spec.calibrator = name;
    spec.calibratorParam = name == "percentile" ? 99.99 : name == "ema" ? 0.9 : 0;
    if (!param.empty()) {
        const char* last = param.data() + param.size();
        const auto [end, ec] = std::from_chars(param.data(), last, spec.calibratorParam);
        if (ec != std::errc() || end != last)
            fail("calibrator ", quoted(text), ": ", quoted(param), " is not a number");
    }
    if (name == "percentile" && !(spec.calibratorParam > 50 && spec.calibratorParam <= 100))
        fail("calibrator ", quoted(text), ": percentile must be in (50, 100]");
    if (name == "ema" && !(spec.calibratorParam >= 0 && spec.calibratorParam < 1))
        fail("calibrator ", quoted(text), ": momentum must be in [0, 1)");
}

std::pair<float, float> parseRange(const nlohmann::json& v, const std::string& where)
{
    if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number())
        fail(where, ": expected [lo, hi] (two numbers)");
    const float lo = v[0].get<float>(), hi = v[1].get<float>();
    if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi))
        fail(where, ": lo must be below hi (got [", lo, ", ", hi, "])");
    return {lo, hi};
}

nlohmann::json specToJson(const QuantSpec& s)
{
    nlohmann::json j;
    j["bits"] = s.bits;
    if (s.isFloat())
        return j;
    j["symmetric"] = s.symmetric;
    j["granularity"] = granularityName(s.granularity);
    if (s.granularity == Granularity::Group)
        j["group_size"] = s.groupSize;
    j["rounding"] = s.rounding == Rounding::Nearest ? "nearest" : "stochastic";
    j["calibrator"] = s.calibrator;
    if (s.calibratorParam != 0)
        j["calibrator_param"] = s.calibratorParam;
    if (s.range)
        j["range"] = {s.range->first, s.range->second};
    return j;
}

QuantSpec parseSpecJson(const nlohmann::json& j, const QuantSpec& base, const std::string& where)
{
    if (!j.is_object())
        fail(where, ": expected an object");
    QuantSpec s = base;
    for (const auto& [key, v] : j.items()) {
        const std::string field = where + "." + key;
        try {
            if (key == "bits") {
                s.bits = v.get<int>();
                if (!((s.bits >= 2 && s.bits <= 8) || s.bits == 16 || s.bits == 32))
                    fail(field, ": ", s.bits, " is not 2..8, 16 or 32");
            } else if (key == "symmetric") {
                s.symmetric = v.get<bool>();
            } else if (key == "granularity") {
                parseGranularity(v.get<std::string>(), s);
            } else if (key == "group_size") {
                s.groupSize = v.get<int>();
                if (s.groupSize < 1)
                    fail(field, ": must be positive");
            } else if (key == "rounding") {
                std::string r = v.get<std::string>();
                if (r != "nearest" && r != "stochastic")
                    fail(field, ": expected nearest or stochastic, got ", quoted(r));
                s.rounding = r == "nearest" ? Rounding::Nearest : Rounding::Stochastic;
            } else if (key == "calibrator") {
                double keep = s.calibratorParam;
                parseCalibrator(v.get<std::string>(), s);
                if (j.contains("calibrator_param"))
                    s.calibratorParam = keep;
            } else if (key == "calibrator_param") {
                s.calibratorParam = v.get<double>();
            } else if (key == "range") {
                s.range = parseRange(v, field);
            } else {
                fail(field, ": unknown field");
            }
        } catch (const nlohmann::json::exception& e) {
            fail(field, ": wrong type (", e.what(), ")");
        }
    }
    return s;
}

static nlohmann::json attentionToJson(const AttentionQuant& a);

nlohmann::json QuantConfig::toJson() const
{
    nlohmann::json j;
    j["default"] = {{"weight", specToJson(defaults.weight)}, {"activation", specToJson(defaults.activation)}};
    j["layers"] = nlohmann::json::object();
    for (const auto& [name, lq] : layers)
        j["layers"][name] = {{"weight", specToJson(lq.weight)}, {"activation", specToJson(lq.activation)}};
    j["exclude"] = excluded;
    j["algorithms"] = nlohmann::json::array();
    for (const auto& a : algorithms)
        j["algorithms"].push_back({{"name", a.name}, {"params", a.params}});
    if (!ranges.empty()) {
        j["ranges"] = nlohmann::json::object();
        for (const auto& [name, r] : ranges)
            j["ranges"][name] = {r.first, r.second};
    }
    if (!(attention == AttentionQuant {})) // off: the JSON (and run hashes) stay as before
        j["attention"] = attentionToJson(attention);
    return j;
}

nlohmann::json operandSpecToJson(const OperandSpec& s)
{
    nlohmann::json j;
    j["bits"] = s.bits;
    if (s.isFloat())
        return j;
    j["symmetric"] = s.symmetric;
    j["granularity"] = operandGranularityName(s.granularity);
    j["calibrator"] = s.calibrator;
    if (s.calibratorParam != 0)
        j["calibrator_param"] = s.calibratorParam;
    return j;
}

OperandSpec parseOperandSpecJson(const nlohmann::json& j, const OperandSpec& base, const std::string& where)
{
    if (!j.is_object())
        fail(where, ": expected an object");
    // The shared fields parse as a QuantSpec's; granularity is the operand's own.
    nlohmann::json common = j;
    common.erase("granularity");
    QuantSpec q;
    q.bits = base.bits;
    q.symmetric = base.symmetric;
    q.calibrator = base.calibrator;
    q.calibratorParam = base.calibratorParam;
    for (const auto& [key, v] : common.items())
        if (key != "bits" && key != "symmetric" && key != "calibrator" && key != "calibrator_param")
            fail(where, ".", key,
                ": unknown field (expected bits, symmetric, granularity, calibrator, calibrator_param)");
    q = parseSpecJson(common, q, where);
    OperandSpec s = base;
    s.bits = q.bits;
    s.symmetric = q.symmetric;
    s.calibrator = q.calibrator;
    s.calibratorParam = q.calibratorParam;
    if (j.contains("granularity")) {
        if (!j["granularity"].is_string())
            fail(where, ".granularity: expected a string");
        s.granularity = parseOperandGranularity(j["granularity"].get<std::string>(), where + ".granularity");
    }
    if (s.calibrator == "output-mse")
        fail(where, ".calibrator: output-mse is for weights; operands take minmax, ema, percentile, mse or entropy");
    return s;
}

static nlohmann::json attentionToJson(const AttentionQuant& a)
{
    nlohmann::json j;
    for (auto r : {OperandRole::Q, OperandRole::K, OperandRole::V, OperandRole::P}) {
        std::string key = operandRoleName(r);
        key[0] = char(std::tolower(key[0]));
        j[key] = operandSpecToJson(a.role(r));
    }
    if (!a.points.empty()) {
        j["points"] = nlohmann::json::object();
        for (const auto& [name, s] : a.points)
            j["points"][name] = operandSpecToJson(s);
    }
    if (!a.ranges.empty()) {
        j["ranges"] = nlohmann::json::object();
        for (const auto& [name, slices] : a.ranges) {
            nlohmann::json r = nlohmann::json::array();
            for (const auto& [lo, hi] : slices)
                r.push_back({lo, hi});
            j["ranges"][name] = r;
        }
    }
    return j;
}

static AttentionQuant parseAttention(const nlohmann::json& j)
{
    if (!j.is_object())
        fail("attention: expected an object with q, k, v, p and points");
    AttentionQuant a;
    const std::map<std::string, OperandRole> roles = {
        {"q", OperandRole::Q}, {"k", OperandRole::K}, {"v", OperandRole::V}, {"p", OperandRole::P}};
    for (const auto& [key, v] : j.items()) {
        if (auto r = roles.find(key); r != roles.end())
            a.role(r->second) = parseOperandSpecJson(v, a.role(r->second), "attention." + key);
        else if (key != "points" && key != "ranges")
            fail("attention.", key, ": unknown field (expected q, k, v, p, points or ranges)");
    }
    if (j.contains("ranges")) {
        if (!j["ranges"].is_object())
            fail("attention.ranges: expected an object of point name -> [[lo, hi], ...] (one per slice)");
        for (const auto& [name, v] : j["ranges"].items()) {
            const std::string where = "attention.ranges." + name;
            if (!v.is_array() || v.empty())
                fail(where, ": expected [[lo, hi], ...] (one range per slice)");
            auto& slices = a.ranges[name];
            for (std::size_t i = 0; i < v.size(); ++i)
                slices.push_back(parseRange(v[i], str(where, "[", i, "]")));
        }
    }
    if (j.contains("points")) {
        if (!j["points"].is_object())
            fail("attention.points: expected an object of point name (\"<node>:K\") -> spec");
        for (const auto& [name, v] : j["points"].items()) {
            const auto colon = name.rfind(':');
            const std::string role = colon == std::string::npos ? "" : name.substr(colon + 1);
            std::string lower = role;
            for (char& c : lower)
                c = char(std::tolower(c));
            if (colon == 0 || !roles.count(lower) || role.size() != 1)
                fail("attention.points.", name, ": expected a name \"<MatMul node>:Q\" (or :K, :V, :P)");
            a.points[name] = parseOperandSpecJson(v, a.role(roles.at(lower)), "attention.points." + name);
        }
    }
    return a;
}

static LayerQuant parseLayerQuant(const nlohmann::json& j, const LayerQuant& base, const std::string& where)
{
    if (!j.is_object())
        fail(where, ": expected an object with weight and activation");
    LayerQuant lq = base;
    for (const auto& [key, v] : j.items()) {
        if (key == "weight")
            lq.weight = parseSpecJson(v, base.weight, where + ".weight");
        else if (key == "activation")
            lq.activation = parseSpecJson(v, base.activation, where + ".activation");
        else
            fail(where, ".", key, ": unknown field (expected weight or activation)");
    }
    return lq;
}

QuantConfig QuantConfig::fromJson(const nlohmann::json& j)
{
    if (!j.is_object())
        fail("config: expected a JSON object");
    QuantConfig c;
    for (const auto& [key, v] : j.items()) {
        if (key == "default") {
            c.defaults = parseLayerQuant(v, c.defaults, "default");
        } else if (key == "layers") {
            if (!v.is_object())
                fail("layers: expected an object of layer name -> {weight, activation}");
        } else if (key == "exclude") {
            if (!v.is_array())
                fail("exclude: expected an array of layer names");
            for (const auto& name : v) {
                if (!name.is_string())
                    fail("exclude: expected layer names (strings)");
                c.excluded.insert(name.get<std::string>());
            }
        } else if (key == "algorithms") {
            if (!v.is_array())
                fail("algorithms: expected an array");
            for (const auto& a : v) {
                AlgorithmUse use;
                if (a.is_string()) {
                    use.name = a.get<std::string>();
                } else if (a.is_object() && a.contains("name") && a["name"].is_string()) {
                    use.name = a["name"].get<std::string>();
                    if (a.contains("params"))
                        use.params = a["params"];
                } else {
                    fail("algorithms: each entry is a name or {name, params}");
                }
                c.algorithms.push_back(use);
            }
        } else if (key == "ranges") {
            if (!v.is_object())
                fail("ranges: expected an object of tensor name -> [lo, hi]");
            for (const auto& [name, r] : v.items())
                c.ranges[name] = parseRange(r, "ranges." + name);
        } else if (key == "attention") {
            c.attention = parseAttention(v);
        } else {
            fail(key, ": unknown field (expected default, layers, exclude, algorithms, ranges, attention)");
        }
    }
    // Layer overrides start from the (final) defaults, whatever the key order.
    if (j.contains("layers"))
        for (const auto& [name, v] : j["layers"].items())
            c.layers[name] = parseLayerQuant(v, c.defaults, "layers." + name);
    return c;
}

QuantConfig QuantConfig::load(const std::string& path)
{
    const std::string text = readRegularFile(path, kMaxTextFileBytes);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        fail(path, ": not valid JSON (", e.what(), ")");
    }
    try {
        return fromJson(j);
    } catch (const Error& e) {
        fail(path, ": ", e.what());
    }
}

void QuantConfig::save(const std::string& path) const { writeFileAtomic(path, toJson().dump(2) + "\n"); }

} // namespace qs
