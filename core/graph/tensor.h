// Tensor: a named, typed, shaped block of host memory. Element types follow ONNX's
// TensorProto numbering so import and export are a cast, not a table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace qs {

enum class DType : int {
    Undefined = 0, Float = 1, UInt8 = 2, Int8 = 3, UInt16 = 4, Int16 = 5, Int32 = 6, Int64 = 7,
    String = 8, Bool = 9, Float16 = 10, Double = 11, UInt32 = 12, UInt64 = 13, Complex64 = 14,
    Complex128 = 15, BFloat16 = 16,
};

using Shape = std::vector<int64_t>;

// Bytes per element; 0 for String and Undefined.
std::size_t elementSize(DType t);
const char* dtypeName(DType t);
bool isKnownDType(int onnxType);
bool isFloating(DType t);
int64_t numelOf(const Shape& s);
std::string shapeString(const Shape& s);

float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f);
float bfloat16ToFloat(uint16_t h);

template <typename T> constexpr DType dtypeOf();
template <> constexpr DType dtypeOf<float>() { return DType::Float; }
template <> constexpr DType dtypeOf<double>() { return DType::Double; }
template <> constexpr DType dtypeOf<int8_t>() { return DType::Int8; }
template <> constexpr DType dtypeOf<uint8_t>() { return DType::UInt8; }
template <> constexpr DType dtypeOf<int16_t>() { return DType::Int16; }
template <> constexpr DType dtypeOf<uint16_t>() { return DType::UInt16; }
template <> constexpr DType dtypeOf<int32_t>() { return DType::Int32; }
template <> constexpr DType dtypeOf<uint32_t>() { return DType::UInt32; }
template <> constexpr DType dtypeOf<int64_t>() { return DType::Int64; }
template <> constexpr DType dtypeOf<uint64_t>() { return DType::UInt64; }
template <> constexpr DType dtypeOf<bool>() { return DType::Bool; }

struct Tensor {
    std::string name;
    DType dtype = DType::Float;
    Shape shape;
    std::vector<std::byte> bytes;      // numel * elementSize, little-endian, row-major
    std::vector<std::string> strings;  // DType::String only

    Tensor() = default;
    Tensor(DType type, Shape s);       // zero-filled

    int64_t numel() const { return numelOf(shape); }

    template <typename T> std::span<T> data()
    {
        checkType(dtypeOf<T>());
        return {reinterpret_cast<T*>(bytes.data()), bytes.size() / sizeof(T)};
    }
    template <typename T> std::span<const T> data() const
    {
        checkType(dtypeOf<T>());
        return {reinterpret_cast<const T*>(bytes.data()), bytes.size() / sizeof(T)};
    }

    // Any numeric dtype converted to float (int64 and double may lose precision).
    std::vector<float> toFloat() const;
    // Any integer dtype converted to int64 (for shapes, axes, indices).
    std::vector<int64_t> toInt64() const;

    template <typename T> static Tensor fromVector(Shape s, const std::vector<T>& values)
    {
        Tensor t(dtypeOf<T>(), std::move(s));
        auto d = t.data<T>();
        for (std::size_t i = 0; i < values.size() && i < d.size(); ++i)
            d[i] = values[i];
        return t;
    }

private:
    void checkType(DType want) const;
};

} // namespace qs
