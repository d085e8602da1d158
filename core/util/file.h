// Whole-file reads with a bound: every reader of a user-given path goes through here,
// so a folder, /dev/zero, a FIFO or an oversized file is refused with one line naming
// the path instead of reading without end.
//   std::string bytes = readRegularFile(path, kMaxModelFileBytes);
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace qs {

// Limits on what one file may hold, in bytes.
inline constexpr uint64_t kMaxModelFileBytes = uint64_t(2) << 30; // protobuf's own limit
inline constexpr uint64_t kMaxDataFileBytes = uint64_t(4) << 30;  // NPY, IDX (also inflated), text
inline constexpr uint64_t kMaxTextFileBytes = uint64_t(64) << 20; // configs, precision files

// The bytes of a regular file of at most maxBytes; throws Error naming the path otherwise.
// Reads exactly the size the file had when opened.
std::string readRegularFile(const std::string& path, uint64_t maxBytes);

// The same checks for a reader that streams: an open descriptor (the caller closes it)
// of a regular file of at most maxBytes, and its size.
struct OpenedFile {
    int fd = -1;
    uint64_t bytes = 0;
};
OpenedFile openRegularFile(const std::string& path, uint64_t maxBytes);
// Exactly `n` bytes at `offset` of an open descriptor of `path` (pread; thread-safe);
// throws Error naming the path on a read error or a file that ends before.
void readFileAt(int fd, const std::string& path, void* dst, std::size_t n, uint64_t offset);

// Writes the whole file or nothing: a temporary file beside it (unique to this process
// and call, so concurrent writers of one path do not share it), then renamed over the
// path. Throws Error naming the path.
void writeFileAtomic(const std::string& path, const std::string& bytes);

} // namespace qs
