#include "measure/layers.h"

#include "graph/subgraphs.h"

namespace qs {

int weightChannelAxis(const Graph& g, const Node& n)
{
    switch (g.layerKind(n)) {
    case LayerKind::Conv: return 0;          // [O, I/g, k...]
    case LayerKind::ConvTranspose: return 1; // [I, O/g, k...]
    case LayerKind::Gemm: return n.attrInt("transB", 0) ? 0 : 1;
    case LayerKind::MatMul: {
        // Constant B [.., K, N]: output channels are N (last); constant A [M, K]: rows M.
        bool bConst = g.weightOf(n) == n.input(1);
        const Tensor* w = g.constant(g.weightOf(n));
        int rank = w ? int(w->shape.size()) : 2;
        return bConst ? rank - 1 : std::max(rank - 2, 0);
    }
    case LayerKind::Embedding: return 0;
    case LayerKind::None: return 0;
    }
    return 0;
}

namespace {

LayerSummary summarize(const Graph& g, const Node& n)
{
    LayerSummary row;
    row.name = n.name;
    row.op = n.opType;
    row.kind = g.layerKind(n);
    row.weight = g.weightOf(n);
    const Tensor* w = g.constant(row.weight);
    row.weightShape = w->shape;
    row.params = w->numel();
    if (row.kind == LayerKind::Conv || row.kind == LayerKind::ConvTranspose)
        if (const Tensor* b = g.constant(n.input(2)))
            row.params += b->numel();
    if (row.kind == LayerKind::Gemm)
        if (const Tensor* c = g.constant(n.input(2)))
            row.params += c->numel();
    if (const ValueInfo* out = g.info(n.outputs.front()))
        row.outputShape = out->shape();
    row.channelAxis = weightChannelAxis(g, n);
    // float32 weights are read in place; other types through one float copy.
    std::vector<float> converted;
    if (w->dtype != DType::Float)
        converted = w->toFloat();
    const std::span<const float> values = w->dtype == DType::Float ? w->data<float>() : converted;
    row.stats = computeStats(values);
    if (!w->shape.empty())
        row.stats.channelRangeRatio = rangeRatio(channelMinMax(values, w->shape, row.channelAxis));
    return row;
}

} // namespace

std::vector<LayerSummary> summarizeLayers(const Graph& g)
{
    std::vector<LayerSummary> rows;
    for (int idx : g.quantizableLayers())
        rows.push_back(summarize(g, g.nodes[std::size_t(idx)]));
    for (const NestedNode& nn : nestedNodes(g))
        if (nn.scope->layerKind(nn.node()) != LayerKind::None) {
            rows.push_back(summarize(*nn.scope, nn.node()));
            rows.back().scope = nn.path;
        }
    return rows;
}

} // namespace qs
