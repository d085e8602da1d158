// libFuzzer: a fuzzed ONNX model is imported, compiled and run on an input made from
// the same bytes; every step yields a result or a qs::Error, never a crash, hang or
// sanitizer report. Sizes are bounded so an input runs in milliseconds: at most
// kMaxNodes nodes, symbolic dimensions set to 2, at most kMaxElements elements in any
// input and in any value of the compiled plan (larger models are passed over, not run).
// Seeds: tests/fuzz/corpus/fuzz_runtime (small models, one per operator family, and
// crash-*.onnx for fixed bugs; tests/fuzz/make_runtime_seeds.py writes the seed-*.onnx).
#include "graph/onnx_import.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>
#include <type_traits>

namespace {

constexpr std::size_t kMaxNodes = 64;
constexpr int64_t kMaxElements = 1 << 16;

// Element i of an input: the fuzzed bytes read cyclically, with the special values
// kernels must survive (NaN, infinities, zero, extremes) among ordinary small ones.
double valueAt(const uint8_t* data, std::size_t size, int64_t i)
{
    const uint8_t b = data[std::size_t(i) % size];
    switch (b) {
    case 0xff:
        return std::numeric_limits<double>::quiet_NaN();
    case 0xfe:
        return std::numeric_limits<double>::infinity();
    case 0xfd:
        return -std::numeric_limits<double>::infinity();
    case 0xfc:
        return 1e30;
    default:
        return double(int8_t(b)) / 8.0;
    }
}

template<typename T> qs::Tensor filled(const qs::Shape& shape, const uint8_t* data, std::size_t size)
{
    qs::Tensor t(qs::dtypeOf<T>(), shape);
    auto d = t.data<T>();
    for (std::size_t i = 0; i < d.size(); ++i) {
        const double v = valueAt(data, size, int64_t(i));
        if constexpr (std::is_floating_point_v<T>)
            d[i] = T(v);
        else // integers and bools: small values (indices, shapes, axes)
            d[i] = std::isfinite(v) ? T(int64_t(std::clamp(v, -64.0, 64.0)) / 4) : T(0);
    }
    return t;
}

qs::Tensor makeInput(qs::DType dtype, const qs::Shape& shape, const uint8_t* data, std::size_t size)
{
    switch (dtype) {
    case qs::DType::Float:
        return filled<float>(shape, data, size);
    case qs::DType::Double:
        return filled<double>(shape, data, size);
    case qs::DType::Int64:
        return filled<int64_t>(shape, data, size);
    case qs::DType::Int32:
        return filled<int32_t>(shape, data, size);
    case qs::DType::Int8:
        return filled<int8_t>(shape, data, size);
    case qs::DType::UInt8:
        return filled<uint8_t>(shape, data, size);
    case qs::DType::Bool:
        return filled<bool>(shape, data, size);
    default: // other types: zeros
        return qs::Tensor(dtype, shape);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size == 0)
        return 0;
    try {
        qs::Graph g = qs::importOnnxBytes(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.onnx", "");
        if (g.nodes.size() > kMaxNodes)
            return 0;
        qs::CompileOptions options;
        options.threads = 1;
        std::vector<qs::Tensor> inputs;
        for (const qs::ValueInfo& in : g.inputs) {
            qs::Shape shape;
            int64_t n = 1;
            if (!in.dims)
                return 0;
            for (const qs::Dim& d : *in.dims) {
                const int64_t v = d.value >= 0 ? d.value : 2;
                if (v > kMaxElements || n * std::max<int64_t>(v, 1) > kMaxElements)
                    return 0;
                shape.push_back(v);
                n *= std::max<int64_t>(v, 1);
            }
            options.inputShapes[in.name] = shape;
            inputs.push_back(makeInput(in.dtype, shape, data, size));
        }
        std::unique_ptr<qs::Plan> plan = qs::compilePlan(g, options);
        for (const qs::Node& node : g.nodes)
            for (const std::string& v : node.outputs) {
                if (v.empty())
                    continue;
                qs::Shape s;
                try {
                    s = plan->shapeOf(v);
                } catch (const qs::Error&) {
                    continue; // fused away
                }
                int64_t n = 1;
                for (int64_t d : s) {
                    if (d > kMaxElements || n * std::max<int64_t>(d, 1) > kMaxElements)
                        return 0;
                    n *= std::max<int64_t>(d, 1);
                }
            }
        (void)plan->run(inputs);
        if (std::getenv("QS_FUZZ_VERBOSE"))
            std::fprintf(stderr, "ran\n");
    } catch (const qs::Error& e) {
        if (std::getenv("QS_FUZZ_VERBOSE")) // to see what a seed reaches: QS_FUZZ_VERBOSE=1 fuzz_runtime seed
            std::fprintf(stderr, "%s\n", e.what());
    }
    return 0;
}
