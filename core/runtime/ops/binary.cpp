// Add, Sub, Mul, Div, Max, Min (multidirectional broadcasting) and Equal. Float
// tensors whose first operand has the output shape run as oneDNN binary (any
// layout, activations fused as post-ops); everything else in plain C++.
#include "runtime/ops/ops.h"
#include "runtime/ops/plain.h"

#include <cmath>

namespace qs::rt {
namespace {

using dnnl::algorithm;

enum class BinOp { Add, Sub, Mul, Div, Max, Min, Equal, Pow };

BinOp opOf(const std::string& op)
{
    if (op == "Add") return BinOp::Add;
    if (op == "Sub") return BinOp::Sub;
    if (op == "Mul") return BinOp::Mul;
    if (op == "Div") return BinOp::Div;
    if (op == "Max") return BinOp::Max;
    if (op == "Min") return BinOp::Min;
    if (op == "Pow") return BinOp::Pow;
    return BinOp::Equal;
}

template <typename T>
T apply(BinOp op, T a, T b)
{
    switch (op) {
    case BinOp::Add: return T(a + b);
    case BinOp::Sub: return T(a - b);
    case BinOp::Mul: return T(a * b);
    case BinOp::Div:
        if constexpr (std::is_integral_v<T>)
            return b == 0 ? T(0) : T(a / b);
        else
            return T(a / b);
    case BinOp::Max: return a > b ? a : b;
    case BinOp::Min: return a < b ? a : b;
    case BinOp::Pow: return T(std::pow(double(a), double(b)));
    default: return T(a == b);
    }
}

// Rows of a broadcast: f(outOffset, aOffset, bOffset, length, aStep, bStep) over the
// longest block of innermost dimensions each input reads contiguously (step 1) or as one
// repeated value (step 0); the outer dimensions by odometer.
template <typename F>
void forEachBroadcastRow(const Shape& out, const Shape& sa, const Shape& sb, F&& f)
{
    const int64_t total = numelOf(out);
    if (total == 0)
        return;
    const std::size_t r = out.size();
    const std::vector<int64_t> ta = broadcastStrides(sa, out), tb = broadcastStrides(sb, out);
    std::size_t d0 = r;
    int64_t len = 1, stepA = -1, stepB = -1;
    for (; d0 > 0; --d0) {
        const std::size_t d = d0 - 1;
        if (out[d] == 1)
            continue;
        const int64_t a = ta[d] == 0 ? 0 : ta[d] == len ? 1 : -1, b = tb[d] == 0 ? 0 : tb[d] == len ? 1 : -1;
        if (a < 0 || b < 0 || (stepA >= 0 && (a != stepA || b != stepB)))
            break;
        stepA = a;
        stepB = b;
        len *= out[d];
    }
    stepA = std::max<int64_t>(stepA, 0);
    stepB = std::max<int64_t>(stepB, 0);
    std::vector<int64_t> idx(d0, 0);
    int64_t oa = 0, ob = 0;
    for (int64_t o = 0; o < total; o += len) {
        f(o, oa, ob, len, stepA, stepB);
        for (std::size_t d = d0; d-- > 0;) {
            ++idx[d];
            oa += ta[d];
            ob += tb[d];
            if (idx[d] < out[d])
                break;
            oa -= ta[d] * idx[d];
            ob -= tb[d] * idx[d];
            idx[d] = 0;
        }
    }
}

// z[j] = g(x[j * sa], y[j * sb]) for j < n, sa and sb 0 or 1 (loops the compiler vectorizes).
template <typename T, typename G>
void binaryRow(T* z, const T* x, const T* y, int64_t n, int64_t sa, int64_t sb, G g)
{
    const T x0 = x[0], y0 = y[0]; // read first: z may be written over an input
    if (sa && sb)
        for (int64_t j = 0; j < n; ++j)
            z[j] = g(x[j], y[j]);
    else if (sa)
        for (int64_t j = 0; j < n; ++j)
            z[j] = g(x[j], y0);
    else if (sb)
        for (int64_t j = 0; j < n; ++j)
            z[j] = g(x0, y[j]);
    else
        for (int64_t j = 0; j < n; ++j)
            z[j] = g(x0, y0);
}

// Plain C++ for one pair: out = a op b, row by row of the broadcast.
void addPlainBinary(NodeContext& c, BinOp op, int a, int b, int out)
{
    const Shape sa = c.slot(a).shape, sb = c.slot(b).shape, so = c.slot(out).shape;
    const DType t = c.slot(a).dtype;
    c.addFn({a, b}, {out}, [=](Program& p) {
        dispatchType(t, [&](auto tag) {
            using T = decltype(tag);
            const T* x = p.slot(a).as<T>();
            const T* y = p.slot(b).as<T>();
            if (op == BinOp::Equal) {
                bool* z = p.slot(out).as<bool>();
                forEachBroadcast(so, {sa, sb}, [&](int64_t o, const int64_t* off) { z[o] = x[off[0]] == y[off[1]]; });
            } else if constexpr (!std::is_same_v<T, bool>) {
                T* z = p.slot(out).as<T>();
                forEachBroadcastRow(so, sa, sb, [&](int64_t o, int64_t ia, int64_t ib, int64_t n, int64_t stA, int64_t stB) {
                    T* zr = z + o;
                    const T* xr = x + ia;
                    const T* yr = y + ib;
                    switch (op) {
                    case BinOp::Add: binaryRow(zr, xr, yr, n, stA, stB, [](T u, T v) { return T(u + v); }); break;
                    case BinOp::Sub: binaryRow(zr, xr, yr, n, stA, stB, [](T u, T v) { return T(u - v); }); break;
                    case BinOp::Mul: binaryRow(zr, xr, yr, n, stA, stB, [](T u, T v) { return T(u * v); }); break;
                    case BinOp::Pow:
                        // x^2 as x * x: pow(double(x), 2) is x * x exactly, so one rounding either way.
                        if (std::is_floating_point_v<T> && stB == 0 && yr[0] == T(2))
                            binaryRow(zr, xr, yr, n, stA, stB, [](T u, T) { return T(u * u); });
                        else
                            binaryRow(zr, xr, yr, n, stA, stB, [](T u, T v) { return apply(BinOp::Pow, u, v); });
                        break;
                    default: binaryRow(zr, xr, yr, n, stA, stB, [op](T u, T v) { return apply(op, u, v); });
                    }
                });
            }
        });
    });
}

algorithm dnnlAlg(BinOp op)
{
    switch (op) {
    case BinOp::Add: return algorithm::binary_add;
    case BinOp::Sub: return algorithm::binary_sub;
    case BinOp::Mul: return algorithm::binary_mul;
    case BinOp::Div: return algorithm::binary_div;
    case BinOp::Max: return algorithm::binary_max;
    default: return algorithm::binary_min;
    }
}

memory::desc expandedPlain(const Shape& s, std::size_t rank)
{
    Shape e(rank - s.size(), 1);
    e.insert(e.end(), s.begin(), s.end());
    return plainDesc(e, DType::Float);
}

// oneDNN binary for float a op b where a has the output shape; false if oneDNN refuses.
bool tryDnnlBinary(NodeContext& c, BinOp op, const std::string& aName, const std::string& bName, const Shape& outShape,
                   const std::string& outName, bool last)
{
    const int aSlot = c.slotOfValue(aName), bSlot = c.slotOfValue(bName);
    const Shape sb = c.slot(bSlot).shape;
    const std::size_t rank = std::max<std::size_t>(outShape.size(), 1);
    for (bool plain : {false, true}) {
        const int src0 = plain ? c.valueAs(aName, plainDesc(outShape, DType::Float)) : aSlot;
        const memory::desc md0 = c.slot(src0).md;
        // oneDNN 2.6's jit:uni binary writes past the end of a blocked layout whose channels
        // are padded (nChw16c with 36 channels: BlazeFace's residual Adds) and computes wrong
        // values there: such inputs take the plain path.
        if (!plain && md0.get_size() != std::size_t(numelOf(outShape)) * sizeof(float))
            continue;
        const bool same = sb == outShape;
        const memory::desc md1 = same ? md0 : expandedPlain(sb, rank);
        FusedTail tail = last ? planTail(c, outName, outShape, nullptr) : FusedTail{{}, {}, outName, {}};
        dnnl::primitive_attr attr;
        attr.set_post_ops(tail.ops);
        dnnl::binary::primitive_desc pd;
        try {
            pd = dnnl::binary::primitive_desc({dnnlAlg(op), md0, md1, md0}, attr, cpuEngine());
        } catch (const dnnl::error&) {
            continue;
        }
        if (implName(pd).rfind("ref", 0) == 0) {
            if (!plain && c.slot(src0).blocked)
                continue;
            return false; // oneDNN's reference kernel (a broadcast its jit does not do): our rows are faster
        }
        absorbTail(c, tail);
        const int dst = c.outputNamed(tail.output, DType::Float, outShape, &md0);
        std::map<int, int> args{{DNNL_ARG_SRC_0, src0}, {DNNL_ARG_DST, dst}};
        std::unordered_map<int, memory> fixed;
        int extra = -1;
        if (same) {
            args[DNNL_ARG_SRC_1] = c.valueAs(bName, md0);
        } else {
            fixed[DNNL_ARG_SRC_1] = c.view(bSlot, md1);
            extra = bSlot;
        }
        Kernel* k = c.addPrimitive(dnnl::binary(pd), implName(pd), args, fixed);
        if (extra >= 0)
            k->reads.push_back(extra);
        return true;
    }
    return false;
}

bool buildBinary(NodeContext& c)
{
    const BinOp op = opOf(c.node.opType);
    const std::size_t n = c.inputCount();
    if (n < 1 || ((op != BinOp::Max && op != BinOp::Min) && n != 2))
        c.fail("expected 2 inputs, got ", n);
    const DType t = c.dtype(0);
    if (op == BinOp::Pow && n == 2 && c.dtype(1) != t) {
        // Pow's exponent may have its own type; computed in double, stored as the base's type.
        const DType te = c.dtype(1);
        if (!dispatchType(t, [](auto) {}) || !dispatchType(te, [](auto) {}))
            c.fail("input types ", dtypeName(t), " and ", dtypeName(te), " are not supported");
        const Shape sa = c.shape(0), sb = c.shape(1), so = broadcastShapes(sa, sb, c);
        const int a = c.plainInput(0), b = c.plainInput(1);
        const int dst = c.output(0, t, so);
        c.addFn({a, b}, {dst}, [=](Program& p) {
            auto load = [&](int s, DType dt, int64_t i) {
                double v = 0;
                dispatchType(dt, [&](auto tag) { v = double(p.slot(s).as<decltype(tag)>()[i]); });
                return v;
            };
            forEachBroadcast(so, {sa, sb}, [&](int64_t o, const int64_t* off) {
                const double r = std::pow(load(a, t, off[0]), load(b, te, off[1]));
                dispatchType(t, [&](auto tag) { p.slot(dst).as<decltype(tag)>()[o] = decltype(tag)(r); });
            });
        });
        return true;
    }
    for (std::size_t i = 1; i < n; ++i)
        if (c.dtype(i) != t)
            c.fail("input types differ: ", dtypeName(t), " and ", dtypeName(c.dtype(i)));
    if (!dispatchType(t, [](auto) {}) || (t == DType::Bool && op != BinOp::Equal))
        c.fail("input type ", dtypeName(t), " is not supported");
    if (n == 1) { // Max/Min of one input: a copy
        const int src = c.plainInput(0);
        const int dst = c.output(0, t, c.shape(0));
        c.addFn({src}, {dst}, [src, dst](Program& p) {
            std::memcpy(p.slot(dst).data(), p.slot(src).data(), p.slot(dst).buffer.bytes);
        });
        return true;
    }
    // Pairwise left to right; intermediate results are unnamed.
    std::string acc = c.node.inputs[0];
    Shape accShape = c.shape(0);
    for (std::size_t i = 1; i < n; ++i) {
        const std::string& bName = c.node.inputs[i];
        const Shape sb = c.shape(i);
        const Shape out = broadcastShapes(accShape, sb, c);
        const bool last = i + 1 == n;
        const std::string outName = last ? c.node.outputs[0] : str(c.node.outputs[0], "#", i);
        const bool commutative = op == BinOp::Add || op == BinOp::Mul || op == BinOp::Max || op == BinOp::Min;
        bool done = false;
        if (t == DType::Float && op != BinOp::Equal && op != BinOp::Pow && numelOf(out) > 0) {
            if (accShape == out)
                done = tryDnnlBinary(c, op, acc, bName, out, outName, last);
            else if (commutative && sb == out)
                done = tryDnnlBinary(c, op, bName, acc, out, outName, last);
        }
        if (!done) {
            const int a = c.valueAs(acc, plainDesc(accShape, t));
            const int b = c.valueAs(bName, plainDesc(sb, t));
            const int dst = c.outputNamed(outName, op == BinOp::Equal ? DType::Bool : t, out);
            addPlainBinary(c, op, a, b, dst);
        }
        acc = outName;
        accShape = out;
    }
    return true;
}

const bool binaryRegistered = [] {
    for (const char* op : {"Add", "Sub", "Mul", "Div", "Max", "Min", "Equal", "Pow"})
        registerOp(op, buildBinary);
    return true;
}();

} // namespace
} // namespace qs::rt
