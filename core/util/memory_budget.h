// How much memory the analyses' caches may hold (what-if's per-batch activations, the
// studio's sample data): a process-wide byte budget. Set by the studio's settings, the
// CLI's --cache-budget or QS_CACHE_BUDGET; by default a quarter of physical memory.
// Caches evict least recently used entries beyond it and recompute them when asked
// again (util/lru_cache.h).
#pragma once

#include <cstdint>
#include <string>

namespace qs {

// Physical memory of the machine in bytes (0 when unknown).
int64_t physicalMemoryBytes();
// A quarter of physical memory, at least 256 MiB; 2 GiB when unknown.
int64_t defaultCacheBudgetBytes();
// "512M", "2G", "1.5GiB", "64k", "1048576" (bytes); K/M/G/T are powers of 1024. Throws an
// Error naming `what` for anything else or a value below 1 MiB.
int64_t parseByteSize(const std::string& text, const std::string& what);
// "1.5 GiB", "512 MiB".
std::string byteSizeText(int64_t bytes);

// The budget now: setCacheBudgetBytes()'s value, else QS_CACHE_BUDGET, else the default.
// A malformed QS_CACHE_BUDGET throws an Error naming it.
int64_t cacheBudgetBytes();
// <= 0: back to QS_CACHE_BUDGET or the default.
void setCacheBudgetBytes(int64_t bytes);

} // namespace qs
