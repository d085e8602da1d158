// Control flow: If and Loop (https://onnx.ai/onnx/operators/onnx__If.html,
// https://onnx.ai/onnx/operators/onnx__Loop.html). An If whose condition is known at
// compile time builds only the chosen branch into the program; otherwise both branches
// are built, each kernel guarded by the condition, so their layers stay visible to taps,
// transforms and weight overrides. A Loop body is compiled once as a program of its own.
#include "graph/subgraphs.h"
#include "runtime/compiler.h"
#include "runtime/ops/ops.h"

#include <cstring>

namespace qs::rt {

namespace {

constexpr int64_t kMaxScanElements = int64_t(1) << 32;
constexpr int64_t kMaxUnrolled = 64; // iterations compiled one by one (Loop)

const Graph& graphAttr(const NodeContext& c, const char* name)
{
    auto it = c.node.attrs.find(name);
    if (it == c.node.attrs.end() || it->second.kind != Attribute::Kind::Graph || it->second.graphs.empty() ||
        !it->second.graphs[0])
        c.fail("attribute ", name, " (a graph) is required");
    return *it->second.graphs[0];
}

// A single-element Bool (or numeric) condition's value.
bool truth(const Tensor& t, const NodeContext& c, const char* what)
{
    if (t.numel() != 1)
        c.fail(what, " must have one element, got shape ", shapeString(t.shape));
    return t.dtype == DType::Bool ? t.bytes[0] != std::byte {0} : t.toFloat()[0] != 0;
}

// Output i of the node as a copy of `from` (its value when constant).
void bindOutput(NodeContext& c, std::size_t i, int from)
{
    const Slot src = c.slot(from);
    if (src.constant && src.value) {
        c.constantOutput(i, *src.value);
        return;
    }
    const int out = c.output(i, src.dtype, src.shape, src.md.data.ndims > 0 ? &src.md : nullptr);
    c.addFn({from}, {out},
        [from, out](Program& p) { std::memcpy(p.slot(out).data(), p.slot(from).data(), p.slot(out).buffer.bytes); });
}

int plainSlot(NodeContext& c, int s)
{
    const Slot& sl = c.slot(s);
    return sl.blocked ? c.slotAs(s, plainDesc(sl.shape, sl.dtype)) : s;
}

bool buildIf(NodeContext& c)
{
    const Graph& thenG = graphAttr(c, "then_branch");
    const Graph& elseG = graphAttr(c, "else_branch");
    for (const Graph* g : {&thenG, &elseG})
        if (g->outputs.size() != c.node.outputs.size())
            c.fail(
                "branch ", quoted(g->name), " has ", g->outputs.size(), " outputs, the node ", c.node.outputs.size());
    if (const Tensor* cond = c.constant(0)) {
        const std::vector<int> outs = c.buildSubgraph(truth(*cond, c, "cond") ? thenG : elseG, {});
        for (std::size_t i = 0; i < outs.size(); ++i)
            bindOutput(c, i, outs[i]);
        return true;
    }
    const Slot& condSlot = c.in(0);
    if (condSlot.dtype != DType::Bool || condSlot.numel() != 1)
        c.fail("cond must be a single bool, got ", dtypeName(condSlot.dtype), " ", shapeString(condSlot.shape));
    const int cond = c.input(0);
    // A branch that cannot be built for these shapes (the other sample rate's network,
    // say) is an error only when the condition picks it.
    struct Branch {
        std::vector<int> outs;
        std::string error;
    };
    auto build = [&](const Graph& g, bool want) {
        Branch b;
        try {
            c.buildSubgraph(g, {{cond, want}});
            for (const auto& o : g.outputs) // allocated: a constant output is read at run time
                b.outs.push_back(c.slotOfValue(o.name));
        } catch (const Error& e) {
            b.error = e.what();
        }
        return b;
    };
    const Branch thenB = build(thenG, true), elseB = build(elseG, false);
    if (!thenB.error.empty() && !elseB.error.empty())
        c.fail("then_branch: ", thenB.error);
    std::vector<int> outs, thenSrc, elseSrc;
    for (std::size_t i = 0; i < c.node.outputs.size(); ++i) {
        const Slot* t = thenB.error.empty() ? &c.slot(thenB.outs[i]) : nullptr;
        const Slot* e = elseB.error.empty() ? &c.slot(elseB.outs[i]) : nullptr;
        if (t && e && (t->dtype != e->dtype || t->shape != e->shape))
            c.fail("output ", i, ": then_branch gives ", dtypeName(t->dtype), " ", shapeString(t->shape),
                ", else_branch ", dtypeName(e->dtype), " ", shapeString(e->shape),
                "; with a condition known only at run time both must agree");
        const Slot& any = t ? *t : *e;
        const DType dtype = any.dtype;
        const Shape shape = any.shape;
        thenSrc.push_back(t ? plainSlot(c, thenB.outs[i]) : -1);
        elseSrc.push_back(e ? plainSlot(c, elseB.outs[i]) : -1);
        outs.push_back(c.output(i, dtype, shape));
    }
    std::vector<int> reads {cond};
    for (int s : thenSrc)
        if (s >= 0)
            reads.push_back(s);
    for (int s : elseSrc)
        if (s >= 0)
            reads.push_back(s);
    const std::string where = c.where();
    c.addFn(reads, outs, [=, thenErr = thenB.error, elseErr = elseB.error](Program& p) {
        const bool v = *p.slot(cond).as<uint8_t>() != 0;
        if (!(v ? thenErr : elseErr).empty())
            fail(where, ": ", v ? "then_branch" : "else_branch", " was chosen but cannot run: ", v ? thenErr : elseErr);
        const auto& src = v ? thenSrc : elseSrc;
        for (std::size_t i = 0; i < outs.size(); ++i)
            std::memcpy(p.slot(outs[i]).data(), p.slot(src[i]).data(), p.slot(outs[i]).buffer.bytes);
    });
    return true;
}

bool buildLoop(NodeContext& c)
{
    const Graph& bodyIn = graphAttr(c, "body");
    const std::size_t carried = c.inputCount() >= 2 ? c.inputCount() - 2 : 0;
    if (bodyIn.inputs.size() != carried + 2)
        c.fail("body has ", bodyIn.inputs.size(), " inputs, expected ", carried + 2,
            " (iteration number, condition and ", carried, " loop-carried values)");
    if (bodyIn.outputs.size() < carried + 1)
        c.fail("body has ", bodyIn.outputs.size(), " outputs, expected at least ", carried + 1);
    const std::size_t scans = bodyIn.outputs.size() - 1 - carried;
    if (c.node.outputs.size() > carried + scans)
        c.fail("node has ", c.node.outputs.size(), " outputs, the body gives ", carried + scans);
    if (!c.has(0) && !c.has(1))
        c.fail("neither a trip count M nor a condition: the loop would not end");

    // The body as a graph of its own: outer values become initializers (when known
    // now) or extra inputs after the body's own.
    Graph body = bodyIn;
    body.opsets = c.rootGraph().opsets;
    CompileOptions opts;
    opts.threads = 1;
    opts.splitBatch = false;
    for (auto& in : body.inputs)
        in.dims.reset(); // shapes come from the outer values below
    body.inputs[0].dtype = DType::Int64;
    opts.inputShapes[body.inputs[0].name] =
        bodyIn.inputs[0].dims && bodyIn.inputs[0].dims->size() == 1 ? Shape {1} : Shape {};
    body.inputs[1].dtype = DType::Bool;
    opts.inputShapes[body.inputs[1].name] =
        bodyIn.inputs[1].dims && bodyIn.inputs[1].dims->size() == 1 ? Shape {1} : Shape {};
    std::vector<int> initSlots;
    for (std::size_t k = 0; k < carried; ++k) {
        if (!c.has(2 + k))
            c.fail("loop-carried input ", 2 + k, " is omitted");
        body.inputs[2 + k].dtype = c.dtype(2 + k);
        opts.inputShapes[body.inputs[2 + k].name] = c.shape(2 + k);
        initSlots.push_back(c.plainInput(2 + k));
    }
    std::vector<int> outerSlots;
    for (const auto& v : outerReads(bodyIn)) {
        if (const Tensor* t = c.constantValue(v)) {
            body.initializers[v] = *t;
            continue;
        }
        const int s = plainSlot(c, c.slotOfValue(v));
        ValueInfo info;
        info.name = v;
        info.dtype = c.slot(s).dtype;
        body.inputs.push_back(info);
        opts.inputShapes[v] = c.slot(s).shape;
        outerSlots.push_back(s);
    }
    for (const auto& [name, t] : c.options().initializerOverrides)
        if (bodyIn.initializers.count(name))
            opts.initializerOverrides[name] = t;
    body.index();

    int64_t trip = -1; // known trip count, or -1
    int mSlot = -1, condSlot = -1;
    if (c.has(0)) {
        if (const Tensor* m = c.constant(0)) {
            if (m->numel() != 1 || (trip = m->toInt64()[0]) < 0)
                c.fail("trip count M must be one non-negative integer");
        } else
            mSlot = c.input(0);
    }
    bool condKnown = true, condValue = true;
    if (c.has(1)) {
        if (const Tensor* t = c.constant(1))
            condValue = truth(*t, c, "cond");
        else {
            condKnown = false;
            condSlot = c.input(1);
        }
    }

    // The body compiled once, the iteration number an input; when something in it needs
    // that number at compile time (a Slice bound, a shape) and the trip count is known
    // and small, once per iteration with the number as a constant. The programs keep
    // their graphs alive.
    const std::string iterName = body.inputs[0].name;
    auto compileBody = [&](int64_t iter) {
        auto g = std::make_shared<Graph>(body);
        CompileOptions o = opts;
        if (iter >= 0) {
            Tensor t(DType::Int64, opts.inputShapes[iterName]);
            t.data<int64_t>()[0] = iter;
            g->initializers[iterName] = t;
            g->inputs.erase(g->inputs.begin());
            o.inputShapes.erase(iterName);
        }
        g->index();
        Compiler bc(*g, o, {});
        bc.root = g.get();
        return std::make_pair(std::shared_ptr<Program>(bc.compile()), g);
    };
    std::vector<std::pair<std::shared_ptr<Program>, std::shared_ptr<Graph>>> progs;
    bool unrolled = false;
    try {
        progs.push_back(compileBody(-1));
    } catch (const Error& e) {
        const bool needsConstant = std::string(e.what()).find("must be a constant") != std::string::npos;
        const int64_t known = condKnown && !condValue ? 0 : trip;
        if (!needsConstant || known < 1 || known > kMaxUnrolled)
            c.fail("body: ", e.what());
        unrolled = true;
        try {
            for (int64_t i = 0; i < known; ++i)
                progs.push_back(compileBody(i));
        } catch (const Error& e2) {
            c.fail("body: ", e2.what());
        }
    }
    // Loop-carried values keep their type and shape; scan outputs stack the body's.
    Program* prog = progs[0].first.get();
    for (const auto& pr : progs) {
        for (std::size_t k = 0; k < carried; ++k) {
            const Slot& o = pr.first->slot(pr.first->outputSlots[1 + k]);
            if (o.dtype != c.dtype(2 + k) || o.shape != c.shape(2 + k))
                c.fail("loop-carried value ", k, " enters as ", dtypeName(c.dtype(2 + k)), " ",
                    shapeString(c.shape(2 + k)), " and leaves the body as ", dtypeName(o.dtype), " ",
                    shapeString(o.shape), "; it must keep its type and shape");
        }
        for (std::size_t j = 0; j < scans; ++j) {
            const Slot& o = pr.first->slot(pr.first->outputSlots[1 + carried + j]);
            const Slot& o0 = prog->slot(prog->outputSlots[1 + carried + j]);
            if (o.shape != o0.shape || o.dtype != o0.dtype)
                c.fail("scan output ", j, " changes shape between iterations: ", shapeString(o0.shape), " then ",
                    shapeString(o.shape));
        }
    }
    if (scans > 0 && trip < 0)
        c.requireConstant(0, "trip count M (the loop has scan outputs, whose size it fixes)");
    const int64_t iterations = condKnown && !condValue ? 0 : trip;
    std::vector<int> finalSlots, scanSlots;
    for (std::size_t k = 0; k < carried; ++k)
        finalSlots.push_back(k < c.node.outputs.size() ? c.output(k, c.dtype(2 + k), c.shape(2 + k)) : -1);
    std::vector<std::size_t> scanBytes;
    for (std::size_t j = 0; j < scans; ++j) {
        const Slot& o = prog->slot(prog->outputSlots[1 + carried + j]);
        Shape shape {std::max<int64_t>(iterations, 0)};
        shape.insert(shape.end(), o.shape.begin(), o.shape.end());
        if (numelOf(shape) > kMaxScanElements)
            c.fail("scan output ", j, " would have shape ", shapeString(shape));
        scanBytes.push_back(std::size_t(o.numel()) * elementSize(o.dtype));
        scanSlots.push_back(carried + j < c.node.outputs.size() ? c.output(carried + j, o.dtype, shape) : -1);
    }
    std::vector<int> reads = initSlots, writes;
    reads.insert(reads.end(), outerSlots.begin(), outerSlots.end());
    for (int s : {mSlot, condSlot})
        if (s >= 0)
            reads.push_back(s);
    for (int s : finalSlots)
        if (s >= 0)
            writes.push_back(s);
    for (int s : scanSlots)
        if (s >= 0)
            writes.push_back(s);
    const std::string where = c.where();
    const std::size_t first = unrolled ? 0 : 1; // body input slots: [iteration,] cond, carried..., outer...
    c.addFn(reads, writes, [=](Program& p) {
        int64_t m = trip;
        if (mSlot >= 0)
            m = *p.slot(mSlot).as<int64_t>();
        bool go = condKnown ? condValue : *p.slot(condSlot).as<uint8_t>() != 0;
        std::vector<Tensor> state;
        for (std::size_t k = 0; k < carried; ++k)
            state.push_back(readSlot(p, initSlots[k]));
        int64_t i = 0;
        for (; go && (m < 0 || i < m); ++i) {
            if (unrolled && i >= int64_t(progs.size()))
                fail(where, ": more iterations than the ", progs.size(), " compiled");
            Program& b = *progs[unrolled ? std::size_t(i) : 0].first;
            b.activeThreads = 0;
            if (!unrolled)
                *b.slot(b.inputSlots[0]).as<int64_t>() = i;
            *b.slot(b.inputSlots[first]).as<uint8_t>() = 1;
            for (std::size_t j = 0; j < outerSlots.size(); ++j) {
                Slot& dst = b.slot(b.inputSlots[first + 1 + carried + j]);
                std::memcpy(dst.data(), p.slot(outerSlots[j]).data(), dst.buffer.bytes);
            }
            for (std::size_t k = 0; k < carried; ++k)
                writeSlot(b, b.inputSlots[first + 1 + k], state[k]);
            for (auto& kernel : b.kernels)
                b.runKernel(*kernel);
            const Tensor condOut = readSlot(b, b.outputSlots[0]);
            go = condOut.numel() == 1 && condOut.toFloat()[0] != 0;
            for (std::size_t k = 0; k < carried; ++k)
                state[k] = readSlot(b, b.outputSlots[1 + k]);
            for (std::size_t j = 0; j < scans; ++j) {
                if (scanSlots[j] < 0)
                    continue;
                if (i >= iterations)
                    fail(where, ": more iterations than the ", iterations, " the scan outputs were sized for");
                const Tensor part = readSlot(b, b.outputSlots[1 + carried + j]);
                std::memcpy(p.slot(scanSlots[j]).as<std::byte>() + std::size_t(i) * scanBytes[j], part.bytes.data(),
                    scanBytes[j]);
            }
        }
        if (scans > 0 && i < iterations)
            fail(where, ": the condition ended the loop after ", i, " of ", iterations,
                " iterations; scan outputs need them all");
        for (std::size_t k = 0; k < carried; ++k)
            if (finalSlots[k] >= 0)
                std::memcpy(p.slot(finalSlots[k]).data(), state[k].bytes.data(), state[k].bytes.size());
        p.activeThreads = 0;
    });
    return true;
}

const bool controlFlowRegistered = [] {
    registerOp("If", buildIf);
    registerOp("Loop", buildLoop);
    return true;
}();

} // namespace

} // namespace qs::rt
