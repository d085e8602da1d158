// Graph -> Program: builders per node in topological order, constant folding,
// layout reorders shared between consumers, and the operator table.
#include "runtime/compiler.h"

#include "graph/subgraphs.h"
#include "runtime/cpu_isa.h"

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace qs::rt {

// ---------------------------------------------------------------- oneDNN basics

memory::data_type dnnlType(DType t)
{
    switch (t) {
    case DType::Float: return memory::data_type::f32;
    case DType::Int8: return memory::data_type::s8;
    case DType::UInt8: return memory::data_type::u8;
    case DType::Int32: return memory::data_type::s32;
    case DType::BFloat16: return memory::data_type::bf16;
    case DType::Float16: return memory::data_type::f16;
    default: return memory::data_type::undef;
    }
}

memory::dims toDims(const Shape& shape)
{
    if (shape.empty())
        return {1};
    return memory::dims(shape.begin(), shape.end());
}

memory::desc plainDesc(const Shape& shape, DType t)
{
    memory::dims dims = toDims(shape);
    if (dnnlType(t) == memory::data_type::undef || dims.size() > DNNL_MAX_NDIMS)
        return {};
    memory::dims strides(dims.size());
    int64_t s = 1;
    for (std::size_t i = dims.size(); i-- > 0;) {
        strides[i] = s;
        s *= std::max<int64_t>(dims[i], 1);
    }
    return memory::desc(dims, dnnlType(t), strides);
}

dnnl::engine& cpuEngine()
{
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

// From this size on a buffer is its own mapping: zero pages the kernel commits on first
// touch (and gives back on release), so storage set aside at compile time and never
// written (a value the arena later places elsewhere) never counts in resident memory.
constexpr std::size_t kMappedBufferBytes = 256 * 1024;

Buffer Buffer::make(std::size_t bytes)
{
    const std::size_t size = (std::max<std::size_t>(bytes, 64) + 63) / 64 * 64;
    Buffer b;
    b.bytes = bytes;
    if (size >= kMappedBufferBytes) {
        void* raw = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (raw == MAP_FAILED)
            fail("runtime: out of memory allocating ", bytes, " bytes");
        b.ptr = std::shared_ptr<std::byte>(static_cast<std::byte*>(raw), [size](std::byte* q) { munmap(q, size); });
        return b;
    }
    void* raw = std::aligned_alloc(64, size);
    if (!raw)
        fail("runtime: out of memory allocating ", bytes, " bytes");
    std::memset(raw, 0, size);
    b.ptr = std::shared_ptr<std::byte>(static_cast<std::byte*>(raw), [](std::byte* q) { std::free(q); });
    return b;
}

void Program::releaseArena()
{
    const std::size_t size = (std::max<std::size_t>(arena.bytes, 64) + 63) / 64 * 64;
    if (arena.ptr && size >= kMappedBufferBytes)
        madvise(arena.data(), size, MADV_DONTNEED); // reads as zeros until written again
}

void Program::setThreads(int n)
{
    omp_set_num_threads(n);
    activeThreads = n;
}

void PrimitiveKernel::run(Program& p)
{
    prim.execute(p.stream, args);
}

// ---------------------------------------------------------------- slot I/O

namespace {

// Kernel constants by content: every plan, shard and part that binds the same values in
// the same layout shares one copy (a batch split's shards, the plans CLI and UI keep per
// shape, quantized variants whose layers did not change). Keyed by a 64-bit hash of the
// source bytes and both descriptors; held weakly, so the last kernel frees it.
class ConstantCache {
public:
    Buffer find(uint64_t hash, const memory::desc& from, const memory::desc& to)
    {
        std::lock_guard lock(mutex_);
        auto [lo, hi] = entries_.equal_range(hash);
        for (auto it = lo; it != hi; ++it)
            if (it->second.from == from && it->second.to == to)
                if (auto ptr = it->second.ptr.lock())
                    return Buffer {std::move(ptr), it->second.bytes};
        return {};
    }
    void add(uint64_t hash, const memory::desc& from, const memory::desc& to, const Buffer& b)
    {
        std::lock_guard lock(mutex_);
        if (++added_ % 256 == 0)
            std::erase_if(entries_, [](const auto& e) { return e.second.ptr.expired(); });
        entries_.emplace(hash, Entry {from, to, b.ptr, b.bytes});
    }

private:
    struct Entry {
        memory::desc from, to;
        std::weak_ptr<std::byte> ptr;
        std::size_t bytes;
    };
    std::mutex mutex_;
    std::unordered_multimap<uint64_t, Entry> entries_;
    std::size_t added_ = 0;
};

ConstantCache& constantCache()
{
    static ConstantCache cache;
    return cache;
}

uint64_t contentHash(const void* data, std::size_t bytes)
{
    // FNV-1a over 8-byte words, then the tail.
    const auto* p = static_cast<const unsigned char*>(data);
    uint64_t h = 1469598103934665603ull ^ bytes;
    std::size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        h = (h ^ w) * 1099511628211ull;
        h ^= h >> 29;
    }
    for (; i < bytes; ++i)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

} // namespace

namespace {

// `values` (laid out as `from`) as `to` in storage filled by `fill` or shared from the cache.
template<typename Fill>
memory cachedConstant(
    const memory::desc& to, const memory::desc& from, const void* values, std::vector<Buffer>& owned, Fill fill)
{
    const uint64_t hash = contentHash(values, from.get_size());
    Buffer b = constantCache().find(hash, from, to);
    if (!b.ptr) {
        b = Buffer::make(to.get_size());
        fill(b);
        constantCache().add(hash, from, to, b);
    }
    owned.push_back(b);
    return memory(to, cpuEngine(), b.data());
}

} // namespace

memory reorderedConstant(const memory::desc& to, const memory::desc& from, const void* values,
                         std::vector<Buffer>& owned)
{
    return cachedConstant(to, from, values, owned, [&](Buffer& b) {
        memory dst(to, cpuEngine(), b.data());
        memory src(from, cpuEngine(), const_cast<void*>(values));
        dnnl::stream s(cpuEngine());
        dnnl::reorder(src, dst).execute(s, src, dst);
        s.wait();
    });
}

memory copiedConstant(const memory::desc& md, const void* values, std::vector<Buffer>& owned)
{
    return cachedConstant(md, md, values, owned, [&](Buffer& b) { std::memcpy(b.data(), values, md.get_size()); });
}

Tensor readSlot(Program& p, int id)
{
    Slot& s = p.slot(id);
    if (s.constant && s.value && !s.allocated()) {
        Tensor t = *s.value;
        t.name = s.name;
        return t;
    }
    Tensor t(s.dtype, s.shape);
    t.name = s.name;
    if (!s.blocked) {
        if (!t.bytes.empty()) // an empty value may have no storage at all
            std::memcpy(t.bytes.data(), s.data(), t.bytes.size());
        return t;
    }
    memory dst(plainDesc(s.shape, s.dtype), cpuEngine(), t.bytes.data());
    dnnl::reorder(s.mem, dst).execute(p.stream, s.mem, dst);
    p.stream.wait();
    return t;
}

void writeSlot(Program& p, int id, const Tensor& t)
{
    Slot& s = p.slot(id);
    if (t.dtype != s.dtype || t.shape != s.shape)
        fail("value ", quoted(s.name), ": expected ", dtypeName(s.dtype), " ", shapeString(s.shape), ", got ",
             dtypeName(t.dtype), " ", shapeString(t.shape));
    if (!s.blocked) {
        if (!t.bytes.empty()) // an empty value may have no storage at all
            std::memcpy(s.data(), t.bytes.data(), t.bytes.size());
        return;
    }
    memory src(plainDesc(s.shape, s.dtype), cpuEngine(), const_cast<std::byte*>(t.bytes.data()));
    dnnl::reorder(src, s.mem).execute(p.stream, src, s.mem);
    p.stream.wait();
}

// ---------------------------------------------------------------- operator table

namespace {
struct Entry {
    int priority;
    OpBuilder builder;
};
std::map<std::string, std::vector<Entry>>& table()
{
    static std::map<std::string, std::vector<Entry>> t;
    return t;
}
} // namespace

bool registerOp(const std::string& opType, OpBuilder builder, int priority)
{
    auto& v = table()[opType];
    v.push_back({priority, std::move(builder)});
    std::stable_sort(v.begin(), v.end(), [](const Entry& a, const Entry& b) { return a.priority > b.priority; });
    return true;
}

std::vector<std::string> registeredOps()
{
    std::vector<std::string> ops;
    for (const auto& [op, entries] : table())
        ops.push_back(op);
    return ops;
}

std::vector<OpBuilder> buildersFor(const std::string& opType)
{
    std::vector<OpBuilder> out;
    auto it = table().find(opType);
    if (it != table().end())
        for (const auto& e : it->second)
            out.push_back(e.builder);
    return out;
}

// ---------------------------------------------------------------- helpers

int64_t normalizeAxis(int64_t axis, int64_t rank, const NodeContext& c)
{
    if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
        c.fail("axis ", axis, " is out of range for rank ", rank);
    return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> normalizeAxes(std::vector<int64_t> axes, int64_t rank, const NodeContext& c)
{
    for (auto& a : axes)
        a = normalizeAxis(a, rank, c);
    return axes;
}

std::string intList(const std::vector<int64_t>& values)
{
    std::string s = "[";
    for (std::size_t i = 0; i < values.size(); ++i)
        s += (i ? "," : "") + std::to_string(values[i]);
    return s + "]";
}

Shape broadcastShapes(const Shape& a, const Shape& b, const NodeContext& c)
{
    const std::size_t rank = std::max(a.size(), b.size());
    Shape out(rank);
    for (std::size_t i = 0; i < rank; ++i) {
        const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
        const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
        if (da != db && da != 1 && db != 1)
            c.fail("shapes ", shapeString(a), " and ", shapeString(b), " do not broadcast");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

// ---------------------------------------------------------------- NodeContext

NodeContext::NodeContext(Compiler& c, const Node& n, int nodeIndex) : node(n), c_(c), nodeIndex_(nodeIndex) {}

int64_t NodeContext::opset() const { return c_.root->opset(node.domain); }
const CompileOptions& NodeContext::options() const { return c_.options; }
const Graph& NodeContext::graph() const { return c_.graph; }
bool NodeContext::fuse() const { return c_.options.fuse; }
bool NodeContext::bf16() const { return c_.options.bf16; }
Slot& NodeContext::slot(int i) { return c_.p->slot(i); }

std::string NodeContext::where() const
{
    return str("node ", quoted(node.name), " (", node.opType, ", opset ", opset(), ")");
}

const Slot& NodeContext::in(std::size_t i) const
{
    if (!has(i))
        fail("input ", i, " is required");
    auto it = c_.p->slotOf.find(node.inputs[i]);
    if (it == c_.p->slotOf.end())
        fail("input ", quoted(node.inputs[i]), " is not available (internal: fused away)");
    return c_.p->slot(it->second);
}

const Tensor* NodeContext::constant(std::size_t i) const
{
    if (!has(i))
        return nullptr;
    const Slot& s = in(i);
    return s.constant ? s.value.get() : nullptr;
}

const Tensor& NodeContext::requireConstant(std::size_t i, const char* what) const
{
    const Tensor* t = constant(i);
    if (!t)
        fail(what, " (input ", i, " ", quoted(node.input(i)), ") must be a constant; it is computed at run time");
    return *t;
}

int NodeContext::slotOfValue(const std::string& value)
{
    auto it = c_.p->slotOf.find(value);
    if (it == c_.p->slotOf.end())
        fail("value ", quoted(value), " is not available");
    c_.allocate(it->second);
    return it->second;
}

int NodeContext::input(std::size_t i)
{
    in(i);
    return slotOfValue(node.inputs[i]);
}

int NodeContext::valueAs(const std::string& value, const memory::desc& md)
{
    return c_.convert(slotOfValue(value), md);
}

int NodeContext::slotAs(int slot, const memory::desc& md)
{
    return c_.convert(slot, md);
}

int NodeContext::inputAs(std::size_t i, const memory::desc& md)
{
    return c_.convert(input(i), md);
}

int NodeContext::plainInput(std::size_t i)
{
    const int s = input(i);
    const Slot& sl = c_.p->slot(s);
    if (!sl.blocked)
        return s;
    return c_.convert(s, plainDesc(sl.shape, sl.dtype));
}

int NodeContext::output(std::size_t i, DType t, const Shape& shape, const memory::desc* md)
{
    const std::string name = i < node.outputs.size() ? node.outputs[i] : std::string();
    return outputNamed(name, t, shape, md);
}

int NodeContext::outputNamed(const std::string& value, DType t, const Shape& shape, const memory::desc* md)
{
    int64_t elements = 1;
    for (int64_t d : shape) {
        if (d < 0)
            fail("output ", quoted(value), " would have a negative dimension: ", shapeString(shape));
        if (d > 0 && elements > (int64_t(1) << 40) / d) // also keeps byte counts from overflowing
            fail("output ", quoted(value), " would have implausibly many elements: ", shapeString(shape));
        elements *= d;
    }
    const int s = c_.newSlot(value, t, shape, md);
    c_.allocate(s);
    return s;
}

void NodeContext::constantOutput(std::size_t i, Tensor value)
{
    const std::string name = i < node.outputs.size() ? node.outputs[i] : std::string();
    value.name = name;
    c_.constantSlot(name, std::make_shared<const Tensor>(std::move(value)));
}

void NodeContext::add(std::unique_ptr<Kernel> k)
{
    k->node = node.name;
    for (int a : c_.absorbed)
        k->node += "+" + c_.graph.nodes[std::size_t(a)].name;
    k->op = node.opType;
    c_.addKernel(std::move(k));
}

memory NodeContext::view(int s, const memory::desc& md)
{
    c_.allocate(s);
    return memory(md, cpuEngine(), c_.p->slot(s).data());
}

const Tensor* NodeContext::constantValue(const std::string& value) const
{
    auto it = c_.p->slotOf.find(value);
    if (it == c_.p->slotOf.end())
        return nullptr;
    const Slot& s = c_.p->slot(it->second);
    return s.constant ? s.value.get() : nullptr;
}

Kernel* NodeContext::addPrimitive(dnnl::primitive prim, const std::string& impl, const std::map<int, int>& argSlots,
                                  std::unordered_map<int, memory> fixed)
{
    auto k = std::make_unique<PrimitiveKernel>();
    k->prim = std::move(prim);
    k->impl = impl;
    k->args = std::move(fixed);
    for (const auto& [arg, s] : argSlots) {
        Slot& sl = c_.p->slot(s);
        k->args[arg] = sl.mem;
        if (arg == DNNL_ARG_DST || arg == DNNL_ARG_DST_1 || arg == DNNL_ARG_WORKSPACE)
            k->writes.push_back(s);
        else
            k->reads.push_back(s);
    }
    Kernel* raw = k.get();
    add(std::move(k));
    return raw;
}

std::vector<int> NodeContext::buildSubgraph(const Graph& sub, std::vector<std::pair<int, bool>> extra)
{
    std::vector<std::pair<int, bool>> all = c_.guards;
    all.insert(all.end(), extra.begin(), extra.end());
    return c_.buildSubgraph(sub, std::move(all));
}

const std::vector<std::pair<int, bool>>& NodeContext::guards() const { return c_.guards; }
const Graph& NodeContext::rootGraph() const { return *c_.root; }

int NodeContext::planThreads() const { return c_.p->threads; }
int NodeContext::partsPerThread() const { return c_.partsPerThread; }

void NodeContext::addFn(std::vector<int> reads, std::vector<int> writes, std::function<void(Program&)> fn)
{
    auto k = std::make_unique<FnKernel>();
    k->reads = std::move(reads);
    k->writes = std::move(writes);
    k->fn = std::move(fn);
    add(std::move(k));
}

const Node* NodeContext::fusableConsumer(const std::string& value) const
{
    if (!c_.options.fuse || value.empty() || c_.keep.count(value) || c_.graphOutputs.count(value))
        return nullptr;
    const auto& consumers = c_.graph.consumersOf(value);
    if (consumers.empty())
        return nullptr;
    const int first = consumers.front();
    for (int n : consumers)
        if (n != first)
            return nullptr;
    if (c_.done[std::size_t(first)])
        return nullptr;
    const Node& n = c_.graph.nodes[std::size_t(first)];
    int uses = 0;
    for (const auto& in : n.inputs)
        uses += in == value ? 1 : 0;
    return uses == 1 ? &n : nullptr;
}

void NodeContext::absorb(const Node& n)
{
    const int idx = c_.graph.findNode(n.name);
    c_.done[std::size_t(idx)] = 1;
    c_.absorbed.push_back(idx);
}

bool NodeContext::defined(const std::string& value) const
{
    return c_.p->slotOf.count(value) != 0;
}

void NodeContext::declare(const std::string& value, DType t, const Shape& shape)
{
    c_.meta[value] = {t, shape};
}

bool NodeContext::kept(const std::string& value) const
{
    return c_.keep.count(value) != 0 || c_.graphOutputs.count(value) != 0;
}

// ---------------------------------------------------------------- Compiler

namespace {

// An initializer of the graph or of any subgraph in it.
const Tensor* findInitializer(const Graph& g, const std::string& name)
{
    if (auto it = g.initializers.find(name); it != g.initializers.end())
        return &it->second;
    for (const auto& n : g.nodes)
        for (const auto& [attr, a] : n.attrs)
            for (const auto& sub : a.graphs)
                if (const Tensor* t = sub ? findInitializer(*sub, name) : nullptr)
                    return t;
    return nullptr;
}

// Nodes of the graph and its subgraphs the runtime has no builder for.
void unsupportedNodes(const Graph& g, const Graph& root, std::vector<std::string>& out)
{
    for (const auto& n : g.nodes) {
        const bool known = (n.domain.empty() || n.domain == "ai.onnx") && !buildersFor(n.opType).empty();
        if (!known)
            out.push_back(str("node ", quoted(n.name), " (", n.domain.empty() ? "" : n.domain + ".", n.opType,
                              ", opset ", root.opset(n.domain), ")"));
        for (const auto& [attr, a] : n.attrs)
            for (const auto& sub : a.graphs)
                if (sub)
                    unsupportedNodes(*sub, root, out);
    }
}

} // namespace

Compiler::Compiler(const Graph& g, const CompileOptions& o, std::set<std::string> k)
    : graph(g), options(o), keep(std::move(k))
{
    root = &g;
    for (const auto& out : g.outputs)
        graphOutputs.insert(out.name);
    for (const auto& [name, t] : o.valueTransforms)
        keep.insert(name);
    // A value read inside a subgraph must stay materialized: fusion only sees the
    // outer graph's explicit consumers.
    for (const auto& n : g.nodes)
        for (const auto& [name, a] : n.attrs)
            for (const auto& sub : a.graphs)
                if (sub)
                    for (const auto& v : outerReads(*sub))
                        keep.insert(v);
}

std::vector<int> Compiler::buildSubgraph(const Graph& sub, std::vector<std::pair<int, bool>> subGuards)
{
    Compiler c(sub, options, keep);
    c.graphOwner = graphOwner; // subgraphs belong to the graph that holds them
    c.root = root;
    c.guards = std::move(subGuards);
    c.partsPerThread = partsPerThread;
    c.p = std::move(p);
    c.meta = std::move(meta);
    const std::size_t kernels0 = c.p->kernels.size(), slots0 = c.p->slots.size();
    const std::map<std::string, int> slotOf0 = c.p->slotOf;
    std::vector<int> outs;
    try {
        c.done.assign(sub.nodes.size(), 0);
        c.buildInitializers();
        c.buildNodes();
        for (const auto& o : sub.outputs) {
            auto it = c.p->slotOf.find(o.name);
            if (it == c.p->slotOf.end())
                fail("subgraph ", quoted(sub.name), ": output ", quoted(o.name), " was not produced");
            outs.push_back(it->second);
        }
    } catch (...) {
        c.p->kernels.resize(kernels0);
        for (std::size_t i = 0; i < slots0; ++i)
            std::erase_if(c.p->slots[i].layouts, [&](const auto& l) { return l.second >= int(slots0); });
        c.p->slots.resize(slots0);
        c.p->slotOf = slotOf0;
        p = std::move(c.p);
        meta = std::move(c.meta);
        throw;
    }
    p = std::move(c.p);
    meta = std::move(c.meta);
    return outs;
}

int Compiler::newSlot(const std::string& name, DType t, const Shape& shape, const memory::desc* md)
{
    Slot s;
    s.name = name;
    s.dtype = t;
    s.shape = shape;
    s.md = md && md->data.ndims > 0 ? *md : plainDesc(shape, t);
    s.blocked = s.md.data.ndims > 0 && s.md != plainDesc(shape, t);
    p->slots.push_back(std::move(s));
    const int id = int(p->slots.size()) - 1;
    if (!name.empty()) {
        p->slotOf[name] = id;
        meta[name] = {t, shape};
    }
    return id;
}

void Compiler::allocate(int id)
{
    Slot& s = p->slot(id);
    if (s.allocated())
        return;
    const std::size_t bytes =
        s.md.data.ndims > 0 ? s.md.get_size() : std::size_t(std::max<int64_t>(s.numel(), 0)) * elementSize(s.dtype);
    if (s.constant && s.value && s.blocked)
        fail("internal: blocked constant without storage");
    // A plain constant of kShareConstantBytes and more is read where its tensor lies (an
    // embedding table, a weight in its own layout): kernels never write constants, and
    // runFrom() and value transforms refuse them.
    constexpr std::size_t kShareConstantBytes = 64 * 1024;
    if (s.constant && s.value && bytes >= kShareConstantBytes && s.value->bytes.size() == bytes) {
        // The tensor's storage itself, not the tensor, is kept: a graph sharing it
        // (TensorBytes) may be written (copied on write) or dropped while the plan lives.
        s.buffer.ptr = std::const_pointer_cast<std::byte>(s.value->bytes.storage());
        s.buffer.bytes = bytes;
    } else {
        s.buffer = Buffer::make(bytes);
        if (s.constant && s.value)
            if (const std::size_t n = std::min(bytes, s.value->bytes.size()))
                std::memcpy(s.buffer.data(), s.value->bytes.data(), n);
    }
    if (s.md.data.ndims > 0)
        s.mem = memory(s.md, cpuEngine(), s.buffer.data());
}

int Compiler::constantSlot(const std::string& name, std::shared_ptr<const Tensor> value)
{
    const int id = newSlot(name, value->dtype, value->shape, nullptr);
    Slot& s = p->slot(id);
    s.constant = true;
    s.value = std::move(value);
    return id;
}

int Compiler::convert(int id, const memory::desc& md)
{
    {
        Slot& s = p->slot(id);
        if ((s.md.data.ndims == 0 && md.data.ndims == 0) || s.md == md)
            return id;
        for (const auto& [m, other] : s.layouts)
            if (m == md)
                return other;
        if (s.md.data.ndims == 0)
            fail("value ", quoted(s.name), ": ", dtypeName(s.dtype), " cannot change layout");
    }
    allocate(id);
    Slot src = p->slot(id); // copy: newSlot may reallocate the vector
    Slot copy;
    copy.name = "";
    copy.dtype = src.dtype;
    copy.shape = src.shape;
    copy.md = md;
    copy.blocked = md != plainDesc(src.shape, src.dtype);
    p->slots.push_back(std::move(copy));
    const int out = int(p->slots.size()) - 1;
    allocate(out);
    p->slot(id).layouts.push_back({md, out});
    Slot& dst = p->slot(out);
    dnnl::reorder r(src.mem, dst.mem);
    if (src.constant) {
        r.execute(p->stream, src.mem, dst.mem);
        p->stream.wait();
        dst.constant = true;
        return out;
    }
    auto k = std::make_unique<PrimitiveKernel>();
    k->prim = r;
    k->args = {{DNNL_ARG_FROM, src.mem}, {DNNL_ARG_TO, dst.mem}};
    k->reads = {id};
    k->writes = {out};
    k->node = "reorder(" + src.name + ")";
    k->op = "Reorder";
    addKernel(std::move(k));
    return out;
}

void Compiler::addKernel(std::unique_ptr<Kernel> k)
{
    const int idx = int(p->kernels.size());
    k->threads = nodeThreads;
    k->guards = guards;
    for (const auto& [g, want] : guards)
        k->reads.push_back(g);
    for (int w : k->writes)
        p->slot(w).producer = idx;
    p->kernels.push_back(std::move(k));
}

void Compiler::foldKernels(std::size_t first, const std::string& where)
{
    std::vector<int> written;
    for (std::size_t k = first; k < p->kernels.size(); ++k) {
        try { // guards do not apply: the inputs are known now
            p->setThreads(p->kernels[k]->threads);
            p->kernels[k]->run(*p);
        } catch (const Error&) {
            throw;
        } catch (const std::exception& e) {
            fail(where, ": constant folding failed: ", e.what());
        }
        for (int w : p->kernels[k]->writes)
            written.push_back(w);
    }
    p->stream.wait();
    p->kernels.resize(first);
    for (int w : written) {
        Slot& s = p->slot(w);
        s.producer = -1;
        s.constant = true;
        if (!s.name.empty() || !s.blocked) {
            auto v = std::make_shared<Tensor>(readSlot(*p, w));
            s.value = std::move(v);
        }
    }
}

// Below this many input elements a node's kernels run single-threaded.
constexpr int64_t kParallelMinElements = 16384;

// Below this many multiply-adds a convolution runs single-threaded. A libgomp
// parallel region waits for every worker at its end, and a passive (futex-sleeping)
// worker wakes ~50 us late on the 2-core VMs here, so a region costs that much
// whatever its size. Per-kernel profile, MobileNetV2 batch 1, load ~1
// (QS_RUNTIME_PROFILE=2, 2 threads vs 1): 3x3 depthwise convs 15 -> 60-75 us, 1x1
// convs of 7-11M MACs equal or slower, only the 19M+ ones (the fused features.2
// block) faster. Model median, 2 threads: 4.4 ms all parallel, 3.8 below 4M, 3.6
// below 10M, 3.5 below 16M (1 thread: 3.3-3.5). QS_RUNTIME_PAR_MIN_MACS overrides
// it (0: every large enough conv in parallel). Only with passive waiting: spinning
// workers (libgomp's default) join at once, and there 2 threads win (MobileNetV2
// batch 1, 2 threads, spinning: 2.4 ms all parallel, 3.7 ms with this threshold).
// Convolutional models at batch 1 run in parts mode instead (choosePartsPerThread
// below), where no kernel opens a region; this threshold decides for the rest
// (larger batches that do not split, models of mostly matrix products).
constexpr int64_t kParallelMinMacs = 16'000'000;

int64_t parallelMinMacs()
{
    static const int64_t v = [] {
        if (const char* env = std::getenv("QS_RUNTIME_PAR_MIN_MACS"))
            return int64_t(std::atoll(env));
        const char* wait = std::getenv("OMP_WAIT_POLICY"); // libgomp reads it at start-up only
        const bool passive = wait && (std::string(wait) == "PASSIVE" || std::string(wait) == "passive");
        return passive ? kParallelMinMacs : int64_t(0);
    }();
    return v;
}

// Multiply-adds of a Conv node with constant 4-D weights (an estimate: output size from
// the strides, padding ignored); 0 when unknown.
int64_t convMacs(const Node& node, const Shape& x, const Shape& w)
{
    if (node.opType != "Conv" || x.size() != 4 || w.size() != 4)
        return 0;
    auto strides = node.attrInts("strides");
    const int64_t sh = strides.size() == 2 ? std::max<int64_t>(1, strides[0]) : 1;
    const int64_t sw = strides.size() == 2 ? std::max<int64_t>(1, strides[1]) : 1;
    return x[0] * w[0] * ((x[2] + sh - 1) / sh) * ((x[3] + sw - 1) / sw) * w[1] * w[2] * w[3];
}

// Parts mode. At batch 1 a convolution can run as parts on our caller-participating
// pool (buildParts in ops/conv.cpp), which beats a libgomp region when workers sleep.
// But the two must not mix: libgomp's workers spin after a region by default
// (OMP_WAIT_POLICY unset) and ours after a job, and on two cores three spinning or
// working threads share the time slices (measured, MobileNetV2 batch 1, 2 threads,
// default wait: 5.1 ms mixed against 2.1 ms for ONNX Runtime). So a plan either runs
// every kernel single-threaded in OpenMP's sense and splits work into parts, or uses
// OpenMP regions and no parts. Parts mode is chosen for convolutional models at
// batch 1 with 2 or more threads, in float: every input of batch 1, and at least four
// Conv nodes for each Gemm or MatMul (a transformer's matrix products have no parts).
// Kernels that cannot split then run on one thread. QS_RUNTIME_PARTS sets the parts
// per thread (default 1; 0: never).
constexpr int kPartsPerThread = 1;

int Compiler::choosePartsPerThread() const
{
    static const int perThread = [] {
        const char* env = std::getenv("QS_RUNTIME_PARTS");
        return env ? std::max(0, std::atoi(env)) : kPartsPerThread;
    }();
    if (perThread == 0 || p->threads < 2 || !options.int8Layers.empty())
        return 0;
    for (int s : p->inputSlots)
        if (p->slot(s).shape.empty() || p->slot(s).shape[0] != 1)
            return 0;
    int convs = 0, products = 0;
    for (const auto& n : graph.nodes) {
        convs += n.opType == "Conv" ? 1 : 0;
        products += n.opType == "Gemm" || n.opType == "MatMul" ? 1 : 0;
    }
    return convs > 0 && convs >= 4 * products ? perThread : 0;
}

void Compiler::buildNode(int index)
{
    const Node& node = graph.nodes[std::size_t(index)];
    NodeContext ctx(*this, node, index);
    std::vector<OpBuilder> builders = node.domain.empty() || node.domain == "ai.onnx"
                                          ? buildersFor(node.opType)
                                          : std::vector<OpBuilder>{};
    if (builders.empty())
        ctx.fail("unsupported operator", node.domain.empty() ? "" : " (domain " + node.domain + ")");
    const std::size_t firstKernel = p->kernels.size();
    absorbed.clear();
    // Small work runs on one thread: a parallel region costs more than it saves there
    // (and far more when cores are oversubscribed). oneDNN fixes its thread count when
    // a primitive is created, so this is decided before the builder runs.
    int64_t work = 0;
    for (const auto& in : node.inputs) {
        auto it = p->slotOf.find(in);
        if (it != p->slotOf.end() && !p->slot(it->second).constant)
            work = std::max(work, p->slot(it->second).numel());
        else if (it == p->slotOf.end() && meta.count(in)) // held in another form only (an INT8 copy)
            work = std::max(work, numelOf(meta.at(in).shape));
    }
    nodeThreads = work < kParallelMinElements || partsPerThread > 0 ? 1 : p->threads;
    if (nodeThreads > 1 && node.inputs.size() >= 2) {
        auto x = p->slotOf.find(node.inputs[0]);
        auto w = p->slotOf.find(node.inputs[1]);
        if (x != p->slotOf.end() && w != p->slotOf.end()) {
            const int64_t macs = convMacs(node, p->slot(x->second).shape, p->slot(w->second).shape);
            if (macs > 0 && macs < parallelMinMacs())
                nodeThreads = 1;
        }
    }
    p->setThreads(nodeThreads);
    done[std::size_t(index)] = 1;
    bool built = false;
    try {
        for (const auto& b : builders)
            if ((built = b(ctx)))
                break;
    } catch (const dnnl::error& e) {
        ctx.fail("oneDNN refused it: ", e.what());
    }
    if (!built)
        ctx.fail("no kernel supports this configuration");

    // Outputs of absorbed nodes that were fused away take the shape of the value
    // they flowed into (fusions here preserve shape and dtype).
    std::vector<int> nodes{index};
    nodes.insert(nodes.end(), absorbed.begin(), absorbed.end());
    const Node& last = graph.nodes[std::size_t(nodes.back())];
    ValueMeta finalMeta;
    if (!last.outputs.empty() && meta.count(last.outputs[0]))
        finalMeta = meta[last.outputs[0]];
    for (int n : nodes)
        for (const auto& o : graph.nodes[std::size_t(n)].outputs)
            if (!o.empty() && !meta.count(o))
                meta[o] = finalMeta;

    // Constant folding: every input of the fused group known at compile time. Nodes
    // with subgraphs read more than their inputs; their inner nodes fold on their own.
    bool allConstant = p->kernels.size() > firstKernel;
    for (const auto& [attr, a] : node.attrs)
        allConstant = allConstant && a.graphs.empty();
    for (int n : nodes)
        for (const auto& in : graph.nodes[std::size_t(n)].inputs) {
            if (in.empty())
                continue;
            auto it = p->slotOf.find(in);
            bool internal = false;
            for (int m : nodes)
                for (const auto& o : graph.nodes[std::size_t(m)].outputs)
                    internal = internal || o == in;
            if (!internal && (it == p->slotOf.end() || !p->slot(it->second).constant))
                allConstant = false;
        }
    if (allConstant)
        foldKernels(firstKernel, ctx.where());
}

void Compiler::buildInitializers()
{
    for (const auto& [name, t] : graph.initializers) {
        auto o = options.initializerOverrides.find(name);
        if (o != options.initializerOverrides.end())
            constantSlot(name, std::make_shared<const Tensor>(o->second));
        else if (graphOwner)
            constantSlot(name, std::shared_ptr<const Tensor>(graphOwner, &t));
        else
            constantSlot(name, std::make_shared<const Tensor>(t));
    }
}

void Compiler::buildNodes()
{
    // Constant nodes first: exporters place them right before their consumer, and a
    // fusion deciding earlier (Conv + Clip(min, max)) needs their values.
    for (std::size_t i = 0; i < graph.nodes.size(); ++i)
        if (graph.nodes[i].opType == "Constant" && graph.nodes[i].domain.empty())
            buildNode(int(i));
    for (std::size_t i = 0; i < graph.nodes.size(); ++i)
        if (!done[i])
            buildNode(int(i));
}

std::unique_ptr<Program> Compiler::compile()
{
    if (options.bf16) {
        static const CpuIsa isa = detectCpuIsa();
        if (!isa.bf16Supported)
            fail("bf16 needs a CPU with AVX-512 (oneDNN avx512_core or later); this one has ", isa.summary());
    }
    p = std::make_unique<Program>();
    p->threads = options.threads > 0 ? options.threads : omp_get_num_procs();
    p->setThreads(p->threads);
    p->stream = dnnl::stream(cpuEngine());
    done.assign(graph.nodes.size(), 0);

    // Every operator is checked before anything is built, so one message lists them all.
    std::vector<std::string> unsupported;
    unsupportedNodes(graph, graph, unsupported);
    if (!unsupported.empty()) {
        std::string list;
        for (std::size_t i = 0; i < unsupported.size() && i < 8; ++i)
            list += (i ? "; " : "") + unsupported[i];
        if (unsupported.size() > 8)
            list += str("; and ", unsupported.size() - 8, " more");
        fail(graph.sourcePath.empty() ? "model" : graph.sourcePath, ": unsupported operator",
             unsupported.size() > 1 ? "s: " : ": ", list);
    }

    for (const auto& [name, t] : options.initializerOverrides) {
        const Tensor* init = findInitializer(graph, name);
        if (!init)
            fail("initializer override ", quoted(name), ": the model has no initializer of that name");
        if (init->shape != t.shape || init->dtype != t.dtype)
            fail("initializer override ", quoted(name), ": expected ", dtypeName(init->dtype), " ",
                 shapeString(init->shape), ", got ", dtypeName(t.dtype), " ", shapeString(t.shape));
    }
    buildInitializers();
    for (const auto& in : graph.inputs) {
        Shape shape;
        auto given = options.inputShapes.find(in.name);
        if (given != options.inputShapes.end()) {
            shape = given->second;
            if (in.dims && in.dims->size() != shape.size())
                fail("input ", quoted(in.name), ": given shape ", shapeString(shape), " has rank ", shape.size(),
                     ", the model says ", in.text());
            if (in.dims)
                for (std::size_t i = 0; i < shape.size(); ++i)
                    if ((*in.dims)[i].value >= 0 && (*in.dims)[i].value != shape[i])
                        fail("input ", quoted(in.name), ": given shape ", shapeString(shape), ", the model says ",
                             in.text());
        } else if (in.fullyKnown()) {
            shape = in.shape();
        } else {
            fail("input ", quoted(in.name), " has shape ", in.text(),
                 "; give its full shape (CompileOptions::inputShapes)");
        }
        const DType t = in.dtype == DType::Undefined ? DType::Float : in.dtype;
        const int s = newSlot(in.name, t, shape, nullptr);
        allocate(s);
        p->inputSlots.push_back(s);
    }

    partsPerThread = choosePartsPerThread();

    buildNodes();

    for (const auto& out : graph.outputs) {
        auto it = p->slotOf.find(out.name);
        if (it == p->slotOf.end())
            fail("graph output ", quoted(out.name), " was not produced");
        p->outputSlots.push_back(it->second);
    }

    // Constants only read at compile time (weights already reordered into a
    // kernel's own layout) give their storage back.
    std::vector<char> used(p->slots.size(), 0);
    for (const auto& k : p->kernels)
        for (int r : k->reads)
            used[std::size_t(r)] = 1;
    for (int o : p->outputSlots)
        used[std::size_t(o)] = 1;
    for (std::size_t i = 0; i < p->slots.size(); ++i) {
        Slot& s = p->slots[i];
        if (s.constant && !used[i] && s.allocated() && s.value) {
            s.buffer = {};
            s.mem = {};
            s.md = plainDesc(s.shape, s.dtype);
            s.blocked = false;
            s.layouts.clear();
        }
    }
    static const bool arenaOff = [] {
        const char* env = std::getenv("QS_RUNTIME_ARENA");
        return env && std::string(env) == "0";
    }();
    planMemory(options.planMemory && !arenaOff);
    return std::move(p);
}

void Compiler::planMemory(bool useArena)
{
    Program& prog = *p;
    const std::size_t n = prog.slots.size();
    auto rounded = [](std::size_t bytes) { return (std::max<std::size_t>(bytes, 64) + 63) / 64 * 64; };
    // Lifetime of each value: the first and last kernel (in execution order) touching it.
    std::vector<int> first(n, INT_MAX), last(n, -1);
    for (int k = 0; k < int(prog.kernels.size()); ++k) {
        const Kernel& kernel = *prog.kernels[std::size_t(k)];
        for (const auto* list : {&kernel.reads, &kernel.writes})
            for (int s : *list) {
                first[std::size_t(s)] = std::min(first[std::size_t(s)], k);
                last[std::size_t(s)] = std::max(last[std::size_t(s)], k);
            }
        prog.memory.weightBytes += kernel.ownedBytes();
    }
    // Kernels bind views of slots (other shapes, parts) they need not list: the slot
    // behind each bound memory counts as touched too.
    std::vector<std::pair<std::byte*, int>> storage; // start of each slot's storage
    for (std::size_t i = 0; i < n; ++i)
        if (prog.slots[i].allocated())
            storage.emplace_back(prog.slots[i].buffer.data(), int(i));
    std::sort(storage.begin(), storage.end());
    auto slotAt = [&](const memory& m) {
        auto* at = m.get(true) ? static_cast<std::byte*>(m.get_data_handle()) : nullptr;
        auto it = std::upper_bound(storage.begin(), storage.end(), std::make_pair(at, INT_MAX));
        if (!at || it == storage.begin())
            return -1;
        --it;
        const Slot& s = prog.slot(it->second);
        return at < it->first + rounded(s.buffer.bytes) ? it->second : -1;
    };
    for (int k = 0; k < int(prog.kernels.size()); ++k)
        prog.kernels[std::size_t(k)]->forEachMemory([&](memory& m) {
            if (const int s = slotAt(m); s >= 0) {
                first[std::size_t(s)] = std::min(first[std::size_t(s)], k);
                last[std::size_t(s)] = std::max(last[std::size_t(s)], k);
            }
        });
    std::vector<char> own(n, 0);
    for (int s : prog.inputSlots)
        own[std::size_t(s)] = 1;
    for (int s : prog.outputSlots)
        own[std::size_t(s)] = 1;
    struct Value {
        int slot;
        std::size_t bytes;
    };
    std::vector<Value> values;
    for (std::size_t i = 0; i < n; ++i) {
        const Slot& s = prog.slots[i];
        if (!s.allocated())
            continue;
        const bool observed = !s.name.empty() &&
            ((keep.count(s.name) && !tappedOnly.count(s.name)) || graphOutputs.count(s.name));
        if (s.constant && s.value && s.buffer.data() == s.value->bytes.data())
            continue; // read in place from the graph's tensor (allocate): no storage of the plan's
        if (!useArena || own[i] || observed || s.constant || last[i] < 0) {
            prog.memory.ownBytes += s.buffer.bytes;
            ++prog.memory.ownValues;
            continue;
        }
        values.push_back({int(i), rounded(s.buffer.bytes)});
        prog.memory.arenaValueBytes += s.buffer.bytes;
    }
    prog.memory.arenaValues = values.size();

    // In place: an eltwise or binary primitive whose source dies there writes over it
    // (oneDNN allows dst == src / src0 with the same layout). Such values form a group
    // sharing one place, its lifetime the union of theirs.
    std::vector<int> leader(n, -1), groupLast = last;
    for (const Value& v : values)
        leader[std::size_t(v.slot)] = v.slot;
    auto wholeSlot = [&](const PrimitiveKernel& k, int arg) {
        auto it = k.args.find(arg);
        if (it == k.args.end())
            return -1;
        const int s = slotAt(it->second);
        return s >= 0 && static_cast<std::byte*>(it->second.get_data_handle()) == prog.slot(s).buffer.data() ? s : -1;
    };
    for (int k = 0; useArena && k < int(prog.kernels.size()); ++k) {
        const auto* pk = dynamic_cast<const PrimitiveKernel*>(prog.kernels[std::size_t(k)].get());
        if (!pk || !pk->guards.empty() || !pk->prim)
            continue;
        const auto kind = pk->prim.get_kind();
        const int srcArg = kind == dnnl::primitive::kind::eltwise ? DNNL_ARG_SRC
            : kind == dnnl::primitive::kind::binary               ? DNNL_ARG_SRC_0
                                                                  : -1;
        const int u = srcArg < 0 ? -1 : wholeSlot(*pk, srcArg), v = wholeSlot(*pk, DNNL_ARG_DST);
        if (u < 0 || v < 0 || u == v || leader[std::size_t(u)] < 0 || leader[std::size_t(v)] != v)
            continue;
        const int g = leader[std::size_t(u)];
        if (last[std::size_t(u)] != k || groupLast[std::size_t(g)] != k || first[std::size_t(v)] != k ||
            pk->args.at(srcArg).get_desc() != pk->args.at(DNNL_ARG_DST).get_desc() ||
            rounded(prog.slot(u).buffer.bytes) != rounded(prog.slot(v).buffer.bytes))
            continue;
        bool readTwice = false; // e.g. x * x: only one operand may be overwritten
        for (const auto& [arg, m] : pk->args)
            readTwice = readTwice || (arg != srcArg && slotAt(m) == u);
        if (readTwice)
            continue;
        leader[std::size_t(v)] = g;
        groupLast[std::size_t(g)] = last[std::size_t(v)];
        ++prog.memory.inPlaceValues;
    }
    if (std::getenv("QS_RUNTIME_MEMORY")) // sizes before the arena is placed: what each value would own
        std::fprintf(stderr,
            "qs-memory %zu values of %.1f MiB to place (%zu in place); own %.1f MiB in %zu values; kernel constants "
            "%.1f MiB\n",
            values.size(), double(prog.memory.arenaValueBytes) / 1048576.0, prog.memory.inPlaceValues,
            double(prog.memory.ownBytes) / 1048576.0, prog.memory.ownValues,
            double(prog.memory.weightBytes) / 1048576.0);
    if (values.empty())
        return;

    // Largest first, each at the lowest offset where it overlaps no placed value that
    // lives at the same time (greedy by size, as TFLite's arena planner does).
    std::stable_sort(values.begin(), values.end(), [](const Value& a, const Value& b) { return a.bytes > b.bytes; });
    struct Placed {
        std::size_t offset, end;
        int first, last;
    };
    std::vector<Placed> placed;
    std::vector<std::size_t> offsetOf(n, 0);
    std::vector<std::pair<std::size_t, std::size_t>> busy;
    std::size_t arenaBytes = 0;
    for (const Value& v : values) {
        if (leader[std::size_t(v.slot)] != v.slot)
            continue; // placed with its group
        const int f = first[std::size_t(v.slot)], l = groupLast[std::size_t(v.slot)];
        busy.clear();
        for (const Placed& q : placed)
            if (q.first <= l && f <= q.last)
                busy.emplace_back(q.offset, q.end);
        std::sort(busy.begin(), busy.end());
        std::size_t offset = 0;
        for (const auto& [b, e] : busy) {
            if (b >= offset + v.bytes)
                break;
            offset = std::max(offset, e);
        }
        placed.push_back({offset, offset + v.bytes, f, l});
        offsetOf[std::size_t(v.slot)] = offset;
        arenaBytes = std::max(arenaBytes, offset + v.bytes);
    }
    for (const Value& v : values)
        offsetOf[std::size_t(v.slot)] = offsetOf[std::size_t(leader[std::size_t(v.slot)])];
    prog.arena = Buffer::make(arenaBytes);
    prog.memory.arenaBytes = arenaBytes;

    // Move the values there: every oneDNN memory bound over a value's old storage (the
    // slot's own, views, parts) is pointed at the same offset in the arena.
    struct Move {
        std::byte* from;
        std::size_t bytes;
        std::byte* to;
    };
    std::vector<Move> moves;
    for (const Value& v : values)
        moves.push_back({prog.slot(v.slot).buffer.data(), v.bytes, prog.arena.data() + offsetOf[std::size_t(v.slot)]});
    std::sort(moves.begin(), moves.end(), [](const Move& a, const Move& b) { return a.from < b.from; });
    std::unordered_set<dnnl_memory_t> seen;
    auto relocate = [&](memory& m) {
        dnnl_memory_t h = m.get(true);
        if (!h || !seen.insert(h).second)
            return;
        auto* at = static_cast<std::byte*>(m.get_data_handle());
        auto it =
            std::upper_bound(moves.begin(), moves.end(), at, [](std::byte* q, const Move& mv) { return q < mv.from; });
        if (!at || it == moves.begin())
            return;
        --it;
        if (at < it->from + it->bytes)
            m.set_data_handle(it->to + (at - it->from));
    };
    for (Slot& s : prog.slots)
        relocate(s.mem);
    for (auto& k : prog.kernels)
        k->forEachMemory(relocate);
    for (const Value& v : values) {
        Slot& s = prog.slot(v.slot);
        s.buffer.ptr = std::shared_ptr<std::byte>(prog.arena.ptr, prog.arena.data() + offsetOf[std::size_t(v.slot)]);
        s.inArena = true;
    }
    if (std::getenv("QS_RUNTIME_MEMORY"))
        std::fprintf(stderr, "qs-memory arena %.1f MiB\n", double(arenaBytes) / 1048576.0);
}

} // namespace qs::rt
