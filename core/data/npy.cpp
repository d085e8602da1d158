#include "data/npy.h"

#include "util/error.h"
#include "util/file.h"

#include <cctype>
#include <cstring>
#include <fstream>
#include <optional>

namespace qs {
namespace {

DType dtypeFromDescr(const std::string& d, const std::string& label)
{
    static const std::pair<const char*, DType> table[] = {
        {"<f4", DType::Float}, {"<f8", DType::Double}, {"|u1", DType::UInt8}, {"|i1", DType::Int8},
        {"<i2", DType::Int16}, {"<u2", DType::UInt16}, {"<i4", DType::Int32}, {"<u4", DType::UInt32},
        {"<i8", DType::Int64}, {"<u8", DType::UInt64}, {"|b1", DType::Bool}, {"<f2", DType::Float16},
        {"u1", DType::UInt8}, {"i1", DType::Int8}, {"b1", DType::Bool}};
    for (const auto& [name, type] : table)
        if (d == name)
            return type;
    fail(label, ": NPY dtype ", quoted(d), " is not supported (little-endian numeric types only)");
}

std::string descrOf(DType t)
{
    switch (t) {
    case DType::Float: return "<f4";
    case DType::Double: return "<f8";
    case DType::UInt8: return "|u1";
    case DType::Int8: return "|i1";
    case DType::Int16: return "<i2";
    case DType::UInt16: return "<u2";
    case DType::Int32: return "<i4";
    case DType::UInt32: return "<u4";
    case DType::Int64: return "<i8";
    case DType::UInt64: return "<u8";
    case DType::Bool: return "|b1";
    case DType::Float16: return "<f2";
    default: fail("NPY cannot store ", dtypeName(t));
    }
}

// The header dict, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }:
// a hand-written scanner over this one Python literal, linear in the header length.
struct NpyHeader {
    std::optional<std::string> descr;
    std::optional<bool> fortranOrder;
    std::optional<Shape> shape;
};

class HeaderScanner {
public:
    HeaderScanner(const std::string& text, const std::string& label) : s_(text), label_(label) { }

    NpyHeader parse()
    {
        NpyHeader h;
        expect('{');
        while (true) {
            skipSpace();
            if (peek() == '}') {
                ++i_;
                break;
            }
            const std::string key = stringLiteral();
            expect(':');
            skipSpace();
            if (key == "descr" && !h.descr)
                h.descr = stringLiteral();
            else if (key == "fortran_order" && !h.fortranOrder)
                h.fortranOrder = boolean();
            else if (key == "shape" && !h.shape)
                h.shape = shapeTuple();
            else
                bad(str("key ", quoted(key), " is repeated or not one of descr, fortran_order, shape"));
            skipSpace();
            if (peek() == ',')
                ++i_;
            else if (peek() != '}')
                bad("expected , or } after the value of " + quoted(key));
        }
        skipSpace();
        if (i_ != s_.size())
            bad("unexpected text after the dict");
        return h;
    }

private:
    [[noreturn]] void bad(const std::string& what) const
    {
        fail(label_, ": NPY header is malformed at byte ", i_, ": ", what);
    }
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    void skipSpace()
    {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
            ++i_;
    }
    void expect(char ch)
    {
        skipSpace();
        if (peek() != ch)
            bad(str("expected '", ch, "'"));
        ++i_;
    }
    std::string stringLiteral()
    {
        const char q = peek();
        if (q != '\'' && q != '"')
            bad("expected a quoted string");
        const std::size_t close = s_.find(q, i_ + 1);
        if (close == std::string::npos)
            bad("unterminated string");
        std::string out = s_.substr(i_ + 1, close - i_ - 1);
        i_ = close + 1;
        return out;
    }
    bool boolean()
    {
        for (const auto& [word, value] : {std::pair<const char*, bool> {"True", true}, {"False", false}})
            if (s_.compare(i_, std::strlen(word), word) == 0) {
                i_ += std::strlen(word);
                return value;
            }
        bad("fortran_order must be True or False");
    }
    // (d0, d1, ...) with non-negative decimal dims; each dim and their product bounded.
    Shape shapeTuple()
    {
        const int64_t limit = int64_t(1) << 36;
        if (peek() != '(')
            bad("shape must be a tuple");
        ++i_;
        Shape shape;
        int64_t count = 1;
        while (true) {
            skipSpace();
            if (peek() == ')') {
                ++i_;
                return shape;
            }
            if (peek() == '-')
                fail(label_, ": NPY shape has a negative dimension");
            if (!std::isdigit(static_cast<unsigned char>(peek())))
                bad("shape must hold non-negative integers");
            int64_t d = 0;
            while (std::isdigit(static_cast<unsigned char>(peek()))) {
                d = d * 10 + (peek() - '0');
                if (d > limit)
                    fail(label_, ": NPY shape is implausibly large");
                ++i_;
            }
            if (peek() == 'L') // written by Python 2
                ++i_;
            if (d > 0 && count > limit / d)
                fail(label_, ": NPY shape is implausibly large");
            count *= d;
            shape.push_back(d);
            skipSpace();
            if (peek() == ',')
                ++i_;
            else if (peek() != ')')
                bad("expected , or ) in the shape");
        }
    }

    const std::string& s_;
    const std::string& label_;
    std::size_t i_ = 0;
};

// Longest header accepted; NumPy writes a few hundred bytes for the types read here.
constexpr std::size_t kMaxNpyHeader = 1 << 16;

} // namespace

Tensor parseNpy(const std::string& bytes, const std::string& label)
{
    if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0)
        fail(label, ": not an NPY file (bad magic)");
    int major = uint8_t(bytes[6]);
    std::size_t headerLen, start;
    if (major == 1) {
        headerLen = uint8_t(bytes[8]) | std::size_t(uint8_t(bytes[9])) << 8;
        start = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12)
            fail(label, ": truncated NPY header");
        headerLen = 0;
        for (int i = 0; i < 4; ++i)
            headerLen |= std::size_t(uint8_t(bytes[8 + i])) << (8 * i);
        start = 12;
    } else {
        fail(label, ": NPY format version ", major, " is not supported");
    }
    if (headerLen > kMaxNpyHeader)
        fail(label, ": NPY header is ", headerLen, " bytes, more than the ", kMaxNpyHeader, " accepted");
    if (bytes.size() < start + headerLen)
        fail(label, ": truncated NPY header");
    const NpyHeader h = HeaderScanner(bytes.substr(start, headerLen), label).parse();
    if (!h.descr)
        fail(label, ": NPY header has no descr");
    DType dtype = dtypeFromDescr(*h.descr, label);
    if (!h.fortranOrder)
        fail(label, ": NPY header has no fortran_order");
    if (*h.fortranOrder)
        fail(label, ": Fortran-ordered NPY arrays are not supported; save with C order");
    if (!h.shape)
        fail(label, ": NPY header has no shape");
    const Shape& shape = *h.shape;
    // Check the payload before allocating: a header may claim any shape (its element
    // count is at most 2^36, so the byte count cannot overflow).
    std::size_t want = std::size_t(numelOf(shape)) * elementSize(dtype);
    if (bytes.size() - start - headerLen != want)
        fail(label, ": NPY payload has ", bytes.size() - start - headerLen, " bytes, expected ", want, " for ",
             dtypeName(dtype), " ", shapeString(shape));
    Tensor t(dtype, shape);
    t.name = label;
    if (want > 0) // an empty array has no buffer to copy into
        std::memcpy(t.bytes.data(), bytes.data() + start + headerLen, want);
    return t;
}

Tensor readNpy(const std::string& path)
{
    return parseNpy(readRegularFile(path, kMaxDataFileBytes), path);
}

std::string npyBytes(const Tensor& t)
{
    std::string header = "{'descr': '" + descrOf(t.dtype) + "', 'fortran_order': False, 'shape': (";
    for (std::size_t i = 0; i < t.shape.size(); ++i)
        header += std::to_string(t.shape[i]) + (t.shape.size() == 1 || i + 1 < t.shape.size() ? ", " : "");
    header += "), }";
    std::size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    std::string out = "\x93NUMPY\x01";
    out += '\0';
    out += char(header.size() & 0xff);
    out += char(header.size() >> 8);
    out += header;
    out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
    return out;
}

void writeNpy(const Tensor& t, const std::string& path)
{
    const std::string out = npyBytes(t);
    std::ofstream f(path, std::ios::binary);
    f.write(out.data(), std::streamsize(out.size()));
    if (!f)
        fail(path, ": cannot write");
}

} // namespace qs
