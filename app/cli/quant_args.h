// The base quantization options the analysis commands share: --granularity for the
// weights and --calib for the activations of every layer they quantize.
#pragma once

#include "cli/args.h"

#include "quant/spec.h"
#include "util/error.h"

#include <map>
#include <set>
#include <string>

namespace qs::cli {

// The value of a bit-width option (which must be given): 2..8, or 16 and 32 for float.
inline int bitsOption(const Args& args, const std::string& option)
{
    const int bits = int(parseInteger(*args.value(option), "--" + option, 2, 32));
    if (bits > 8 && bits != 16 && bits != 32)
        fail("--", option, ": ", bits, " is not 2..8, 16 or 32");
    return bits;
}

// Attention operands (quant/attention.h): --attn-bits N (Q, K, V and P), --kv-bits N
// (K and V, over --attn-bits), --attn-granularity G or ROLE=G,... (roles q, k, v, p;
// tensor, head, token, channel), --kivi (K per channel, V per token, as KIVI),
// --attn-calib C (the calibrator of the static granularities).
inline const std::set<std::string>& attentionOptionNames()
{
    static const std::set<std::string> names = {"attn-bits", "kv-bits", "attn-granularity", "attn-calib"};
    return names;
}

inline void parseAttentionArgs(const Args& args, QuantConfig& c)
{
    AttentionQuant& a = c.attention;
    const OperandRole all[] = {OperandRole::Q, OperandRole::K, OperandRole::V, OperandRole::P};
    if (args.value("attn-bits"))
        for (auto r : all)
            a.role(r).bits = bitsOption(args, "attn-bits");
    if (args.value("kv-bits"))
        for (auto r : {OperandRole::K, OperandRole::V})
            a.role(r).bits = bitsOption(args, "kv-bits");
    if (args.flag("kivi")) {
        a.k.granularity = OperandGranularity::Channel;
        a.v.granularity = OperandGranularity::Token;
    }
    if (auto g = args.value("attn-granularity")) {
        std::string rest = *g;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            const std::string item = rest.substr(0, comma);
            rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
            const auto eq = item.find('=');
            if (eq == std::string::npos) {
                for (auto r : all)
                    a.role(r).granularity = parseOperandGranularity(item, "--attn-granularity");
                continue;
            }
            const std::string role = item.substr(0, eq);
            const std::map<std::string, OperandRole> roles = {
                {"q", OperandRole::Q}, {"k", OperandRole::K}, {"v", OperandRole::V}, {"p", OperandRole::P}};
            auto it = roles.find(role);
            if (it == roles.end())
                fail("--attn-granularity: ", quoted(role), " is not a role (q, k, v or p)");
            a.role(it->second).granularity = parseOperandGranularity(item.substr(eq + 1), "--attn-granularity");
        }
    }
    if (auto cal = args.value("attn-calib"))
        for (auto r : all) {
            QuantSpec s;
            parseCalibrator(*cal, s);
            a.role(r).calibrator = s.calibrator;
            a.role(r).calibratorParam = s.calibratorParam;
        }
}

// --wbits N and --abits N: the default layer's weight and activation bits (2..8, or 16
// and 32 for float).
inline void parseBitOptions(const Args& args, QuantConfig& c)
{
    for (const char* option : {"wbits", "abits"})
        if (args.value(option))
            (std::string(option) == "wbits" ? c.defaults.weight : c.defaults.activation).bits = bitsOption(args, option);
}

inline void parseBaseQuant(const Args& args, QuantConfig& base)
{
    if (auto g = args.value("granularity"))
        parseGranularity(*g, base.defaults.weight);
    if (auto c = args.value("calib"))
        parseCalibrator(*c, base.defaults.activation);
}

} // namespace qs::cli
