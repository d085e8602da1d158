#include "measure/layers.h"

#include "graph/subgraphs.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>

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

LayerSummary summarize(const Graph& g, const Node& n, bool withStats)
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
    if (withStats)
        row.stats = layerWeightStats(g, row);
    return row;
}

} // namespace

TensorStats weightStats(std::span<const float> values, const Shape& shape, int channelAxis)
{
    // Pass 1, in memory order: count, range, per-channel range and power sums of (x - pilot).
    const int64_t n = int64_t(values.size());
    int64_t outer = 1, channels = 1, inner = n;
    if (!shape.empty()) {
        const int axis = channelAxis < 0 ? channelAxis + int(shape.size()) : channelAxis;
        if (axis < 0 || axis >= int(shape.size()) || numelOf(shape) != n)
            fail("weight statistics: axis ", channelAxis, " and ", n, " values for shape ", shapeString(shape));
        channels = shape[std::size_t(axis)];
        inner = outer = 1;
        for (int i = 0; i < int(shape.size()); ++i) {
            if (i < axis)
                outer *= shape[std::size_t(i)];
            else if (i > axis)
                inner *= shape[std::size_t(i)];
        }
    }
    double pilot = 0;
    for (int64_t i = 0, k = 0; i < n && k < 4096; ++i)
        if (std::isfinite(values[std::size_t(i)]))
            pilot += (values[std::size_t(i)] - pilot) / double(++k);
    TensorStats s;
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    std::vector<float> chMin(std::size_t(channels), lo), chMax(std::size_t(channels), hi);
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    const float* p = values.data();
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t c = 0; c < channels; ++c) {
            float cLo = chMin[std::size_t(c)], cHi = chMax[std::size_t(c)];
            for (int64_t i = 0; i < inner; ++i, ++p) {
                const float v = *p;
                if (!std::isfinite(v)) {
                    ++s.nonFinite;
                    continue;
                }
                cLo = std::min(cLo, v);
                cHi = std::max(cHi, v);
                const double d = double(v) - pilot, d2 = d * d;
                s1 += d;
                s2 += d2;
                s3 += d2 * d;
                s4 += d2 * d2;
            }
            chMin[std::size_t(c)] = cLo;
            chMax[std::size_t(c)] = cHi;
        }
    s.count = n - s.nonFinite;
    if (s.count == 0)
        return s; // min = max = 0, as computeStats
    for (int64_t c = 0; c < channels; ++c) {
        lo = std::min(lo, chMin[std::size_t(c)]);
        hi = std::max(hi, chMax[std::size_t(c)]);
        if (chMin[std::size_t(c)] > chMax[std::size_t(c)]) // no finite value in the channel
            chMin[std::size_t(c)] = chMax[std::size_t(c)] = 0;
    }
    s.min = lo;
    s.max = hi;
    const double count = double(s.count), m1 = s1 / count;
    s.mean = pilot + m1;
    double m2 = s2 / count - m1 * m1;
    double m4 = s4 / count - 4 * m1 * s3 / count + 6 * m1 * m1 * s2 / count - 3 * m1 * m1 * m1 * m1;
    if (m1 * m1 > m2) { // the pilot was far off: central moments about the exact mean
        m2 = m4 = 0;
        for (float v : values)
            if (std::isfinite(v)) {
                const double d = double(v) - s.mean, d2 = d * d;
                m2 += d2;
                m4 += d2 * d2;
            }
        m2 /= count;
        m4 /= count;
    }
    m2 = std::max(m2, 0.0);
    s.std = std::sqrt(m2);
    s.kurtosis = m2 > 0 ? std::max(m4, 0.0) / (m2 * m2) : 0;
    // Pass 2: the outliers.
    if (s.std > 0) {
        int64_t out = 0;
        const double limit = 6 * s.std;
        for (float v : values)
            if (std::isfinite(v) && std::abs(v - s.mean) > limit)
                ++out;
        s.outlierFraction = double(out) / count;
    }
    if (!shape.empty())
        s.channelRangeRatio = rangeRatio(ChannelRanges {std::move(chMin), std::move(chMax), {}});
    return s;
}

TensorStats layerWeightStats(const Graph& scope, const LayerSummary& row)
{
    const Tensor* w = scope.constant(row.weight);
    if (!w)
        fail(scope.sourcePath, ": layer ", quoted(row.name), ": weight ", quoted(row.weight), " is not a constant");
    // float32 weights are read in place; other types through one float copy.
    std::vector<float> converted;
    if (w->dtype != DType::Float)
        converted = w->toFloat();
    return weightStats(
        w->dtype == DType::Float ? w->data<float>() : std::span<const float>(converted), w->shape, row.channelAxis);
}

std::vector<LayerSummary> summarizeLayers(const Graph& g, bool withStats)
{
    std::vector<LayerSummary> rows;
    std::vector<const Graph*> scopes;
    for (int idx : g.quantizableLayers()) {
        rows.push_back(summarize(g, g.nodes[std::size_t(idx)], false));
        scopes.push_back(&g);
    }
    const std::vector<NestedNode> nested = nestedNodes(g);
    for (const NestedNode& nn : nested)
        if (nn.scope->layerKind(nn.node()) != LayerKind::None) {
            rows.push_back(summarize(*nn.scope, nn.node(), false));
            rows.back().scope = nn.path;
            scopes.push_back(nn.scope.get());
        }
    if (!withStats)
        return rows;
    // Largest first, a layer per thread at a time.
    std::vector<std::size_t> order(rows.size());
    for (std::size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    std::stable_sort(
        order.begin(), order.end(), [&rows](std::size_t a, std::size_t b) { return rows[a].params > rows[b].params; });
    std::vector<std::exception_ptr> errors(rows.size());
#pragma omp parallel for schedule(dynamic, 1)
    for (std::size_t k = 0; k < order.size(); ++k) {
        const std::size_t i = order[k];
        try {
            rows[i].stats = layerWeightStats(*scopes[i], rows[i]);
        } catch (...) {
            errors[i] = std::current_exception();
        }
    }
    for (const auto& e : errors)
        if (e)
            std::rethrow_exception(e);
    return rows;
}

} // namespace qs
