// Mixed precision: from per-layer sensitivity curves and sizes, the Pareto front of
// predicted error versus model size, by exact dynamic programming over a finely
// discretized cost axis (multiple-choice knapsack), with constraints.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace qs {

struct BitOption {
    int bits = 8;
    int64_t cost = 0;     // on the axis the budget talks about (element bits or stored bits)
    int64_t sizeBits = 0; // stored bits (scales included), for reporting
    double noise = 0;     // predicted relative output noise power (10^(-SQNR/10))
    bool int8 = false;    // runs as an INT8 kernel: crossing from or to float costs (LayerOptions)
};

struct LayerOptions {
    std::string layer;
    int64_t elements = 0;
    std::vector<BitOption> options;
    // Precision boundaries along the layer chain (latency cost): an int8 option pays
    // enterCost unless the previous layer is linked and int8 too, and exitCost unless
    // the next layer is linked and int8 too. Zero for size costs.
    int64_t enterCost = 0, exitCost = 0;
    bool linkedToPrevious = false;
    // An attention operand point ("<MatMul>:K", quant/attention.h) rather than a layer's
    // weight: its bits go to FrontPoint::operandBits, its size to kvCacheBits, and a
    // float option (bits >= 16) stays allowed whatever the bit constraints say.
    bool operand = false;
};

// A front point evaluated for real: the whole model quantized with its bits.
struct MeasuredPoint {
    double sqnrDb = 0; // model output vs FP32, the unit of predictedSqnrDb
    double kl = 0, top1Agreement = 0;
    std::optional<double> top1; // where labels exist
    int64_t sizeBits = 0;       // whole model as stored
};

struct FrontPoint {
    int64_t cost = 0;
    int64_t sizeBits = 0;                  // of the quantized layers
    double predictedNoise = 0;             // sum of per-layer noise
    double predictedSqnrDb = 0;            // -10 log10(noise)
    double averageBits = 0;                // element-weighted bits (weights and searched KV cache)
    std::map<std::string, int> bits;       // layer -> weight bits
    std::map<std::string, int> operandBits; // attention operand point -> bits (>= 16: float)
    int64_t kvCacheBits = 0;               // the operands' share of sizeBits (their KV cache)
    std::optional<MeasuredPoint> measured; // filled by verification
};

struct MixedConstraints {
    std::set<int> allowedBits = {2, 3, 4, 5, 6, 8};
    int minBits = 2, maxBits = 8;
    std::map<std::string, int> pinned; // layer -> fixed bits
};

// Applies constraints to the options (pinned layers keep one option). Throws an Error
// naming the layer when a constraint leaves it nothing.
std::vector<LayerOptions> constrain(const std::vector<LayerOptions>& layers, const MixedConstraints& c);

// The Pareto front (increasing cost, strictly decreasing predicted noise). `resolution`
// buckets over the cost range: the DP is exact up to one bucket of cost per layer.
// With boundary costs the DP state also holds whether the previous layer runs int8,
// so the chain's crossings are counted exactly; FrontPoint::cost includes them.
std::vector<FrontPoint> paretoFront(const std::vector<LayerOptions>& layers, int resolution = 4096);

// The lowest-noise point whose cost is within `budget`; nullopt when none fits.
std::optional<FrontPoint> bestWithin(const std::vector<FrontPoint>& front, int64_t budget);

} // namespace qs
