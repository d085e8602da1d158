// Elementwise float math without a oneDNN eltwise algorithm, in plain C++: Sin, Cos,
// Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Reciprocal, Floor, Ceil,
// Round (half to even), Sign, Softplus, Softsign; IsNaN and IsInf (-> bool); Neg, Abs
// and Sign of integers (shape arithmetic; float Neg/Abs are oneDNN eltwise). Rotary
// position embeddings (Sin/Cos) and RMSNorm variants (Reciprocal) use them.
#include "runtime/ops/ops.h"
#include "runtime/ops/plain.h"

#include <cmath>
#include <map>

namespace qs::rt {
namespace {

using Fn = float (*)(float);

const std::map<std::string, Fn>& functions()
{
    static const std::map<std::string, Fn> f {
        {"Sin", [](float x) { return std::sin(x); }},
        {"Cos", [](float x) { return std::cos(x); }},
        {"Tan", [](float x) { return std::tan(x); }},
        {"Asin", [](float x) { return std::asin(x); }},
        {"Acos", [](float x) { return std::acos(x); }},
        {"Atan", [](float x) { return std::atan(x); }},
        {"Sinh", [](float x) { return std::sinh(x); }},
        {"Cosh", [](float x) { return std::cosh(x); }},
        {"Asinh", [](float x) { return std::asinh(x); }},
        {"Acosh", [](float x) { return std::acosh(x); }},
        {"Atanh", [](float x) { return std::atanh(x); }},
        {"Reciprocal", [](float x) { return 1.f / x; }},
        {"Floor", [](float x) { return std::floor(x); }},
        {"Ceil", [](float x) { return std::ceil(x); }},
        {"Round", [](float x) { return std::nearbyint(x); }}, // default rounding mode: half to even
        {"Sign", [](float x) { return x > 0 ? 1.f : x < 0 ? -1.f : x; }},
        {"Softplus", [](float x) { return x > 20.f ? x : std::log1p(std::exp(x)); }},
        {"Softsign", [](float x) { return x / (1.f + std::fabs(x)); }},
    };
    return f;
}

bool buildUnaryMath(NodeContext& c)
{
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const Fn f = functions().at(c.node.opType);
    const int src = c.plainInput(0);
    const int dst = c.output(0, DType::Float, c.shape(0));
    c.addFn({src}, {dst}, [=](Program& p) {
        const float* x = p.slot(src).as<float>();
        float* y = p.slot(dst).as<float>();
        for (int64_t i = 0, n = p.slot(dst).numel(); i < n; ++i)
            y[i] = f(x[i]);
    });
    return true;
}

bool buildIsNanInf(NodeContext& c)
{
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const bool nan = c.node.opType == "IsNaN";
    const bool pos = c.node.attrInt("detect_positive", 1) != 0, neg = c.node.attrInt("detect_negative", 1) != 0;
    const int src = c.plainInput(0);
    const int dst = c.output(0, DType::Bool, c.shape(0));
    c.addFn({src}, {dst}, [=](Program& p) {
        const float* x = p.slot(src).as<float>();
        bool* y = p.slot(dst).as<bool>();
        for (int64_t i = 0, n = p.slot(dst).numel(); i < n; ++i)
            y[i] = nan ? std::isnan(x[i]) : std::isinf(x[i]) && (x[i] > 0 ? pos : neg);
    });
    return true;
}

// Integer Neg/Abs/Sign; declines float input (left to the eltwise builder).
bool buildIntegerUnary(NodeContext& c)
{
    const DType t = c.dtype(0);
    if (t == DType::Float || t == DType::Bool || isFloating(t) || !dispatchType(t, [](auto) {}))
        return false;
    const std::string op = c.node.opType;
    const int src = c.plainInput(0);
    const int dst = c.output(0, t, c.shape(0));
    c.addFn({src}, {dst}, [=](Program& p) {
        dispatchType(t, [&](auto tag) {
            using T = decltype(tag);
            if constexpr (!std::is_same_v<T, bool>) {
                const T* x = p.slot(src).as<T>();
                T* y = p.slot(dst).as<T>();
                for (int64_t i = 0, n = p.slot(dst).numel(); i < n; ++i)
                    y[i] = op == "Neg" ? T(-x[i]) : op == "Abs" ? (x[i] < 0 ? T(-x[i]) : x[i])
                                                                : T(x[i] > 0 ? 1 : x[i] < 0 ? -1 : 0);
            }
        });
    });
    return true;
}

const bool unaryMathRegistered = [] {
    for (const char* op : {"Neg", "Abs", "Sign"})
        registerOp(op, buildIntegerUnary, 5);
    for (const auto& [op, f] : functions())
        registerOp(op, buildUnaryMath);
    registerOp("IsNaN", buildIsNanInf);
    registerOp("IsInf", buildIsNanInf);
    return true;
}();

} // namespace
} // namespace qs::rt
