// ReduceMean, ReduceSum, ReduceMax (and ReduceMin, ReduceProd, ReduceL1, ReduceL2,
// ReduceSumSquare) as oneDNN reduction.
#include "runtime/ops/ops.h"

#include <algorithm>
#include <cmath>

namespace qs::rt {
namespace {

using dnnl::algorithm;

bool buildReduce(NodeContext& c)
{
    const Node& n = c.node;
    if (c.dtype(0) != DType::Float)
        c.fail("input type ", dtypeName(c.dtype(0)), " is not supported (float32 only)");
    const Shape& x = c.shape(0);
    const int64_t r = int64_t(x.size());
    // Axes moved from an attribute to an input in opset 13 (ReduceSum) and 18 (the rest).
    const int64_t inputSince = n.opType == "ReduceSum" ? 13 : 18;
    std::vector<int64_t> axes;
    if (c.opset() >= inputSince) {
        if (c.has(1))
            axes = c.requireConstant(1, "axes").toInt64();
    } else {
        axes = n.attrInts("axes");
    }
    const bool keep = n.attrInt("keepdims", 1) != 0;
    if (axes.empty() && n.attrInt("noop_with_empty_axes", 0) != 0) {
        const int src = c.plainInput(0);
        const int dst = c.output(0, DType::Float, x);
        c.addFn({src}, {dst}, [src, dst](Program& p) {
            std::memcpy(p.slot(dst).data(), p.slot(src).data(), p.slot(dst).buffer.bytes);
        });
        return true;
    }
    if (axes.empty())
        for (int64_t i = 0; i < r; ++i)
            axes.push_back(i);
    if (r == 0 && !axes.empty())
        c.fail("axes ", shapeString(axes), " given for a scalar input");
    axes = normalizeAxes(axes, r, c);
    Shape kept = x, out;
    for (int64_t a : axes)
        kept[std::size_t(a)] = 1;
    for (int64_t i = 0; i < r; ++i)
        if (keep || std::find(axes.begin(), axes.end(), i) == axes.end())
            out.push_back(kept[std::size_t(i)]);
    const int src = c.plainInput(0);
    const int dst = c.output(0, DType::Float, out);
    if (numelOf(x) == 0 || x.empty()) {
        c.addFn({src}, {dst}, [src, dst](Program& p) {
            std::memcpy(p.slot(dst).data(), p.slot(src).data(), std::min(p.slot(dst).buffer.bytes, p.slot(src).buffer.bytes));
        });
        return true;
    }
    algorithm alg = algorithm::reduction_sum;
    float lp = 0.f; // Lp norms: sum |x|^p, then the p-th root (norm_lp_sum) or not (power_p_sum)
    if (n.opType == "ReduceL1")
        alg = algorithm::reduction_norm_lp_sum, lp = 1.f;
    else if (n.opType == "ReduceL2")
        alg = algorithm::reduction_norm_lp_sum, lp = 2.f;
    else if (n.opType == "ReduceSumSquare")
        alg = algorithm::reduction_norm_lp_power_p_sum, lp = 2.f;
    else if (n.opType == "ReduceMean")
        alg = algorithm::reduction_mean;
    else if (n.opType == "ReduceMax")
        alg = algorithm::reduction_max;
    else if (n.opType == "ReduceMin")
        alg = algorithm::reduction_min;
    else if (n.opType == "ReduceProd")
        alg = algorithm::reduction_mul;
    const memory::desc srcMd = plainDesc(x, DType::Float), dstMd = plainDesc(kept, DType::Float);
    if (x == kept && lp != 0.f) { // nothing reduced: |x| (L1, L2) or x^2 (SumSquare)
        const bool square = n.opType == "ReduceSumSquare";
        c.addFn({src}, {dst}, [src, dst, square](Program& p) {
            const float* a = p.slot(src).as<float>();
            float* b = p.slot(dst).as<float>();
            for (int64_t i = 0, m = p.slot(dst).numel(); i < m; ++i)
                b[i] = square ? a[i] * a[i] : std::fabs(a[i]);
        });
        return true;
    }
    if (x == kept) { // nothing reduced: a copy
        c.addFn({src}, {dst}, [src, dst](Program& p) {
            std::memcpy(p.slot(dst).data(), p.slot(src).data(), p.slot(dst).buffer.bytes);
        });
        return true;
    }
    dnnl::reduction::primitive_desc pd({alg, srcMd, dstMd, lp, 0.f}, cpuEngine());
    const bool consecutive = axes.back() - axes.front() + 1 == int64_t(axes.size());
    const bool plainOp = alg == algorithm::reduction_sum || alg == algorithm::reduction_mean ||
        alg == algorithm::reduction_max || alg == algorithm::reduction_min;
    if (implName(pd).rfind("ref", 0) == 0 && consecutive && plainOp) {
        // oneDNN's reference kernel (Silero's mean over channels of [N, C, T]): x as
        // [outer, reduced, inner], each output the float sum (or max, min) over the reduced
        // rows in order, as the reference accumulates, whole inner rows at a time.
        int64_t outer = 1, red = 1, inner = 1;
        for (int64_t i = 0; i < r; ++i)
            (i < axes.front() ? outer : i > axes.back() ? inner : red) *= x[std::size_t(i)];
        c.addFn({src}, {dst}, [=](Program& p) {
            const float* a = p.slot(src).as<float>();
            float* b = p.slot(dst).as<float>();
            for (int64_t o = 0; o < outer; ++o) {
                float* acc = b + o * inner;
                const float* row = a + o * red * inner;
                std::copy(row, row + inner, acc);
                for (int64_t k = 1; k < red; ++k) {
                    const float* v = row + k * inner;
                    if (alg == algorithm::reduction_max)
                        for (int64_t i = 0; i < inner; ++i)
                            acc[i] = std::max(acc[i], v[i]);
                    else if (alg == algorithm::reduction_min)
                        for (int64_t i = 0; i < inner; ++i)
                            acc[i] = std::min(acc[i], v[i]);
                    else
                        for (int64_t i = 0; i < inner; ++i)
                            acc[i] += v[i];
                }
                if (alg == algorithm::reduction_mean)
                    for (int64_t i = 0; i < inner; ++i)
                        acc[i] /= float(red);
            }
        });
        return true;
    }
    Kernel* k = c.addPrimitive(dnnl::reduction(pd), implName(pd), {},
                               {{DNNL_ARG_SRC, c.view(src, srcMd)}, {DNNL_ARG_DST, c.view(dst, dstMd)}});
    k->reads = {src};
    k->writes = {dst};
    return true;
}

const bool reduceRegistered = [] {
    for (const char* op : {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                           "ReduceSumSquare"})
        registerOp(op, buildReduce);
    return true;
}();

} // namespace
} // namespace qs::rt
