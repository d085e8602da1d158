// Bounded whole-file reads (see file.h).
#include "util/file.h"

#include "util/error.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace qs {
namespace {

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) { }
    ~Fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};

} // namespace

OpenedFile openRegularFile(const std::string& path, uint64_t maxBytes)
{
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (fd.get() < 0)
        fail(path, ": cannot open file (", std::strerror(errno), ")");
    struct stat st { };
    if (::fstat(fd.get(), &st) != 0)
        fail(path, ": cannot open file (", std::strerror(errno), ")");
    if (S_ISDIR(st.st_mode))
        fail(path, ": is a folder, not a file");
    if (!S_ISREG(st.st_mode))
        fail(path, ": is not a regular file (a device, pipe or socket cannot be read as input)");
    const uint64_t size = uint64_t(st.st_size);
    if (size > maxBytes)
        fail(path, ": file is ", size, " bytes, more than the ", maxBytes, " this reader accepts");
    return {fd.release(), size};
}

void readFileAt(int fd, const std::string& path, void* dst, std::size_t n, uint64_t offset)
{
    std::size_t have = 0;
    auto* out = static_cast<char*>(dst);
    while (have < n) {
        const ssize_t got = ::pread(fd, out + have, n - have, off_t(offset + have));
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            fail(path, ": read error (", std::strerror(errno), ")");
        if (got == 0)
            fail(path, ": file shrank while being read (", offset + have, " of ", offset + n, " bytes)");
        have += std::size_t(got);
    }
}

std::string readRegularFile(const std::string& path, uint64_t maxBytes)
{
    const OpenedFile f = openRegularFile(path, maxBytes);
    Fd fd(f.fd);
    std::string bytes(std::size_t(f.bytes), '\0');
    readFileAt(fd.get(), path, bytes.data(), bytes.size(), 0);
    return bytes;
}

void writeFileAtomic(const std::string& path, const std::string& bytes)
{
    static std::atomic<unsigned> counter {0};
    const std::string tmp = path + ".part" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out)
            fail(path, ": cannot write (", std::strerror(errno), ")");
        out.write(bytes.data(), std::streamsize(bytes.size()));
        out.close();
        if (!out) {
            std::remove(tmp.c_str());
            fail(path, ": write error");
        }
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        fail(path, ": cannot move the written file into place: ", ec.message());
    }
}

} // namespace qs
