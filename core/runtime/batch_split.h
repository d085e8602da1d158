// Data parallelism over the batch: a Plan whose every operator treats the samples of
// a batch independently can run its batch as per-thread sub-batches, each through a
// single-threaded copy of the program, with the calling thread doing one share
// itself. One wake-up per run instead of one parallel region per kernel, which is
// what small kernels lose most to when workers sleep between regions.
#pragma once

#include "graph/graph.h"

#include <functional>
#include <map>
#include <string>

namespace qs::rt {

struct ValueMeta;

// Whether every node of `graph` computes sample i of its outputs from sample i of its
// inputs alone, along dimension 0 of extent `batch` (shapes from a compile at that
// batch). A conservative whitelist of op types and attributes; `why` names the first
// node that fails it.
bool batchLocal(const Graph& graph, const std::map<std::string, ValueMeta>& meta, int64_t batch, std::string* why);

// The sub-batch sizes of `batch` over `parts` threads, largest first, none empty.
std::vector<int64_t> splitBatch(int64_t batch, int parts);

// Runs fn(0) .. fn(n - 1), the calling thread taking indices too; returns when all are
// done and rethrows the first exception. Used for batch shards and for convolution
// parts (PartsKernel); calls may nest. The workers (one fewer than the cores, made on
// first use) poll for a job for 100 us after one (QS_POOL_SPIN_US) and then block, and
// the caller polls as long for the workers' shares before it blocks; an
// index nobody has claimed yet when the caller runs
// out of its own is run by the caller, so a late worker never delays the result. At most
// `maxThreads` threads (the caller included) take part; 0: every worker.
void parallelShards(int n, const std::function<void(int)>& fn, int maxThreads = 0);

} // namespace qs::rt
