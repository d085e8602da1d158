// The one graph IR: ONNX is imported into it; the runtime, the analysers and the
// exporters read it. Nodes are kept in topological order.
#pragma once

#include "graph/tensor.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qs {

class Graph;

struct Attribute {
    enum class Kind { Float, Int, String, Tensor, Graph, Floats, Ints, Strings, Tensors, Graphs, Other };
    Kind kind = Kind::Int;
    float f = 0;
    int64_t i = 0;
    std::string s;
    std::vector<float> floats;
    std::vector<int64_t> ints;
    std::vector<std::string> strings;
    std::vector<Tensor> tensors;                // one for Kind::Tensor
    std::vector<std::shared_ptr<Graph>> graphs; // one for Kind::Graph
};

struct Node {
    std::string name;   // never empty after import (synthesized from op and index if absent)
    std::string opType;
    std::string domain; // "" for the default ai.onnx domain
    std::vector<std::string> inputs;  // "" marks an omitted optional input
    std::vector<std::string> outputs;
    std::map<std::string, Attribute> attrs;

    bool has(const std::string& attr) const { return attrs.count(attr) != 0; }
    int64_t attrInt(const std::string& attr, int64_t fallback) const;
    float attrFloat(const std::string& attr, float fallback) const;
    std::string attrString(const std::string& attr, const std::string& fallback) const;
    std::vector<int64_t> attrInts(const std::string& attr, const std::vector<int64_t>& fallback = {}) const;
    std::vector<float> attrFloats(const std::string& attr, const std::vector<float>& fallback = {}) const;
    // Input i or "" when absent.
    const std::string& input(std::size_t i) const;
};

struct Dim {
    int64_t value = -1;   // -1: unknown
    std::string param;    // symbolic name such as "N", when the model gives one
};

struct ValueInfo {
    std::string name;
    DType dtype = DType::Undefined;
    std::optional<std::vector<Dim>> dims; // nullopt: rank unknown

    bool fullyKnown() const;
    Shape shape() const;       // unknown dims as -1
    std::string text() const;  // "[N,16,28,28]"; "?" for unknown dims and ranks
};

// Seals every initializer and attribute tensor of `g` and its subgraphs
// (TensorBytes::seal): copies of the graph, of its tensors and plans compiled from it then
// share their bytes until one is written. Import seals what it returns.
void sealTensors(Graph& g);
// Seals every tensor of a map of them (weight overrides).
void sealTensors(std::map<std::string, Tensor>& tensors);

// What kind of quantizable layer a node is.
enum class LayerKind { None, Conv, ConvTranspose, Gemm, MatMul, Embedding };
const char* layerKindName(LayerKind k);

class Graph {
public:
    std::string name;
    std::vector<Node> nodes;
    std::map<std::string, Tensor> initializers;
    std::vector<ValueInfo> inputs;   // graph inputs that are not initializers
    std::vector<ValueInfo> outputs;
    std::map<std::string, ValueInfo> valueInfo; // every typed value: inputs, outputs, intermediates
    std::map<std::string, int64_t> opsets;      // domain ("" = ai.onnx) -> version
    std::map<std::string, std::string> metadata;
    std::string producerName, producerVersion, docString;
    int64_t irVersion = 0;
    std::string sourcePath;  // the file it came from, for messages
    uint64_t fileBytes = 0;  // size on disk including external data
    std::vector<std::string> warnings; // what import noticed but could live with

    // Rebuilds producer/consumer maps; call after editing nodes.
    void index();
    // Index of the node producing a value, or -1 (graph input, initializer, absent).
    int producerOf(const std::string& value) const;
    const std::vector<int>& consumersOf(const std::string& value) const;
    // Constant value: an initializer or the output of a Constant node; nullptr otherwise.
    const Tensor* constant(const std::string& value) const;
    const ValueInfo* info(const std::string& value) const;
    int64_t opset(const std::string& domain = "") const;

    LayerKind layerKind(const Node& n) const;
    // The weight initializer of a quantizable layer ("" for none).
    std::string weightOf(const Node& n) const;
    std::vector<int> quantizableLayers() const;
    int64_t parameterCount() const; // elements in all numeric initializers
    std::map<std::string, int> opCounts() const;
    int findNode(const std::string& name) const;

private:
    std::map<std::string, int> producer_;
    std::map<std::string, std::vector<int>> consumers_;
    std::map<std::string, int> byName_;
};

} // namespace qs
