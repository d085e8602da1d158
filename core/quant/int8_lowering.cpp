// A calibrated, weight-quantized session lowered to the runtime's real INT8 execution:
// integer weights on the session's grid, int32 biases in accumulator units, and the
// 8-bit quantization of every layer input. The simulated path (compile(true, ...)) is
// the reference it is tested against.
#include "quant/int8_lowering.h"
#include "quant/session.h"

#include "util/error.h"

#include <cmath>
#include <limits>

namespace qs {
namespace {

// Why a layer cannot run as a oneDNN int8 primitive ("" when it can).
std::string int8Obstacle(const Graph& g, const SessionLayer& l)
{
    if (std::string why = int8StructureObstacle(g, g.nodes[std::size_t(g.findNode(l.name))], l.weight); !why.empty())
        return why;
    const QuantSpec& w = l.spec.weight;
    const QuantSpec& a = l.spec.activation;
    if (w.isFloat() || a.isFloat())
        return "float weights or activations (W" + std::to_string(w.bits) + "A" + std::to_string(a.bits) +
               "); exclude the layer to keep it in float";
    if (a.bits != 8)
        return "activations have " + std::to_string(a.bits) + " bits; INT8 execution needs exactly 8";
    if (!w.symmetric)
        return "affine weights (oneDNN int8 kernels take symmetric s8 weights)";
    if (w.granularity == Granularity::Group)
        return "group-wise weight scales (INT8 kernels take one scale per output channel or per tensor)";
    return "";
}

int32_t toInt32(double v)
{
    const double r = std::nearbyint(v);
    return int32_t(std::clamp(r, double(std::numeric_limits<int32_t>::min()), double(std::numeric_limits<int32_t>::max())));
}

} // namespace

std::string int8StructureObstacle(const Graph& g, const Node& n, const std::string& weight)
{
    if (n.opType != "Conv" && n.opType != "Gemm" && n.opType != "MatMul")
        return n.opType + " has no INT8 kernel (Conv, Gemm and MatMul do)";
    if (n.opType == "MatMul" && (g.weightOf(n) != n.input(1) || !g.constant(weight) || g.constant(weight)->shape.size() != 2))
        return "MatMul without a constant 2-D right operand";
    if (n.opType == "Gemm" && n.attrInt("transA", 0) != 0)
        return "Gemm with transA = 1";
    return "";
}

std::string int8AlgorithmObstacle(const std::string& algorithm)
{
    if (algorithm == "spqr")
        return "algorithm \"spqr\" keeps float outliers off the integer grid; INT8 kernels take int8 weights only "
               "(drop --int8 or spqr)";
    if (algorithm == "fp8_e4m3" || algorithm == "fp8_e5m2")
        return "algorithm " + quoted(algorithm) +
            " gives floating-point weights that no int8 grid holds (drop --int8 or " + algorithm + ")";
    return "";
}

std::vector<int32_t> int8Bias(const Node& n, std::span<const float> b, float inputScale,
    const std::vector<float>& scales, int64_t outChannels, const std::string& layer)
{
    if (int64_t(b.size()) != outChannels)
        fail("layer ", quoted(layer), ": bias has ", b.size(), " elements; INT8 needs one per output channel (",
            outChannels, ")");
    // Gemm: Y = alpha A B + beta C; the bias joins the accumulator before alpha.
    const double alpha = n.opType == "Gemm" ? n.attrFloat("alpha", 1.f) : 1.0;
    const double beta = n.opType == "Gemm" ? n.attrFloat("beta", 1.f) : 1.0;
    std::vector<int32_t> out;
    for (std::size_t c = 0; c < b.size(); ++c) {
        const double unit = double(inputScale) * scales[scales.size() == 1 ? 0 : c] * alpha;
        out.push_back(toInt32(beta * b[c] / unit));
    }
    return out;
}

std::string QuantSession::int8Obstacle(const SessionLayer& layer) const
{
    return qs::int8Obstacle(graph_, layer);
}

CompileOptions QuantSession::int8CompileOptions(const InputShapes& inputShape) const
{
    for (const auto& use : options_.config.algorithms)
        if (std::string why = int8AlgorithmObstacle(use.name); !why.empty())
            fail("--int8: ", why);
    CompileOptions co = compileOptions(false, inputShape);
    // Attention MatMuls whose two operands are quantized per tensor at 8 bits (the second
    // symmetric) run as an int8 matmul of the two values (runtime/ops/int8.cpp).
    std::map<std::string, int> quantizedOperands; // MatMul node -> operands quantized
    for (const auto& o : operands_) {
        const std::string where = str("--int8: attention operand ", quoted(o.point.name), ": ");
        if (o.spec.bits != 8 || o.spec.granularity != OperandGranularity::Tensor)
            fail(where, o.spec.bits, "-bit per ", operandGranularityName(o.spec.granularity),
                "; INT8 execution takes 8 bits per tensor (simulate other widths without --int8)");
        if (o.point.input == 1 && !o.spec.symmetric)
            fail(where, "the second operand of an INT8 MatMul must be symmetric (s8, zero point 0)");
        auto q = operandQuant.find(o.point.name);
        if (q == operandQuant.end() || q->second.params.size() != 1)
            fail(where, "not calibrated yet");
        const QParams& p = q->second.params.front();
        co.int8Values[o.point.value] = Int8Value {p.scale, p.zeroPoint, p.qmin < 0};
        ++quantizedOperands[o.point.node];
    }
    for (const auto& [node, count] : quantizedOperands) {
        if (count != 2)
            fail("--int8: attention MatMul ", quoted(node),
                ": INT8 execution needs both of its operands quantized (one is in float)");
        co.int8Layers[node] = Int8Layer {}; // no weight: a product of two INT8 values
    }
    co.initializerOverrides = weightOverrides;
    for (const auto& l : layers_) {
        if (l.spec.weight.isFloat() && l.spec.activation.isFloat())
            continue; // a float layer stays float
        if (l.op == "Gather")
            continue; // an embedding looks up its dequantized rows (weightOverrides): exact, no kernel needed
        if (std::string why = qs::int8Obstacle(graph_, l); !why.empty())
            fail("--int8: layer ", quoted(l.name), " (", l.op, "): ", why);
        auto ap = activationParams.find(l.input);
        auto wo = weightOverrides.find(l.weight);
        auto ws = weightScales.find(l.weight);
        if (ap == activationParams.end() || wo == weightOverrides.end() || ws == weightScales.end())
            fail("--int8: layer ", quoted(l.name), " is not calibrated and quantized yet");
        const QParams& in = ap->second;
        Int8Value v;
        v.scale = in.scale;
        v.zeroPoint = in.zeroPoint;
        v.isSigned = in.qmin < 0;
        co.int8Values[l.input] = v;

        const Tensor& wq = wo->second;
        const std::vector<float>& scales = ws->second;
        const Tensor* wf = graph_.constant(l.weight);
        WeightQuantization plan = planWeightQuantization(wf->toFloat(), wf->shape, l.outAxis, l.inAxis, l.spec.weight);
        if (plan.params.size() != scales.size())
            fail("--int8: layer ", quoted(l.name), ": ", scales.size(), " weight scales for ", plan.params.size(),
                 " blocks");
        Int8Layer L;
        L.weightScales = scales;
        L.weight.resize(std::size_t(wq.numel()));
        auto q = wq.data<float>();
        // The INT8 weight must be the simulated one exactly: an integer multiple of its
        // block's scale within int8 (an algorithm leaving values off that grid would
        // otherwise be re-rounded into a different model).
        for (std::size_t e = 0; e < L.weight.size(); ++e) {
            const float scale = scales[std::size_t(plan.blockOf[e])];
            const double k = std::nearbyint(double(q[e]) / scale);
            if (k < -128 || k > 127)
                fail("--int8: layer ", quoted(l.name), ": weight element ", e, " is ", k,
                     " steps from zero, outside int8");
            if (float(k) * scale != q[e])
                fail("--int8: layer ", quoted(l.name), ": weight element ", e, " (", q[e],
                    ") is not a multiple of its scale ", scale, "; it has no exact int8 value");
            L.weight[e] = int8_t(k);
        }
        const Node& n = graph_.nodes[std::size_t(graph_.findNode(l.name))];
        if (!l.bias.empty()) {
            auto bo = weightOverrides.find(l.bias);
            const Tensor& bt = bo != weightOverrides.end() ? bo->second : *graph_.constant(l.bias);
            const std::vector<float> b = bt.toFloat();
            try {
                L.bias = int8Bias(n, b, in.scale, scales, wf->shape[std::size_t(l.outAxis)], l.name);
            } catch (const Error& e) {
                fail("--int8: ", e.what());
            }
        }
        co.int8Layers[l.name] = std::move(L);
    }
    return co;
}

std::unique_ptr<Plan> QuantSession::compileInt8(const InputShapes& inputShape) const
{
    return compilePlan(graph_, int8CompileOptions(inputShape));
}

} // namespace qs
