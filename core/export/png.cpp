// PNG: signature, IHDR, one IDAT (zlib stream of filter-0 scanlines), IEND; every
// chunk with its CRC-32 (PNG spec, ISO/IEC 15948 sections 5 and 11).
#include "export/png.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <zlib.h>

namespace qs {
namespace {

void be32(std::string& out, uint32_t v)
{
    for (int s = 24; s >= 0; s -= 8)
        out += char((v >> s) & 0xff);
}

void chunk(std::string& out, const char* type, const std::string& data)
{
    be32(out, uint32_t(data.size()));
    std::string body = std::string(type, 4) + data;
    out += body;
    be32(out, uint32_t(crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()))));
}

} // namespace

Canvas::Canvas(int width, int height, Rgb background) : w_(width), h_(height)
{
    if (width <= 0 || height <= 0 || width > 8192 || height > 8192)
        fail("canvas size ", width, "x", height, " is not 1..8192");
    px_.resize(std::size_t(width) * std::size_t(height) * 3);
    fill(0, 0, width, height, background);
}

void Canvas::fill(int x0, int y0, int x1, int y1, Rgb c)
{
    x0 = std::clamp(x0, 0, w_);
    x1 = std::clamp(x1, 0, w_);
    y0 = std::clamp(y0, 0, h_);
    y1 = std::clamp(y1, 0, h_);
    for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x) {
            uint8_t* p = &px_[(std::size_t(y) * std::size_t(w_) + std::size_t(x)) * 3];
            p[0] = c.r;
            p[1] = c.g;
            p[2] = c.b;
        }
}

Rgb Canvas::at(int x, int y) const
{
    const uint8_t* p = &px_[(std::size_t(y) * std::size_t(w_) + std::size_t(x)) * 3];
    return {p[0], p[1], p[2]};
}

std::string Canvas::png() const
{
    std::string raw;
    raw.reserve(px_.size() + std::size_t(h_));
    for (int y = 0; y < h_; ++y) {
        raw += char(0); // filter type None
        raw.append(reinterpret_cast<const char*>(&px_[std::size_t(y) * std::size_t(w_) * 3]), std::size_t(w_) * 3);
    }
    uLongf len = compressBound(uLong(raw.size()));
    std::string z(len, '\0');
    if (compress2(reinterpret_cast<Bytef*>(z.data()), &len, reinterpret_cast<const Bytef*>(raw.data()),
            uLong(raw.size()), 9) != Z_OK)
        fail("PNG: zlib compression failed");
    z.resize(len);
    std::string out = "\x89PNG\r\n\x1a\n";
    std::string ihdr;
    be32(ihdr, uint32_t(w_));
    be32(ihdr, uint32_t(h_));
    ihdr += std::string("\x08\x02\x00\x00\x00", 5); // 8-bit, RGB, deflate, filter 0, no interlace
    chunk(out, "IHDR", ihdr);
    chunk(out, "IDAT", z);
    chunk(out, "IEND", "");
    return out;
}

Canvas barChart(const std::vector<double>& values, int width, int height, Rgb bar)
{
    Canvas c(width, height);
    const Rgb axis {128, 128, 128};
    const int margin = 8;
    double top = 0, bottom = 0;
    for (double v : values)
        if (std::isfinite(v)) {
            top = std::max(top, v);
            bottom = std::min(bottom, v);
        }
    const double span = top - bottom > 0 ? top - bottom : 1;
    const int plotH = height - 2 * margin;
    const int zeroY = margin + int(std::lround(top / span * plotH));
    c.fill(margin, margin, margin + 1, height - margin, axis);
    c.fill(margin, zeroY, width - margin, zeroY + 1, axis);
    if (values.empty())
        return c;
    const double slot = double(width - 2 * margin - 2) / double(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) {
        const double v = values[i];
        if (!std::isfinite(v) || v == 0)
            continue;
        const int x0 = margin + 2 + int(std::lround(slot * double(i) + slot * 0.15));
        const int x1 = std::max(x0 + 1, margin + 2 + int(std::lround(slot * double(i + 1) - slot * 0.15)));
        const int y = margin + int(std::lround((top - v) / span * plotH));
        if (v > 0)
            c.fill(x0, y, x1, zeroY, bar);
        else
            c.fill(x0, zeroY + 1, x1, y + 1, bar);
    }
    return c;
}

std::string base64(const std::string& bytes)
{
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
        if (i + 1 < bytes.size())
            v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
        if (i + 2 < bytes.size())
            v |= uint32_t(uint8_t(bytes[i + 2]));
        out += abc[(v >> 18) & 63];
        out += abc[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? abc[(v >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? abc[v & 63] : '=';
    }
    return out;
}

} // namespace qs
