// QDQ graph -> float graph + stated quantization. Reads the patterns export/qdq.cpp
// writes and the common ones of other exporters: DequantizeLinear on a constant integer
// weight (per tensor or per axis, optionally reshaped from blocks), and
// QuantizeLinear -> DequantizeLinear [-> Clip] on an activation.
#include "export/qdq_lowering.h"

#include "measure/activations.h"
#include "measure/layers.h"
#include "quant/int8_lowering.h"
#include "util/error.h"

#include <cmath>
#include <set>

namespace qs {
namespace {

struct Container {
    int32_t qmin, qmax;
    bool isSigned;
};

Container containerOf(DType t, const std::string& where)
{
    switch (t) {
    case DType::Int8:
        return {-128, 127, true};
    case DType::UInt8:
        return {0, 255, false};
    default:
        fail(where, ": quantized type ", dtypeName(t), " is not int8 or uint8");
    }
}

std::vector<int32_t> intValues(const Tensor& t, const std::string& where)
{
    std::vector<int32_t> out;
    if (t.dtype == DType::Int8)
        for (int8_t v : t.data<int8_t>())
            out.push_back(v);
    else if (t.dtype == DType::UInt8)
        for (uint8_t v : t.data<uint8_t>())
            out.push_back(v);
    else
        fail(where, ": expected an int8 or uint8 tensor, got ", dtypeName(t.dtype));
    return out;
}

const Tensor& constantInput(const Graph& g, const Node& n, std::size_t i, const std::string& label)
{
    const Tensor* t = g.constant(n.input(i));
    if (!t)
        fail(label, ": node ", quoted(n.name), " (", n.opType, "): input ", i, " ", quoted(n.input(i)),
            " must be a constant");
    return *t;
}

bool isOp(const Node& n, const char* op)
{
    return n.opType == op && n.domain.empty();
}

} // namespace

QdqLowered lowerQdqModel(const Graph& qdq, const std::string& label)
{
    QdqLowered out;
    Graph g = qdq;
    g.index();
    out.metadata = g.metadata;
    std::set<int> removed;
    std::map<std::string, std::string> rename; // value read by consumers -> the value it stands for

    for (int i = 0; i < int(g.nodes.size()); ++i) {
        const Node& n = g.nodes[std::size_t(i)];
        const std::string where = str(label, ": node ", quoted(n.name), " (", n.opType, ")");
        if (isOp(n, "DequantizeLinear") && g.constant(n.input(0))) {
            // A weight: dequantize it here, once.
            const Tensor& x = constantInput(g, n, 0, label);
            const Tensor& scale = constantInput(g, n, 1, label);
            QdqWeight w;
            w.codes = intValues(x, where);
            w.isSigned = x.dtype == DType::Int8;
            w.scales = scale.toFloat();
            w.zeroPoints = n.input(2).empty() ? std::vector<int32_t>(w.scales.size(), 0)
                                              : intValues(constantInput(g, n, 2, label), where + " zero point");
            if (w.zeroPoints.size() != w.scales.size())
                fail(where, ": ", w.scales.size(), " scales but ", w.zeroPoints.size(), " zero points");
            const int rank = int(x.shape.size());
            int axis = -1;
            int64_t inner = 1, len = 1;
            if (w.scales.size() > 1) { // one scale (of shape [] or [1]) is per tensor
                axis = int(n.attrInt("axis", 1));
                axis = axis < 0 ? axis + rank : axis;
                if (axis < 0 || axis >= rank || x.shape[std::size_t(axis)] != int64_t(w.scales.size()))
                    fail(where, ": ", w.scales.size(), " scales do not match axis ", n.attrInt("axis", 1), " of ",
                        shapeString(x.shape));
                len = x.shape[std::size_t(axis)];
                for (int d = axis + 1; d < rank; ++d)
                    inner *= x.shape[std::size_t(d)];
            }
            std::vector<float> values(w.codes.size());
            for (std::size_t e = 0; e < values.size(); ++e) {
                const std::size_t b = axis < 0 ? 0 : std::size_t((int64_t(e) / inner) % len);
                values[e] = float(w.codes[e] - w.zeroPoints[b]) * w.scales[b];
            }
            std::string name = n.outputs[0];
            w.shape = x.shape;
            w.axis = axis;
            const auto& users = g.consumersOf(name);
            if (users.size() == 1 && isOp(g.nodes[std::size_t(users[0])], "Reshape")) {
                const Node& r = g.nodes[std::size_t(users[0])];
                const Tensor* shape = g.constant(r.input(1));
                if (shape && r.input(0) == name) {
                    w.shape = Shape(shape->data<int64_t>().begin(), shape->data<int64_t>().end());
                    if (numelOf(w.shape) != int64_t(values.size()))
                        fail(label, ": node ", quoted(r.name), " (Reshape): ", shapeString(w.shape), " does not hold ",
                            values.size(), " weight elements");
                    w.grouped = w.scales.size() > 1;
                    w.axis = w.grouped ? -1 : axis;
                    name = r.outputs[0];
                    removed.insert(users[0]);
                }
            }
            w.tensor = name;
            Tensor f = Tensor::fromVector(w.shape, values);
            f.name = name;
            g.initializers[name] = std::move(f);
            out.weights[name] = std::move(w);
            removed.insert(i);
        } else if (isOp(n, "QuantizeLinear")) {
            const auto& users = g.consumersOf(n.outputs[0]);
            if (users.size() != 1 || !isOp(g.nodes[std::size_t(users[0])], "DequantizeLinear"))
                fail(where,
                    ": expected one DequantizeLinear after it (integer tensors between nodes are not supported)");
            const Node& d = g.nodes[std::size_t(users[0])];
            const Tensor& scale = constantInput(g, n, 1, label);
            if (scale.numel() != 1)
                fail(where, ": per-axis activation quantization (", scale.numel(), " scales) is not supported");
            const DType zt = n.input(2).empty() ? DType::UInt8 : constantInput(g, n, 2, label).dtype;
            const Container c = containerOf(zt, where);
            QParams q;
            q.scale = scale.toFloat()[0];
            q.zeroPoint = n.input(2).empty() ? 0 : intValues(constantInput(g, n, 2, label), where)[0];
            q.qmin = c.qmin;
            q.qmax = c.qmax;
            const Tensor& dScale = constantInput(g, d, 1, label);
            const int32_t dZero = d.input(2).empty() ? 0 : intValues(constantInput(g, d, 2, label), where)[0];
            if (dScale.toFloat()[0] != q.scale || dZero != q.zeroPoint)
                fail(label, ": node ", quoted(d.name),
                    " (DequantizeLinear) dequantizes with another scale or zero point "
                    "than its QuantizeLinear ",
                    quoted(n.name));
            removed.insert(i);
            removed.insert(users[0]);
            std::string value = d.outputs[0];
            const auto& after = g.consumersOf(value);
            if (after.size() == 1 && isOp(g.nodes[std::size_t(after[0])], "Clip")) {
                // A Clip on grid points narrows the grid (export/qdq.cpp writes it so).
                const Node& clip = g.nodes[std::size_t(after[0])];
                const Tensor* lo = g.constant(clip.input(1));
                const Tensor* hi = g.constant(clip.input(2));
                if (lo && hi && clip.input(0) == value) {
                    q.qmin = std::max(q.qmin, int32_t(std::nearbyint(lo->toFloat()[0] / q.scale)) + q.zeroPoint);
                    q.qmax = std::min(q.qmax, int32_t(std::nearbyint(hi->toFloat()[0] / q.scale)) + q.zeroPoint);
                    removed.insert(after[0]);
                    value = clip.outputs[0];
                }
            }
            for (const auto& o : g.outputs)
                if (o.name == value)
                    fail(where, ": graph output ", quoted(value), " is a dequantized value; not supported");
            rename[value] = n.input(0);
            out.activations[n.input(0)] = q;
        }
    }
    std::vector<Node> nodes;
    for (int i = 0; i < int(g.nodes.size()); ++i) {
        if (removed.count(i))
            continue;
        Node n = g.nodes[std::size_t(i)];
        for (auto& in : n.inputs)
            if (auto it = rename.find(in); it != rename.end())
                in = it->second;
        nodes.push_back(std::move(n));
    }
    g.nodes = std::move(nodes);
    // Quantized integer initializers and scales nothing reads any more.
    std::set<std::string> used;
    for (const auto& n : g.nodes)
        used.insert(n.inputs.begin(), n.inputs.end());
    for (auto it = g.initializers.begin(); it != g.initializers.end();)
        it = used.count(it->first) ? std::next(it) : g.initializers.erase(it);
    g.index();
    for (int idx : g.quantizableLayers()) {
        const Node& n = g.nodes[std::size_t(idx)];
        QdqLayer l;
        l.name = n.name;
        l.op = n.opType;
        l.weight = g.weightOf(n);
        l.input = layerInputOf(g, n);
        l.weightQuantized = out.weights.count(l.weight) != 0;
        l.inputQuantized = out.activations.count(l.input) != 0;
        out.layers.push_back(l);
    }
    out.graph = std::move(g);
    return out;
}

CompileOptions QdqLowered::simulated(const InputShapes& inputShape) const
{
    CompileOptions co;
    inputShape.into(co, graph);
    for (const auto& [value, q] : activations) {
        const QParams qp = q;
        co.valueTransforms[value] = [qp](Tensor& t) {
            for (float& x : t.data<float>())
                x = fakeQuant(x, qp);
        };
    }
    return co;
}

CompileOptions QdqLowered::int8(const InputShapes& inputShape, std::map<std::string, std::string>* notInt8) const
{
    CompileOptions co = simulated(inputShape);
    for (const auto& l : layers) {
        if (!l.weightQuantized || !l.inputQuantized) {
            if (notInt8)
                (*notInt8)[l.name] = l.weightQuantized ? "float input" : "float weight";
            continue;
        }
        try {
            addInt8Layer(l, co);
        } catch (const Error& e) {
            if (!notInt8)
                throw;
            (*notInt8)[l.name] = e.what();
        }
    }
    // An INT8 input is quantized by the runtime itself (as QuantSession::int8CompileOptions).
    for (const auto& [value, q] : co.int8Values)
        co.valueTransforms.erase(value);
    return co;
}

void QdqLowered::addInt8Layer(const QdqLayer& l, CompileOptions& co) const
{
    const Node& n = graph.nodes[std::size_t(graph.findNode(l.name))];
    const QdqWeight& w = weights.at(l.weight);
    const QParams& in = activations.at(l.input);
    auto obstacle = [&](const std::string& why) { fail("INT8: layer ", quoted(l.name), " (", l.op, "): ", why); };
    if (std::string why = int8StructureObstacle(graph, n, l.weight); !why.empty())
        obstacle(why);
    if (in.qmax - in.qmin != 255)
        obstacle(str("its input ", quoted(l.input), " has a ", in.qmax - in.qmin + 1,
            "-level grid; INT8 execution needs the full 8 bits"));
    if (in.qmin < 0 && in.zeroPoint != 0)
        obstacle(str("signed input ", quoted(l.input), " with zero point ", in.zeroPoint));
    if (!w.isSigned)
        obstacle("uint8 weights (oneDNN int8 kernels take symmetric s8 weights)");
    for (int32_t z : w.zeroPoints)
        if (z != 0)
            obstacle(str("weight zero point ", z, " (oneDNN int8 kernels take symmetric s8 weights)"));
    if (w.grouped)
        obstacle("group-wise weight scales (INT8 kernels take one scale per output channel or per tensor)");
    const int outAxis = weightChannelAxis(graph, n);
    if (w.scales.size() > 1 && w.axis != outAxis)
        obstacle(str("weight scales along axis ", w.axis, ", not the output channels (axis ", outAxis, ")"));
    Int8Layer L;
    L.weightScales = w.scales;
    L.weight.assign(w.codes.begin(), w.codes.end());
    if (const Tensor* b = (n.opType == "Conv" || n.opType == "Gemm") ? graph.constant(n.input(2)) : nullptr)
        L.bias = int8Bias(n, b->toFloat(), in.scale, w.scales, w.shape[std::size_t(outAxis)], l.name);
    co.int8Layers[l.name] = std::move(L);
    co.int8Values[l.input] = Int8Value {in.scale, in.zeroPoint, in.qmin < 0};
}

} // namespace qs
