// Names of run kinds and states, and the machine a run is recorded on.
#include "store/records.h"

#include "util/error.h"

#include <array>
#include <fstream>
#include <sys/utsname.h>
#include <thread>
#include <unistd.h>

namespace qs {
namespace {

constexpr std::array<const char*, 5> kKindNames = {"inference", "calibration", "sensitivity", "quantization",
                                                   "mixed-precision-search"};
constexpr std::array<const char*, 5> kStateNames = {"running", "done", "failed", "cancelled", "interrupted"};

template <typename E, std::size_t N>
E parseName(const std::array<const char*, N>& names, const std::string& name, const char* what)
{
    for (std::size_t i = 0; i < N; ++i)
        if (name == names[i])
            return E(i);
    std::string all;
    for (const char* n : names)
        all += (all.empty() ? "" : ", ") + std::string(n);
    fail("unknown ", what, " ", quoted(name), " (expected one of: ", all, ")");
}

} // namespace

std::string runKindName(RunKind kind)
{
    return kKindNames[std::size_t(kind)];
}

std::string runStateName(RunState state)
{
    return kStateNames[std::size_t(state)];
}

RunKind parseRunKind(const std::string& name)
{
    return parseName<RunKind>(kKindNames, name, "run kind");
}

RunState parseRunState(const std::string& name)
{
    return parseName<RunState>(kStateNames, name, "run state");
}

MachineInfo currentMachine()
{
    static const MachineInfo info = [] {
        MachineInfo m;
        char host[256] = {};
        if (::gethostname(host, sizeof host - 1) == 0)
            m.hostname = host;
        struct utsname u;
        if (::uname(&u) == 0)
            m.os = str(u.sysname, " ", u.release, " ", u.machine);
        std::ifstream cpuinfo("/proc/cpuinfo");
        for (std::string line; std::getline(cpuinfo, line);) {
            if (line.rfind("model name", 0) == 0) {
                auto start = line.find_first_not_of(" \t", line.find(':') + 1);
                if (line.find(':') != std::string::npos && start != std::string::npos)
                    m.cpu = line.substr(start);
                break;
            }
        }
        m.cores = int(std::thread::hardware_concurrency());
        long pages = ::sysconf(_SC_PHYS_PAGES), pageSize = ::sysconf(_SC_PAGESIZE);
        if (pages > 0 && pageSize > 0)
            m.memoryBytes = int64_t(pages) * pageSize;
        return m;
    }();
    return info;
}

} // namespace qs
