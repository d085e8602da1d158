// Tensor: a named, typed, shaped block of host memory. Element types follow ONNX's
// TensorProto numbering so import and export are a cast, not a table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
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

// The bytes of a Tensor: a std::vector<std::byte> whose storage sealed tensors share.
//
// Copying an unsealed buffer copies its bytes, as a vector would. seal() promises that no
// mutable pointer into the buffer is used any more; from then on copies of it share one
// storage (a copied graph, a plan's graph, CompileOptions::initializerOverrides, a
// session's working copy cost no weight bytes). Any mutable access (data(), begin(),
// operator[], resize, ...) first gives a shared buffer storage of its own (copy on write)
// and unseals it, so writing through a pointer handed out can never change another
// tensor: only tensors sealed since their last write are ever shared.
class TensorBytes {
public:
    using value_type = std::byte;
    using size_type = std::size_t;
    using iterator = std::byte*;
    using const_iterator = const std::byte*;

    TensorBytes() = default;
    explicit TensorBytes(std::size_t n);
    TensorBytes(std::vector<std::byte> v); // NOLINT: a vector converts implicitly, as before
    TensorBytes(const TensorBytes& o);
    TensorBytes(TensorBytes&& o) noexcept;
    TensorBytes& operator=(const TensorBytes& o);
    TensorBytes& operator=(TensorBytes&& o) noexcept;
    ~TensorBytes() = default;

    std::size_t size() const { return v_ ? v_->size() : 0; }
    bool empty() const { return size() == 0; }
    const std::byte* data() const { return v_ ? v_->data() : nullptr; }
    std::byte* data() { return mut().data(); }
    const_iterator begin() const { return data(); }
    const_iterator end() const { return data() + size(); }
    iterator begin() { return data(); }
    iterator end() { return data() + size(); }
    const std::byte& operator[](std::size_t i) const { return (*v_)[i]; }
    std::byte& operator[](std::size_t i) { return mut()[i]; }
    void resize(std::size_t n) { mut().resize(n); }
    void reserve(std::size_t n) { mut().reserve(n); }
    void clear();
    template <typename It> void insert(const_iterator pos, It first, It last)
    {
        const std::size_t at = std::size_t(pos - data());
        auto& v = mut();
        v.insert(v.begin() + std::ptrdiff_t(at), first, last);
    }
    std::vector<std::byte> toVector() const { return {begin(), end()}; }
    bool operator==(const TensorBytes& o) const;

    // The sharing: see the class comment. seal() costs nothing.
    void seal() { sealed_ = true; }
    bool sealed() const { return sealed_; }
    bool sharesStorageWith(const TensorBytes& o) const { return v_ && v_ == o.v_; }
    // The storage, alive while the pointer is: a plan reading a weight in place keeps it
    // even when the tensor is written (copied on write) or destroyed meanwhile.
    std::shared_ptr<const std::byte> storage() const;

private:
    std::vector<std::byte>& mut();
    std::shared_ptr<std::vector<std::byte>> v_;
    bool sealed_ = false;
};

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
    TensorBytes bytes;                 // numel * elementSize, little-endian, row-major
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

    // Seals the bytes (TensorBytes::seal): copies of this tensor share them until written.
    Tensor& seal()
    {
        bytes.seal();
        return *this;
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
