// FP8 (E4M3, E5M2) and FP4 (E2M1) as simulated weight formats, an AfterWeights
// algorithm rather than a new number format in QuantSpec: it re-quantizes each layer's
// weight into the format's grid with one scale per block of the layer's spec
// (tensor / channel / group), scale = max|w| / maxValue, so the largest magnitude of a
// block maps to the format's largest value. The layer spec's bits must equal the
// format's bits so the stored size (elements x bits + 32-bit scales) is right.
// Activations stay as the spec says (integer or float). FP4 weights lower to INT8
// exactly (weightScales: half the block scale); FP8 ones do not (no weightScales).
#include "quant/algorithms/fp_formats.h"

#include "quant/session.h"
#include "util/error.h"

#include <cmath>

namespace qs::algo {

const FpFormat& fpFormat(const std::string& name)
{
    static const FpFormat formats[] = {
        {"fp8_e4m3", 4, 3, 7, 448.f}, {"fp8_e5m2", 5, 2, 15, 57344.f}, {"fp4_e2m1", 2, 1, 1, 6.f}};
    for (const auto& f : formats)
        if (f.name == name)
            return f;
    fail("unknown floating-point format ", quoted(name), " (known: fp8_e4m3, fp8_e5m2, fp4_e2m1)");
}

float roundToFp(float x, const FpFormat& f)
{
    if (std::isnan(x))
        return x;
    const float a = std::abs(x);
    if (a == 0)
        return x;
    float r = f.maxValue;
    if (a < f.maxValue) {
        // Spacing of representable values around a: 2^(e - mantissaBits), with the
        // exponent floored at the subnormal one.
        const int e = std::max(int(std::floor(std::log2(a))), 1 - f.bias);
        const float step = std::ldexp(1.f, e - f.mantissaBits);
        r = std::min(std::nearbyint(a / step) * step, f.maxValue);
    }
    return std::copysign(r, x);
}

namespace {

void requantize(const FpFormat& f, QuantSession& s)
{
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& l : s.layers()) {
        if (l.spec.weight.isFloat())
            continue;
        if (l.spec.weight.bits != f.bits())
            fail(f.name, ": layer ", quoted(l.name), " has ", l.spec.weight.bits,
                "-bit weights in its spec, the format ", f.bits(), " bits (set --wbits ", f.bits(),
                " so the stored size is counted right)");
        const Tensor* w = s.graph().constant(l.weight);
        std::vector<float> v = w->toFloat();
        WeightQuantization plan = planWeightQuantization(v, w->shape, l.outAxis, l.inAxis, l.spec.weight);
        std::vector<float> absMax(plan.params.size(), 0.f);
        for (std::size_t e = 0; e < v.size(); ++e)
            absMax[std::size_t(plan.blockOf[e])] = std::max(absMax[std::size_t(plan.blockOf[e])], std::abs(v[e]));
        double sig = 0, noise = 0;
        for (std::size_t e = 0; e < v.size(); ++e) {
            const float m = absMax[std::size_t(plan.blockOf[e])];
            const float scale = m > 0 ? m / f.maxValue : 1.f;
            const float q = roundToFp(v[e] / scale, f) * scale;
            sig += double(v[e]) * v[e];
            noise += (double(v[e]) - q) * (double(v[e]) - q);
            v[e] = q;
        }
        Tensor t = Tensor::fromVector(w->shape, v);
        t.name = l.weight;
        s.weightOverrides[l.weight] = std::move(t);
        // The grid the weights are multiples of: FP4 E2M1 values are multiples of half
        // the block scale (at most 12 of them, so INT8 holds them exactly); FP8 values
        // have no common step, so they have no integer grid at all.
        if (f.mantissaBits == 1 && f.maxValue == 6.f) {
            std::vector<float>& scales = s.weightScales[l.weight];
            scales.clear();
            for (float m : absMax)
                scales.push_back((m > 0 ? m / f.maxValue : 1.f) / 2);
        } else {
            s.weightScales.erase(l.weight);
        }
        layers.push_back({{"layer", l.name}, {"weight_sqnr_db", noise > 0 ? 10 * std::log10(sig / noise) : 999.0}});
    }
    s.notes[f.name] = {
        {"params", {{"format", f.name}, {"scale", "per block of the layer spec: max|w| / max"}}}, {"layers", layers}};
}

bool registerFormat(const char* name, const char* summary)
{
    return registerAlgorithm({name, summary, AlgorithmInfo::Stage::AfterWeights,
        [name](QuantSession& s, const Dataset&, const nlohmann::json&, Progress&, const CancelToken&) {
            requantize(fpFormat(name), s);
        }});
}

const bool fpFormatsRegistered = registerFormat("fp8_e4m3", "weights in simulated FP8 E4M3 (max 448)") &&
    registerFormat("fp8_e5m2", "weights in simulated FP8 E5M2 (max 57344)") &&
    registerFormat("fp4_e2m1", "weights in simulated FP4 E2M1 (max 6)");

} // namespace
} // namespace qs::algo
