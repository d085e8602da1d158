// The runtime: a Graph compiled for fixed input shapes into a Plan of oneDNN and
// plain C++ kernels, run on the CPU. Taps observe any tensor batch by batch.
#pragma once

#include "graph/graph.h"
#include "graph/tensor.h"

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace qs {

// A function applied to a value right after it is produced (fake quantization of
// activations, what-if perturbations). It edits the plain float32 tensor in place.
using ValueTransform = std::function<void(Tensor& value)>;

// Real integer execution (see core/runtime/ops/int8.cpp). A quantized value is held
// as u8 (zero point any) or s8 (zero point 0): real = scale * (q - zeroPoint).
struct Int8Value {
    float scale = 1;
    int32_t zeroPoint = 0;
    bool isSigned = false;
};
// One layer (Conv, Gemm, or MatMul with a constant 2-D weight) run as a oneDNN int8
// primitive: s8 weights, s32 bias, requantization fused as fixed output scales. Its
// input must be a quantized value (CompileOptions::int8Values).
struct Int8Layer {
    std::vector<int8_t> weight;       // the float weight's shape and element order
    std::vector<float> weightScales;  // per output channel, or one for the tensor
    std::vector<int32_t> bias;        // accumulator units (input scale x weight scale); empty: none
};

struct CompileOptions {
    std::map<std::string, Shape> inputShapes; // required for inputs with unknown dims
    int threads = 0;                          // 0: all cores
    // Replacement initializers (by name), e.g. quantized-dequantized weights.
    // The source graph is never edited.
    std::map<std::string, Tensor> initializerOverrides;
    // Per-value transforms, applied after the producing node (or to graph inputs).
    std::map<std::string, ValueTransform> valueTransforms;
    // Values that must stay observable: fusion (BN folding, post-ops) never hides
    // them. Taps and transforms add theirs automatically; naming them here avoids a
    // recompile when a tap is added later.
    std::set<std::string> keepValues;
    // Fold BatchNormalization into convolutions and fuse activations/adds as post-ops.
    bool fuse = true;
    // Layers (by node name) run in INT8 and the quantization of the values they read.
    // Between two INT8 layers a value stays 8-bit; float consumers get a dequantized copy.
    std::map<std::string, Int8Layer> int8Layers;
    std::map<std::string, Int8Value> int8Values;
    // With several threads, run a batch as per-thread sub-batches through single-threaded
    // copies of the program when every operator keeps samples apart and nothing observes
    // inner values (no taps, transforms or kept values). Checked against the whole
    // program once; QS_RUNTIME_SPLIT=0 turns it off everywhere.
    bool splitBatch = true;
    // Place the values kernels compute in one arena by lifetime: a value's bytes are
    // reused once its last reader ran. Graph inputs and outputs, kept, tapped and
    // transformed values keep storage of their own. A later runFrom(), or valueOf() of a
    // value in the arena, recompiles without the arena and repeats the last run.
    // QS_RUNTIME_ARENA=0 turns it off everywhere.
    bool planMemory = true;
    // BF16 as the target precision: products with constant float weights (Gemm, MatMul)
    // read bfloat16 inputs and weights (rounded to nearest even) and accumulate and write
    // float32. Fast where oneDNN's ISA has bf16 dot products (CpuIsa::onednnBf16: AVX512-BF16
    // or AMX), emulated on other AVX-512 CPUs; compiling fails (one line) below AVX-512.
    bool bf16 = false;
};

// Where a compiled plan's value storage goes (Plan::memoryStats), in bytes.
struct PlanMemory {
    std::size_t arenaBytes = 0;      // the arena: computed values nobody observes, placed by lifetime
    std::size_t arenaValueBytes = 0; // the same values each in storage of its own
    std::size_t arenaValues = 0;
    std::size_t inPlaceValues = 0; // of those, written over their input (eltwise, binary)
    std::size_t ownBytes = 0;      // inputs, outputs, kept values, constants read at run time (copies;
                                   // a plain constant of 64 KiB and more is read in the graph's tensor)
    std::size_t ownValues = 0;
    std::size_t weightBytes = 0; // constants bound into kernels (reordered weights, bias)
};

// Observer of one tensor's values; receives each batch as produced, plain layout, float32
// (or the value's own dtype for non-float values).
using Tap = std::function<void(const std::string& value, const Tensor& batch)>;

// Wall time of one kernel of a Plan (Plan::timeKernels), in execution order.
struct KernelTime {
    std::string node; // node name(s) it computes, "a+b" when fused
    std::string op;   // op type of the first node
    std::string impl; // oneDNN's implementation ("jit:avx2", "quantize simple:any", ...)
    double ms = 0;    // median over the repeats
};

class Plan {
public:
    virtual ~Plan() = default;

    // Inputs in the graph's input order (Graph::inputs); returns the graph outputs in order.
    virtual std::vector<Tensor> run(const std::vector<Tensor>& inputs) = 0;
    // Runs only what depends on the given values (any tensors, e.g. cached layer
    // inputs) and returns the graph outputs. Values not downstream are reused from
    // the last full run().
    virtual std::vector<Tensor> runFrom(const std::map<std::string, Tensor>& values) = 0;
    // runFrom() with values also taken from another plan's last run() or compute():
    // `fromSource` maps a value of this plan to one of `source` with the same shape and
    // type (e.g. a segment compiled with other weights). Each is copied as `source`
    // stores it (one reorder when the layouts differ), never through a plain tensor.
    virtual std::vector<Tensor> runFrom(const std::map<std::string, Tensor>& values, Plan& source,
        const std::map<std::string, std::string>& fromSource) = 0;
    // run() without reading the outputs back: the values stay in the plan, for
    // valueOf() or another plan's runFrom(..., source, ...).
    virtual void compute(const std::vector<Tensor>& inputs) = 0;

    // Taps cost nothing when none is attached.
    virtual void addTap(const std::string& value, Tap tap) = 0;
    virtual void clearTaps() = 0;

    // The value as the last run() or runFrom() left it, plain layout. It must exist in
    // the compiled plan: a graph input or output, a kept value (CompileOptions::keepValues)
    // or a tapped one; a value fusion removed is an error naming it.
    virtual Tensor valueOf(const std::string& value) = 0;

    // Shape and dtype of any value in the compiled plan.
    virtual Shape shapeOf(const std::string& value) const = 0;
    virtual DType dtypeOf(const std::string& value) const = 0;

    // One line per kernel in execution order: nodes it computes, op, implementation
    // (oneDNN's choice, e.g. "jit:avx512_core"), for profiling and tests.
    virtual std::vector<std::string> kernelSummary() const = 0;

    // How many sub-batches the last run() went through (CompileOptions::splitBatch);
    // 1 when the whole program ran it.
    virtual int lastRunShards() const = 0;

    // The storage of the program the next run() uses (compiled for the last inputs' shapes).
    virtual PlanMemory memoryStats() const = 0;

    // Runs `inputs` once, then `warmup` + `repeats` more times, timing each kernel on
    // its own (taps are not called while timing). Per kernel the median over the
    // repeats, and in `totalMs` (when given) the median of the whole pass.
    virtual std::vector<KernelTime> timeKernels(const std::vector<Tensor>& inputs, int warmup, int repeats,
        double* totalMs = nullptr) = 0;
};

// Throws Error naming op type, node name and opset for an unsupported operator,
// before anything runs.
//
// Notes on the contract as implemented:
// - run() with input shapes other than the compiled ones recompiles for them.
// - Adding a tap to a value that fusion hid recompiles once (before the next run)
//   with that value kept; runFrom() on such a value recompiles and repeats the last
//   run first. Values given to runFrom() are taken as final (no transform applied).
// - Taps and transforms see plain row-major float32 (or the value's own dtype).
std::unique_ptr<Plan> compilePlan(const Graph& graph, const CompileOptions& options = {});

// The operators this runtime supports, for messages and the UI.
std::vector<std::string> supportedOperators();

} // namespace qs
