// Regex rule lists in the style of llama.cpp's --tensor-type: one "pattern=type" per
// line, the pattern an ECMAScript regular expression matched against the whole layer
// name, the first matching rule wins, "#" starts a comment. A type is "float" (layer
// kept in float) or "wNaM" (N weight bits, M activation bits; 16/32 = float) followed
// by optional "w:ATTR,..." and "a:ATTR,..." with ATTR one of sym | affine | tensor |
// channel | group:N | minmax | ema[:m] | percentile:P | mse | entropy | nearest |
// stochastic | range:LO:HI. A rule whose pattern is ".*" sets the defaults; the other
// rules start from them.
#include "interop/precision_detail.h"

#include "util/error.h"

#include <regex>
#include <sstream>

namespace qs {
namespace {

std::string specAttrs(const QuantSpec& s)
{
    std::string a = s.symmetric ? "sym" : "affine";
    a += s.granularity == Granularity::Group ? ",group:" + std::to_string(s.groupSize)
                                             : std::string(",") + granularityName(s.granularity);
    a += "," + s.calibrator;
    if (s.calibratorParam != 0)
        a += ":" + interop::number(s.calibratorParam);
    a += s.rounding == Rounding::Nearest ? ",nearest" : ",stochastic";
    if (s.range)
        a += ",range:" + interop::number(s.range->first) + ":" + interop::number(s.range->second);
    return a;
}

void parseAttr(const std::string& attr, QuantSpec& s, const std::string& where)
{
    if (attr == "sym" || attr == "affine") {
        s.symmetric = attr == "sym";
    } else if (attr == "tensor" || attr == "channel" || attr.rfind("group", 0) == 0) {
        parseGranularity(attr, s);
    } else if (attr == "nearest" || attr == "stochastic") {
        s.rounding = attr == "nearest" ? Rounding::Nearest : Rounding::Stochastic;
    } else if (attr.rfind("range:", 0) == 0) {
        const std::string rest = attr.substr(6);
        const auto colon = rest.find(':', 1); // a leading '-' is the sign of lo
        char* end = nullptr;
        const float lo = colon == std::string::npos ? 0.f : std::strtof(rest.c_str(), &end);
        const bool loOk = colon != std::string::npos && end == rest.c_str() + colon;
        const float hi = loOk ? std::strtof(rest.c_str() + colon + 1, &end) : 0.f;
        if (!loOk || *end != 0 || !(lo < hi))
            fail(where, ": ", quoted(attr), ": expected range:LO:HI with LO < HI");
        s.range = std::make_pair(lo, hi);
    } else {
        try {
            parseCalibrator(attr, s);
        } catch (const Error& e) {
            fail(where, ": ", quoted(attr),
                " is not sym, affine, tensor, channel, group:N, nearest, stochastic, range:LO:HI or a calibrator (",
                e.what(), ")");
        }
    }
}

int parseBits(const std::string& digits, const char* what, const std::string& type, const std::string& where)
{
    const int bits = digits.size() > 2 ? 99 : std::stoi(digits);
    if (!interop::validIntBits(bits) && bits != 16 && bits != 32)
        fail(where, ": type ", quoted(type), ": ", digits, " ", what, " bits is not 2..8, 16 or 32 (float)");
    return bits;
}

std::string escapeRegex(const std::string& name)
{
    std::string out;
    for (char c : name) {
        if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos)
            out += '\\';
        out += c;
    }
    return out;
}

std::string trim(const std::string& s)
{
    const auto b = s.find_first_not_of(" \t\r");
    const auto e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

} // namespace

std::string ruleType(const std::optional<LayerQuant>& lq)
{
    if (!lq)
        return "float";
    std::string t = "w" + std::to_string(lq->weight.bits) + "a" + std::to_string(lq->activation.bits);
    if (!lq->weight.isFloat())
        t += " w:" + specAttrs(lq->weight);
    if (!lq->activation.isFloat())
        t += " a:" + specAttrs(lq->activation);
    return t;
}

std::optional<LayerQuant> parseRuleType(const std::string& text, const LayerQuant& base, const std::string& where)
{
    std::istringstream in(text);
    std::string type;
    in >> type;
    if (type == "float") {
        std::string extra;
        if (in >> extra)
            fail(where, ": type float takes no attributes, got ", quoted(extra));
        return std::nullopt;
    }
    static const std::regex bitsRe("w(\\d+)a(\\d+)");
    std::smatch m;
    if (!std::regex_match(type, m, bitsRe))
        fail(where, ": type ", quoted(type), ": expected float or wNaM (e.g. w4a8, w8a16)");
    LayerQuant lq = base;
    lq.weight.bits = parseBits(m[1].str(), "weight", type, where);
    lq.activation.bits = parseBits(m[2].str(), "activation", type, where);
    for (std::string group; in >> group;) {
        QuantSpec* s = group.rfind("w:", 0) == 0 ? &lq.weight : group.rfind("a:", 0) == 0 ? &lq.activation : nullptr;
        if (!s)
            fail(where, ": ", quoted(group), ": expected w:ATTR,... or a:ATTR,...");
        std::string attr;
        std::istringstream attrs(group.substr(2));
        // group:N and percentile:P carry their own ':'; attributes are split on ','.
        bool ranged = false;
        while (std::getline(attrs, attr, ',')) {
            parseAttr(attr, *s, where);
            ranged = ranged || attr.rfind("range:", 0) == 0;
        }
        if (!ranged) // a clipping range belongs to its tensor: never inherited from the defaults
            s->range.reset();
    }
    return lq;
}

namespace interop {

PrecisionText exportRules(const LayerTable& t, const QuantConfig& c)
{
    PrecisionText out;
    out.text = "# QuantStudio precision rules: pattern=type, the first rule whose pattern matches the whole\n"
               "# layer name wins; .* sets the defaults. Types: float | wNaM [w:ATTR,...] [a:ATTR,...]\n";
    for (const auto& l : t.layers()) {
        auto lq = c.forLayer(l.name);
        if (lq && *lq == c.defaults)
            continue;
        out.text += escapeRegex(l.name) + "=" + ruleType(lq) + "\n";
    }
    out.text += ".*=" + ruleType(c.defaults) + "\n";
    return out;
}

PrecisionImport importRules(const LayerTable& t, const std::string& text, const std::string& label, const QuantConfig& base)
{
    struct Rule {
        int line = 0;
        std::string pattern, type;
        std::regex re;
        std::optional<LayerQuant> lq;
        int used = 0;
    };
    std::vector<Rule> rules;
    std::istringstream in(text);
    int lineNo = 0;
    for (std::string line; std::getline(in, line);) {
        ++lineNo;
        line = trim(line);
        if (line.empty() || line[0] == '#')
            continue;
        const auto eq = line.find('=');
        const std::string where = str(label, ":", lineNo);
        if (eq == std::string::npos || eq == 0)
            fail(where, ": expected pattern=type, got ", quoted(line));
        Rule r;
        r.line = lineNo;
        r.pattern = trim(line.substr(0, eq));
        r.type = trim(line.substr(eq + 1));
        try {
            r.re = std::regex(r.pattern, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
            fail(where, ": bad regular expression ", quoted(r.pattern), ": ", e.what());
        }
        rules.push_back(std::move(r));
    }
    // The catch-all sets the defaults the other rules start from.
    LayerQuant defaults = base.defaults;
    for (auto& r : rules)
        if (r.pattern == ".*") {
            auto lq = parseRuleType(r.type, base.defaults, str(label, ":", r.line));
            if (!lq)
                fail(label, ":", r.line, ": .*=float would keep every layer in float; name the layers instead");
            defaults = *lq;
            break;
        }
    for (auto& r : rules)
        r.lq = parseRuleType(r.type, defaults, str(label, ":", r.line));

    PrecisionImport out;
    GivenPrecision given;
    for (const auto& l : t.layers())
        for (auto& r : rules)
            if (std::regex_match(l.name, r.re)) {
                given[l.name] = r.lq;
                ++r.used;
                break;
            }
    for (const auto& r : rules)
        if (!r.used)
            out.notes.push_back(str(label, ":", r.line, ": rule ", quoted(r.pattern + "=" + r.type),
                " applies to no layer (no layer name matches it, or an earlier rule took them)"));
    out.config = assembleConfig(base, defaults, given);
    return out;
}

} // namespace interop
} // namespace qs
