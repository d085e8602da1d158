// Passes that remove work without changing a value: constant folding (Shape chains
// included, on the shapes import fixed), Identity / Dropout / no-op Cast / Reshape
// chain clean-up, and an explicit zero Pad folded into the Conv or pool after it.
#include "graph/node_builder.h"
#include "runtime/compiler.h"
#include "runtime/passes/pass_context.h"

#include <algorithm>
#include <cmath>

namespace qs::rt::passes {

namespace {

// The outputs of node `n` evaluated by the runtime's own kernels on a graph of that one
// node: constant inputs become initializers, a Shape or Size input an input of the
// shape import fixed. Nothing when the node is not constant there.
std::optional<std::vector<Tensor>> evaluate(const PassContext& c, const Node& n)
{
    for (const auto& [name, a] : n.attrs)
        if (!a.graphs.empty())
            return std::nullopt;
    if (n.opType == "Constant" || (!n.domain.empty() && n.domain != "ai.onnx"))
        return std::nullopt;
    Graph g;
    g.name = n.name;
    g.opsets = c.g.opsets;
    g.sourcePath = c.g.sourcePath;
    for (const auto& in : n.inputs) {
        if (in.empty() || g.initializers.count(in))
            continue;
        if (const Tensor* t = c.constant(in)) {
            g.initializers[in] = *t;
            continue;
        }
        const ValueInfo* vi = c.g.info(in);
        if ((n.opType != "Shape" && n.opType != "Size") || !vi || !vi->fullyKnown() || vi->dtype == DType::Undefined)
            return std::nullopt;
        g.inputs.push_back(*vi);
    }
    if (n.inputs.empty())
        return std::nullopt;
    g.nodes.push_back(n);
    for (const auto& o : n.outputs)
        if (!o.empty())
            g.outputs.push_back(ValueInfo {o, DType::Undefined, std::nullopt});
    g.index();
    CompileOptions opts;
    opts.threads = 1;
    opts.planMemory = false;
    opts.splitBatch = false;
    try {
        Compiler compiler(g, opts, {});
        std::unique_ptr<Program> p = compiler.compile();
        std::vector<Tensor> out;
        for (int s : p->outputSlots) {
            if (!p->slot(s).constant)
                return std::nullopt;
            out.push_back(readSlot(*p, s));
        }
        return out;
    } catch (const std::exception&) {
        return std::nullopt; // the real compile names the problem
    }
}

// Larger folded values stay computed: a constant this big is cheaper to make than to hold.
constexpr int64_t kMaxFoldedElements = int64_t(1) << 22;

bool isNoOp(const PassContext& c, const Node& n)
{
    if (!n.domain.empty() && n.domain != "ai.onnx")
        return false;
    if (n.opType == "Identity")
        return n.inputs.size() == 1;
    if (n.opType == "Dropout") // inference: the data output only, the mask unused
        return (n.outputs.size() < 2 || n.outputs[1].empty() || c.g.consumersOf(n.outputs[1]).empty()) &&
            !c.isProtected(n.outputs.size() > 1 ? n.outputs[1] : std::string());
    if (n.opType == "Cast") {
        const ValueInfo* vi = c.g.info(n.input(0));
        const Tensor* t = c.constant(n.input(0));
        const DType from = t ? t->dtype : vi ? vi->dtype : DType::Undefined;
        return from != DType::Undefined && int64_t(from) == n.attrInt("to", -1);
    }
    if (n.opType == "Reshape") {
        const ValueInfo* vi = c.g.info(n.input(0));
        const auto target = c.ints(n.input(1));
        if (!vi || !vi->fullyKnown() || !target || n.attrInt("allowzero", 0) != 0)
            return false;
        return *target == vi->shape(); // the same dims spelled out (0 and -1 are not checked here)
    }
    return false;
}

} // namespace

int constantFold(PassContext& c)
{
    int rewrites = 0;
    for (std::size_t i = 0; i < c.g.nodes.size(); ++i) {
        const Node& n = c.g.nodes[i];
        bool outputsFree = !n.outputs.empty();
        for (const auto& o : n.outputs)
            outputsFree = outputsFree && !o.empty() && !c.isProtected(o);
        if (!outputsFree)
            continue;
        auto values = evaluate(c, n);
        if (!values || values->size() != n.outputs.size())
            continue;
        bool small = true;
        for (const auto& t : *values)
            small = small && t.numel() <= kMaxFoldedElements;
        if (!small)
            continue;
        for (std::size_t k = 0; k < values->size(); ++k) {
            Tensor t = std::move((*values)[k]);
            t.name = n.outputs[k];
            c.g.initializers[n.outputs[k]] = std::move(t);
        }
        c.record("", {},
            str("folded ", n.opType, " ", quoted(n.name), " into ",
                n.outputs.size() == 1 ? "a constant" : "constants"));
        c.remove(int(i));
        c.commit(); // later nodes see the new initializers
        --i;
        ++rewrites;
    }
    return rewrites;
}

int cleanup(PassContext& c)
{
    int rewrites = 0;
    for (std::size_t i = 0; i < c.g.nodes.size(); ++i) {
        Node& n = c.g.nodes[i];
        if (n.outputs.empty() || n.outputs[0].empty())
            continue;
        const std::string out = n.outputs[0];
        // Reshape of a Reshape read nowhere else: one Reshape to the outer target (its
        // 0 entries would copy the inner result's dims, so they are left alone).
        if (n.opType == "Reshape" && n.attrInt("allowzero", 0) == 0) {
            const int inner = c.g.producerOf(n.input(0));
            const auto target = c.ints(n.input(1));
            if (inner >= 0 && c.g.nodes[std::size_t(inner)].opType == "Reshape" && target &&
                std::find(target->begin(), target->end(), 0) == target->end() && c.soleConsumer(n.input(0)) == int(i)) {
                const std::string innerName = c.g.nodes[std::size_t(inner)].name;
                n.inputs[0] = c.g.nodes[std::size_t(inner)].input(0);
                c.record(n.name, {innerName, n.name}, "merged Reshape chain");
                c.remove(inner);
                c.commit();
                i = std::size_t(-1); // from the start: the merged Reshape may chain again
                ++rewrites;
                continue;
            }
        }
        if (!isNoOp(c, n) || c.isProtected(out))
            continue;
        const std::string in = n.input(0);
        c.record("", {}, str("removed ", n.opType, " ", quoted(n.name)));
        c.remove(int(i));
        c.replaceUses(out, in);
        c.commit();
        --i;
        ++rewrites;
    }
    return rewrites;
}

int padFold(PassContext& c)
{
    int rewrites = 0;
    for (std::size_t i = 0; i < c.g.nodes.size(); ++i) {
        const Node& pad = c.g.nodes[i];
        if (pad.opType != "Pad" || !pad.domain.empty() || pad.outputs.size() != 1)
            continue;
        const int64_t opset = c.g.opset();
        if (pad.attrString("mode", "constant") != "constant" || !pad.input(3).empty())
            continue;
        std::optional<std::vector<int64_t>> pads;
        float value = 0;
        if (opset < 11) {
            pads = pad.attrInts("pads");
            value = pad.attrFloat("value", 0.f);
        } else {
            pads = c.ints(pad.input(1));
            if (!pad.input(2).empty()) {
                const auto v = c.scalar(pad.input(2));
                if (!v)
                    continue;
                value = *v;
            }
        }
        const int consumer = c.soleConsumer(pad.outputs[0]);
        if (!pads || pads->size() % 2 != 0 || consumer < 0)
            continue;
        Node& next = c.g.nodes[std::size_t(consumer)];
        const std::size_t rank = pads->size() / 2, spatial = rank - 2;
        if (rank < 3 || next.input(0) != pad.outputs[0] || next.attrString("auto_pad", "NOTSET") != "NOTSET")
            continue;
        bool ok = (*pads)[0] == 0 && (*pads)[1] == 0 && (*pads)[rank] == 0 && (*pads)[rank + 1] == 0;
        for (int64_t p : *pads)
            ok = ok && p >= 0;
        // Zeros are what Conv and AveragePool (counting the padding) pad with; -inf is
        // what MaxPool pads with. Pools only without ceil_mode (its last window differs).
        if (next.opType == "Conv")
            ok = ok && value == 0.f && !std::signbit(value);
        else if (next.opType == "AveragePool")
            ok = ok && value == 0.f && next.attrInt("count_include_pad", 0) == 1 && next.attrInt("ceil_mode", 0) == 0;
        else if (next.opType == "MaxPool")
            ok = ok && std::isinf(value) && value < 0 && next.attrInt("ceil_mode", 0) == 0 && next.outputs.size() == 1;
        else
            ok = false;
        std::vector<int64_t> kernel = next.attrInts("kernel_shape");
        if (next.opType == "Conv" && kernel.empty())
            if (const Tensor* w = c.constant(next.input(1)); w && w->shape.size() == rank)
                kernel.assign(w->shape.begin() + 2, w->shape.end());
        if (!ok || kernel.size() != spatial)
            continue;
        std::vector<int64_t> merged = next.attrInts("pads", std::vector<int64_t>(2 * spatial, 0));
        const std::vector<int64_t> dilations = next.attrInts("dilations", std::vector<int64_t>(spatial, 1));
        if (merged.size() != 2 * spatial || dilations.size() != spatial)
            continue;
        for (std::size_t d = 0; d < spatial; ++d) {
            merged[d] += (*pads)[2 + d];
            merged[spatial + d] += (*pads)[rank + 2 + d];
            // Padding reaching past a whole window is left explicit (kernels may refuse it).
            const int64_t extent = (kernel[d] - 1) * dilations[d] + 1;
            ok = ok && merged[d] < extent && merged[spatial + d] < extent;
        }
        if (!ok)
            continue;
        next.attrs["pads"] = intsAttr(merged);
        next.inputs[0] = pad.input(0);
        c.record(next.name, {next.name, pad.name}, str("folded Pad into ", next.opType));
        c.remove(int(i));
        c.commit();
        --i;
        ++rewrites;
    }
    return rewrites;
}

} // namespace qs::rt::passes
