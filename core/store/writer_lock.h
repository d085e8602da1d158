// Who is still writing: a live writer holds an open-file-description lock on one
// byte ("slot") of the sidecar file "<db>-writers"; the slot is recorded in each of
// its runs. The kernel drops the lock when the process dies however it dies
// (SIGKILL included), so a `running` run whose slot is unlocked has a dead writer
// and is `interrupted`. Unlike a pid, a slot cannot be reused by an unrelated
// process, and two Stores in one process hold distinct slots (OFD locks belong to
// the open file, not to the process). Linux (F_OFD_SETLK, 3.15+).
#pragma once

#include <cstdint>
#include <string>

namespace qs {

std::string writersFilePath(const std::string& dbPath);

// The lock of one writing Store, held from before its first run is inserted
// until it is destroyed.
class WriterLock {
public:
    // Creates "<db>-writers" if needed and locks a fresh random slot. Throws an
    // Error naming the file when it cannot.
    explicit WriterLock(const std::string& dbPath);
    ~WriterLock();
    WriterLock(const WriterLock&) = delete;
    WriterLock& operator=(const WriterLock&) = delete;

    int64_t slot() const { return slot_; }

private:
    int fd_ = -1;
    int64_t slot_ = 0;
};

// Answers "is the writer of slot S alive?" for one database. Needs only read
// access, so read-only stores can tell interrupted runs too.
class WriterProbe {
public:
    explicit WriterProbe(const std::string& dbPath);
    ~WriterProbe();
    WriterProbe(const WriterProbe&) = delete;
    WriterProbe& operator=(const WriterProbe&) = delete;

    // False when no one holds the slot's lock (or there is no writers file at all:
    // every writer creates it before recording a run).
    bool alive(int64_t slot) const;

private:
    int fd_ = -1;
    std::string path_;
};

} // namespace qs
