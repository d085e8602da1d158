// StoredHistogram <-> blob, format in histogram_blob.h.
#include "store/histogram_blob.h"

#include "util/error.h"

#include <cmath>
#include <cstring>

namespace qs {
namespace {

constexpr char kMagic[4] = {'Q', 'S', 'H', '1'};

void putVarint(std::vector<uint8_t>& out, uint64_t v)
{
    while (v >= 0x80) {
        out.push_back(uint8_t(v | 0x80));
        v >>= 7;
    }
    out.push_back(uint8_t(v));
}

void validate(const StoredHistogram& h, const std::string& context)
{
    if (h.edges.empty() && h.counts.empty())
        return;
    if (h.edges.size() != h.counts.size() + 1)
        fail(context, ": ", h.counts.size(), " bins need ", h.counts.size() + 1, " edges, got ", h.edges.size());
    for (std::size_t i = 0; i < h.edges.size(); ++i) {
        if (!std::isfinite(h.edges[i]))
            fail(context, ": edge ", i, " is not finite");
        if (i > 0 && h.edges[i] < h.edges[i - 1])
            fail(context, ": edges must not decrease (edge ", i, " = ", h.edges[i], " < ", h.edges[i - 1], ")");
    }
}

class Reader {
public:
    Reader(const uint8_t* data, std::size_t size, const std::string& context) : p_(data), n_(size), context_(context) {}

    uint64_t varint()
    {
        uint64_t v = 0;
        for (int shift = 0;; shift += 7) {
            if (shift > 63)
                fail(context_, ": malformed histogram blob: varint too long at byte ", at_);
            uint8_t b = byte();
            if (shift == 63 && (b & 0x7e))
                fail(context_, ": malformed histogram blob: varint overflows 64 bits at byte ", at_ - 1);
            v |= uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80))
                return v;
        }
    }

    float float32()
    {
        need(4);
        uint32_t bits = uint32_t(p_[at_]) | uint32_t(p_[at_ + 1]) << 8 | uint32_t(p_[at_ + 2]) << 16 |
                        uint32_t(p_[at_ + 3]) << 24;
        at_ += 4;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }

    uint8_t byte()
    {
        need(1);
        return p_[at_++];
    }

    std::size_t left() const { return n_ - at_; }
    std::size_t at() const { return at_; }

private:
    void need(std::size_t k)
    {
        if (n_ - at_ < k)
            fail(context_, ": malformed histogram blob: truncated at byte ", at_, " of ", n_);
    }
    const uint8_t* p_;
    std::size_t n_, at_ = 0;
    const std::string& context_;
};

} // namespace

std::vector<uint8_t> encodeHistogram(const StoredHistogram& h)
{
    validate(h, "histogram");
    std::vector<uint8_t> out(kMagic, kMagic + 4);
    out.reserve(8 + h.edges.size() * 4 + h.counts.size() * 2);
    putVarint(out, h.counts.size());
    for (float e : h.edges) {
        uint32_t bits;
        std::memcpy(&bits, &e, 4);
        for (int k = 0; k < 4; ++k)
            out.push_back(uint8_t(bits >> (8 * k)));
    }
    for (uint64_t c : h.counts)
        putVarint(out, c);
    return out;
}

StoredHistogram decodeHistogram(const uint8_t* data, std::size_t size, const std::string& context)
{
    if (size < 4 || std::memcmp(data, kMagic, 4) != 0)
        fail(context, ": malformed histogram blob: expected magic \"QSH1\"");
    Reader r(data + 4, size - 4, context);
    uint64_t n = r.varint();
    // n bins need n+1 edges of 4 bytes and n counts of at least 1 byte.
    if (n > 0 && (r.left() < 4 || n > (r.left() - 4) / 5))
        fail(context, ": malformed histogram blob: ", n, " bins cannot fit in ", size, " bytes");
    StoredHistogram h;
    if (n > 0) {
        h.edges.resize(n + 1);
        for (auto& e : h.edges)
            e = r.float32();
        h.counts.resize(n);
        for (auto& c : h.counts)
            c = r.varint();
    }
    if (r.left() != 0)
        fail(context, ": malformed histogram blob: ", r.left(), " unexpected bytes after the counts");
    validate(h, context);
    return h;
}

} // namespace qs
