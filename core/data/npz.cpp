#include "data/npz.h"

#include "data/npy.h"
#include "util/error.h"

#include <zlib.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <set>

namespace qs {
namespace {

// Zip structures, PKWARE APPNOTE 6.3.10: 4.3.7 local file header, 4.3.12 central
// directory header, 4.3.16 end of central directory record, 4.3.15 zip64 locator.
constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                   kZip64LocatorSig = 0x07064b50;
constexpr std::size_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22;

uint32_t le(const std::string& b, std::size_t at, int bytes)
{
    uint32_t v = 0;
    for (int i = 0; i < bytes; ++i)
        v |= uint32_t(uint8_t(b[at + std::size_t(i)])) << (8 * i);
    return v;
}

struct Member {
    std::string name;
    uint16_t flags = 0, method = 0;
    uint32_t crc = 0;
    uint64_t compressed = 0, size = 0, localOffset = 0;
};

struct Directory {
    std::vector<Member> members;
    uint64_t start = 0; // where the central directory begins: every member's data ends before it
};

// `b` holds the archive's bytes from offset `base` to its end (all of it, or a tail
// for listing names). Returns nullopt with *needFrom set when the directory starts before `base`.
std::optional<Directory> readDirectory(
    const std::string& b, uint64_t base, const std::string& label, uint64_t* needFrom = nullptr)
{
    if (b.size() < kEndSize)
        fail(label, ": not an NPZ file (", b.size(), " bytes is too short for a zip)");
    // The end record sits at the end, followed by a comment of at most 65535 bytes.
    std::size_t end = std::string::npos;
    const std::size_t lowest = b.size() > kEndSize + 0xffff ? b.size() - kEndSize - 0xffff : 0;
    for (std::size_t at = b.size() - kEndSize + 1; at-- > lowest;)
        if (le(b, at, 4) == kEndSig && at + kEndSize + le(b, at + 20, 2) == b.size()) {
            end = at;
            break;
        }
    if (end == std::string::npos)
        fail(label, ": not an NPZ file (no zip end of central directory record)");
    if (end >= 20 && le(b, end - 20, 4) == kZip64LocatorSig)
        fail(label, ": zip64 archives are not supported");
    const uint32_t disk = le(b, end + 4, 2), cdDisk = le(b, end + 6, 2), onDisk = le(b, end + 8, 2),
                   count = le(b, end + 10, 2), cdSize = le(b, end + 12, 4), cdOffset = le(b, end + 16, 4);
    if (count == 0xffff || cdSize == 0xffffffff || cdOffset == 0xffffffff)
        fail(label, ": zip64 archives are not supported");
    if (disk != 0 || cdDisk != 0 || onDisk != count)
        fail(label, ": multi-disk zip archives are not supported");
    if (uint64_t(cdOffset) + cdSize > base + end)
        fail(label, ": the central directory (", cdSize, " bytes at ", cdOffset, ") runs past the end record at ",
            base + end);
    if (cdOffset < base) {
        if (!needFrom)
            fail(label, ": the central directory starts before the bytes read");
        *needFrom = cdOffset;
        return std::nullopt;
    }

    Directory dir;
    dir.start = cdOffset;
    std::size_t at = std::size_t(cdOffset - base); // relative to `b` from here on
    const std::size_t cdEnd = at + cdSize;
    std::set<std::string> seen;
    for (uint32_t i = 0; i < count; ++i) {
        if (at + kCentralSize > cdEnd || le(b, at, 4) != kCentralSig)
            fail(label, ": the central directory ends after ", i, " of the ", count, " members it declares");
        Member m;
        m.flags = uint16_t(le(b, at + 8, 2));
        m.method = uint16_t(le(b, at + 10, 2));
        m.crc = le(b, at + 16, 4);
        m.compressed = le(b, at + 20, 4);
        m.size = le(b, at + 24, 4);
        const std::size_t nameLen = le(b, at + 28, 2), extraLen = le(b, at + 30, 2), commentLen = le(b, at + 32, 2);
        m.localOffset = le(b, at + 42, 4);
        if (at + kCentralSize + nameLen + extraLen + commentLen > cdEnd)
            fail(label, ": central directory entry ", i, " runs past the directory");
        m.name = b.substr(at + kCentralSize, nameLen);
        if (m.compressed == 0xffffffff || m.size == 0xffffffff || m.localOffset == 0xffffffff)
            fail(label, ": member ", quoted(m.name), " needs zip64, which is not supported");
        if (m.flags & 0x41)
            fail(label, ": member ", quoted(m.name), " is encrypted");
        if (m.method != 0 && m.method != 8)
            fail(label, ": member ", quoted(m.name), " uses compression method ", m.method,
                " (only stored and deflated are supported)");
        if (!seen.insert(m.name).second)
            fail(label, ": member ", quoted(m.name), " appears twice");
        dir.members.push_back(std::move(m));
        at += kCentralSize + nameLen + extraLen + commentLen;
    }
    if (at != cdEnd)
        fail(label, ": the central directory has ", cdEnd - at, " bytes after the ", count, " members it declares");
    return std::optional<Directory>(std::move(dir));
}

std::string arrayName(const Member& m, const std::string& label)
{
    if (m.name.size() <= 4 || !m.name.ends_with(".npy"))
        fail(label, ": member ", quoted(m.name), " is not an .npy array");
    return m.name.substr(0, m.name.size() - 4);
}

// The member's uncompressed bytes, checked against the directory's sizes and CRC-32.
std::string memberBytes(const std::string& b, const Member& m, uint64_t directoryStart, const std::string& label)
{
    const std::string what = label + ": member " + quoted(m.name);
    if (m.localOffset + kLocalSize > directoryStart || le(b, std::size_t(m.localOffset), 4) != kLocalSig)
        fail(what, " has no local header at offset ", m.localOffset);
    const std::size_t local = std::size_t(m.localOffset);
    const uint64_t data = m.localOffset + kLocalSize + le(b, local + 26, 2) + le(b, local + 28, 2);
    if (data + m.compressed > directoryStart)
        fail(
            what, ": ", m.compressed, " bytes at offset ", data, " run into the central directory at ", directoryStart);
    if (b.compare(local + kLocalSize, le(b, local + 26, 2), m.name) != 0)
        fail(what, ": the local header names another file");
    std::string out;
    if (m.method == 0) {
        if (m.compressed != m.size)
            fail(what, " is stored with ", m.compressed, " bytes but declares ", m.size);
        out = b.substr(std::size_t(data), std::size_t(m.size));
    } else {
        // Deflate expands at most 1032:1 (zlib's technical details), so a larger claim is a lie.
        if (m.size > m.compressed * 1032 + 1024)
            fail(what, " declares ", m.size, " bytes from ", m.compressed, " compressed (more than deflate yields)");
        out.resize(std::size_t(m.size));
        z_stream zs {};
        if (inflateInit2(&zs, -15) != Z_OK) // raw deflate, no zlib header
            fail(what, ": cannot start zlib");
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(b.data() + data));
        zs.avail_in = uInt(m.compressed);
        zs.next_out = reinterpret_cast<Bytef*>(out.data());
        zs.avail_out = uInt(out.size());
        const int rc = inflate(&zs, Z_FINISH);
        const uint64_t produced = zs.total_out;
        const std::string why = zs.msg ? zs.msg : "the stream does not end at the declared size";
        inflateEnd(&zs);
        if (rc != Z_STREAM_END || produced != m.size)
            fail(what, ": corrupt deflate data (", why, ")");
    }
    const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(out.data()), uInt(out.size()));
    if (crc != m.crc)
        fail(what, ": CRC-32 mismatch (the data is corrupt)");
    return out;
}

std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        fail(path, ": cannot open file (", std::strerror(errno), ")");
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void put(std::string& out, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; ++i)
        out += char((v >> (8 * i)) & 0xff);
}

} // namespace

NamedTensors parseNpz(const std::string& bytes, const std::string& label)
{
    const Directory dir = *readDirectory(bytes, 0, label);
    NamedTensors out;
    for (const Member& m : dir.members) {
        const std::string name = arrayName(m, label);
        out.emplace_back(name, parseNpy(memberBytes(bytes, m, dir.start, label), label + ":" + m.name));
        out.back().second.name = name;
    }
    return out;
}

NamedTensors readNpz(const std::string& path)
{
    return parseNpz(readFile(path), path);
}

std::vector<std::string> npzNames(const std::string& path)
{
    // The end record and the directory sit at the end: read only what they need.
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in)
        fail(path, ": cannot open file (", std::strerror(errno), ")");
    const uint64_t size = uint64_t(in.tellg());
    auto tail = [&](uint64_t from) {
        std::string b(std::size_t(size - from), '\0');
        in.seekg(std::streamoff(from));
        in.read(b.data(), std::streamsize(b.size()));
        if (!in)
            fail(path, ": cannot read");
        return b;
    };
    uint64_t base = size > kEndSize + 0xffff ? size - kEndSize - 0xffff : 0, needFrom = 0;
    std::optional<Directory> dir = readDirectory(tail(base), base, path, &needFrom);
    if (!dir)
        dir = readDirectory(tail(needFrom), needFrom, path);
    std::vector<std::string> names;
    for (const Member& m : dir->members)
        names.push_back(arrayName(m, path));
    return names;
}

std::string formatNpz(const NamedTensors& arrays)
{
    if (arrays.size() > 0xfffe)
        fail("NPZ: ", arrays.size(), " arrays need zip64, which is not supported");
    std::string out, central;
    for (const auto& [name, t] : arrays) {
        const std::string file = name + ".npy", npy = npyBytes(t);
        if (file.size() > 0xffff || npy.size() >= 0xffffffff || out.size() >= 0xffffffff)
            fail("NPZ: array ", quoted(name), " is too large for a zip without zip64");
        const uint32_t crc = uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(npy.data()), uInt(npy.size())));
        const uint32_t offset = uint32_t(out.size());
        // version needed 2.0, no flags, stored, DOS time/date 1980-01-01 00:00
        auto common = [&](std::string& h) {
            put(h, 20, 2);
            put(h, 0, 2);
            put(h, 0, 2);
            put(h, 0, 2);
            put(h, 0x21, 2);
            put(h, crc, 4);
            put(h, uint32_t(npy.size()), 4);
            put(h, uint32_t(npy.size()), 4);
            put(h, uint32_t(file.size()), 2);
            put(h, 0, 2);
        };
        put(out, kLocalSig, 4);
        common(out);
        out += file;
        out += npy;
        put(central, kCentralSig, 4);
        put(central, 20, 2); // version made by: MS-DOS, 2.0
        common(central);
        put(central, 0, 2); // comment length
        put(central, 0, 2); // disk
        put(central, 0, 2); // internal attributes
        put(central, 0, 4); // external attributes
        put(central, offset, 4);
        central += file;
    }
    if (out.size() + central.size() >= 0xffffffff)
        fail("NPZ: ", out.size() + central.size(), " bytes need zip64, which is not supported");
    const uint32_t cdOffset = uint32_t(out.size());
    out += central;
    put(out, kEndSig, 4);
    put(out, 0, 2);
    put(out, 0, 2);
    put(out, uint32_t(arrays.size()), 2);
    put(out, uint32_t(arrays.size()), 2);
    put(out, uint32_t(central.size()), 4);
    put(out, cdOffset, 4);
    put(out, 0, 2);
    return out;
}

void writeNpz(const NamedTensors& arrays, const std::string& path)
{
    const std::string bytes = formatNpz(arrays);
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), std::streamsize(bytes.size()));
    if (!f)
        fail(path, ": cannot write");
}

} // namespace qs
