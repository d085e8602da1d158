#include "data/idx.h"

#include "util/error.h"

#include <zlib.h>

#include <cstring>
#include <fstream>

namespace qs {

std::string readMaybeGzip(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        fail(path, ": cannot open file (", std::strerror(errno), ")");
    std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return gunzipIfNeeded(std::move(raw), path);
}

std::string gunzipIfNeeded(std::string raw, const std::string& path)
{
    if (raw.size() < 2 || uint8_t(raw[0]) != 0x1f || uint8_t(raw[1]) != 0x8b)
        return raw;
    std::string out;
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
        fail(path, ": cannot start gzip decompression");
    zs.next_in = reinterpret_cast<Bytef*>(raw.data());
    zs.avail_in = uInt(raw.size());
    char buf[1 << 16];
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        zs.next_out = reinterpret_cast<Bytef*>(buf);
        zs.avail_out = sizeof buf;
        rc = inflate(&zs, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&zs);
            fail(path, ": corrupt or truncated gzip data");
        }
        out.append(buf, sizeof buf - zs.avail_out);
        if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
            inflateEnd(&zs);
            fail(path, ": truncated gzip data");
        }
    }
    inflateEnd(&zs);
    return out;
}

namespace {
uint32_t bigEndian32(const unsigned char* p)
{
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
} // namespace

Tensor readIdx(const std::string& path)
{
    return parseIdx(readMaybeGzip(path), path);
}

Tensor parseIdx(const std::string& data, const std::string& path)
{
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    if (data.size() < 4 || p[0] != 0 || p[1] != 0)
        fail(path, ": not an IDX file (bad magic)");
    DType dtype;
    std::size_t esize;
    switch (p[2]) {
    case 0x08: dtype = DType::UInt8; esize = 1; break;
    case 0x09: dtype = DType::Int8; esize = 1; break;
    case 0x0B: dtype = DType::Int16; esize = 2; break;
    case 0x0C: dtype = DType::Int32; esize = 4; break;
    case 0x0D: dtype = DType::Float; esize = 4; break;
    case 0x0E: dtype = DType::Double; esize = 8; break;
    default: fail(path, ": IDX type code 0x", std::hex, int(p[2]), " is not one of 08 09 0B 0C 0D 0E");
    }
    int rank = p[3];
    if (rank == 0 || rank > 8)
        fail(path, ": IDX rank ", rank, " is out of range 1..8");
    if (data.size() < 4 + 4 * std::size_t(rank))
        fail(path, ": truncated IDX header");
    Shape shape;
    uint64_t n = 1;
    for (int i = 0; i < rank; ++i) {
        uint32_t d = bigEndian32(p + 4 + 4 * i);
        shape.push_back(d);
        if (d != 0 && n > (uint64_t(1) << 36) / d)
            fail(path, ": IDX dimensions are implausibly large");
        n *= d;
    }
    std::size_t header = 4 + 4 * std::size_t(rank);
    if (uint64_t(data.size() - header) != n * esize)
        fail(path, ": IDX payload has ", data.size() - header, " bytes, expected ", n * esize, " for shape ",
             shapeString(shape), data.size() - header < n * esize ? " (truncated)" : "");
    Tensor t(dtype, shape);
    t.name = path;
    const unsigned char* src = p + header;
    // IDX stores multi-byte values big-endian.
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t b = 0; b < esize; ++b)
            reinterpret_cast<unsigned char*>(t.bytes.data())[i * esize + b] = src[i * esize + esize - 1 - b];
    return t;
}

void writeIdx(const Tensor& t, const std::string& path)
{
    unsigned char code;
    switch (t.dtype) {
    case DType::UInt8: code = 0x08; break;
    case DType::Int8: code = 0x09; break;
    case DType::Int16: code = 0x0B; break;
    case DType::Int32: code = 0x0C; break;
    case DType::Float: code = 0x0D; break;
    case DType::Double: code = 0x0E; break;
    default: fail(path, ": IDX cannot store ", dtypeName(t.dtype));
    }
    std::string out = {0, 0, char(code), char(t.shape.size())};
    for (int64_t d : t.shape)
        for (int s = 24; s >= 0; s -= 8)
            out += char((uint32_t(d) >> s) & 0xff);
    std::size_t esize = elementSize(t.dtype);
    for (std::size_t i = 0; i < t.bytes.size(); i += esize)
        for (std::size_t b = 0; b < esize; ++b)
            out += char(t.bytes[i + esize - 1 - b]);
    std::ofstream f(path, std::ios::binary);
    f.write(out.data(), std::streamsize(out.size()));
    if (!f)
        fail(path, ": cannot write");
}

} // namespace qs
