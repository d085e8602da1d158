// AIMET-format encodings of a calibrated, weight-quantized session.
#include "export/encodings.h"

#include <set>
#include <string>
#include <vector>

namespace qs {
namespace {

// One quantized tensor: its grid(s) and how they tile it.
struct TensorEncoding {
    std::string name;
    bool param = false;
    const QuantSpec* spec = nullptr;
    std::vector<QParams> grids;
};

std::vector<TensorEncoding> collect(const QuantSession& session)
{
    std::vector<TensorEncoding> out;
    std::set<std::string> seen;
    for (const auto& l : session.layers()) {
        if (auto it = session.activationParams.find(l.input);
            it != session.activationParams.end() && seen.insert(l.input).second)
            out.push_back({l.input, false, &l.spec.activation, {it->second}});
        if (l.spec.weight.isFloat() || !seen.insert(l.weight).second)
            continue;
        out.push_back({l.weight, true, &l.spec.weight, session.weightPlan(l).params});
    }
    return out;
}

nlohmann::json legacyEncoding(const QParams& q, int bits, bool symmetric)
{
    const int32_t offset = q.qmin - q.zeroPoint;
    return {{"bitwidth", bits}, {"dtype", "int"}, {"is_symmetric", symmetric ? "True" : "False"},
        {"min", double(float(offset) * q.scale)}, {"max", double(float(offset + q.qmax - q.qmin) * q.scale)},
        {"offset", offset}, {"scale", double(q.scale)}};
}

nlohmann::json v1Encoding(const TensorEncoding& t)
{
    nlohmann::json scale = nlohmann::json::array(), offset = nlohmann::json::array();
    for (const auto& q : t.grids) {
        scale.push_back(double(q.scale));
        offset.push_back(q.qmin - q.zeroPoint);
    }
    const Granularity g = t.param ? t.spec->granularity : Granularity::Tensor;
    nlohmann::json e = {{"name", t.name}, {"dtype", "INT"}, {"bw", t.spec->bits}, {"is_sym", t.spec->symmetric},
        {"scale", scale}, {"offset", offset}};
    if (g == Granularity::Group && t.grids.size() > 1) {
        e["enc_type"] = "PER_BLOCK";
        e["block_size"] = t.spec->groupSize;
    } else {
        e["enc_type"] = g == Granularity::Channel && t.grids.size() > 1 ? "PER_CHANNEL" : "PER_TENSOR";
    }
    return e;
}

} // namespace

nlohmann::json encodingsJson(const QuantSession& session, AimetVersion version)
{
    const bool v1 = version == AimetVersion::V1_0_0;
    nlohmann::json act = v1 ? nlohmann::json::array() : nlohmann::json::object();
    nlohmann::json param = act;
    for (const auto& t : collect(session)) {
        nlohmann::json& into = t.param ? param : act;
        if (v1) {
            into.push_back(v1Encoding(t));
            continue;
        }
        nlohmann::json list = nlohmann::json::array();
        for (const auto& q : t.grids)
            list.push_back(legacyEncoding(q, t.spec->bits, t.spec->symmetric));
        into[t.name] = std::move(list);
    }
    nlohmann::json excluded = nlohmann::json::array();
    for (const auto& name : session.options().config.excluded)
        excluded.push_back(name);
    const QuantConfig& c = session.options().config;
    return {{"version", v1 ? "1.0.0" : "0.6.1"}, {"activation_encodings", act}, {"param_encodings", param},
        {"excluded_layers", excluded},
        {"quantizer_args",
            {{"activation_bitwidth", c.defaults.activation.bits}, {"param_bitwidth", c.defaults.weight.bits},
                {"dtype", "int"}, {"per_channel_quantization", c.defaults.weight.granularity != Granularity::Tensor},
                {"quant_scheme", c.defaults.activation.calibrator},
                {"activation_symmetric", c.defaults.activation.symmetric},
                {"param_symmetric", c.defaults.weight.symmetric}}}};
}

} // namespace qs
