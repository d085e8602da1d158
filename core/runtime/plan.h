// The runtime: a Graph compiled for fixed input shapes into a Plan of oneDNN and
// plain C++ kernels, run on the CPU. Taps observe any tensor batch by batch.
#pragma once

#include "graph/graph.h"
#include "graph/tensor.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qs {

// A function applied to a value right after it is produced (fake quantization of
// activations, what-if perturbations). It edits the plain float32 tensor in place.
using ValueTransform = std::function<void(Tensor& value)>;

struct CompileOptions {
    std::map<std::string, Shape> inputShapes; // required for inputs with unknown dims
    int threads = 0;                          // 0: all cores
    // Replacement initializers (by name), e.g. quantized-dequantized weights.
    // The source graph is never edited.
    std::map<std::string, Tensor> initializerOverrides;
    // Per-value transforms, applied after the producing node (or to graph inputs).
    std::map<std::string, ValueTransform> valueTransforms;
};

// Observer of one tensor's values; receives each batch as produced, plain layout, float32
// (or the value's own dtype for non-float values).
using Tap = std::function<void(const std::string& value, const Tensor& batch)>;

class Plan {
public:
    virtual ~Plan() = default;

    // Inputs in the graph's input order (Graph::inputs); returns the graph outputs in order.
    virtual std::vector<Tensor> run(const std::vector<Tensor>& inputs) = 0;
    // Runs only what depends on the given values (any tensors, e.g. cached layer
    // inputs) and returns the graph outputs. Values not downstream are reused from
    // the last full run().
    virtual std::vector<Tensor> runFrom(const std::map<std::string, Tensor>& values) = 0;

    // Taps cost nothing when none is attached.
    virtual void addTap(const std::string& value, Tap tap) = 0;
    virtual void clearTaps() = 0;

    // Shape and dtype of any value in the compiled plan.
    virtual Shape shapeOf(const std::string& value) const = 0;
    virtual DType dtypeOf(const std::string& value) const = 0;
};

// Throws Error naming op type, node name and opset for an unsupported operator,
// before anything runs.
std::unique_ptr<Plan> compilePlan(const Graph& graph, const CompileOptions& options = {});

// The operators this runtime supports, for messages and the UI.
std::vector<std::string> supportedOperators();

} // namespace qs
