// Transpose cancellation for NHWC exports (tf2onnx): a Transpose moves down through
// element-wise ops and Pad (their constants and pads permuted to match) until it meets
// a Transpose that undoes it, and the pair goes; two Transposes in a row become one.
#include "graph/node_builder.h"
#include "runtime/passes/pass_context.h"

#include <algorithm>
#include <cstring>
#include <numeric>

namespace qs::rt::passes {

namespace {

bool isPermutation(const std::vector<int64_t>& p)
{
    std::vector<int64_t> sorted = p;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i)
        if (sorted[i] != int64_t(i))
            return false;
    return !p.empty();
}

std::optional<std::vector<int64_t>> permOf(const PassContext& c, const Node& t)
{
    std::vector<int64_t> p = t.attrInts("perm");
    if (p.empty()) { // default: the dims reversed
        const auto r = c.rank(t.input(0));
        if (!r || *r == 0)
            return std::nullopt;
        p.resize(*r);
        std::iota(p.rbegin(), p.rend(), 0);
    }
    if (!isPermutation(p))
        return std::nullopt;
    return p;
}

// `t` transposed: out dims[i] = t dims[perm[i]] (any dtype, moved as bytes).
Tensor transposed(const Tensor& t, const std::vector<int64_t>& perm)
{
    const int r = int(perm.size());
    const std::size_t es = elementSize(t.dtype);
    Shape out(perm.size());
    std::vector<int64_t> inStride(perm.size()), idx(perm.size());
    int64_t stride = 1;
    for (int i = r - 1; i >= 0; --i) {
        inStride[std::size_t(i)] = stride;
        stride *= t.shape[std::size_t(i)];
        out[std::size_t(i)] = t.shape[std::size_t(perm[std::size_t(i)])];
    }
    Tensor o(t.dtype, out);
    const int64_t n = o.numel();
    for (int64_t k = 0; k < n; ++k) {
        int64_t src = 0;
        for (int i = 0; i < r; ++i)
            src += idx[std::size_t(i)] * inStride[std::size_t(perm[std::size_t(i)])];
        std::memcpy(o.bytes.data() + std::size_t(k) * es, t.bytes.data() + std::size_t(src) * es, es);
        for (int i = r - 1; i >= 0 && ++idx[std::size_t(i)] == out[std::size_t(i)]; --i)
            idx[std::size_t(i)] = 0;
    }
    return o;
}

const std::set<std::string>& unaryOps()
{
    static const std::set<std::string> ops = {"Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh", "HardSigmoid",
        "HardSwish", "Exp", "Log", "Sqrt", "Abs", "Neg", "Erf", "Gelu", "Softplus", "Cast", "Identity", "Clip",
        "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Not", "IsNaN", "IsInf"};
    return ops;
}

const std::set<std::string>& binaryOps()
{
    static const std::set<std::string> ops = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu"};
    return ops;
}

// How node `n`, reading the transposed value `v` (perm `p`), is rewritten to read the
// untransposed one: the operand or pads it needs instead ("" for none). Nothing when
// the Transpose cannot pass it.
std::optional<std::pair<std::size_t, Tensor>> passThrough(
    const PassContext& c, const Node& n, const std::string& v, const std::vector<int64_t>& p)
{
    using R = std::pair<std::size_t, Tensor>;
    if (!n.domain.empty() || n.outputs.size() != 1)
        return std::nullopt;
    const std::size_t r = p.size();
    if (unaryOps().count(n.opType)) {
        if (n.input(0) != v)
            return std::nullopt;
        for (std::size_t i = 1; i < n.inputs.size(); ++i)
            if (!n.inputs[i].empty() && (!c.constant(n.inputs[i]) || c.constant(n.inputs[i])->numel() != 1))
                return std::nullopt;
        return R {SIZE_MAX, Tensor()};
    }
    if (binaryOps().count(n.opType) && n.inputs.size() == 2) {
        const std::size_t other = n.inputs[0] == v ? 1 : 0;
        const Tensor* k = c.constant(n.inputs[other]);
        if (n.inputs[1 - other] != v || !k || k->shape.size() > r || k->dtype == DType::String)
            return std::nullopt;
        if (k->numel() == 1 && k->shape.size() <= r)
            return R {SIZE_MAX, Tensor()};
        Tensor full = *k; // rank r, then permuted back: inverse[p[i]] = i
        full.shape.insert(full.shape.begin(), r - k->shape.size(), 1);
        std::vector<int64_t> inverse(r);
        for (std::size_t i = 0; i < r; ++i)
            inverse[std::size_t(p[i])] = int64_t(i);
        return R {other, transposed(full, inverse)};
    }
    if (n.opType == "Pad" && n.input(0) == v && n.input(3).empty()) {
        const bool inAttr = c.g.opset() < 11;
        std::optional<std::vector<int64_t>> pads = inAttr ? n.attrInts("pads") : c.ints(n.input(1));
        if (!pads || pads->size() != 2 * r)
            return std::nullopt;
        std::vector<int64_t> moved(2 * r);
        for (std::size_t i = 0; i < r; ++i) {
            moved[std::size_t(p[i])] = (*pads)[i];
            moved[r + std::size_t(p[i])] = (*pads)[r + i];
        }
        return R {inAttr ? SIZE_MAX - 1 : 1, Tensor::fromVector<int64_t>({int64_t(2 * r)}, moved)};
    }
    return std::nullopt;
}

} // namespace

int transposeCancel(PassContext& c)
{
    int rewrites = 0;
    for (std::size_t i = 0; i < c.g.nodes.size(); ++i) {
        const Node& t1 = c.g.nodes[i];
        if (t1.opType != "Transpose" || !t1.domain.empty() || t1.outputs.size() != 1)
            continue;
        const auto p1 = permOf(c, t1);
        if (!p1)
            continue;
        // The chain of single-consumer nodes the Transpose can pass, up to a Transpose.
        std::vector<std::pair<int, std::pair<std::size_t, Tensor>>> chain;
        std::string cur = t1.outputs[0];
        int t2 = -1;
        for (int k = c.soleConsumer(cur); k >= 0; k = c.soleConsumer(cur)) {
            const Node& n = c.g.nodes[std::size_t(k)];
            if (n.opType == "Transpose" && n.domain.empty()) {
                t2 = k;
                break;
            }
            auto how = passThrough(c, n, cur, *p1);
            if (!how)
                break;
            chain.push_back({k, std::move(*how)});
            cur = n.outputs[0];
        }
        if (t2 < 0)
            continue;
        const auto p2 = permOf(c, c.g.nodes[std::size_t(t2)]);
        if (!p2 || p2->size() != p1->size())
            continue;
        std::vector<int64_t> composed(p1->size());
        bool identity = true;
        for (std::size_t k = 0; k < composed.size(); ++k) {
            composed[k] = (*p1)[std::size_t((*p2)[k])];
            identity = identity && composed[k] == int64_t(k);
        }
        const std::string t1Name = t1.name, x = t1.input(0);
        Node& second = c.g.nodes[std::size_t(t2)];
        if (!identity) {
            if (!chain.empty())
                continue;
            second.inputs[0] = x;
            second.attrs["perm"] = intsAttr(composed);
            c.record(second.name, {t1Name, second.name}, "merged Transpose pair");
            c.remove(int(i));
            c.commit();
            --i;
            ++rewrites;
            continue;
        }
        const std::string out = second.outputs[0], t2Name = second.name;
        if (chain.empty()) {
            if (c.isProtected(out))
                continue; // the pair's output is observed under its own name
            c.remove(int(i));
            c.remove(t2);
            c.replaceUses(out, x);
        } else {
            std::string prev = x, prevOld = t1.outputs[0];
            for (std::size_t k = 0; k < chain.size(); ++k) {
                Node& n = c.g.nodes[std::size_t(chain[k].first)];
                auto& [slot, value] = chain[k].second;
                for (auto& in : n.inputs)
                    if (in == prevOld)
                        in = prev;
                if (slot == SIZE_MAX - 1) { // Pad before opset 11: pads as an attribute
                    n.attrs["pads"] = intsAttr(value.toInt64());
                } else if (slot != SIZE_MAX) {
                    n.inputs[slot] = c.addInitializer(n.inputs[slot] + "_untransposed", std::move(value));
                }
                prevOld = n.outputs[0];
                // The value now holds the untransposed layout: a new name, or the name of
                // the Transpose that undid it.
                n.outputs[0] = k + 1 == chain.size() ? out : c.freshName(n.outputs[0] + "_untransposed");
                prev = n.outputs[0];
            }
            c.remove(int(i));
            c.remove(t2);
        }
        c.record("", {},
            str("cancelled Transpose ", quoted(t1Name), " with ", quoted(t2Name),
                chain.empty() ? std::string() : str(" across ", chain.size(), " node(s)")));
        c.commit();
        i = std::size_t(-1);
        ++rewrites;
    }
    return rewrites;
}

} // namespace qs::rt::passes
