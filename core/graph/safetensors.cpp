#include "graph/safetensors.h"

#include "util/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace qs {

namespace {

constexpr uint64_t kMaxSafetensorsHeader = 100u << 20; // the reference implementation's limit

struct DTypeName {
    const char* name;
    DType dtype;
};
constexpr DTypeName kDTypes[] = {{"F64", DType::Double}, {"F32", DType::Float}, {"F16", DType::Float16},
    {"BF16", DType::BFloat16}, {"I64", DType::Int64}, {"I32", DType::Int32}, {"I16", DType::Int16},
    {"I8", DType::Int8}, {"U64", DType::UInt64}, {"U32", DType::UInt32}, {"U16", DType::UInt16},
    {"U8", DType::UInt8}, {"BOOL", DType::Bool}};

uint64_t offsetValue(const nlohmann::json& v, const std::string& where)
{
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
        fail(where, ": data_offsets must be two non-negative integers, got ", v.dump());
    return v.get<uint64_t>();
}

} // namespace

DType safetensorsDType(const std::string& name)
{
    for (const auto& d : kDTypes)
        if (name == d.name)
            return d.dtype;
    return DType::Undefined;
}

const char* safetensorsDTypeName(DType t)
{
    for (const auto& d : kDTypes)
        if (t == d.dtype)
            return d.name;
    return "";
}

namespace {

std::vector<SafetensorsEntry> parseHeader(std::string_view json, uint64_t dataBytes, const std::string& label,
    std::map<std::string, std::string>* metadata)
{
    nlohmann::json h;
    try {
        h = nlohmann::json::parse(json.begin(), json.end());
    } catch (const nlohmann::json::exception& e) {
        fail(label, ": header is not valid JSON: ", e.what());
    }
    if (!h.is_object())
        fail(label, ": header is a JSON ", h.type_name(), ", expected an object of tensors");
    std::vector<SafetensorsEntry> entries;
    for (const auto& [name, v] : h.items()) {
        const std::string where = label + ": tensor " + quoted(name);
        if (name == "__metadata__") {
            if (!v.is_object())
                fail(label, ": __metadata__ must be an object of strings");
            for (const auto& [k, s] : v.items()) {
                if (!s.is_string())
                    fail(label, ": __metadata__ ", quoted(k), " is not a string");
                if (metadata)
                    (*metadata)[k] = s.get<std::string>();
            }
            continue;
        }
        if (!v.is_object())
            fail(where, ": entry is a JSON ", v.type_name(), ", expected {dtype, shape, data_offsets}");
        for (const char* field : {"dtype", "shape", "data_offsets"})
            if (!v.contains(field))
                fail(where, ": missing field ", quoted(field));
        SafetensorsEntry e;
        e.name = name;
        if (!v["dtype"].is_string())
            fail(where, ": dtype is not a string");
        e.dtypeName = v["dtype"].get<std::string>();
        e.dtype = safetensorsDType(e.dtypeName);
        if (e.dtype == DType::Undefined)
            fail(where, ": unknown dtype ", quoted(e.dtypeName),
                " (known: F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)");
        if (!v["shape"].is_array())
            fail(where, ": shape is not an array");
        uint64_t numel = 1;
        for (const auto& d : v["shape"]) {
            if (!d.is_number_integer() || d.get<int64_t>() < 0)
                fail(where, ": shape ", v["shape"].dump(), " has a dimension that is not a non-negative integer");
            const auto dim = d.get<uint64_t>();
            if (dim != 0 && numel > uint64_t(std::numeric_limits<int64_t>::max()) / dim)
                fail(where, ": shape ", v["shape"].dump(), " has too many elements");
            numel *= dim;
            e.shape.push_back(int64_t(dim));
        }
        const auto& off = v["data_offsets"];
        if (!off.is_array() || off.size() != 2)
            fail(where, ": data_offsets must be [begin, end], got ", off.dump());
        e.begin = offsetValue(off[0], where);
        e.end = offsetValue(off[1], where);
        if (e.begin > e.end)
            fail(where, ": data_offsets [", e.begin, ", ", e.end, "] end before they begin");
        if (e.end > dataBytes)
            fail(where, ": data_offsets [", e.begin, ", ", e.end, "] reach beyond the data section (", dataBytes,
                " bytes)");
        const uint64_t want = numel * elementSize(e.dtype);
        if (want / elementSize(e.dtype) != numel || want != e.end - e.begin)
            fail(where, ": shape ", shapeString(e.shape), " of ", e.dtypeName, " needs ", want,
                " bytes, data_offsets give ", e.end - e.begin);
        entries.push_back(std::move(e));
    }
    std::sort(entries.begin(), entries.end(),
        [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.begin < b.begin; });
    for (std::size_t i = 1; i < entries.size(); ++i)
        if (entries[i].begin < entries[i - 1].end)
            fail(label, ": tensor ", quoted(entries[i].name), " (bytes ", entries[i].begin, "..", entries[i].end,
                ") overlaps tensor ", quoted(entries[i - 1].name), " (bytes ", entries[i - 1].begin, "..",
                entries[i - 1].end, ")");
    return entries;
}

} // namespace

SafetensorsLayout parseSafetensors(std::span<const std::byte> bytes, const std::string& label)
{
    const uint64_t size = bytes.size();
    if (size < 8)
        fail(label, ": ", size, " bytes, too short for the 8-byte header length of a safetensors file");
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
        n = (n << 8) | uint64_t(std::to_integer<uint8_t>(bytes[std::size_t(i)]));
    if (n > kMaxSafetensorsHeader)
        fail(label, ": header length ", n, " is larger than the ", kMaxSafetensorsHeader, "-byte limit");
    if (n > size - 8)
        fail(label, ": header length ", n, " reaches beyond the end of the file (", size, " bytes)");
    SafetensorsLayout layout;
    layout.headerBytes = n;
    const std::string_view json(reinterpret_cast<const char*>(bytes.data() + 8), std::size_t(n));
    layout.entries = parseHeader(json, size - 8 - n, label, &layout.metadata);
    return layout;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC); // a FIFO must not block
    if (fd < 0)
        fail(path, ": cannot open: ", std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(path, ": not a regular file");
    }
    size_ = uint64_t(st.st_size);
    if (size_ < 8) {
        ::close(fd);
        fail(path, ": ", size_, " bytes, too short for the 8-byte header length of a safetensors file");
    }
    void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (m == MAP_FAILED)
        fail(path, ": cannot map: ", std::strerror(errno));
    map_ = static_cast<const std::byte*>(m);
    try {
        SafetensorsLayout layout = parseSafetensors({map_, std::size_t(size_)}, path);
        headerBytes_ = layout.headerBytes;
        entries_ = std::move(layout.entries);
        metadata_ = std::move(layout.metadata);
    } catch (...) {
        ::munmap(const_cast<std::byte*>(map_), size_);
        map_ = nullptr;
        throw;
    }
}

SafetensorsFile::~SafetensorsFile()
{
    if (map_)
        ::munmap(const_cast<std::byte*>(map_), size_);
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const
{
    for (const auto& e : entries_)
        if (e.name == name)
            return e;
    fail(path_, ": no tensor ", quoted(name));
}

std::span<const std::byte> SafetensorsFile::raw(const SafetensorsEntry& e) const
{
    return {map_ + 8 + headerBytes_ + e.begin, std::size_t(e.end - e.begin)};
}

Tensor SafetensorsFile::tensor(const std::string& name) const
{
    const SafetensorsEntry& e = entry(name);
    Tensor t(e.dtype, e.shape);
    t.name = e.name;
    const auto r = raw(e);
    std::copy(r.begin(), r.end(), t.bytes.begin());
    return t;
}

} // namespace qs
