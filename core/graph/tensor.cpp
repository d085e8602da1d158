#include "graph/tensor.h"

#include "util/error.h"

#include <cstring>

namespace qs {

std::size_t elementSize(DType t)
{
    switch (t) {
    case DType::Float: case DType::Int32: case DType::UInt32: return 4;
    case DType::UInt8: case DType::Int8: case DType::Bool: return 1;
    case DType::UInt16: case DType::Int16: case DType::Float16: case DType::BFloat16: return 2;
    case DType::Int64: case DType::UInt64: case DType::Double: case DType::Complex64: return 8;
    case DType::Complex128: return 16;
    case DType::String: case DType::Undefined: return 0;
    }
    return 0;
}

const char* dtypeName(DType t)
{
    switch (t) {
    case DType::Undefined: return "undefined";
    case DType::Float: return "float32";
    case DType::UInt8: return "uint8";
    case DType::Int8: return "int8";
    case DType::UInt16: return "uint16";
    case DType::Int16: return "int16";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::String: return "string";
    case DType::Bool: return "bool";
    case DType::Float16: return "float16";
    case DType::Double: return "float64";
    case DType::UInt32: return "uint32";
    case DType::UInt64: return "uint64";
    case DType::Complex64: return "complex64";
    case DType::Complex128: return "complex128";
    case DType::BFloat16: return "bfloat16";
    }
    return "unknown";
}

bool isKnownDType(int onnxType)
{
    return onnxType >= 1 && onnxType <= 16;
}

bool isFloating(DType t)
{
    return t == DType::Float || t == DType::Double || t == DType::Float16 || t == DType::BFloat16;
}

int64_t numelOf(const Shape& s)
{
    int64_t n = 1;
    for (int64_t d : s)
        n *= d;
    return n;
}

std::string shapeString(const Shape& s)
{
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i)
            out += ",";
        out += s[i] < 0 ? std::string("?") : std::to_string(s[i]);
    }
    return out + "]";
}

float halfToFloat(uint16_t h)
{
    uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { // subnormal: renormalize
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                --exp;
            }
            mant &= 0x3ff;
            bits = sign | (exp << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t floatToHalf(float f)
{
    uint32_t x;
    std::memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff)
        return uint16_t(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (exp >= 31)
        return uint16_t(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10)
            return uint16_t(sign);
        mant |= 0x800000;
        uint32_t shift = uint32_t(14 - exp);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            ++half;
        return uint16_t(sign | half);
    }
    uint32_t half = sign | (uint32_t(exp) << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        ++half; // may carry into the exponent, which is the correct rounding
    return uint16_t(half);
}

float bfloat16ToFloat(uint16_t h)
{
    uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// ---- TensorBytes ----------------------------------------------------------------

TensorBytes::TensorBytes(std::size_t n) : v_(n ? std::make_shared<std::vector<std::byte>>(n) : nullptr) { }

TensorBytes::TensorBytes(std::vector<std::byte> v)
    : v_(v.empty() ? nullptr : std::make_shared<std::vector<std::byte>>(std::move(v)))
{
}

TensorBytes::TensorBytes(const TensorBytes& o)
    : v_(o.sealed_ || !o.v_ ? o.v_ : std::make_shared<std::vector<std::byte>>(*o.v_)), sealed_(o.sealed_)
{
}

TensorBytes::TensorBytes(TensorBytes&& o) noexcept : v_(std::move(o.v_)), sealed_(o.sealed_)
{
    o.sealed_ = false;
}

TensorBytes& TensorBytes::operator=(const TensorBytes& o)
{
    if (this != &o) {
        v_ = o.sealed_ || !o.v_ ? o.v_ : std::make_shared<std::vector<std::byte>>(*o.v_);
        sealed_ = o.sealed_;
    }
    return *this;
}

TensorBytes& TensorBytes::operator=(TensorBytes&& o) noexcept
{
    if (this != &o) {
        v_ = std::move(o.v_);
        sealed_ = o.sealed_;
        o.v_.reset();
        o.sealed_ = false;
    }
    return *this;
}

void TensorBytes::clear()
{
    v_.reset();
    sealed_ = false;
}

bool TensorBytes::operator==(const TensorBytes& o) const
{
    return size() == o.size() && (size() == 0 || std::memcmp(data(), o.data(), size()) == 0);
}

std::shared_ptr<const std::byte> TensorBytes::storage() const
{
    if (!v_)
        return nullptr;
    return std::shared_ptr<const std::byte>(v_, v_->data());
}

std::vector<std::byte>& TensorBytes::mut()
{
    if (!v_)
        v_ = std::make_shared<std::vector<std::byte>>();
    else if (sealed_ && v_.use_count() > 1) // shared: copy on write
        v_ = std::make_shared<std::vector<std::byte>>(*v_);
    sealed_ = false;
    return *v_;
}

// ---- Tensor ---------------------------------------------------------------------

Tensor::Tensor(DType type, Shape s) : dtype(type), shape(std::move(s))
{
    if (type == DType::String)
        strings.resize(std::size_t(numel()));
    else
        bytes.resize(std::size_t(numel()) * elementSize(type));
}

void Tensor::checkType(DType want) const
{
    if (dtype != want)
        fail("tensor ", quoted(name), ": accessed as ", dtypeName(want), " but it holds ", dtypeName(dtype));
}

namespace {
template <typename Out, typename In> void convertAll(const TensorBytes& bytes, std::vector<Out>& out)
{
    std::size_t n = bytes.size() / sizeof(In);
    out.resize(n);
    const In* p = reinterpret_cast<const In*>(bytes.data());
    for (std::size_t i = 0; i < n; ++i)
        out[i] = static_cast<Out>(p[i]);
}

template <typename Out> std::vector<Out> convertNumeric(const Tensor& t)
{
    std::vector<Out> out;
    switch (t.dtype) {
    case DType::Float: convertAll<Out, float>(t.bytes, out); break;
    case DType::Double: convertAll<Out, double>(t.bytes, out); break;
    case DType::Int8: convertAll<Out, int8_t>(t.bytes, out); break;
    case DType::UInt8: convertAll<Out, uint8_t>(t.bytes, out); break;
    case DType::Bool: convertAll<Out, uint8_t>(t.bytes, out); break;
    case DType::Int16: convertAll<Out, int16_t>(t.bytes, out); break;
    case DType::UInt16: convertAll<Out, uint16_t>(t.bytes, out); break;
    case DType::Int32: convertAll<Out, int32_t>(t.bytes, out); break;
    case DType::UInt32: convertAll<Out, uint32_t>(t.bytes, out); break;
    case DType::Int64: convertAll<Out, int64_t>(t.bytes, out); break;
    case DType::UInt64: convertAll<Out, uint64_t>(t.bytes, out); break;
    case DType::Float16:
    case DType::BFloat16: {
        const uint16_t* p = reinterpret_cast<const uint16_t*>(t.bytes.data());
        out.resize(t.bytes.size() / 2);
        for (std::size_t i = 0; i < out.size(); ++i)
            out[i] = static_cast<Out>(t.dtype == DType::Float16 ? halfToFloat(p[i]) : bfloat16ToFloat(p[i]));
        break;
    }
    default:
        fail("tensor ", quoted(t.name), ": cannot convert ", dtypeName(t.dtype), " to a number");
    }
    return out;
}
} // namespace

std::vector<float> Tensor::toFloat() const
{
    return convertNumeric<float>(*this);
}

std::vector<int64_t> Tensor::toInt64() const
{
    if (isFloating(dtype))
        fail("tensor ", quoted(name), ": expected an integer tensor, got ", dtypeName(dtype));
    return convertNumeric<int64_t>(*this);
}

} // namespace qs
