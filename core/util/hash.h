// Content hashes for models, datasets and exported artifacts (SHA-256, hex).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace qs {

std::string sha256Hex(const void* data, std::size_t size);
std::string sha256Hex(std::string_view bytes);
// Hashes a file by streaming it; throws Error naming the file if unreadable.
std::string sha256File(const std::string& path);

} // namespace qs
