// Opset upgrade through onnx::version_conversion (libonnx): see opset_upgrade.h.
#include "export/opset_upgrade.h"

#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
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

} // namespace

Graph upgradeOpset(const Graph& g, int64_t target, OpsetUpgrade* record)
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

    onnx::ModelProto model;
    if (!model.ParseFromString(exportOnnxBytes(g)))
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
    restoreNames(g, out);
    if (record)
        *record = up;
    return out;
}

} // namespace qs
