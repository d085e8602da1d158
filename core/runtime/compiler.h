// Compiles a Graph into a Program for fixed input shapes: walks the nodes in
// topological order, lets each operator's builder define its outputs and kernels,
// constant-folds nodes whose inputs are all known, and inserts layout reorders.
#pragma once

#include "runtime/kernel.h"

namespace qs::rt {

struct ValueMeta {
    DType dtype = DType::Undefined;
    Shape shape;
};

class Compiler {
public:
    Compiler(const Graph& graph, const CompileOptions& options, std::set<std::string> keep);
    std::unique_ptr<Program> compile();

    // Shapes and dtypes of every value, including those fused away.
    std::map<std::string, ValueMeta> meta;

    // --- used by NodeContext
    const Graph& graph;
    const CompileOptions& options;
    std::set<std::string> keep;
    // Kept only for taps, which see each value as it is produced: they may share the
    // arena like any value (a caller reading one after the run recompiles without it).
    std::set<std::string> tappedOnly;
    std::set<std::string> graphOutputs;
    std::unique_ptr<Program> p;
    std::vector<char> done;
    std::vector<int> absorbed; // nodes absorbed by the node being built
    int nodeThreads = 1;       // threads for the kernels of the node being built
    // > 0: the plan runs its parallel work as parts on our pool, never in OpenMP regions
    // (see choosePartsPerThread); the parts per thread a kernel may split into.
    int partsPerThread = 0;

    // When set, the owner of `graph`: its initializers become constants in place (shared
    // with this owner) instead of copies.
    std::shared_ptr<const void> graphOwner;
    // The model's top graph (opsets, messages) when compiling a subgraph.
    const Graph* root = nullptr;
    // Kernels added now run only when these hold (Kernel::guards).
    std::vector<std::pair<int, bool>> guards;
    // Builds a subgraph (an If branch) into this program under `subGuards`: its
    // initializers, then its nodes, outer values visible by name. Returns the slot of
    // each subgraph output. On error nothing it added stays.
    std::vector<int> buildSubgraph(const Graph& sub, std::vector<std::pair<int, bool>> subGuards);

    int newSlot(const std::string& name, DType t, const Shape& shape, const memory::desc* md);
    void allocate(int slot);
    int convert(int slot, const memory::desc& md);
    int constantSlot(const std::string& name, std::shared_ptr<const Tensor> value);
    void addKernel(std::unique_ptr<Kernel> k);

private:
    void buildInitializers();
    void buildNodes();
    void buildNode(int index);
    int choosePartsPerThread() const;
    void foldKernels(std::size_t firstKernel, const std::string& where);
    // Places the computed values nobody observes in one arena by lifetime (or, without
    // `useArena`, only counts the storage) and fills Program::memory.
    void planMemory(bool useArena);
};

} // namespace qs::rt
