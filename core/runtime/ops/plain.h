// Plain C++ building blocks for data-movement and integer operators: dtype
// dispatch and broadcasting iteration.
#pragma once

#include "runtime/kernel.h"

#include <cstdint>

namespace qs::rt {

// Calls f(T{}) with T the C++ type of `t`; false for dtypes without one.
template <typename F>
bool dispatchType(DType t, F&& f)
{
    switch (t) {
    case DType::Float: f(float{}); return true;
    case DType::Double: f(double{}); return true;
    case DType::Int8: f(int8_t{}); return true;
    case DType::UInt8: f(uint8_t{}); return true;
    case DType::Int16: f(int16_t{}); return true;
    case DType::UInt16: f(uint16_t{}); return true;
    case DType::Int32: f(int32_t{}); return true;
    case DType::UInt32: f(uint32_t{}); return true;
    case DType::Int64: f(int64_t{}); return true;
    case DType::UInt64: f(uint64_t{}); return true;
    case DType::Bool: f(bool{}); return true;
    default: return false;
    }
}

// Element strides of `in` when broadcast to `out` (0 along broadcast dims), aligned right.
inline std::vector<int64_t> broadcastStrides(const Shape& in, const Shape& out)
{
    std::vector<int64_t> st(out.size(), 0);
    int64_t acc = 1;
    for (std::size_t k = 0; k < in.size(); ++k) {
        const std::size_t i = in.size() - 1 - k, o = out.size() - 1 - k;
        st[o] = in[i] == 1 ? 0 : acc;
        acc *= in[i];
    }
    return st;
}

// Calls f(outIndex, offsets) for every output element, offsets[j] indexing input j.
template <typename F>
void forEachBroadcast(const Shape& out, const std::vector<Shape>& ins, F&& f)
{
    const std::size_t r = out.size(), m = ins.size();
    std::vector<std::vector<int64_t>> st(m);
    for (std::size_t j = 0; j < m; ++j)
        st[j] = broadcastStrides(ins[j], out);
    const int64_t total = numelOf(out);
    std::vector<int64_t> idx(r, 0), off(m, 0);
    for (int64_t o = 0; o < total; ++o) {
        f(o, off.data());
        for (std::size_t d = r; d-- > 0;) {
            ++idx[d];
            for (std::size_t j = 0; j < m; ++j)
                off[j] += st[j][d];
            if (idx[d] < out[d])
                break;
            for (std::size_t j = 0; j < m; ++j)
                off[j] -= st[j][d] * idx[d];
            idx[d] = 0;
        }
    }
}

inline std::vector<int64_t> rowStrides(const Shape& s)
{
    std::vector<int64_t> st(s.size());
    int64_t acc = 1;
    for (std::size_t i = s.size(); i-- > 0;) {
        st[i] = acc;
        acc *= s[i];
    }
    return st;
}

} // namespace qs::rt
