#include "data/npy.h"

#include "util/error.h"

#include <cstring>
#include <fstream>
#include <regex>

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
    if (bytes.size() < start + headerLen)
        fail(label, ": truncated NPY header");
    std::string header = bytes.substr(start, headerLen);
    std::smatch m;
    if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')")))
        fail(label, ": NPY header has no descr");
    DType dtype = dtypeFromDescr(m[1], label);
    if (!std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*(True|False))")))
        fail(label, ": NPY header has no fortran_order");
    if (m[1] == "True")
        fail(label, ": Fortran-ordered NPY arrays are not supported; save with C order");
    if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))")))
        fail(label, ": NPY header has no shape");
    Shape shape;
    std::string dims = m[1];
    std::regex num(R"(\d+)");
    for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it) {
        const int64_t limit = int64_t(1) << 36;
        int64_t d = it->str().size() > 12 ? limit + 1 : std::stoll(it->str());
        if (d > limit || (d > 0 && numelOf(shape) > limit / d))
            fail(label, ": NPY shape is implausibly large");
        shape.push_back(d);
    }
    // Check the payload before allocating: a header may claim any shape.
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
    std::ifstream in(path, std::ios::binary);
    if (!in)
        fail(path, ": cannot open file (", std::strerror(errno), ")");
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return parseNpy(bytes, path);
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
