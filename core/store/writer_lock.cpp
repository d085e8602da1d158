// Writer liveness through OFD byte-range locks; see writer_lock.h.
#include "store/writer_lock.h"

#include "util/error.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <unistd.h>

namespace qs {
namespace {

// Slots are positive and far below the largest off_t; locks past EOF are allowed,
// so the file stays empty.
constexpr int64_t kSlotRange = int64_t(1) << 62;

struct flock byteLock(short type, int64_t slot)
{
    struct flock l;
    std::memset(&l, 0, sizeof l);
    l.l_type = type;
    l.l_whence = SEEK_SET;
    l.l_start = off_t(slot);
    l.l_len = 1;
    l.l_pid = 0; // required by OFD locks
    return l;
}

} // namespace

std::string writersFilePath(const std::string& dbPath)
{
    return dbPath + "-writers";
}

WriterLock::WriterLock(const std::string& dbPath)
{
    const std::string path = writersFilePath(dbPath);
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
        fail(path, ": cannot create the writers lock file: ", std::strerror(errno));
    std::random_device rd;
    std::mt19937_64 rng((uint64_t(rd()) << 32) ^ rd() ^ uint64_t(::getpid()));
    std::uniform_int_distribution<int64_t> pick(1, kSlotRange - 1);
    for (int attempt = 0; attempt < 16; ++attempt) {
        int64_t slot = pick(rng);
        struct flock l = byteLock(F_WRLCK, slot);
        if (::fcntl(fd_, F_OFD_SETLK, &l) == 0) {
            slot_ = slot;
            return;
        }
        if (errno != EAGAIN && errno != EACCES) {
            int e = errno;
            ::close(fd_);
            fail(path, ": cannot lock the writers file: ", std::strerror(e));
        }
    }
    ::close(fd_);
    fail(path, ": cannot find a free writer slot");
}

WriterLock::~WriterLock()
{
    if (fd_ >= 0)
        ::close(fd_); // releases the lock
}

WriterProbe::WriterProbe(const std::string& dbPath) : path_(writersFilePath(dbPath))
{
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0 && errno != ENOENT)
        fail(path_, ": cannot read the writers lock file: ", std::strerror(errno));
}

WriterProbe::~WriterProbe()
{
    if (fd_ >= 0)
        ::close(fd_);
}

bool WriterProbe::alive(int64_t slot) const
{
    if (fd_ < 0 || slot <= 0)
        return false;
    struct flock l = byteLock(F_WRLCK, slot);
    if (::fcntl(fd_, F_OFD_GETLK, &l) != 0)
        fail(path_, ": cannot query the writers lock file: ", std::strerror(errno));
    return l.l_type != F_UNLCK;
}

} // namespace qs
