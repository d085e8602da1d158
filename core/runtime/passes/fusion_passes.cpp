// Fusions of decomposed operators into the runtime's single kernels: HardSigmoid(x) * x
// into HardSwish (oneDNN eltwise_hardswish, the same operations in the same order; the
// compiler runs x * Clip(x + 3, 0, 6) / 6 as one exact loop itself, ops/eltwise.cpp),
// and the ReduceMean / Sub / Pow /
// ReduceMean / Add / Sqrt / Div (/ Mul / Add) chain exporters write for a layer norm
// into LayerNormalization (oneDNN layer_normalization).
#include "graph/node_builder.h"
#include "runtime/passes/pass_context.h"

#include <algorithm>
#include <cmath>

namespace qs::rt::passes {

namespace {

const Node* producer(const PassContext& c, const std::string& value)
{
    const int p = c.g.producerOf(value);
    return p < 0 ? nullptr : &c.g.nodes[std::size_t(p)];
}

bool isOp(const Node* n, const char* op)
{
    return n && n->opType == op && n->domain.empty();
}

// The other input of a two-input node, when one of them is `v`.
std::optional<std::string> otherInput(const Node& n, const std::string& v)
{
    if (n.inputs.size() != 2)
        return std::nullopt;
    if (n.inputs[0] == v && n.inputs[1] != v)
        return n.inputs[1];
    if (n.inputs[1] == v && n.inputs[0] != v)
        return n.inputs[0];
    return std::nullopt;
}

// ReduceMean's axes (attribute before opset 18, input from 18) with keepdims set.
std::optional<std::vector<int64_t>> meanAxes(const PassContext& c, const Node& n)
{
    if (!isOp(&n, "ReduceMean") || n.attrInt("keepdims", 1) != 1 || n.attrInt("noop_with_empty_axes", 0) != 0)
        return std::nullopt;
    std::optional<std::vector<int64_t>> axes = c.g.opset() >= 18 ? c.ints(n.input(1)) : n.attrInts("axes");
    if (!axes || axes->empty())
        return std::nullopt;
    return axes;
}

} // namespace

int hardSwishFusion(PassContext& c)
{
    int rewrites = 0;
    for (std::size_t i = 0; i < c.g.nodes.size(); ++i) {
        Node& mul = c.g.nodes[i];
        if (!isOp(&mul, "Mul") || mul.inputs.size() != 2)
            continue;
        for (std::size_t side = 0; side < 2; ++side) {
            const Node* hs = producer(c, mul.inputs[side]);
            const std::string x = mul.inputs[1 - side];
            const ValueInfo* xi = c.g.info(x);
            if (xi && xi->dtype != DType::Float && xi->dtype != DType::Undefined)
                continue; // oneDNN's hardswish here is float32 only
            // HardSwish(x) = x * max(0, min(1, x / 6 + 0.5)): HardSigmoid with alpha 1/6.
            if (!isOp(hs, "HardSigmoid") || hs->input(0) != x ||
                std::fabs(hs->attrFloat("alpha", 0.2f) * 6.f - 1.f) > 1e-6f || hs->attrFloat("beta", 0.5f) != 0.5f ||
                c.soleConsumer(mul.inputs[side]) != int(i))
                continue;
            const int hsIndex = c.g.producerOf(mul.inputs[side]);
            const std::string hsName = hs->name;
            mul.opType = "HardSwish";
            mul.inputs = {x};
            mul.attrs.clear();
            c.record(mul.name, {hsName, mul.name}, "fused HardSigmoid x input into HardSwish");
            c.remove(hsIndex);
            c.commit();
            i = i >= 2 ? i - 2 : std::size_t(-1);
            ++rewrites;
            break;
        }
    }
    return rewrites;
}

int layerNormFusion(PassContext& c)
{
    int rewrites = 0;
    for (std::size_t i = 0; i < c.g.nodes.size(); ++i) {
        const Node& mean = c.g.nodes[i];
        const auto axes = meanAxes(c, mean);
        if (!axes)
            continue;
        const std::string x = mean.input(0);
        const auto rank = c.rank(x);
        if (const ValueInfo* vi = c.g.info(x); !vi || vi->dtype != DType::Float)
            continue; // LayerNormalization runs float32 only
        // The axes must be the trailing ones: LayerNormalization normalizes from `axis` on.
        std::vector<int64_t> neg = *axes;
        for (auto& a : neg) {
            if (a >= 0 && !rank)
                goto next;
            if (a >= 0)
                a -= int64_t(*rank);
        }
        std::sort(neg.begin(), neg.end());
        for (std::size_t k = 0; k < neg.size(); ++k)
            if (neg[k] != -int64_t(neg.size()) + int64_t(k))
                goto next;
        {
            std::vector<int> nodes {int(i)};
            auto follow = [&](const std::string& value, const char* op) -> const Node* {
                const int k = c.soleConsumer(value);
                if (k < 0 || !isOp(&c.g.nodes[std::size_t(k)], op))
                    return nullptr;
                nodes.push_back(k);
                return &c.g.nodes[std::size_t(k)];
            };
            const Node* sub = follow(mean.outputs[0], "Sub");
            if (!sub || sub->inputs.size() != 2 || sub->inputs[0] != x || sub->inputs[1] != mean.outputs[0])
                continue;
            const std::string d = sub->outputs[0];
            // d is read by exactly a Pow(d, 2) and a Div(d, sqrt(...)).
            if (c.isProtected(d))
                continue;
            const Node *pow = nullptr, *div = nullptr;
            std::vector<int> readers = c.g.consumersOf(d);
            std::sort(readers.begin(), readers.end());
            readers.erase(std::unique(readers.begin(), readers.end()), readers.end());
            if (readers.size() != 2)
                continue;
            for (int k : readers) {
                const Node& n = c.g.nodes[std::size_t(k)];
                if (isOp(&n, "Pow") && n.input(0) == d && n.inputs.size() == 2 && c.scalar(n.inputs[1]) == 2.f)
                    pow = &n;
                else if (isOp(&n, "Div") && n.inputs.size() == 2 && n.inputs[0] == d && n.inputs[1] != d)
                    div = &n;
            }
            if (!pow || !div)
                continue;
            nodes.push_back(c.g.producerOf(pow->outputs[0]));
            const Node* var = follow(pow->outputs[0], "ReduceMean");
            if (!var || meanAxes(c, *var) != axes)
                continue;
            const Node* add = follow(var->outputs[0], "Add");
            const auto epsName = add ? otherInput(*add, var->outputs[0]) : std::nullopt;
            const auto eps = epsName ? c.scalar(*epsName) : std::nullopt;
            if (!eps)
                continue;
            const Node* sqrt = follow(add->outputs[0], "Sqrt");
            if (!sqrt || c.soleConsumer(sqrt->outputs[0]) != c.g.producerOf(div->outputs[0]) ||
                div->inputs[1] != sqrt->outputs[0])
                continue;
            nodes.push_back(c.g.producerOf(div->outputs[0]));
            // Optional scale and shift: constants varying over the normalized dims only.
            const ValueInfo* xi = c.g.info(x);
            auto normalizedAffine = [&](const std::string& name) {
                const Tensor* t = c.constant(name);
                if (!t || t->dtype != DType::Float || t->shape.size() > (rank ? *rank : neg.size()))
                    return false;
                if (t->numel() == 1)
                    return true;
                if (!xi || !xi->dims || xi->dims->size() < neg.size())
                    return false;
                Shape dims = t->shape;
                while (!dims.empty() && dims.front() == 1)
                    dims.erase(dims.begin());
                if (dims.size() > neg.size())
                    return false;
                Shape want;
                for (std::size_t k = xi->dims->size() - neg.size(); k < xi->dims->size(); ++k)
                    want.push_back((*xi->dims)[k].value);
                while (!want.empty() && want.front() == 1 && want.size() > dims.size())
                    want.erase(want.begin());
                return dims == want;
            };
            std::string last = div->outputs[0], scale, shift;
            if (const int k = c.soleConsumer(last); k >= 0 && isOp(&c.g.nodes[std::size_t(k)], "Mul")) {
                const auto other = otherInput(c.g.nodes[std::size_t(k)], last);
                if (other && normalizedAffine(*other)) {
                    scale = *other;
                    nodes.push_back(k);
                    last = c.g.nodes[std::size_t(k)].outputs[0];
                }
            }
            if (const int k = c.soleConsumer(last); k >= 0 && isOp(&c.g.nodes[std::size_t(k)], "Add")) {
                const auto other = otherInput(c.g.nodes[std::size_t(k)], last);
                if (other && normalizedAffine(*other)) {
                    shift = *other;
                    nodes.push_back(k);
                }
            }
            // The last node of the chain becomes the LayerNormalization; the others go.
            Node& ln = c.g.nodes[std::size_t(nodes.back())];
            std::vector<std::string> names;
            for (int k : nodes)
                names.push_back(c.g.nodes[std::size_t(k)].name);
            const std::string outName = ln.outputs[0];
            ln.opType = "LayerNormalization";
            ln.inputs = {x, scale, shift};
            while (!ln.inputs.empty() && ln.inputs.back().empty())
                ln.inputs.pop_back();
            ln.outputs = {outName};
            ln.attrs.clear();
            ln.attrs["axis"] = intAttr(-int64_t(neg.size()));
            ln.attrs["epsilon"] = floatAttr(*eps);
            c.record(ln.name, names, "fused decomposed layer norm into LayerNormalization");
            for (std::size_t k = 0; k + 1 < nodes.size(); ++k)
                c.remove(nodes[k]);
            c.commit();
            --i; // the nodes before the mean are as they were
            ++rewrites;
        }
    next:;
    }
    return rewrites;
}

} // namespace qs::rt::passes
