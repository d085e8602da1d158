// Trilu (opset 14): keeps the upper (upper=1, default) or lower triangle of the last
// two dims, shifted by the optional diagonal offset k; the rest becomes zero. Any
// dtype. Causal attention masks are built with it (torch.tril).
#include "runtime/ops/ops.h"
#include "runtime/ops/plain.h"

namespace qs::rt {
namespace {

bool buildTrilu(NodeContext& c)
{
    const Shape s = c.shape(0);
    if (s.size() < 2)
        c.fail("input must have at least 2 dims, got ", shapeString(s));
    int64_t k = 0;
    if (c.has(1)) {
        const auto kv = c.requireConstant(1, "k").toInt64();
        if (kv.size() != 1)
            c.fail("k must be a scalar, got ", kv.size(), " values");
        k = kv[0];
    }
    const bool upper = c.node.attrInt("upper", 1) != 0;
    const std::size_t es = elementSize(c.dtype(0));
    if (es == 0)
        c.fail("type ", dtypeName(c.dtype(0)), " is not supported");
    const int64_t rows = s[s.size() - 2], cols = s.back();
    const int64_t mats = rows * cols == 0 ? 0 : numelOf(s) / (rows * cols);
    const int src = c.plainInput(0);
    const int dst = c.output(0, c.dtype(0), s);
    c.addFn({src}, {dst}, [=](Program& p) {
        const std::byte* x = static_cast<const std::byte*>(p.slot(src).data());
        std::byte* y = static_cast<std::byte*>(p.slot(dst).data());
        std::memset(y, 0, p.slot(dst).buffer.bytes);
        for (int64_t m = 0; m < mats; ++m)
            for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j) {
                    // upper keeps j - i >= k, lower keeps j - i <= k
                    if (upper ? j - i < k : j - i > k)
                        continue;
                    const std::size_t o = std::size_t((m * rows + i) * cols + j) * es;
                    std::memcpy(y + o, x + o, es);
                }
    });
    return true;
}

const bool triluRegistered = registerOp("Trilu", buildTrilu);

} // namespace
} // namespace qs::rt
