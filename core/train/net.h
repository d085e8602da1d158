// A trainable copy of an imported Graph for fixed input shapes: forward and backward of
// every node with oneDNN's training primitives (plain layouts), fake quantization of
// chosen values (LSQ scale) and of the layer weights (straight-through), gradients of
// weights, biases, normalization parameters and scales. Parameters live in a ParamStore
// that nets built for other batch sizes share.
#pragma once

#include "graph/graph.h"
#include "quant/attention.h"
#include "quant/quantizer.h"
#include "quant/spec.h"

#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace qs::train {

// A param's values: its own, or (ParamStore::borrowWeights) those of the graph
// initializer it was made from, read and trained in place (no copy).
class ParamValues {
public:
    ParamValues() = default;
    float* data() { return borrowed_ ? borrowed_ : own_.data(); }
    const float* data() const { return borrowed_ ? borrowed_ : own_.data(); }
    std::size_t size() const { return borrowed_ ? borrowedSize_ : own_.size(); }
    bool empty() const { return size() == 0; }
    float& operator[](std::size_t i) { return data()[i]; }
    float operator[](std::size_t i) const { return data()[i]; }
    float* begin() { return data(); }
    float* end() { return data() + size(); }
    const float* begin() const { return data(); }
    const float* end() const { return data() + size(); }
    operator std::span<float>() { return {data(), size()}; }
    operator std::span<const float>() const { return {data(), size()}; }
    std::vector<float> toVector() const { return {begin(), end()}; }
    bool borrowed() const { return borrowed_ != nullptr; }
    // Owns `v` (drops a borrow).
    void own(std::vector<float> v)
    {
        borrowed_ = nullptr;
        borrowedSize_ = 0;
        own_ = std::move(v);
    }
    // Reads and writes `n` floats at `at`, owned by someone else.
    void borrow(float* at, std::size_t n)
    {
        std::vector<float>().swap(own_);
        borrowed_ = at;
        borrowedSize_ = n;
    }
    // Writes `v` (of size() values) into the storage, owned or borrowed.
    void assign(std::span<const float> v);
    // Forgets the values (frees its own).
    void release() { own({}); }

private:
    std::vector<float> own_;
    float* borrowed_ = nullptr;
    std::size_t borrowedSize_ = 0;
};

// One trainable tensor: a weight, a bias, a normalization scale or an LSQ scale ([1]).
struct Param {
    std::string name;
    Shape shape;
    ParamValues value;
    std::vector<float> grad;
    bool trainable = true;
    bool isScale = false; // an LSQ scale (its own learning rate, kept positive)
};

struct ParamStore {
    std::vector<Param> params;
    std::map<std::string, int> index;
    // Weights (params made from an initializer of the graph a Net is built on) borrow
    // the initializer's storage instead of copying it: training writes the graph's
    // tensors, which must outlive the store.
    bool borrowWeights = false;
    int find(const std::string& name) const;
    // The param named `name`, made from `value` the first time (borrowing its storage
    // when `borrowable` and borrowWeights).
    int add(const std::string& name, const Tensor& value, bool trainable, bool isScale = false,
        bool borrowable = false);
    void zeroGrad();
    // Makes param `i` (un)trainable: a trainable param has a gradient buffer, a frozen
    // one none (block by block training keeps gradients for one block only).
    void setTrainable(int i, bool trainable);
};

// How a weight is fake-quantized: the session's spec and axes; the grid is chosen from
// the current values (planWeightQuantization) at every forward.
struct WeightQuantSpec {
    QuantSpec spec;
    int outAxis = 0, inAxis = 1;
};

struct NetOptions {
    // Value -> its initial grid (scale, zero point, levels): every reader sees the value
    // fake-quantized, as QuantSession's simulated plan does. Scales are params
    // "<value>.scale", learned (LSQ) when learnScales.
    std::map<std::string, QParams> activations;
    std::map<std::string, WeightQuantSpec> weights; // weight initializer -> its quantization
    // Attention operands (quant/attention.h): readers of point.value see it fake-quantized
    // by the point's grid, after the value's own grid, as QuantSession's simulated plan
    // does. Static granularities (tensor, head, channel) learn one LSQ scale per slice,
    // the param "<point>.scale" ([slices]); per token ranges are each token's min-max
    // (straight-through, nothing learned).
    std::vector<OperandQuant> operands;
    bool learnScales = true;
    bool learnWeights = true;    // weights, biases and normalization parameters
    bool inputGradients = false; // also backpropagate into the graph inputs (gradient checks)
    // Forward only (evaluation, no backward): the fake-quantized copy of a weight exists
    // only while its op runs, so the net holds no copy of the weights.
    bool forwardOnly = false;
};

struct NetValue;
struct NetOp;

class Net {
public:
    // Throws naming the node when an op has no training kernel or an attribute or shape
    // is outside what it does. `inputShapes` gives every graph input's full shape.
    Net(const Graph& graph, const std::map<std::string, Shape>& inputShapes, std::shared_ptr<ParamStore> params,
        const NetOptions& options);
    ~Net();
    Net(const Net&) = delete;
    Net& operator=(const Net&) = delete;

    // Runs the graph on `inputs` (graph input order, float32) and returns output 0.
    const std::vector<float>& forward(const std::vector<Tensor>& inputs);
    Shape outputShape() const;
    // Backpropagates dL/d(output 0) from the last forward and adds every parameter's
    // gradient into its Param::grad (zero them first: ParamStore::zeroGrad).
    void backward(std::span<const float> dOutput);
    // The value of `name` after the last forward (the quantized one when it is
    // fake-quantized); throws when the net has no such value.
    const std::vector<float>& value(const std::string& name) const;
    Shape shapeOf(const std::string& name) const;
    // The value `name` computed (before its fake quantization) in the last forward.
    const std::vector<float>& rawValue(const std::string& name) const;
    // Adds `d` to dL/d(raw value `name`) in the next backward (a loss on an inner value,
    // such as attention maps); the backward then forgets it.
    void addValueGradient(const std::string& name, std::span<const float> d);
    // dL/d(value) from the last backward (graph inputs need NetOptions::inputGradients).
    const std::vector<float>& gradient(const std::string& name) const;

    ParamStore& params() { return *params_; }
    // The params this net reads (indices into params()).
    const std::set<int>& paramIds() const { return paramIds_; }
    // Clamps every LSQ scale to stay positive (after an optimizer step).
    void clampScales();

private:
    friend struct NetOp;
    std::shared_ptr<ParamStore> params_;
    NetOptions options_;
    std::vector<std::unique_ptr<NetValue>> values_;
    std::map<std::string, int> valueOf_; // graph value name -> value read by consumers
    std::vector<std::unique_ptr<NetOp>> ops_;
    std::vector<int> inputs_;
    int output_ = -1;
    struct Dnnl;
    std::unique_ptr<Dnnl> dnnl_;
    // Values computed from constants and fixed shapes (Shape chains, masks, positions),
    // evaluated once by the inference runtime when the net is built.
    std::map<std::string, Tensor> folded_;
    std::map<int, std::vector<float>> pending_; // addValueGradient's, by value
    bool fold(const Node& n);

    std::set<int> paramIds_;

public: // for the op builders in net.cpp
    int newValue(const std::string& name, const Shape& shape);
    // params().add(...), remembered in paramIds().
    int addParam(const std::string& name, const Tensor& value, bool trainable, bool isScale = false);
    NetValue& val(int i) { return *values_[std::size_t(i)]; }
    int lookup(const Node& n, std::size_t input) const;
    // An initializer of the graph or a value folded from constants, else nullptr.
    const Tensor* constant(const std::string& name) const;
    Dnnl& dnnl() { return *dnnl_; }
    const NetOptions& options() const { return options_; }
    const Graph* graph = nullptr;
};

// The op types Net trains.
const std::vector<std::string>& trainableOps();

} // namespace qs::train
