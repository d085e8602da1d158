#include "util/memory_budget.h"

#include "util/error.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <unistd.h>

namespace qs {
namespace {

std::atomic<int64_t> g_cacheBudgetSet {0};

} // namespace

int64_t physicalMemoryBytes()
{
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? int64_t(pages) * int64_t(page) : 0;
}

int64_t defaultCacheBudgetBytes()
{
    const int64_t ram = physicalMemoryBytes();
    if (ram <= 0)
        return int64_t(2) << 30;
    return std::max<int64_t>(ram / 4, int64_t(256) << 20);
}

int64_t parseByteSize(const std::string& text, const std::string& what)
{
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    std::string unit(end ? end : "");
    while (!unit.empty() && unit.front() == ' ')
        unit.erase(unit.begin());
    for (auto suffix : {"iB", "B", "b"})
        if (unit.size() > 1 && unit.ends_with(suffix)) {
            unit.resize(unit.size() - std::string(suffix).size());
            break;
        }
    double scale = 0;
    if (unit.empty() || unit == "B" || unit == "b")
        scale = 1;
    else if (unit == "k" || unit == "K")
        scale = 1024.0;
    else if (unit == "m" || unit == "M")
        scale = 1024.0 * 1024;
    else if (unit == "g" || unit == "G")
        scale = 1024.0 * 1024 * 1024;
    else if (unit == "t" || unit == "T")
        scale = 1024.0 * 1024 * 1024 * 1024;
    if (end == text.c_str() || scale == 0 || !std::isfinite(v) || v * scale < double(1 << 20) || v * scale > 9e18)
        fail(what, ": expected a memory size of at least 1 MiB such as 512M, 2G or 1.5GiB, got ", quoted(text));
    return int64_t(v * scale);
}

std::string byteSizeText(int64_t bytes)
{
    char buf[64];
    const double b = double(bytes);
    if (b >= double(int64_t(1) << 30))
        std::snprintf(buf, sizeof buf, "%.1f GiB", b / double(int64_t(1) << 30));
    else
        std::snprintf(buf, sizeof buf, "%.0f MiB", b / double(1 << 20));
    return buf;
}

int64_t cacheBudgetBytes()
{
    if (const int64_t set = g_cacheBudgetSet.load(); set > 0)
        return set;
    if (const char* env = std::getenv("QS_CACHE_BUDGET"); env && *env)
        return parseByteSize(env, "QS_CACHE_BUDGET");
    return defaultCacheBudgetBytes();
}

void setCacheBudgetBytes(int64_t bytes)
{
    g_cacheBudgetSet.store(bytes > 0 ? bytes : 0);
}

} // namespace qs
