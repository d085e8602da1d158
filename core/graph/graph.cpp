#include "graph/graph.h"

#include "util/error.h"

namespace qs {

void sealTensors(std::map<std::string, Tensor>& tensors)
{
    for (auto& entry : tensors)
        entry.second.seal();
}

void sealTensors(Graph& g)
{
    sealTensors(g.initializers);
    for (Node& n : g.nodes)
        for (auto& entry : n.attrs) {
            for (Tensor& t : entry.second.tensors)
                t.seal();
            for (const auto& sub : entry.second.graphs)
                if (sub)
                    sealTensors(*sub);
        }
}

int64_t Node::attrInt(const std::string& attr, int64_t fallback) const
{
    auto it = attrs.find(attr);
    return it == attrs.end() ? fallback : it->second.i;
}

float Node::attrFloat(const std::string& attr, float fallback) const
{
    auto it = attrs.find(attr);
    return it == attrs.end() ? fallback : it->second.f;
}

std::string Node::attrString(const std::string& attr, const std::string& fallback) const
{
    auto it = attrs.find(attr);
    return it == attrs.end() ? fallback : it->second.s;
}

std::vector<int64_t> Node::attrInts(const std::string& attr, const std::vector<int64_t>& fallback) const
{
    auto it = attrs.find(attr);
    return it == attrs.end() ? fallback : it->second.ints;
}

std::vector<float> Node::attrFloats(const std::string& attr, const std::vector<float>& fallback) const
{
    auto it = attrs.find(attr);
    return it == attrs.end() ? fallback : it->second.floats;
}

const std::string& Node::input(std::size_t i) const
{
    static const std::string none;
    return i < inputs.size() ? inputs[i] : none;
}

bool ValueInfo::fullyKnown() const
{
    if (!dims)
        return false;
    for (const Dim& d : *dims)
        if (d.value < 0)
            return false;
    return true;
}

Shape ValueInfo::shape() const
{
    Shape s;
    if (dims)
        for (const Dim& d : *dims)
            s.push_back(d.value);
    return s;
}

std::string ValueInfo::text() const
{
    if (!dims)
        return "?";
    std::string out = "[";
    for (std::size_t i = 0; i < dims->size(); ++i) {
        const Dim& d = (*dims)[i];
        out += (i ? "," : "") + (d.value >= 0 ? std::to_string(d.value) : d.param.empty() ? "?" : d.param);
    }
    return out + "]";
}

const char* layerKindName(LayerKind k)
{
    switch (k) {
    case LayerKind::None: return "none";
    case LayerKind::Conv: return "conv";
    case LayerKind::ConvTranspose: return "conv_transpose";
    case LayerKind::Gemm: return "gemm";
    case LayerKind::MatMul: return "matmul";
    case LayerKind::Embedding: return "embedding";
    }
    return "none";
}

void Graph::index()
{
    producer_.clear();
    consumers_.clear();
    byName_.clear();
    for (int i = 0; i < int(nodes.size()); ++i) {
        byName_[nodes[i].name] = i;
        for (const auto& out : nodes[i].outputs)
            if (!out.empty())
                producer_[out] = i;
        for (const auto& in : nodes[i].inputs)
            if (!in.empty()) {
                auto& list = consumers_[in];
                if (list.empty() || list.back() != i)
                    list.push_back(i);
            }
    }
}

int Graph::producerOf(const std::string& value) const
{
    auto it = producer_.find(value);
    return it == producer_.end() ? -1 : it->second;
}

const std::vector<int>& Graph::consumersOf(const std::string& value) const
{
    static const std::vector<int> none;
    auto it = consumers_.find(value);
    return it == consumers_.end() ? none : it->second;
}

const Tensor* Graph::constant(const std::string& value) const
{
    if (auto it = initializers.find(value); it != initializers.end())
        return &it->second;
    int p = producerOf(value);
    if (p >= 0 && nodes[p].opType == "Constant" && nodes[p].domain.empty()) {
        auto it = nodes[p].attrs.find("value");
        if (it != nodes[p].attrs.end() && it->second.kind == Attribute::Kind::Tensor)
            return &it->second.tensors.front();
    }
    return nullptr;
}

const ValueInfo* Graph::info(const std::string& value) const
{
    auto it = valueInfo.find(value);
    return it == valueInfo.end() ? nullptr : &it->second;
}

int64_t Graph::opset(const std::string& domain) const
{
    auto it = opsets.find(domain);
    return it == opsets.end() ? 0 : it->second;
}

LayerKind Graph::layerKind(const Node& n) const
{
    if (!n.domain.empty())
        return LayerKind::None;
    auto isFloatConst = [&](const std::string& v) {
        const Tensor* t = constant(v);
        return t && isFloating(t->dtype);
    };
    if (n.opType == "Conv" && isFloatConst(n.input(1)))
        return LayerKind::Conv;
    if (n.opType == "ConvTranspose" && isFloatConst(n.input(1)))
        return LayerKind::ConvTranspose;
    if (n.opType == "Gemm" && isFloatConst(n.input(1)))
        return LayerKind::Gemm;
    if (n.opType == "MatMul" && (isFloatConst(n.input(1)) || isFloatConst(n.input(0))))
        return LayerKind::MatMul;
    if (n.opType == "Gather" && isFloatConst(n.input(0))) {
        const Tensor* t = constant(n.input(0));
        if (t->shape.size() == 2)
            return LayerKind::Embedding;
    }
    return LayerKind::None;
}

std::string Graph::weightOf(const Node& n) const
{
    switch (layerKind(n)) {
    case LayerKind::None: return {};
    case LayerKind::Embedding: return n.input(0);
    case LayerKind::MatMul: {
        const Tensor* b = constant(n.input(1));
        return b && isFloating(b->dtype) ? n.input(1) : n.input(0);
    }
    default: return n.input(1);
    }
}

std::vector<int> Graph::quantizableLayers() const
{
    std::vector<int> out;
    for (int i = 0; i < int(nodes.size()); ++i)
        if (layerKind(nodes[i]) != LayerKind::None)
            out.push_back(i);
    return out;
}

int64_t Graph::parameterCount() const
{
    int64_t n = 0;
    for (const auto& [name, t] : initializers)
        if (t.dtype != DType::String)
            n += t.numel();
    return n;
}

std::map<std::string, int> Graph::opCounts() const
{
    std::map<std::string, int> counts;
    for (const Node& n : nodes) {
        ++counts[n.domain.empty() ? n.opType : n.domain + "." + n.opType];
        for (const auto& [name, a] : n.attrs) // subgraphs: If branches, Loop bodies
            for (const auto& sub : a.graphs)
                if (sub)
                    for (const auto& [op, k] : sub->opCounts())
                        counts[op] += k;
    }
    return counts;
}

int Graph::findNode(const std::string& name) const
{
    auto it = byName_.find(name);
    return it == byName_.end() ? -1 : it->second;
}

} // namespace qs
