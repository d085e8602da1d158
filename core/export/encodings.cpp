// AIMET-format encodings of a calibrated, weight-quantized session.
#include "export/encodings.h"

namespace qs {
namespace {

nlohmann::json encoding(const QParams& q, int bits, bool symmetric)
{
    const int32_t offset = q.qmin - q.zeroPoint;
    return {{"bitwidth", bits}, {"dtype", "int"}, {"is_symmetric", symmetric ? "True" : "False"},
        {"min", double(float(offset) * q.scale)}, {"max", double(float(offset + q.qmax - q.qmin) * q.scale)},
        {"offset", offset}, {"scale", double(q.scale)}};
}

} // namespace

nlohmann::json encodingsJson(const QuantSession& session)
{
    nlohmann::json act = nlohmann::json::object(), param = nlohmann::json::object();
    nlohmann::json excluded = nlohmann::json::array();
    for (const auto& l : session.layers()) {
        if (auto it = session.activationParams.find(l.input);
            it != session.activationParams.end() && !act.contains(l.input))
            act[l.input] =
                nlohmann::json::array({encoding(it->second, l.spec.activation.bits, l.spec.activation.symmetric)});
        if (l.spec.weight.isFloat())
            continue;
        const Tensor* w = session.graph().constant(l.weight);
        const WeightQuantization plan =
            planWeightQuantization(w->toFloat(), w->shape, l.outAxis, l.inAxis, l.spec.weight);
        nlohmann::json list = nlohmann::json::array();
        for (const auto& q : plan.params)
            list.push_back(encoding(q, l.spec.weight.bits, l.spec.weight.symmetric));
        param[l.weight] = std::move(list);
    }
    for (const auto& name : session.options().config.excluded)
        excluded.push_back(name);
    return {{"version", "0.6.1"}, {"activation_encodings", act}, {"param_encodings", param},
        {"excluded_layers", excluded},
        {"quantizer_args",
            {{"activation_bitwidth", session.options().config.defaults.activation.bits},
                {"param_bitwidth", session.options().config.defaults.weight.bits}, {"dtype", "int"},
                {"per_channel_quantization",
                    session.options().config.defaults.weight.granularity != Granularity::Tensor},
                {"quant_scheme", session.options().config.defaults.activation.calibrator},
                {"activation_symmetric", session.options().config.defaults.activation.symmetric},
                {"param_symmetric", session.options().config.defaults.weight.symmetric}}}};
}

} // namespace qs
