// Measured latency per layer and precision on this CPU: each quantizable layer's
// FP32 kernels, its oneDNN INT8 primitive, and what crossing between precisions
// costs at its input (quantize) and output (dequantize, layout reorders), so that
// a mixed-precision search can trade error against time instead of size.
#pragma once

#include "graph/graph.h"
#include "jobs/progress.h"
#include "store/records.h"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace qs {

struct LatencyOptions {
    int batch = 1;
    int threads = 0; // 0: all cores
    int warmup = 5;
    int repeats = 31;                          // the median of these is reported
    std::map<std::string, double> inputValues; // inputs random data cannot fill (DataOptions::inputValues)
    std::map<std::string, Shape> inputShapes;  // unknown input dimensions (DataOptions::inputShapes)
};

struct CpuIsa;
// The /proc/cpuinfo flags behind detectCpuIsa() (runtime/cpu_isa.h) that are present, in
// a fixed order: avx2, avx512f, avx512bw, avx512_vnni, avx_vnni, amx_tile, amx_int8.
std::vector<std::string> cpuIsaFlagNames(const CpuIsa& cpu);

// Times the FP32 model, then, for each layer that can run in INT8 (symmetric 8-bit
// per-channel weights, 8-bit affine activations, calibrated on uniform random
// inputs), the model with that layer alone in INT8. Per kernel the median over
// `repeats` after `warmup`. Layers without an INT8 kernel get no INT8 numbers.
LatencyProfile measureLatency(const Graph& graph, const std::string& modelHash, const LatencyOptions& options,
    Progress& progress, const CancelToken& cancel);

// How precision boundaries are crossed between quantizable layers: per layer (graph
// order, as in the profile), the layers whose output reaches its input only through
// ops the INT8 path keeps in 8 bits (Relu, MaxPool, a residual Add, Identity), and
// whether its input also comes from somewhere else (graph input, other ops), which is
// then always float. Likewise for its output; a residual Add it feeds as the skip
// operand reads 8 bits (the INT8 layer producing the other operand absorbs it).
struct LayerLinks {
    std::vector<std::string> layers;
    std::vector<std::set<std::size_t>> producers, consumers; // indices into layers
    std::vector<char> floatIn, floatOut;
};
LayerLinks layerLinks(const Graph& graph);

// Predicted latency in ms of one pass with the layers in `int8` run in INT8: FP32 or
// INT8 time per layer, the quantize of an INT8 layer's input unless every producer is
// INT8, the dequantize of its output unless every consumer is INT8, and the other
// kernels. Layers of `links` missing from `profile` are an error naming them.
double predictLatencyMs(const LatencyProfile& profile, const LayerLinks& links, const std::set<std::string>& int8);

// One crossing between precisions predictLatencyMs() counts: the quantize at an INT8
// layer's input or the dequantize at its output, with its measured cost.
struct PrecisionBoundary {
    enum class Kind { Quantize, Dequantize };
    std::size_t layer = 0; // index into LayerLinks::layers
    Kind kind = Kind::Quantize;
    double ms = 0;
};
// The crossings of `int8` in graph order (a layer's quantize before its dequantize). A
// layer of `int8` without an INT8 kernel in `profile` runs in float and has none; layers
// of `links` missing from `profile` are an error naming them.
std::vector<PrecisionBoundary> precisionBoundaries(const LatencyProfile& profile, const LayerLinks& links,
    const std::set<std::string>& int8);

} // namespace qs
