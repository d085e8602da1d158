#include "data/idx.h"

#include "util/error.h"
#include "util/file.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>

namespace qs {

namespace {

uint32_t bigEndian32(const unsigned char* p)
{
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

struct IdxHeader {
    DType dtype = DType::UInt8;
    int rank = 0;
    Shape shape; // empty until the dims are read
    uint64_t numel = 0;
    std::size_t bytes() const { return 4 + 4 * std::size_t(rank); }
    uint64_t totalBytes() const { return bytes() + numel * elementSize(dtype); }
};

// The magic, type code and rank: the first 4 bytes.
IdxHeader idxMagic(const std::string& data, const std::string& path)
{
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    if (data.size() < 4 || p[0] != 0 || p[1] != 0)
        fail(path, ": not an IDX file (bad magic)");
    IdxHeader h;
    switch (p[2]) {
    case 0x08:
        h.dtype = DType::UInt8;
        break;
    case 0x09:
        h.dtype = DType::Int8;
        break;
    case 0x0B:
        h.dtype = DType::Int16;
        break;
    case 0x0C:
        h.dtype = DType::Int32;
        break;
    case 0x0D:
        h.dtype = DType::Float;
        break;
    case 0x0E:
        h.dtype = DType::Double;
        break;
    default: fail(path, ": IDX type code 0x", std::hex, int(p[2]), " is not one of 08 09 0B 0C 0D 0E");
    }
    h.rank = p[3];
    if (h.rank == 0 || h.rank > 8)
        fail(path, ": IDX rank ", h.rank, " is out of range 1..8");
    return h;
}

// The whole header: magic and dims, with the element count bounded.
IdxHeader idxHeader(const std::string& data, const std::string& path)
{
    IdxHeader h = idxMagic(data, path);
    if (data.size() < h.bytes())
        fail(path, ": truncated IDX header");
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    uint64_t n = 1;
    for (int i = 0; i < h.rank; ++i) {
        uint32_t d = bigEndian32(p + 4 + 4 * i);
        h.shape.push_back(d);
        if (d != 0 && n > (uint64_t(1) << 36) / d)
            fail(path, ": IDX dimensions are implausibly large");
        n *= d;
    }
    h.numel = n;
    return h;
}

// Streaming gunzip that hands out exactly the bytes asked for.
class Gunzip {
public:
    Gunzip(const std::string& raw, const std::string& path) : path_(path)
    {
        if (inflateInit2(&zs_, 15 + 32) != Z_OK)
            fail(path, ": cannot start gzip decompression");
        zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
        if (raw.size() > std::numeric_limits<uInt>::max())
            fail(path, ": gzip file is too large");
        zs_.avail_in = uInt(raw.size());
    }
    ~Gunzip() { inflateEnd(&zs_); }
    Gunzip(const Gunzip&) = delete;
    Gunzip& operator=(const Gunzip&) = delete;

    // Inflates until `out` holds `want` bytes or the stream ends; returns out.size() == want.
    bool fill(std::string& out, std::size_t want)
    {
        while (out.size() < want && !ended_) {
            const std::size_t have = out.size(), step = std::min<std::size_t>(want - have, 1 << 20);
            out.resize(have + step);
            zs_.next_out = reinterpret_cast<Bytef*>(out.data() + have);
            zs_.avail_out = uInt(step);
            const int rc = inflate(&zs_, Z_NO_FLUSH);
            out.resize(have + step - zs_.avail_out);
            if (rc == Z_STREAM_END)
                ended_ = true;
            else if (rc == Z_BUF_ERROR || (rc == Z_OK && zs_.avail_in == 0 && zs_.avail_out != 0))
                fail(path_, ": truncated gzip data");
            else if (rc != Z_OK)
                fail(path_, ": corrupt gzip data");
        }
        return out.size() == want;
    }
    // True when nothing more inflates (a byte past the announced size is excess).
    bool atEnd()
    {
        std::string more;
        return !fill(more, 1);
    }

private:
    z_stream zs_ {};
    const std::string& path_;
    bool ended_ = false;
};

} // namespace

std::string readMaybeGzip(const std::string& path)
{
    return gunzipIfNeeded(readRegularFile(path, kMaxDataFileBytes), path);
}

std::string gunzipIfNeeded(std::string raw, const std::string& path)
{
    if (raw.size() < 2 || uint8_t(raw[0]) != 0x1f || uint8_t(raw[1]) != 0x8b)
        return raw;
    // Inflate the header first and then only the payload it announces: a small file
    // cannot make us hold more than its header declares (decompression bombs).
    Gunzip gz(raw, path);
    std::string out;
    if (!gz.fill(out, 4))
        fail(path, ": not an IDX file (bad magic)");
    const IdxHeader magic = idxMagic(out, path);
    if (!gz.fill(out, magic.bytes()))
        fail(path, ": truncated IDX header");
    const IdxHeader h = idxHeader(out, path);
    if (h.totalBytes() > kMaxDataFileBytes)
        fail(path, ": IDX data of ", h.totalBytes(), " bytes is more than the ", kMaxDataFileBytes, " accepted");
    if (!gz.fill(out, std::size_t(h.totalBytes())))
        fail(path, ": IDX payload has ", out.size() - h.bytes(), " bytes, expected ", h.totalBytes() - h.bytes(),
            " for shape ", shapeString(h.shape), " (truncated)");
    if (!gz.atEnd())
        fail(path, ": gzip data continues past the ", h.totalBytes() - h.bytes(),
            " payload bytes the IDX header announces");
    return out;
}

Tensor readIdx(const std::string& path)
{
    return parseIdx(readMaybeGzip(path), path);
}

Tensor parseIdx(const std::string& data, const std::string& path)
{
    const IdxHeader h = idxHeader(data, path);
    const uint64_t n = h.numel;
    const std::size_t esize = elementSize(h.dtype), header = h.bytes();
    if (uint64_t(data.size() - header) != n * esize)
        fail(path, ": IDX payload has ", data.size() - header, " bytes, expected ", n * esize, " for shape ",
            shapeString(h.shape), data.size() - header < n * esize ? " (truncated)" : "");
    Tensor t(h.dtype, h.shape);
    t.name = path;
    const auto* src = reinterpret_cast<const unsigned char*>(data.data()) + header;
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
