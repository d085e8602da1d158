// SHA-256 (FIPS 180-4), streaming.
#include "util/hash.h"

#include "util/error.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <memory>
#include <map>
#include <fstream>
#include <vector>

namespace qs {
namespace {

constexpr std::array<uint32_t, 64> K = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

class Sha256 {
public:
    void update(const uint8_t* p, std::size_t n)
    {
        total_ += n;
        while (n > 0) {
            std::size_t take = std::min(n, 64 - used_);
            std::memcpy(block_.data() + used_, p, take);
            used_ += take;
            p += take;
            n -= take;
            if (used_ == 64) {
                compress();
                used_ = 0;
            }
        }
    }

    std::string hex()
    {
        uint64_t bits = total_ * 8;
        uint8_t pad = 0x80;
        update(&pad, 1);
        uint8_t zero = 0;
        while (used_ != 56)
            update(&zero, 1);
        for (int i = 7; i >= 0; --i) {
            uint8_t b = uint8_t(bits >> (i * 8));
            update(&b, 1);
        }
        static const char* digits = "0123456789abcdef";
        std::string out;
        for (uint32_t v : h_)
            for (int i = 28; i >= 0; i -= 4)
                out += digits[(v >> i) & 0xf];
        return out;
    }

private:
    void compress()
    {
        uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = uint32_t(block_[i * 4]) << 24 | uint32_t(block_[i * 4 + 1]) << 16 |
                   uint32_t(block_[i * 4 + 2]) << 8 | uint32_t(block_[i * 4 + 3]);
        for (int i = 16; i < 64; ++i) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        auto [a, b, c, d, e, f, g, h] = h_;
        for (int i = 0; i < 64; ++i) {
            uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        std::array<uint32_t, 8> add = {a, b, c, d, e, f, g, h};
        for (int i = 0; i < 8; ++i)
            h_[i] += add[i];
    }

    std::array<uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    std::array<uint8_t, 64> block_{};
    std::size_t used_ = 0;
    uint64_t total_ = 0;
};

} // namespace

std::string sha256Hex(const void* data, std::size_t size)
{
    Sha256 h;
    h.update(static_cast<const uint8_t*>(data), size);
    return h.hex();
}

std::string sha256Hex(std::string_view bytes)
{
    return sha256Hex(bytes.data(), bytes.size());
}

std::string sha256File(const std::string& path)
{
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) // not /dev/zero, a FIFO or a folder
        fail(path, ": cannot hash: not a regular file");
    std::ifstream in(path, std::ios::binary);
    if (!in)
        fail(path, ": cannot open file for reading");
    Sha256 h;
    std::vector<char> buf(1 << 20);
    while (in) {
        in.read(buf.data(), std::streamsize(buf.size()));
        h.update(reinterpret_cast<const uint8_t*>(buf.data()), std::size_t(in.gcount()));
    }
    if (in.bad())
        fail(path, ": read error");
    return h.hex();
}

namespace {

struct HashMemoEntry {
    std::mutex busy; // held while the file is hashed
    uintmax_t size = 0;
    std::filesystem::file_time_type mtime {};
    std::string hash;
};

} // namespace

std::string sha256FileCached(const std::string& path)
{
    static std::mutex mapMutex;
    static std::map<std::string, std::shared_ptr<HashMemoEntry>> memo;
    std::error_code ec;
    const std::string key = std::filesystem::absolute(path, ec).lexically_normal().string();
    std::shared_ptr<HashMemoEntry> e;
    {
        std::lock_guard<std::mutex> lock(mapMutex);
        auto& slot = memo[ec ? path : key];
        if (!slot)
            slot = std::make_shared<HashMemoEntry>();
        e = slot;
    }
    std::lock_guard<std::mutex> lock(e->busy);
    const uintmax_t size = std::filesystem::file_size(path, ec);
    const auto mtime = ec ? std::filesystem::file_time_type {} : std::filesystem::last_write_time(path, ec);
    if (ec) // unreadable: sha256File names the problem
        return sha256File(path);
    if (!e->hash.empty() && e->size == size && e->mtime == mtime)
        return e->hash;
    e->hash = sha256File(path);
    e->size = size;
    e->mtime = mtime;
    return e->hash;
}

} // namespace qs
