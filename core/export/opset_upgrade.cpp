// Opset upgrade through onnx::version_conversion (libonnx): see opset_upgrade.h.
#include "export/opset_upgrade.h"

#include "graph/node_builder.h"
#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/version_converter/convert.h>

#include <algorithm>
#include <set>

namespace qs {

std::string OpsetUpgrade::text() const
{
    if (!upgraded())
        return {};
    std::string list;
    for (const auto& op : ops)
        list += (list.empty() ? "" : ", ") + op;
    return str("opset ", from, " -> ", to, list.empty() ? "" : " (" + list + ")");
}

namespace {

// The converter replaces some nodes (Upsample by Resize) with unnamed ones whose outputs
// get generated names. Both graphs list their operators (Constants hoisted) in the
// same order, one for one: give each replacement its original node and value names,
// so the quantizer's layers and activations are found in the upgraded graph.
void restoreNames(const Graph& original, Graph& converted)
{
    if (original.nodes.size() != converted.nodes.size())
        return;
    std::set<std::string> known;
    for (const Node& n : converted.nodes)
        known.insert(n.outputs.begin(), n.outputs.end());
    for (std::size_t i = 0; i < original.nodes.size(); ++i) {
        const Node& from = original.nodes[i];
        Node& to = converted.nodes[i];
        if (from.outputs.size() != to.outputs.size())
            continue;
        to.name = from.name;
        for (std::size_t k = 0; k < from.outputs.size(); ++k) {
            const std::string was = to.outputs[k], want = from.outputs[k];
            if (was == want || was.empty() || want.empty() || known.count(want))
                continue;
            for (Node& n : converted.nodes)
                for (auto* names : {&n.inputs, &n.outputs})
                    std::replace(names->begin(), names->end(), was, want);
            for (ValueInfo& o : converted.outputs)
                if (o.name == was)
                    o.name = want;
            if (auto it = converted.valueInfo.find(was); it != converted.valueInfo.end()) {
                ValueInfo info = it->second;
                info.name = want;
                converted.valueInfo.erase(it);
                converted.valueInfo[want] = info;
            }
            known.insert(want);
        }
    }
    converted.index();
}

// Softmax, LogSoftmax and Hardmax before opset 13 coerce their input to 2-D at `axis`
// (default 1); from 13 they work along one axis. onnx's Softmax 12->13 adapter needs the
// input's full shape (it fails on symbolic dimensions, and writes -1 for each of them
// into a Reshape), and its Hardmax adapter ignores the change. So they are rewritten
// here: an axis on the last dimension becomes -1 (the same under both semantics);
// any other becomes Flatten(axis) -> op(axis -1) -> Reshape to Shape(input), which
// holds for every shape. Node names and the output's value name are kept.
Graph rewriteCoercedAxes(const Graph& g, const std::string& label, const std::map<std::string, Shape>& inputShapes)
{
    if (g.opset("") >= 13)
        return g;
    auto coerced = [](const Node& n) {
        return n.domain.empty() && (n.opType == "Softmax" || n.opType == "LogSoftmax" || n.opType == "Hardmax");
    };
    // Ranks import could not infer (after a Reshape to a computed shape, as paddle2onnx
    // writes classifier heads) from a plan compiled for the data's input shapes.
    std::set<std::string> unranked;
    for (const Node& n : g.nodes)
        if (const ValueInfo* in = g.info(n.input(0)); coerced(n) && (!in || !in->dims))
            unranked.insert(n.input(0));
    std::map<std::string, int64_t> ranks;
    if (!unranked.empty() && !inputShapes.empty()) {
        CompileOptions co;
        co.inputShapes = inputShapes;
        co.keepValues = unranked;
        const auto plan = compilePlan(g, co);
        for (const std::string& v : unranked)
            ranks[v] = int64_t(plan->shapeOf(v).size());
    }
    Graph out = g;
    std::vector<Node> nodes;
    nodes.reserve(g.nodes.size());
    for (const Node& n : g.nodes) {
        if (!coerced(n)) {
            nodes.push_back(n);
            continue;
        }
        const ValueInfo* in = g.info(n.input(0));
        std::vector<Dim> dims;
        if (in && in->dims)
            dims = *in->dims;
        else if (auto r = ranks.find(n.input(0)); r != ranks.end())
            dims.resize(std::size_t(r->second));
        else
            fail(label, ": node ", quoted(n.name), " (", n.opType, "): the rank of input ", quoted(n.input(0)),
                " is unknown (give the input shapes), so its axis cannot be carried over to opset 13");
        const DType dtype = in ? in->dtype : DType::Float;
        const auto rank = int64_t(dims.size());
        int64_t axis = n.attrInt("axis", 1);
        if (axis < -rank || axis > std::max<int64_t>(rank - 1, 0))
            fail(label, ": node ", quoted(n.name), " (", n.opType, "): axis ", axis, " is out of range for rank ",
                rank);
        if (axis < 0)
            axis += rank;
        Node op = n;
        op.attrs["axis"] = intAttr(-1);
        if (axis == rank - 1) {
            nodes.push_back(std::move(op));
            continue;
        }
        const std::string x = n.input(0), y = n.outputs.at(0);
        const std::string flat = y + "/flat2d", op2d = y + "/2d", shape = y + "/shape";
        Node flatten = makeNode("Flatten", n.name + "/Flatten", {x}, {flat});
        flatten.attrs["axis"] = intAttr(axis);
        Node shapeOf = makeNode("Shape", n.name + "/Shape", {x}, {shape});
        op.inputs[0] = flat;
        op.outputs[0] = op2d;
        Node reshape = makeNode("Reshape", n.name + "/Reshape", {op2d, shape}, {y});
        // The 2-D values: [prod(dims before axis), prod(dims from axis)], unknown where symbolic.
        std::vector<Dim> dims2d(2);
        dims2d[0].value = dims2d[1].value = 1;
        for (int64_t i = 0; i < rank; ++i) {
            Dim& d = dims2d[i < axis ? 0 : 1];
            const int64_t v = dims[std::size_t(i)].value;
            d.value = d.value < 0 || v < 0 ? -1 : d.value * v;
        }
        for (const std::string& v : {flat, op2d})
            out.valueInfo[v] = ValueInfo {v, dtype, dims2d};
        out.valueInfo[shape] = ValueInfo {shape, DType::Int64, std::vector<Dim> {Dim {rank, {}}}};
        nodes.push_back(std::move(flatten));
        nodes.push_back(std::move(shapeOf));
        nodes.push_back(std::move(op));
        nodes.push_back(std::move(reshape));
    }
    out.nodes = std::move(nodes);
    out.index();
    return out;
}

} // namespace

Graph upgradeOpset(const Graph& g, int64_t target, OpsetUpgrade* record, const std::map<std::string, Shape>& inputShapes)
{
    const std::string label = g.sourcePath.empty() ? "model" : g.sourcePath;
    const int64_t from = g.opset("");
    OpsetUpgrade up;
    up.from = up.to = from;
    if (from >= target) {
        if (record)
            *record = up;
        return g;
    }
    if (from < 7)
        fail(label, ": opset ", from, " is older than 7; only opsets 7 and newer can be upgraded to ", target);
    up.to = target;
    // The op types whose definition differs between the two opsets.
    std::set<std::string> types;
    for (const Node& n : g.nodes)
        if (n.domain.empty())
            types.insert(n.opType);
    const auto* registry = onnx::OpSchemaRegistry::Instance();
    for (const auto& op : types) {
        const auto* at = registry->GetSchema(op, int(target));
        if (!at)
            fail(label, ": operator ", op, " does not exist at opset ", target, "; the model cannot be upgraded");
        if (at->since_version() > from)
            up.ops.push_back(op);
    }

    const Graph rewritten = rewriteCoercedAxes(g, label, inputShapes);
    onnx::ModelProto model;
    if (!model.ParseFromString(exportOnnxBytes(rewritten)))
        fail(label, ": cannot re-read the model for the opset upgrade");
    if (model.ir_version() < 4) // initializers need not be graph inputs from IR 4 on
        model.set_ir_version(4);
    onnx::ModelProto converted;
    try {
        converted = onnx::version_conversion::ConvertVersion(model, int(target));
    } catch (const std::exception& e) {
        std::string what = e.what();
        if (auto nl = what.find('\n'); nl != std::string::npos)
            what.resize(nl);
        fail(label, ": cannot upgrade opset ", from, " to ", target, ": ", what);
    }
    if (converted.ir_version() < 7) // opset 13 needs IR 7; older IRs list initializers as inputs
        converted.set_ir_version(7);
    std::string bytes;
    if (!converted.SerializeToString(&bytes))
        fail(label, ": cannot serialize the upgraded model");
    Graph out = importOnnxBytes(bytes, label + " (opset " + std::to_string(target) + ")", "");
    out.sourcePath = g.sourcePath;
    restoreNames(rewritten, out);
    if (record)
        *record = up;
    return out;
}

} // namespace qs
