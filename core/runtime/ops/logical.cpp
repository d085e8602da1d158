// Logical and comparison operators in plain C++: Not, And, Or, Xor (bool) and
// Less, LessOrEqual, Greater, GreaterOrEqual (any numeric type -> bool), with
// multidirectional broadcasting. Attention masks of transformer exports use them.
#include "runtime/ops/ops.h"
#include "runtime/ops/plain.h"

namespace qs::rt {
namespace {

bool buildNot(NodeContext& c)
{
    if (c.dtype(0) != DType::Bool)
        c.fail("input must be bool, got ", dtypeName(c.dtype(0)));
    const int src = c.plainInput(0);
    const int dst = c.output(0, DType::Bool, c.shape(0));
    c.addFn({src}, {dst}, [=](Program& p) {
        const bool* x = p.slot(src).as<bool>();
        bool* y = p.slot(dst).as<bool>();
        for (int64_t i = 0, n = p.slot(dst).numel(); i < n; ++i)
            y[i] = !x[i];
    });
    return true;
}

template <typename Fn>
bool buildPairToBool(NodeContext& c, bool boolOnly, Fn fn)
{
    const DType t = c.dtype(0);
    if (c.dtype(1) != t)
        c.fail("input types differ: ", dtypeName(t), " and ", dtypeName(c.dtype(1)));
    if (boolOnly ? t != DType::Bool : (t == DType::Bool || !dispatchType(t, [](auto) {})))
        c.fail("input type ", dtypeName(t), " is not supported");
    const Shape sa = c.shape(0), sb = c.shape(1);
    const Shape out = broadcastShapes(sa, sb, c);
    const int a = c.plainInput(0), b = c.plainInput(1);
    const int dst = c.output(0, DType::Bool, out);
    c.addFn({a, b}, {dst}, [=](Program& p) {
        bool* z = p.slot(dst).as<bool>();
        dispatchType(t, [&](auto tag) {
            using T = decltype(tag);
            const T* x = p.slot(a).as<T>();
            const T* y = p.slot(b).as<T>();
            forEachBroadcast(out, {sa, sb}, [&](int64_t o, const int64_t* off) { z[o] = fn(x[off[0]], y[off[1]]); });
        });
    });
    return true;
}

const bool logicalRegistered = [] {
    registerOp("Not", buildNot);
    registerOp("And", [](NodeContext& c) { return buildPairToBool(c, true, [](auto a, auto b) { return a && b; }); });
    registerOp("Or", [](NodeContext& c) { return buildPairToBool(c, true, [](auto a, auto b) { return a || b; }); });
    registerOp("Xor", [](NodeContext& c) { return buildPairToBool(c, true, [](auto a, auto b) { return a != b; }); });
    registerOp("Less", [](NodeContext& c) { return buildPairToBool(c, false, [](auto a, auto b) { return a < b; }); });
    registerOp("LessOrEqual",
               [](NodeContext& c) { return buildPairToBool(c, false, [](auto a, auto b) { return a <= b; }); });
    registerOp("Greater", [](NodeContext& c) { return buildPairToBool(c, false, [](auto a, auto b) { return a > b; }); });
    registerOp("GreaterOrEqual",
               [](NodeContext& c) { return buildPairToBool(c, false, [](auto a, auto b) { return a >= b; }); });
    return true;
}();

} // namespace
} // namespace qs::rt
