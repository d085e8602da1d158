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
// sha256File remembered for the process by (path, size, modification time): a file asked
// for again unchanged is not read again (the studio asks on every open and store read;
// a model of 650 MB takes seconds). Calls for one file at once hash it once.
std::string sha256FileCached(const std::string& path);

} // namespace qs
