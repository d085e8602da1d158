// TensorRT trtexec precision flags: --layerPrecisions=name:type,... and
// --layerOutputTypes=name:type,... (with --precisionConstraints=obey), layer names
// being the ONNX node names TensorRT's parser keeps. int8 is W8A8 with symmetric
// activations (TensorRT's only int8); fp16/bf16 map to 16-bit float, fp32 to a layer
// kept in float. "*" names every layer not named otherwise.
#include "interop/precision_detail.h"

#include "util/error.h"

#include <cctype>
#include <cstring>
#include <set>
#include <sstream>

namespace qs::interop {
namespace {

// trtexec's name for a layer's precision; throws naming the layer when it has none.
std::string trtType(const std::string& layer, const std::optional<LayerQuant>& lq, std::vector<std::string>& notes)
{
    if (!lq)
        return "fp32";
    const QuantSpec &w = lq->weight, &a = lq->activation;
    if (w.isFloat() && a.isFloat())
        return w.bits == 16 && a.bits == 16 ? "fp16" : "fp32";
    if (w.bits == 8 && a.bits == 8) {
        if (!a.symmetric || !w.symmetric)
            notes.push_back(str("layer ", quoted(layer),
                ": TensorRT int8 is symmetric; its affine ", !w.symmetric ? "weights" : "activations",
                " become symmetric"));
        return "int8";
    }
    fail("layer ", quoted(layer), ": W", w.bits, "A", a.bits,
        " has no TensorRT layer precision (int8 = W8A8, fp16, fp32); keep it at 8 bits or in float");
}

std::string shellQuoted(const std::string& token)
{
    for (char c : token)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("_./:,=+-*").find(c) != std::string_view::npos))
            return "'" + token + "'";
    return token;
}

// Whitespace-separated tokens; quotes group, backslash-newline continues a line.
std::vector<std::string> tokens(const std::string& text, const std::string& label)
{
    std::vector<std::string> out;
    std::string cur;
    bool have = false;
    char quote = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quote) {
            if (c == quote)
                quote = 0;
            else
                cur += c;
        } else if (c == '\'' || c == '"') {
            quote = c;
            have = true;
        } else if (c == '\\' && i + 1 < text.size() && (text[i + 1] == '\n' || text[i + 1] == '\r')) {
            continue;
        } else if (std::isspace(static_cast<unsigned char>(c))) {
            if (have)
                out.push_back(cur);
            cur.clear();
            have = false;
        } else {
            cur += c;
            have = true;
        }
    }
    if (quote)
        fail(label, ": unterminated ", quote, " quote");
    if (have)
        out.push_back(cur);
    return out;
}

} // namespace

PrecisionText exportTrt(const LayerTable& t, const QuantConfig& c)
{
    PrecisionText out;
    std::string prec, outTypes;
    for (const auto& l : t.layers()) {
        if (l.name.find(',') != std::string::npos)
            fail("layer ", quoted(l.name), ": trtexec cannot name a layer containing ','");
        const std::string type = trtType(l.name, c.forLayer(l.name), out.notes);
        prec += (prec.empty() ? "" : ",") + l.name + ":" + type;
        if (type != "int8")
            outTypes += (outTypes.empty() ? "" : ",") + l.name + ":" + type;
    }
    out.text = "--precisionConstraints=obey \\\n" + shellQuoted("--layerPrecisions=" + prec);
    if (!outTypes.empty())
        out.text += " \\\n" + shellQuoted("--layerOutputTypes=" + outTypes);
    out.text += "\n";
    return out;
}

PrecisionImport importTrt(const LayerTable& t, const std::string& text, const std::string& label, const QuantConfig& base)
{
    PrecisionImport out;
    std::map<std::string, std::string> precision, output; // layer ("*" too) -> type
    bool any = false;
    for (const auto& tok : tokens(text, label)) {
        std::map<std::string, std::string>* into = nullptr;
        std::string flag;
        for (const char* f : {"--layerPrecisions=", "--layerOutputTypes="})
            if (tok.rfind(f, 0) == 0) {
                flag = std::string(f, std::strlen(f) - 1);
                into = flag == "--layerPrecisions" ? &precision : &output;
            }
        if (!into) {
            if (tok.rfind("--", 0) == 0 || tok == "trtexec")
                continue; // other trtexec options
            fail(label, ": unexpected ", quoted(tok), " (expected trtexec options such as --layerPrecisions=name:type)");
        }
        any = true;
        std::istringstream entries(tok.substr(flag.size() + 1));
        for (std::string e; std::getline(entries, e, ',');) {
            const auto colon = e.rfind(':');
            if (colon == std::string::npos || colon == 0 || colon + 1 == e.size())
                fail(label, ": ", flag, " entry ", quoted(e), ": expected layerName:type");
            const std::string name = e.substr(0, colon), type = e.substr(colon + 1);
            if (name != "*" && !t.byName(name))
                fail(label, ": ", flag, " entry ", quoted(e), ": ", t.unknownLayer(name));
            static const std::set<std::string> known = {"fp32", "fp16", "bf16", "int8"};
            if (!known.count(type))
                fail(label, ": ", flag, " entry ", quoted(e), ": type ", quoted(type),
                    " is not one QuantStudio can hold (fp32, fp16, bf16, int8)");
            if (into->count(name) && into->at(name) != type)
                fail(label, ": ", flag, " names layer ", quoted(name), " twice (", into->at(name), " and ", type, ")");
            (*into)[name] = type;
        }
    }
    if (!any)
        fail(label, ": no --layerPrecisions or --layerOutputTypes found");

    auto typeOf = [&](const std::string& layer) -> std::string {
        for (const auto* m : {&precision, &output})
            for (const std::string& key : {layer, std::string("*")})
                if (auto it = m->find(key); it != m->end() && (m == &precision || it->second != "int8"))
                    return it->second;
        return "";
    };
    GivenPrecision given;
    bool symNote = false;
    for (const auto& l : t.layers()) {
        const std::string type = typeOf(l.name);
        if (type.empty())
            continue;
        if (type == "fp32") {
            given[l.name] = std::nullopt;
            continue;
        }
        LayerQuant lq = base.forLayer(l.name).value_or(base.defaults);
        if (type == "int8") {
            symNote = symNote || !lq.activation.symmetric;
            lq.weight.bits = lq.activation.bits = 8;
            lq.weight.symmetric = lq.activation.symmetric = true;
            if (lq.weight.granularity == Granularity::Group)
                lq.weight.granularity = Granularity::Channel;
        } else {
            lq.weight.bits = lq.activation.bits = 16;
            if (type == "bf16")
                out.notes.push_back(str("layer ", quoted(l.name), ": bf16 is held as 16-bit float"));
        }
        given[l.name] = lq;
    }
    if (symNote)
        out.notes.push_back("TensorRT int8 is symmetric: int8 layers get symmetric activations");
    out.config = assembleConfig(base, base.defaults, given);
    return out;
}

} // namespace qs::interop
