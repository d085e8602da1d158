// Internals of the runtime shared by the compiler and the operator files: slots
// (the storage of one value), kernels (one step of a Program), the build context an
// operator builder sees, and the operator table. Not part of the public API.
#pragma once

#include "runtime/plan.h"
#include "util/error.h"

#include <oneapi/dnnl/dnnl.hpp>

#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace qs::rt {

using dnnl::memory;

// oneDNN's data type for a DType, or undef when oneDNN cannot hold it (int64, bool, ...).
memory::data_type dnnlType(DType t);
// Row-major (plain) descriptor; rank 0 is described as [1].
memory::desc plainDesc(const Shape& shape, DType t);
memory::dims toDims(const Shape& shape);
dnnl::engine& cpuEngine();

// 64-byte aligned, zero-initialised host memory. Large buffers are mapped pages the
// kernel commits on first touch, so storage that is never written costs no memory.
struct Buffer {
    std::shared_ptr<std::byte> ptr;
    std::size_t bytes = 0;
    static Buffer make(std::size_t bytes);
    std::byte* data() const { return ptr.get(); }
};
inline std::size_t bytesOf(const std::vector<Buffer>& buffers)
{
    std::size_t n = 0;
    for (const Buffer& b : buffers)
        n += b.bytes;
    return n;
}

// The storage of one value. Constants, graph inputs and outputs and kept values own
// theirs; the other values a kernel computes live in the program's arena, placed by
// lifetime (Compiler::planMemory), so two values never read at the same time may share
// bytes.
struct Slot {
    std::string name;            // value name ("" for internal scratch such as layout copies)
    DType dtype = DType::Float;
    Shape shape;
    memory::desc md;             // layout of `buffer` (zero desc for dtypes oneDNN lacks)
    bool blocked = false;        // md is not plain row-major
    Buffer buffer;
    memory mem;                  // wraps buffer (only for oneDNN dtypes)
    bool constant = false;       // known at compile time
    std::shared_ptr<const Tensor> value; // the constant, plain (constant slots only)
    int producer = -1;           // kernel that writes it (-1: input or constant)
    std::vector<std::pair<memory::desc, int>> layouts; // copies of this value in other layouts

    bool inArena = false; // buffer points into Program::arena, shared over time
    bool allocated() const { return buffer.ptr != nullptr; }
    int64_t numel() const { return numelOf(shape); }
    template <typename T> T* as() const { return reinterpret_cast<T*>(buffer.data()); }
    void* data() const { return buffer.data(); }
};

struct Program;

class Kernel {
public:
    virtual ~Kernel() = default;
    virtual void run(Program& p) = 0;
    virtual std::string describe() const { return ""; } // e.g. the oneDNN implementation chosen
    // Every oneDNN memory bound at compile time, so the arena can move slot storage.
    virtual void forEachMemory(const std::function<void(memory&)>& /*f*/) { }
    virtual std::size_t ownedBytes() const { return 0; } // constants it holds (reordered weights)
    std::string node;         // node name(s), for messages and profiles
    std::string op;
    std::vector<int> reads;   // slots read
    std::vector<int> writes;  // slots written
    bool observed = false;    // a written slot has taps or a transform
    int threads = 1;          // OpenMP threads it was created for and runs with
    // Runs only when every (Bool slot, value) holds: the kernels of an If branch chosen
    // at run time (ops/control_flow.cpp). The guard slots are also listed in reads.
    std::vector<std::pair<int, bool>> guards;
    bool skipped = false;     // the last run left it out (a guard did not hold)
};

// A oneDNN primitive with all its arguments bound at compile time.
class PrimitiveKernel : public Kernel {
public:
    dnnl::primitive prim;
    std::unordered_map<int, memory> args;
    std::vector<Buffer> owned; // storage of fixed arguments (reordered weights, bias)
    std::string impl;
    void run(Program& p) override;
    std::string describe() const override { return impl; }
    void forEachMemory(const std::function<void(memory&)>& f) override
    {
        for (auto& [arg, m] : args)
            f(m);
    }
    std::size_t ownedBytes() const override { return bytesOf(owned); }
};

// Plain C++ work.
class FnKernel : public Kernel {
public:
    std::function<void(Program&)> fn;
    void run(Program& p) override { fn(p); }
};

struct Program {
    std::deque<Slot> slots; // a deque: references stay valid while slots are added
    std::vector<std::unique_ptr<Kernel>> kernels;
    std::map<std::string, int> slotOf; // materialized value -> slot
    std::vector<int> inputSlots, outputSlots;
    dnnl::stream stream;
    int threads = 1;
    Buffer arena; // storage of the values placed by lifetime (Slot::inArena)
    PlanMemory memory;

    Slot& slot(int i) { return slots[std::size_t(i)]; }
    // Gives the arena's pages back (its values are lost; they are read again only after
    // the next run writes them).
    void releaseArena();
    // Runs kernel k with the thread count it was created for, unless its guards say no.
    void runKernel(Kernel& k)
    {
        k.skipped = false;
        for (const auto& [g, want] : k.guards)
            if ((*slot(g).as<uint8_t>() != 0) != want) {
                k.skipped = true;
                return;
            }
        if (k.threads != activeThreads)
            setThreads(k.threads);
        k.run(*this);
    }
    void setThreads(int n);
    int activeThreads = 0;
};

class Compiler;

// What an operator builder sees while building one node.
class NodeContext {
public:
    NodeContext(Compiler& c, const Node& node, int nodeIndex);

    const Node& node;
    int64_t opset() const;
    const CompileOptions& options() const;
    const Graph& graph() const;
    std::string where() const; // "node \"conv1\" (Conv, opset 13)"
    template <typename... Args> [[noreturn]] void fail(const Args&... args) const { qs::fail(where(), ": ", args...); }

    std::size_t inputCount() const { return node.inputs.size(); }
    bool has(std::size_t i) const { return i < node.inputs.size() && !node.inputs[i].empty(); }
    const Slot& in(std::size_t i) const;          // fails when absent
    Shape shape(std::size_t i) const { return in(i).shape; }
    DType dtype(std::size_t i) const { return in(i).dtype; }
    const Tensor* constant(std::size_t i) const;  // nullptr unless known at compile time
    const Tensor& requireConstant(std::size_t i, const char* what) const;
    const Tensor* constantValue(const std::string& value) const; // any value known at compile time

    // Slot ids for kernels: the input as stored, in a given layout (a reorder is added
    // once per layout and shared), or plain row-major.
    int input(std::size_t i);
    int inputAs(std::size_t i, const memory::desc& md);
    int plainInput(std::size_t i);
    int valueAs(const std::string& value, const memory::desc& md);
    int slotAs(int slot, const memory::desc& md);
    int slotOfValue(const std::string& value); // materialized value (allocating a constant if needed)

    // Defines output i (or a named value) with a layout (plain when md is empty).
    int output(std::size_t i, DType t, const Shape& shape, const memory::desc* md = nullptr);
    int outputNamed(const std::string& value, DType t, const Shape& shape, const memory::desc* md = nullptr);
    void constantOutput(std::size_t i, Tensor value);
    void add(std::unique_ptr<Kernel> k);
    // A oneDNN primitive kernel; args map ARG -> slot.
    Kernel* addPrimitive(dnnl::primitive prim, const std::string& impl, const std::map<int, int>& argSlots,
                         std::unordered_map<int, memory> fixed = {});
    // Memory over slot storage seen through another (plain) descriptor, e.g. with
    // leading 1s or the groups split out; the kernel must list the slot in reads.
    memory view(int slot, const memory::desc& md);
    void addFn(std::vector<int> reads, std::vector<int> writes, std::function<void(Program&)> fn);

    // Fusion: the single consumer of `value` when `value` may disappear into a fused
    // kernel (one consumer, not a graph output, not kept for taps or transforms).
    const Node* fusableConsumer(const std::string& value) const;
    void absorb(const Node& n);           // n is computed by this node's kernels
    bool defined(const std::string& value) const; // produced (or constant) already
    bool kept(const std::string& value) const;    // observed (taps, transforms, keepValues) or a graph output
    // Records a value's logical type and shape when it is materialized only in another
    // form (e.g. its INT8 copy), for Plan::shapeOf and thread decisions.
    void declare(const std::string& value, DType t, const Shape& shape);
    bool fuse() const;
    bool bf16() const; // CompileOptions::bf16
    int planThreads() const;    // threads of the whole plan
    int partsPerThread() const; // > 0: split parallel work into parts on our pool (Compiler::partsPerThread)

    Slot& slot(int i);

    // Control flow (ops/control_flow.cpp): a subgraph built into this program under the
    // current guards plus `extra` (Compiler::buildSubgraph), and those guards.
    std::vector<int> buildSubgraph(const Graph& sub, std::vector<std::pair<int, bool>> extra);
    const std::vector<std::pair<int, bool>>& guards() const;
    const Graph& rootGraph() const; // the model's top graph (its opsets)

private:
    Compiler& c_;
    int nodeIndex_;
};

// Builders return false to decline a node (letting a lower-priority builder try).
using OpBuilder = std::function<bool(NodeContext&)>;
bool registerOp(const std::string& opType, OpBuilder builder, int priority = 0);
// Registered builders for an op type, highest priority first.
std::vector<OpBuilder> buildersFor(const std::string& opType);
std::vector<std::string> registeredOps();

// Constants bound to a kernel at compile time, in new storage appended to `owned`:
// `values` (laid out as `from`) reordered into `to`, or copied as they are in `md`.
memory reorderedConstant(const memory::desc& to, const memory::desc& from, const void* values,
                         std::vector<Buffer>& owned);
memory copiedConstant(const memory::desc& md, const void* values, std::vector<Buffer>& owned);

// Copies a slot's value to a plain Tensor (reordering blocked layouts).
Tensor readSlot(Program& p, int slot);
// Writes a plain tensor into a slot (reordering into blocked layouts).
void writeSlot(Program& p, int slot, const Tensor& t);

// Helpers for builders.
std::vector<int64_t> normalizeAxes(std::vector<int64_t> axes, int64_t rank, const NodeContext& c);
int64_t normalizeAxis(int64_t axis, int64_t rank, const NodeContext& c);
Shape broadcastShapes(const Shape& a, const Shape& b, const NodeContext& c);
// Attribute values for messages, "[1,-2]" (shapeString shows negative dims as ?).
std::string intList(const std::vector<int64_t>& values);

} // namespace qs::rt
