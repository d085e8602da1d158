// Safetensors checkpoints (huggingface/safetensors format): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
// {str: str}}, then the raw little-endian tensors. The file is memory-mapped; tensors
// are read on demand. Every malformed header is an Error naming the file and tensor.
#pragma once

#include "graph/tensor.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace qs {

struct SafetensorsEntry {
    std::string name;
    std::string dtypeName; // as the header spells it: "F32", "BF16", ...
    DType dtype = DType::Undefined;
    Shape shape;
    uint64_t begin = 0, end = 0; // byte offsets into the data section
    int64_t numel() const { return numelOf(shape); }
};

class SafetensorsFile {
public:
    // Maps and validates `path`; throws Error("<path>: tensor \"w\": ...").
    explicit SafetensorsFile(const std::string& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::string& path() const { return path_; }
    uint64_t fileBytes() const { return size_; }
    uint64_t headerBytes() const { return headerBytes_; }
    // In header order of data offsets (ascending begin).
    const std::vector<SafetensorsEntry>& tensors() const { return entries_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const SafetensorsEntry& entry(const std::string& name) const; // throws naming the file
    // The tensor's raw bytes inside the mapping (valid while this object lives).
    std::span<const std::byte> raw(const SafetensorsEntry& e) const;
    // A copy in its own dtype.
    Tensor tensor(const std::string& name) const;

private:
    std::string path_;
    const std::byte* map_ = nullptr;
    uint64_t size_ = 0, headerBytes_ = 0;
    std::vector<SafetensorsEntry> entries_;
    std::map<std::string, std::string> metadata_;
};

// What a safetensors file holds, validated: header size, tensors (ascending offsets
// into the data section, which starts at 8 + headerBytes) and metadata. Used by
// SafetensorsFile on its mapping and by the fuzzer on bytes; `label` prefixes errors.
struct SafetensorsLayout {
    uint64_t headerBytes = 0;
    std::vector<SafetensorsEntry> entries;
    std::map<std::string, std::string> metadata;
};
SafetensorsLayout parseSafetensors(std::span<const std::byte> bytes, const std::string& label);

// DType of a safetensors dtype string; Undefined when unknown.
DType safetensorsDType(const std::string& name);
const char* safetensorsDTypeName(DType t); // "" when there is none

} // namespace qs
