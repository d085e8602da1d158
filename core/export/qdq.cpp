// QuantSession -> QDQ Graph. Activation QDQ sits on the value the simulation
// fake-quantizes, and every consumer of that value reads the dequantized copy, as
// every consumer sees the transformed value in the simulated Plan.
#include "export/qdq.h"

#include "export/opset_upgrade.h"
#include "graph/node_builder.h"
#include "graph/onnx_export.h"
#include "util/error.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace qs {
namespace {

constexpr int64_t kMinOpset = 13; // DequantizeLinear with axis

Tensor named(Tensor t, const std::string& name)
{
    t.name = name;
    return t;
}

// Integer tensor of the storage type for a grid: int8 when the grid has negatives.
Tensor intTensor(bool isSigned, const Shape& shape, const std::vector<int32_t>& values)
{
    if (isSigned) {
        std::vector<int8_t> v(values.begin(), values.end());
        return Tensor::fromVector(shape, v);
    }
    std::vector<uint8_t> v(values.begin(), values.end());
    return Tensor::fromVector(shape, v);
}

bool gridIsSigned(const QParams& q)
{
    return q.qmin < 0;
}

// The storage type's range differs from the grid's: the simulation clamps to the grid.
bool needsClip(const QParams& q)
{
    return gridIsSigned(q) ? (q.qmin != -128 || q.qmax != 127) : (q.qmin != 0 || q.qmax != 255);
}

struct Builder {
    const QuantSession& s;
    Graph g;
    std::vector<Node> head;                         // weight DequantizeLinear nodes and graph-input QDQ
    std::map<std::string, std::vector<Node>> after; // QDQ nodes emitted after a value's producer
    std::map<std::string, std::string> renamed;     // activation -> its dequantized copy
    QdqModel out;

    void addInit(Tensor t) { g.initializers[t.name] = std::move(t); }

    void quantizeActivation(const std::string& value, const QParams& q) { quantizeValue(value, {q}, -1, 0); }

    // QuantizeLinear/DequantizeLinear on `value`: per tensor (axis < 0, one QParams) or
    // per axis (one QParams per index of `axis` of a rank-`rank` value).
    void quantizeValue(const std::string& value, const std::vector<QParams>& qs, int axis, int rank)
    {
        const std::string base = value + "_qs";
        const bool sgn = gridIsSigned(qs.front());
        const Shape paramShape = axis < 0 ? Shape {} : Shape {int64_t(qs.size())};
        std::vector<float> scales, lo, hi;
        std::vector<int32_t> zps;
        bool clip = false;
        for (const QParams& q : qs) {
            scales.push_back(q.scale);
            zps.push_back(q.zeroPoint);
            lo.push_back(float(q.qmin - q.zeroPoint) * q.scale);
            hi.push_back(float(q.qmax - q.zeroPoint) * q.scale);
            clip = clip || needsClip(q);
        }
        addInit(named(Tensor::fromVector(paramShape, scales), base + ".scale"));
        addInit(named(intTensor(sgn, paramShape, zps), base + ".zero_point"));
        std::vector<Node>& nodes = g.producerOf(value) >= 0 ? after[value] : head;
        Node quant = makeNode(
            "QuantizeLinear", base + "/QuantizeLinear", {value, base + ".scale", base + ".zero_point"}, {base + "_q"});
        Node dequant = makeNode("DequantizeLinear", base + "/DequantizeLinear",
            {base + "_q", base + ".scale", base + ".zero_point"}, {base + "_dq"});
        if (axis >= 0) {
            quant.attrs["axis"] = intAttr(axis);
            dequant.attrs["axis"] = intAttr(axis);
        }
        nodes.push_back(std::move(quant));
        nodes.push_back(std::move(dequant));
        if (!clip) {
            renamed[value] = base + "_dq";
            return;
        }
        // The stored type is wider than the grid: clamp the dequantized value to the
        // grid's ends, which are grid points (the same as clamping the integer). Clip
        // takes scalars: per axis, Max/Min against bounds shaped to broadcast on `axis`.
        if (axis < 0) {
            addInit(named(Tensor::fromVector(Shape {}, lo), base + ".clip_min"));
            addInit(named(Tensor::fromVector(Shape {}, hi), base + ".clip_max"));
            nodes.push_back(makeNode("Clip", base + "/Clip", {base + "_dq", base + ".clip_min", base + ".clip_max"},
                {base + "_dq_clipped"}));
        } else {
            Shape bound(std::size_t(rank), 1);
            bound[std::size_t(axis)] = int64_t(qs.size());
            addInit(named(Tensor::fromVector(bound, lo), base + ".clip_min"));
            addInit(named(Tensor::fromVector(bound, hi), base + ".clip_max"));
            nodes.push_back(
                makeNode("Max", base + "/ClipMin", {base + "_dq", base + ".clip_min"}, {base + "_dq_above"}));
            nodes.push_back(
                makeNode("Min", base + "/ClipMax", {base + "_dq_above", base + ".clip_max"}, {base + "_dq_clipped"}));
        }
        renamed[value] = base + "_dq_clipped";
    }

    // An attention operand: QDQ on the MatMul input, per tensor, head or channel (the
    // axis ONNX's per-axis QuantizeLinear takes); per token is dynamic and has no QDQ form.
    void quantizeOperand(const OperandQuant& q)
    {
        if (q.spec.granularity == OperandGranularity::Token)
            fail("attention operand ", quoted(q.point.name),
                ": per-token quantization chooses its ranges at run "
                "time; QDQ ONNX has static scales only (export it per tensor, head or channel)");
        if (renamed.count(q.point.value))
            fail("attention operand ", quoted(q.point.name), ": its value ", quoted(q.point.value),
                " is also a quantized layer input; QDQ export quantizes a value once");
        int axis = -1;
        if (q.spec.granularity != OperandGranularity::Tensor) {
            Shape shape(std::size_t(q.rank), 1);
            axis = staticSliceAxis(q.point, q.spec.granularity, shape);
        }
        quantizeValue(q.point.value, q.params, axis, q.rank);
    }

    void quantizeWeight(const SessionLayer& l, QdqLayerInfo& info)
    {
        const Tensor* w = s.graph().constant(l.weight);
        const std::vector<float> values = w->toFloat();
        const WeightQuantization plan = s.weightPlan(l);
        auto ov = s.weightOverrides.find(l.weight);
        if (ov == s.weightOverrides.end())
            fail("layer ", quoted(l.name), ": weight ", quoted(l.weight), " was not quantized (call quantizeWeights)");
        auto dq = ov->second.data<float>();
        std::vector<int32_t> codes(values.size());
        for (std::size_t e = 0; e < values.size(); ++e) {
            const QParams& q = plan.params[std::size_t(plan.blockOf[e])];
            const float c = std::nearbyint(dq[e] / q.scale) + float(q.zeroPoint);
            if (c < float(q.qmin) || c > float(q.qmax) || (c - float(q.zeroPoint)) * q.scale != dq[e])
                fail("layer ", quoted(l.name), ": weight ", quoted(l.weight), " element ", e,
                    " is not on its quantization grid");
            codes[e] = int32_t(c);
        }
        const bool sgn = gridIsSigned(plan.params.front());
        const int rank = int(w->shape.size());
        const int64_t blocks = plan.blocks();
        std::vector<float> scales;
        std::vector<int32_t> zps;
        for (const auto& q : plan.params) {
            scales.push_back(q.scale);
            zps.push_back(q.zeroPoint);
        }
        const std::string base = l.weight + "_qs";
        Shape storedShape = w->shape;
        int64_t axis = -1;
        bool reshape = false;
        if (l.spec.weight.granularity == Granularity::Channel && rank > 0) {
            axis = (l.outAxis % rank + rank) % rank;
        } else if (l.spec.weight.granularity == Granularity::Group && blocks > 1) {
            // Representable at opset 13 when every block is one contiguous run of equal
            // length in block order: store [blocks, len] and dequantize along axis 0.
            const int64_t len = int64_t(values.size()) / blocks;
            bool contiguous = len * blocks == int64_t(values.size());
            for (std::size_t e = 0; contiguous && e < values.size(); ++e)
                contiguous = plan.blockOf[e] == int32_t(int64_t(e) / len);
            if (!contiguous)
                fail("layer ", quoted(l.name), ": group granularity on weight ", quoted(l.weight), " of shape ",
                    shapeString(w->shape),
                    " has non-contiguous blocks; QDQ at opset 13 cannot express it (use per-channel)");
            storedShape = Shape {blocks, len};
            axis = 0;
            reshape = true;
        }
        addInit(named(intTensor(sgn, storedShape, codes), base + ".quantized"));
        Shape paramShape = axis >= 0 ? Shape {blocks} : Shape {};
        addInit(named(Tensor::fromVector(paramShape, scales), base + ".scale"));
        addInit(named(intTensor(sgn, paramShape, zps), base + ".zero_point"));
        const std::string dqOut = reshape ? base + "_blocks" : l.weight;
        Node n = makeNode("DequantizeLinear", base + "/DequantizeLinear",
            {base + ".quantized", base + ".scale", base + ".zero_point"}, {dqOut});
        if (axis >= 0)
            n.attrs["axis"] = intAttr(axis);
        head.push_back(n);
        if (reshape) {
            addInit(named(Tensor::fromVector(Shape {int64_t(rank)}, std::vector<int64_t>(w->shape)), base + ".shape"));
            head.push_back(makeNode("Reshape", base + "/Reshape", {dqOut, base + ".shape"}, {l.weight}));
        }
        g.initializers.erase(l.weight);
        std::erase_if(g.inputs, [&](const ValueInfo& v) { return v.name == l.weight; });
        info.blocks = blocks;
        info.trueBits = s.layerSizeBits(l);
        // int8 container per element, a float scale and an 8-bit zero point per block.
        info.storedBits = int64_t(values.size()) * 8 + blocks * (32 + 8);
    }
};

} // namespace

QdqModel buildQdqModel(const QuantSession& session, const std::map<std::string, Shape>& inputShapes)
{
    // Per-axis DequantizeLinear needs opset 13: older models are upgraded first.
    OpsetUpgrade upgrade;
    const Graph source = upgradeOpset(session.graph(), kMinOpset, &upgrade, inputShapes);
    Builder b {session, source, {}, {}, {}, {}};
    Graph& g = b.g;
    b.out.upgrade = upgrade;
    if (upgrade.upgraded())
        g.metadata["quantstudio.opset_upgrade"] = upgrade.text();
    g.index();
    // Bias corrections and other float overrides replace their initializers.
    for (const auto& [name, t] : session.weightOverrides)
        if (g.initializers.count(name))
            b.addInit(named(t, name));
    nlohmann::json wbits = nlohmann::json::object(), abits = nlohmann::json::object();
    std::set<std::string> activations;
    std::map<std::string, std::size_t> weights; // a weight shared by layers is written once
    for (const auto& l : session.layers()) {
        QdqLayerInfo info;
        info.layer = l.name;
        info.weight = l.weight;
        info.weightBits = l.spec.weight.bits;
        info.actBits = l.spec.activation.bits;
        if (auto shared = weights.find(l.weight); shared != weights.end()) {
            if (b.out.layers[shared->second].weightBits != info.weightBits)
                fail("weight ", quoted(l.weight), " is shared by layers with different weight bits");
            info.blocks = b.out.layers[shared->second].blocks; // its size counts with the first layer
        } else if (!l.spec.weight.isFloat()) {
            b.quantizeWeight(l, info);
        } else {
            info.trueBits = info.storedBits = session.layerSizeBits(l);
        }
        if (auto it = session.activationParams.find(l.input);
            it != session.activationParams.end() && activations.insert(l.input).second)
            b.quantizeActivation(l.input, it->second);
        wbits[l.name] = info.weightBits;
        abits[l.name] = info.actBits;
        b.out.layers.push_back(info);
        weights.emplace(l.weight, b.out.layers.size() - 1);
    }
    nlohmann::json obits = nlohmann::json::object();
    for (const auto& [name, q] : session.operandQuant) {
        b.quantizeOperand(q);
        obits[name] = {{"bits", q.spec.bits}, {"granularity", operandGranularityName(q.spec.granularity)},
            {"value", q.point.value}};
    }
    std::vector<Node> nodes = std::move(b.head);
    for (const Node& n : source.nodes) {
        Node copy = n;
        for (auto& in : copy.inputs)
            if (auto it = b.renamed.find(in); it != b.renamed.end())
                in = it->second;
        nodes.push_back(std::move(copy));
        for (const auto& o : n.outputs)
            if (auto it = b.after.find(o); it != b.after.end())
                nodes.insert(nodes.end(), it->second.begin(), it->second.end());
    }
    g.nodes = std::move(nodes);
    g.metadata["quantstudio.weight_bits"] = wbits.dump();
    g.metadata["quantstudio.activation_bits"] = abits.dump();
    if (!obits.empty())
        g.metadata["quantstudio.attention_operands"] = obits.dump();
    g.metadata["quantstudio.weight_storage"] =
        "integer weights are stored in 8-bit containers on their true (possibly narrower) grid";
    if (!session.dataPreprocess.empty()) // the input pipeline the ranges were calibrated under
        g.metadata["quantstudio.preprocess"] = session.dataPreprocess;
    g.producerName = "QuantStudio";
    g.index();

    int64_t stored = 0;
    for (const auto& [name, t] : g.initializers)
        if (t.dtype != DType::String)
            stored += t.numel() * int64_t(elementSize(t.dtype)) * 8;
    b.out.storedSizeBits = stored;
    b.out.trueSizeBits = session.sizeBits();
    g.metadata["quantstudio.true_size_bits"] = std::to_string(b.out.trueSizeBits);
    g.metadata["quantstudio.stored_size_bits"] = std::to_string(stored);
    b.out.graph = std::move(g);
    return std::move(b.out);
}

void checkOnnxBytes(const std::string& bytes, const std::string& what)
{
    onnx::ModelProto model;
    if (!model.ParseFromString(bytes))
        fail(what, ": not a serialized ONNX model");
    try {
        onnx::checker::check_model(model);
    } catch (const std::exception& e) {
        fail(what, ": ONNX checker: ", e.what());
    }
}

} // namespace qs
