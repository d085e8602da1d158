// Index-producing and index-driven operators in plain C++: ArgMax, ArgMin (int64
// indices, keepdims, select_last_index), CumSum (exclusive, reverse) and
// GatherElements. Greedy decoding, position ids from attention masks and
// label lookups in exported language models use them.
#include "runtime/ops/ops.h"
#include "runtime/ops/plain.h"

namespace qs::rt {
namespace {

// outer x n x inner view of a shape around `axis`.
struct AxisSplit {
    int64_t outer = 1, n = 1, inner = 1;
};
AxisSplit splitAt(const Shape& s, int64_t axis)
{
    AxisSplit a;
    for (int64_t i = 0; i < int64_t(s.size()); ++i)
        (i < axis ? a.outer : i == axis ? a.n : a.inner) *= s[std::size_t(i)];
    return a;
}

bool buildArgExtreme(NodeContext& c)
{
    const Shape x = c.shape(0);
    const DType t = c.dtype(0);
    if (t == DType::Bool || !dispatchType(t, [](auto) {}))
        c.fail("input type ", dtypeName(t), " is not supported");
    if (x.empty())
        c.fail("input must have rank >= 1 (it is a scalar)");
    const int64_t axis = normalizeAxis(c.node.attrInt("axis", 0), int64_t(x.size()), c);
    const bool keep = c.node.attrInt("keepdims", 1) != 0, last = c.node.attrInt("select_last_index", 0) != 0;
    const bool isMax = c.node.opType == "ArgMax";
    Shape out = x;
    if (keep)
        out[std::size_t(axis)] = 1;
    else
        out.erase(out.begin() + axis);
    const AxisSplit a = splitAt(x, axis);
    if (a.n == 0)
        c.fail("axis ", axis, " is empty");
    const int src = c.plainInput(0);
    const int dst = c.output(0, DType::Int64, out);
    c.addFn({src}, {dst}, [=](Program& p) {
        int64_t* y = p.slot(dst).as<int64_t>();
        dispatchType(t, [&](auto tag) {
            using T = decltype(tag);
            const T* v = p.slot(src).as<T>();
            for (int64_t o = 0; o < a.outer; ++o)
                for (int64_t i = 0; i < a.inner; ++i) {
                    const T* base = v + o * a.n * a.inner + i;
                    int64_t best = 0;
                    for (int64_t k = 1; k < a.n; ++k) {
                        const T cur = base[k * a.inner], b = base[best * a.inner];
                        const bool better = isMax ? (last ? cur >= b : cur > b) : (last ? cur <= b : cur < b);
                        if (better)
                            best = k;
                    }
                    y[o * a.inner + i] = best;
                }
        });
    });
    return true;
}

bool buildCumSum(NodeContext& c)
{
    const Shape x = c.shape(0);
    const DType t = c.dtype(0);
    if (t == DType::Bool || !dispatchType(t, [](auto) {}))
        c.fail("input type ", dtypeName(t), " is not supported");
    const auto axisValues = c.requireConstant(1, "axis").toInt64();
    if (axisValues.size() != 1)
        c.fail("axis must be a scalar, got ", axisValues.size(), " values");
    const int64_t axis = normalizeAxis(axisValues[0], int64_t(x.size()), c);
    const bool exclusive = c.node.attrInt("exclusive", 0) != 0, reverse = c.node.attrInt("reverse", 0) != 0;
    const AxisSplit a = splitAt(x, axis);
    const int src = c.plainInput(0);
    const int dst = c.output(0, t, x);
    c.addFn({src}, {dst}, [=](Program& p) {
        dispatchType(t, [&](auto tag) {
            using T = decltype(tag);
            if constexpr (!std::is_same_v<T, bool>) {
                using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
                const T* v = p.slot(src).as<T>();
                T* y = p.slot(dst).as<T>();
                for (int64_t o = 0; o < a.outer; ++o)
                    for (int64_t i = 0; i < a.inner; ++i) {
                        Acc sum = 0;
                        for (int64_t j = 0; j < a.n; ++j) {
                            const int64_t k = reverse ? a.n - 1 - j : j;
                            const int64_t at = (o * a.n + k) * a.inner + i;
                            if (exclusive) {
                                y[at] = T(sum);
                                sum += Acc(v[at]);
                            } else {
                                sum += Acc(v[at]);
                                y[at] = T(sum);
                            }
                        }
                    }
            }
        });
    });
    return true;
}

bool buildGatherElements(NodeContext& c)
{
    const Shape data = c.shape(0), ind = c.shape(1);
    if (c.dtype(1) != DType::Int64 && c.dtype(1) != DType::Int32)
        c.fail("indices must be int32 or int64");
    if (data.size() != ind.size() || data.empty())
        c.fail("data ", shapeString(data), " and indices ", shapeString(ind), " must have the same rank >= 1");
    const int64_t axis = normalizeAxis(c.node.attrInt("axis", 0), int64_t(data.size()), c);
    const std::size_t es = elementSize(c.dtype(0));
    if (es == 0)
        c.fail("type ", dtypeName(c.dtype(0)), " is not supported");
    // Off the axis an index position reads the same position of the data.
    for (std::size_t d = 0; d < data.size(); ++d)
        if (int64_t(d) != axis && ind[d] > data[d])
            c.fail("indices ", shapeString(ind), " are larger than data ", shapeString(data), " in dim ", d);
    const auto dataStrides = rowStrides(data);
    const int64_t n = data[std::size_t(axis)];
    const bool i64 = c.dtype(1) == DType::Int64;
    const int src = c.plainInput(0), idx = c.plainInput(1);
    const int dst = c.output(0, c.dtype(0), ind);
    const std::string where = c.where();
    c.addFn({src, idx}, {dst}, [=](Program& p) {
        const std::byte* in = static_cast<const std::byte*>(p.slot(src).data());
        std::byte* o = static_cast<std::byte*>(p.slot(dst).data());
        const std::size_t r = ind.size();
        std::vector<int64_t> pos(r, 0);
        for (int64_t e = 0, total = numelOf(ind); e < total; ++e) {
            const int64_t given = i64 ? p.slot(idx).as<int64_t>()[e] : p.slot(idx).as<int32_t>()[e];
            const int64_t k = given < 0 ? given + n : given;
            if (k < 0 || k >= n)
                fail(where, ": index ", given, " is out of range [", -n, ", ", n, ")");
            int64_t off = 0;
            for (std::size_t d = 0; d < r; ++d)
                off += (int64_t(d) == axis ? k : pos[d]) * dataStrides[d];
            std::memcpy(o + std::size_t(e) * es, in + std::size_t(off) * es, es);
            for (std::size_t d = r; d-- > 0;) {
                if (++pos[d] < ind[d])
                    break;
                pos[d] = 0;
            }
        }
    });
    return true;
}

const bool indexingRegistered = [] {
    registerOp("ArgMax", buildArgExtreme);
    registerOp("ArgMin", buildArgExtreme);
    registerOp("CumSum", buildCumSum);
    registerOp("GatherElements", buildGatherElements);
    return true;
}();

} // namespace
} // namespace qs::rt
