// Helpers shared by the operator files: ONNX activations as oneDNN eltwise steps,
// fusion of trailing activations and adds into a primitive's post-ops.
#pragma once

#include "runtime/kernel.h"

#include <optional>

namespace qs::rt {

struct EltwiseStep {
    dnnl::algorithm alg;
    float alpha = 0, beta = 0;
};

// The oneDNN eltwise steps computing a float unary activation node (Relu, Clip,
// Sigmoid, HardSigmoid, ...), or nullopt when the node is not one (or its
// parameters are not constant).
std::optional<std::vector<EltwiseStep>> eltwiseSteps(const NodeContext& c, const Node& n);

// A Mul, Add or Sub (x - c) of `flow` and a float scalar constant as the binary
// post-op computing it with the same single rounding: (algorithm, constant).
std::optional<std::pair<dnnl::algorithm, float>> scalarBinaryStep(const NodeContext& c, const Node& n,
                                                                  const std::string& flow);

// Post-ops absorbed after a primitive whose output is `value`: activations and
// (when `dstMd` is given) a same-shape Add whose other operand is already
// computed, each followed by further activations.
struct FusedTail {
    dnnl::post_ops ops;
    std::vector<std::pair<int, int>> binarySlots; // post-op index -> slot of src1
    std::string output;                           // the value the primitive finally writes
    std::vector<const Node*> nodes;               // absorbed, in order
    int sumSlot = -1;  // residual added by a sum post-op: copied into dst before the primitive runs
    std::vector<std::pair<int, float>> scalars; // post-op index -> the constant of a scalar binary post-op
};
// Plans the tail without absorbing anything; call absorbTail() once the primitive
// with these post-ops was created.
// `useSum` adds the residual with a sum post-op (dst pre-filled) instead of a binary
// post-op: oneDNN 2.6's convolutions only have a reference kernel for the latter.
// `allowScalars`: also scalar Mul / Add / Sub nodes (scalarBinaryStep), bound by bindScalars().
FusedTail planTail(NodeContext& c, const std::string& value, const Shape& shape, const memory::desc* dstMd,
                   bool allowEltwise = true, bool useSum = false, bool allowScalars = false);

// A primitive whose dst starts as a copy of another value (sum post-op).
class SumPrimitiveKernel : public PrimitiveKernel {
public:
    int sumFrom = -1, dst = -1;
    void run(Program& p) override
    {
        std::memcpy(p.slot(dst).data(), p.slot(sumFrom).data(), p.slot(dst).buffer.bytes);
        PrimitiveKernel::run(p);
    }
};
// One primitive run as independent parts on the caller-participating pool
// (parallelShards) in parts mode: each part a single-threaded primitive over its own
// contiguous byte range of the destination (output channels in nChw16c, output rows
// in nhwc, columns of a one-row product), so a worker that wakes late takes fewer
// parts instead of holding up the others.
// A product below this many multiply-adds stays whole: splitting it costs more than it saves.
constexpr int64_t kPartsMinMacs = 100'000;
class PartsKernel : public Kernel {
public:
    struct Part {
        dnnl::primitive prim;
        std::unordered_map<int, memory> args;
        std::size_t offset = 0, bytes = 0; // of the destination
    };
    std::vector<Part> parts;
    std::vector<Buffer> owned;
    int dst = -1, sumFrom = -1; // sumFrom >= 0: each part's range starts as a copy of it
    int maxThreads = 0;         // pool threads taking part, the caller included
    std::string impl;
    void run(Program& p) override;
    std::string describe() const override { return impl; }
    void forEachMemory(const std::function<void(memory&)>& f) override
    {
        for (auto& part : parts)
            for (auto& [arg, m] : part.args)
                f(m);
    }
    std::size_t ownedBytes() const override { return bytesOf(owned); }
};

void absorbTail(NodeContext& c, const FusedTail& t);
// Adds the binary post-op arguments to a primitive's argument map.
void bindTail(NodeContext& c, const FusedTail& t, std::map<int, int>& args);
// The scalar binary post-ops' constants (FusedTail::scalars), as [1 ... 1] of `rank`.
void bindScalars(const FusedTail& t, std::size_t rank, std::unordered_map<int, memory>& fixed, std::vector<Buffer>& owned);

// Convolution geometry from a Conv node's attributes (conv.cpp), shared with the INT8 convolution.
struct Geometry {
    int sp = 0;               // spatial dims
    memory::dims strides, dilates, padL, padR, kernel;
    Shape out;                // full output shape
};
Geometry convGeometry(const NodeContext& c, const Shape& x, const Shape& w, int64_t outChannels);
// Fails naming the node unless a windowed op's (Conv, ConvTranspose, pooling) attributes
// fit `sp` spatial dims: kernel, strides and dilations >= 1, pads >= 0 (2 * sp values).
void checkWindow(const NodeContext& c, int sp, const std::vector<int64_t>& kernel, const std::vector<int64_t>& strides,
    const std::vector<int64_t>& dilations, const std::vector<int64_t>& pads);
// oneDNN weights dims: [OC, IC/g, k...] or [g, OC/g, IC/g, k...].
memory::dims weightDims(int64_t groups, int64_t oc, int64_t icPerGroup, const memory::dims& kernel);

// Implementation name of a primitive descriptor ("jit:avx512_core", "ref:any", ...).
std::string implName(const dnnl::primitive_desc_base& pd);

} // namespace qs::rt
