// The Plan: a compiled Program plus taps, transforms, partial re-runs and
// recompilation when input shapes or the set of observed values change.
#include "runtime/batch_split.h"
#include "runtime/compiler.h"
#include "runtime/passes/passes.h"
#include "runtime/plan_shared.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <utility>

namespace qs {
namespace {

using namespace rt;

double processCpuMs()
{
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

// Everything needed to hand one slot's value to transforms and taps.
struct Observer {
    std::string name;
    Tensor scratch;              // plain copy handed to transforms and taps
    memory scratchMem;
    ValueTransform transform;
    std::vector<Tap> taps;
};

// The graph optimizer's result per graph and pass spec while some plan holds it, so the
// plans compileOptimizedPlan() makes on one shared graph (`run`'s full and remainder
// batches, shapes differ but the passes do not read them) optimize it once. When the
// passes rewrote nothing the compiler would not (constants folded only: the compiler folds
// every node whose inputs are known itself), the entry keeps that verdict while the graph
// lives and the optimizer's copy is let go (it borrowed the large weights, never copied).
struct PlanOptimizedEntry {
    std::weak_ptr<const Graph> graph;
    std::string spec;
    std::weak_ptr<const rt::OptimizedGraph> optimized;
    bool idle = false;
};

std::shared_ptr<const rt::OptimizedGraph> planGraphOptimized(const std::shared_ptr<const Graph>& graph)
{
    static std::mutex mutex;
    static std::vector<PlanOptimizedEntry> entries;
    const std::string spec = rt::passSpecFromEnv();
    std::lock_guard lock(mutex);
    std::erase_if(entries, [](const PlanOptimizedEntry& e) { return e.graph.expired(); });
    auto same = [&](const PlanOptimizedEntry& e) {
        return e.spec == spec && !e.graph.owner_before(graph) && !graph.owner_before(e.graph);
    };
    auto it = std::find_if(entries.begin(), entries.end(), same);
    if (it != entries.end()) {
        if (it->idle)
            return nullptr;
        if (auto kept = it->optimized.lock())
            return kept;
        entries.erase(it); // every plan that held it is gone: optimize again
    }
    auto optimized = std::make_shared<const rt::OptimizedGraph>(rt::optimizeGraph(*graph, spec, {}, true));
    const bool idle = !rt::rewritesBeyondFolds(*optimized);
    entries.push_back({graph, spec, optimized, idle});
    return idle ? nullptr : optimized;
}

class PlanImpl final : public Plan {
public:
    PlanImpl(std::shared_ptr<const Graph> graph, const CompileOptions& options, bool graphPasses = false)
        : graphOwner_(std::move(graph)), graph_(*graphOwner_), options_(options), graphPasses_(graphPasses)
    {
        for (const auto& in : graph_.inputs)
            if (options_.inputShapes.count(in.name))
                shapes_[in.name] = options_.inputShapes.at(in.name);
        for (const auto& [name, t] : options_.valueTransforms)
            if (!knows(name))
                fail("value transform for ", quoted(name), ": the model has no value of that name");
        for (const auto& name : options_.keepValues)
            if (!knows(name))
                fail("keep value ", quoted(name), ": the model has no value of that name");
        rebuild();
    }

    ~PlanImpl() override
    {
        // QS_RUNTIME_PROFILE=1: wall and process CPU time (all threads) per op and
        // implementation over the plan's life, on stderr; =2: per kernel.
        for (const auto& [what, t] : profileMs_)
            std::fprintf(stderr, "qs-profile %10.2f ms wall %10.2f ms cpu  %s\n", t.first, t.second, what.c_str());
    }

    std::vector<Tensor> run(const std::vector<Tensor>& inputs) override
    {
        prepare(inputs);
        const bool split = wantSplit(inputs);
        if (split && splitState_ == SplitState::Verified)
            return runSplit(inputs);
        computePrepared(inputs);
        std::vector<Tensor> result = outputs();
        if (split) { // shards just built: they must give what the whole program gives
            prog_->releaseArena(); // the shards' arenas take its place
            const std::vector<Tensor> shards = runSplit(inputs);
            lastSplit_ = false; // the full program holds this run's values too
            splitState_ = sameOutputs(shards, result) ? SplitState::Verified : SplitState::Off;
            if (splitState_ == SplitState::Off)
                shards_.clear();
        }
        return result;
    }

    void compute(const std::vector<Tensor>& inputs) override
    {
        prepare(inputs);
        computePrepared(inputs);
    }

    // Checks the inputs and recompiles for new shapes.
    void prepare(const std::vector<Tensor>& inputs)
    {
        if (inputs.size() != graph_.inputs.size())
            fail("run: the model has ", graph_.inputs.size(), " inputs, got ", inputs.size());
        restoreBase();
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            const Slot& s = prog_->slot(prog_->inputSlots[i]);
            if (inputs[i].dtype != s.dtype)
                fail("run: input ", quoted(s.name), " must be ", dtypeName(s.dtype), ", got ",
                     dtypeName(inputs[i].dtype));
            if (inputs[i].shape != s.shape) {
                shapes_[s.name] = inputs[i].shape;
                stale_ = true;
            }
        }
        if (stale_)
            rebuild();
    }

    // The whole program on inputs prepare() accepted.
    void computePrepared(const std::vector<Tensor>& inputs)
    {
        lastSplit_ = false;
        prog_->activeThreads = 0; // another plan may have changed the OpenMP setting
        for (std::size_t i = 0; i < inputs.size(); ++i) {
            profiled("(write inputs)", [&] { writeSlot(*prog_, prog_->inputSlots[i], inputs[i]); });
            notify(prog_->inputSlots[i]);
        }
        for (int s : constantObserved_)
            notify(s);
        const auto t0 = std::chrono::steady_clock::now();
        const double cpu0 = profile_ ? processCpuMs() : 0;
        for (auto& k : prog_->kernels) {
            runKernel(*k, "");
            if (k->observed && !k->skipped)
                for (int w : k->writes)
                    notify(w);
        }
        if (profile_) {
            auto& acc = profileMs_["(all kernels)"];
            acc.first += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
            acc.second += processCpuMs() - cpu0;
        }
        hasRun_ = true;
    }

    std::vector<Tensor> runFrom(const std::map<std::string, Tensor>& values) override
    {
        return runFrom(values, *this, {});
    }

    std::vector<Tensor> runFrom(const std::map<std::string, Tensor>& values, Plan& sourcePlan,
        const std::map<std::string, std::string>& fromSource) override
    {
        if (!hasRun_)
            fail("runFrom: needs a previous run() whose values it reuses");
        restoreFull();
        auto* source = dynamic_cast<PlanImpl*>(&sourcePlan);
        if (!fromSource.empty() && (!source || source == this || !source->hasRun_))
            fail("runFrom: values from another plan need that plan to have run");
        if (!fromSource.empty())
            source->restoreFull();
        std::vector<std::string> names;
        bool missing = false;
        auto check = [&](const std::string& name) {
            if (!knows(name))
                fail("runFrom: the model has no value named ", quoted(name));
            if (!prog_->slotOf.count(name)) {
                extraKeep_.insert(name);
                missing = true;
            }
            names.push_back(name);
        };
        for (const auto& [name, t] : values)
            check(name);
        for (const auto& [name, from] : fromSource) {
            if (values.count(name))
                fail("runFrom: ", quoted(name), " is given twice");
            if (!source->prog_->slotOf.count(from) && source->passesUsed_)
                source->dropPasses();
            if (!source->prog_->slotOf.count(from))
                fail("runFrom: the source plan has no value ", quoted(from), " (keep it or make it an output)");
            check(name);
        }
        std::sort(names.begin(), names.end());
        // Kernels run again read values of the last run that the arena may have reused.
        if (planMemory_ && prog_->memory.arenaValues > 0) {
            planMemory_ = false;
            missing = true;
        }
        if (!fromSource.empty())
            for (const auto& [name, from] : fromSource)
                if (source->prog_->slot(source->prog_->slotOf.at(from)).inArena)
                    source->keepEveryValue();
        if (missing || stale_) {
            // The value was fused away: compile with it kept and repeat the last run.
            restoreBase();
            std::vector<Tensor> last;
            for (int s : prog_->inputSlots)
                last.push_back(readSlot(*prog_, s));
            stale_ = true;
            repeatRun(last);
        }
        // The same values given again: the same kernels run and overwrite the same
        // slots, so what the previous call changed needs no restoring in between.
        if (names != lastGiven_)
            restoreBase();
        const bool repeat = !modified_.empty();
        prog_->activeThreads = 0; // another plan may have changed the OpenMP setting
        std::vector<char> dirty(prog_->slots.size(), 0), given(prog_->slots.size(), 0);
        // The last full run's values stay the base of every runFrom(): what this pass
        // overwrites is saved first and restored before a call giving other values (or
        // run(), valueOf()), so calls perturbing different values never see each
        // other's results.
        std::vector<char> written(prog_->slots.size(), 0), readFirst(prog_->slots.size(), 0);
        auto save = [&](int s) {
            if (repeat || backedUp_[std::size_t(s)])
                return;
            const Slot& slot = prog_->slot(s);
            if (!slot.allocated())
                return;
            backedUp_[std::size_t(s)] = 1;
            profiled("(runFrom: backup)",
                [&] { backup_[std::size_t(s)].assign(slot.buffer.data(), slot.buffer.data() + slot.buffer.bytes); });
            modified_.push_back(s);
        };
        for (const auto& [name, t] : values) {
            const int s = prog_->slotOf.at(name);
            if (prog_->slot(s).constant)
                fail("runFrom: ", quoted(name), " is a constant of the compiled plan; use initializerOverrides");
            save(s);
            profiled("(runFrom: write values)", [&, &value = t] { writeSlot(*prog_, s, value); });
            dirty[std::size_t(s)] = given[std::size_t(s)] = written[std::size_t(s)] = 1;
        }
        for (const auto& [name, from] : fromSource) {
            const int s = prog_->slotOf.at(name);
            Slot& dst = prog_->slot(s);
            Slot& src = source->prog_->slot(source->prog_->slotOf.at(from));
            if (dst.constant)
                fail("runFrom: ", quoted(name), " is a constant of the compiled plan; use initializerOverrides");
            if (src.dtype != dst.dtype || src.shape != dst.shape)
                fail("runFrom: ", quoted(name), " is ", dtypeName(dst.dtype), " ", shapeString(dst.shape),
                    ", the source's ", quoted(from), " ", dtypeName(src.dtype), " ", shapeString(src.shape));
            save(s);
            profiled("(runFrom: copy from plan)", [&] { copySlot(*source->prog_, src, dst); });
            dirty[std::size_t(s)] = given[std::size_t(s)] = written[std::size_t(s)] = 1;
        }
        for (auto& k : prog_->kernels) {
            bool needed = false, overwrites = false;
            for (int r : k->reads)
                needed = needed || dirty[std::size_t(r)];
            for (int w : k->writes)
                overwrites = overwrites || given[std::size_t(w)];
            if (!needed || overwrites)
                continue;
            for (int r : k->reads)
                readFirst[std::size_t(r)] = readFirst[std::size_t(r)] || !written[std::size_t(r)];
            for (int w : k->writes)
                save(w);
            runKernel(*k, "runFrom: ");
            for (int w : k->writes)
                dirty[std::size_t(w)] = written[std::size_t(w)] = 1;
            if (k->observed && !k->skipped)
                for (int w : k->writes)
                    notify(w);
        }
        std::vector<Tensor> result = outputs();
        // A pass that read a slot before overwriting it (in place) would see its own
        // result when repeated: restore at once.
        bool inPlace = false;
        for (std::size_t s = 0; s < written.size(); ++s)
            inPlace = inPlace || (written[s] && readFirst[s]);
        lastGiven_ = std::move(names);
        if (inPlace)
            restoreBase();
        return result;
    }

    void addTap(const std::string& value, Tap tap) override
    {
        if (!knows(value))
            fail("addTap: the model has no value named ", quoted(value));
        taps_[value].push_back(std::move(tap));
        if (prog_->slotOf.count(value))
            attachObservers();
        if (!prog_->slotOf.count(value) || passesUsed_)
            stale_ = true; // fused away, or optimized: recompile (the original graph, it kept)
    }

    void clearTaps() override
    {
        taps_.clear();
        attachObservers();
    }

    Tensor valueOf(const std::string& value) override
    {
        if (!hasRun_)
            fail("valueOf: the plan has not run yet");
        restoreFull();
        restoreBase();
        auto it = prog_->slotOf.find(value);
        if (it == prog_->slotOf.end() && passesUsed_ && knows(value)) {
            dropPasses(); // the optimizer removed it: the original graph has it
            it = prog_->slotOf.find(value);
        }
        if (it == prog_->slotOf.end())
            fail("valueOf: ", quoted(value), knows(value) ? " was fused away; list it in CompileOptions::keepValues"
                                                          : " is not a value of the model");
        if (prog_->slot(it->second).inArena) {
            keepEveryValue();
            it = prog_->slotOf.find(value);
        }
        Tensor t;
        profiled("(valueOf)", [&] { t = readSlot(*prog_, it->second); });
        return t;
    }

    Shape shapeOf(const std::string& value) const override { return meta(value).shape; }
    DType dtypeOf(const std::string& value) const override { return meta(value).dtype; }

    std::vector<std::string> kernelSummary() const override
    {
        std::vector<std::string> out;
        for (const auto& k : prog_->kernels) {
            std::string line = k->op + " " + k->node;
            const std::string impl = k->describe();
            if (!impl.empty())
                line += " [" + impl + "]";
            out.push_back(line);
        }
        return out;
    }

    int lastRunShards() const override { return lastSplit_ ? int(shards_.size()) : 1; }

    PlanMemory memoryStats() const override { return prog_->memory; }

    std::vector<KernelTime> timeKernels(const std::vector<Tensor>& inputs, int warmup, int repeats,
        double* totalMs) override
    {
        if (repeats < 1)
            fail("timeKernels: needs at least one repeat, got ", repeats);
        run(inputs);
        using clock = std::chrono::steady_clock;
        const std::size_t n = prog_->kernels.size();
        std::vector<std::vector<double>> ms(n);
        std::vector<double> totals;
        for (int r = 0; r < std::max(0, warmup) + repeats; ++r) {
            prog_->activeThreads = 0;
            const auto t0 = clock::now();
            for (std::size_t k = 0; k < n; ++k) {
                const auto t = clock::now();
                prog_->runKernel(*prog_->kernels[k]);
                if (r >= warmup)
                    ms[k].push_back(std::chrono::duration<double, std::milli>(clock::now() - t).count());
            }
            if (r >= warmup)
                totals.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
        }
        auto median = [](std::vector<double>& v) {
            std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
            double m = v[v.size() / 2];
            if (v.size() % 2 == 0)
                m = 0.5 * (m + *std::max_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2)));
            return m;
        };
        std::vector<KernelTime> out;
        for (std::size_t k = 0; k < n; ++k) {
            const Kernel& kernel = *prog_->kernels[k];
            out.push_back({kernel.node, kernel.op, kernel.describe(), median(ms[k])});
        }
        if (totalMs)
            *totalMs = median(totals);
        return out;
    }

private:
    // Values in the arena are overwritten once their last reader ran. For a caller
    // reading them after the run: compile without the arena and repeat the last run.
    void keepEveryValue()
    {
        if (!planMemory_)
            return;
        planMemory_ = false;
        if (prog_->memory.arenaValues == 0)
            return;
        recompileAndRepeat();
    }

    // Recompiles (with what changed) and repeats the last run there, if there was one.
    void recompileAndRepeat()
    {
        stale_ = true;
        if (!hasRun_)
            return;
        restoreFull();
        restoreBase();
        std::vector<Tensor> last;
        for (int s : prog_->inputSlots)
            last.push_back(readSlot(*prog_, s));
        repeatRun(last);
    }

    // Compiles the original graph from now on (and repeats the last run there): for a
    // caller asking for a value the graph optimizer removed.
    void dropPasses()
    {
        passesOff_ = true;
        if (passesUsed_)
            recompileAndRepeat();
    }

    // A kernel's "a+b" node list with each optimized node replaced by its source nodes.
    std::string originalNames(const std::string& nodes) const
    {
        std::vector<std::string> out;
        std::size_t start = 0;
        while (start <= nodes.size()) {
            const std::size_t plus = std::min(nodes.find('+', start), nodes.size());
            for (auto& n : optimized_->sourcesOf(nodes.substr(start, plus - start)))
                if (std::find(out.begin(), out.end(), n) == out.end())
                    out.push_back(std::move(n));
            start = plus + 1;
        }
        std::string joined;
        for (const auto& n : out)
            joined += (joined.empty() ? "" : "+") + n;
        return joined;
    }

    // The graph the program is compiled from: the optimized copy or the original.
    const Graph& compiledGraph() const { return passesUsed_ ? optimized_->graph : graph_; }
    // A compiler of compiledGraph() (or of the original) whose constants are its initializers in place.
    Compiler compilerOf(bool original, const CompileOptions& opts, std::set<std::string> keep) const
    {
        const bool optimized = passesUsed_ && !original;
        Compiler c(optimized ? optimized_->graph : graph_, opts, std::move(keep));
        c.graphOwner = optimized ? std::shared_ptr<const void>(optimized_) : std::shared_ptr<const void>(graphOwner_);
        return c;
    }

    // The graph optimizer applies to plans that only compute (compileOptimizedPlan).
    bool wantPasses() const
    {
        return graphPasses_ && !passesOff_ && options_.fuse && taps_.empty() && extraKeep_.empty() &&
               options_.keepValues.empty() && options_.valueTransforms.empty() &&
               options_.initializerOverrides.empty() && options_.int8Layers.empty() && options_.int8Values.empty();
    }

    // The last run again in a recompiled program: transforms apply, taps stay quiet
    // (their callers saw this run once already).
    void repeatRun(const std::vector<Tensor>& inputs)
    {
        repeating_ = true;
        try {
            compute(inputs);
        } catch (...) {
            repeating_ = false;
            throw;
        }
        repeating_ = false;
    }

    bool knows(const std::string& name) const
    {
        if (graph_.initializers.count(name))
            return true;
        for (const auto& in : graph_.inputs)
            if (in.name == name)
                return true;
        return graph_.producerOf(name) >= 0 || meta_.count(name) != 0; // meta_: values inside subgraphs too
    }

    const ValueMeta& meta(const std::string& value) const
    {
        auto it = meta_.find(value);
        if (it == meta_.end() && passesUsed_) { // removed by the optimizer: from the original graph
            if (!originalMeta_) {
                CompileOptions opts = options_;
                opts.planMemory = false;
                for (const auto& [name, shape] : shapes_)
                    opts.inputShapes[name] = shape;
                Compiler compiler = compilerOf(true, opts, {});
                compiler.compile();
                originalMeta_ = std::move(compiler.meta);
            }
            if (auto o = originalMeta_->find(value); o != originalMeta_->end())
                return o->second;
        }
        if (it == meta_.end())
            fail("the compiled plan has no value named ", quoted(value));
        return it->second;
    }

    void rebuild()
    {
        CompileOptions opts = options_;
        opts.planMemory = options_.planMemory && planMemory_;
        for (const auto& [name, shape] : shapes_)
            opts.inputShapes[name] = shape;
        std::set<std::string> keep = options_.keepValues;
        keep.insert(extraKeep_.begin(), extraKeep_.end());
        for (const auto& [name, t] : taps_)
            keep.insert(name);
        passesUsed_ = wantPasses() && !passesIdle_;
        if (passesUsed_ && !optimized_) {
            // Null when the passes rewrote nothing the compiler would not: the original graph.
            optimized_ = planGraphOptimized(graphOwner_);
            if (!optimized_) {
                passesUsed_ = false;
                passesIdle_ = true;
            }
        }
        originalMeta_.reset();
        Compiler compiler = compilerOf(false, opts, keep);
        for (const auto& entry : taps_) // tapped values nobody reads after the run
            if (!options_.keepValues.count(entry.first) && !extraKeep_.count(entry.first) &&
                !options_.valueTransforms.count(entry.first))
                compiler.tappedOnly.insert(entry.first);
        restoreBase();
        prog_ = compiler.compile();
        if (passesUsed_) // kernels name the nodes of the original graph they compute
            for (auto& k : prog_->kernels)
                k->node = originalNames(k->node);
        backup_.assign(prog_->slots.size(), {});
        backedUp_.assign(prog_->slots.size(), 0);
        meta_ = std::move(compiler.meta);
        for (const auto& [name, t] : options_.valueTransforms) {
            auto it = prog_->slotOf.find(name);
            if (it == prog_->slotOf.end() || prog_->slot(it->second).constant)
                fail("value transform for ", quoted(name),
                     ": the value is a constant of the compiled plan (use initializerOverrides)");
        }
        stale_ = false;
        hasRun_ = false;
        shards_.clear();
        splitState_ = SplitState::Undecided;
        runsAtShape_ = 0;
        lastSplit_ = false;
        attachObservers();
    }

    // ---- batch split (runtime/batch_split.h)

    // Whether this run goes through per-thread shards, building them on the second run
    // at a shape (a plan run once never pays for them). Never with taps, transforms or
    // kept values: those observe the whole batch inside one program.
    bool wantSplit(const std::vector<Tensor>& inputs)
    {
        if (splitState_ == SplitState::Off)
            return false;
        if (!taps_.empty() || profile_) // taps can come and go; the shards stay built
            return false;
        if (splitState_ == SplitState::Verified)
            return true;
        if (++runsAtShape_ < 2)
            return false;
        splitState_ = SplitState::Off;
        static const bool disabled = [] {
            const char* env = std::getenv("QS_RUNTIME_SPLIT");
            return env && std::string(env) == "0";
        }();
        if (disabled || !options_.splitBatch || prog_->threads < 2 || inputs.empty() ||
            !options_.valueTransforms.empty() || !options_.keepValues.empty() || !extraKeep_.empty())
            return false;
        const int64_t batch = inputs[0].shape.empty() ? 0 : inputs[0].shape[0];
        for (const auto& t : inputs)
            if (t.shape.empty() || t.shape[0] != batch)
                return false;
        const std::vector<int64_t> sizes = splitBatch(batch, prog_->threads);
        if (sizes.size() < 2 || !batchLocal(compiledGraph(), meta_, batch, nullptr))
            return false;
        try {
            for (int64_t size : sizes) {
                CompileOptions opts = options_;
                opts.threads = 1;
                for (std::size_t i = 0; i < inputs.size(); ++i) {
                    Shape shape = inputs[i].shape;
                    shape[0] = size;
                    opts.inputShapes[graph_.inputs[i].name] = shape;
                }
                Compiler compiler = compilerOf(false, opts, {});
                shards_.push_back(compiler.compile());
            }
        } catch (const Error&) { // e.g. a model whose batch dimension is fixed
            shards_.clear();
            return false;
        }
        shardSizes_ = sizes;
        splitState_ = SplitState::Built;
        return true;
    }

    std::vector<Tensor> runSplit(const std::vector<Tensor>& inputs)
    {
        std::vector<Tensor> out;
        for (int s : prog_->outputSlots) {
            const Slot& slot = prog_->slot(s);
            out.emplace_back(slot.dtype, slot.shape);
            out.back().name = slot.name;
        }
        parallelShards(int(shards_.size()), [&](int i) {
            Program& shard = *shards_[std::size_t(i)];
            int64_t first = 0;
            for (int j = 0; j < i; ++j)
                first += shardSizes_[std::size_t(j)];
            shard.activeThreads = 0;
            for (std::size_t k = 0; k < inputs.size(); ++k)
                writeRows(shard, shard.inputSlots[k], inputs[k], first);
            for (auto& kernel : shard.kernels)
                shard.runKernel(*kernel);
            for (std::size_t k = 0; k < out.size(); ++k) {
                std::byte* rows = out[k].bytes.data() + rowBytes(out[k]) * std::size_t(first);
                const Slot& o = shard.slot(shard.outputSlots[k]);
                if (!o.blocked && o.allocated()) { // plain: straight into the result
                    std::memcpy(rows, o.data(), o.buffer.bytes);
                    continue;
                }
                const Tensor part = readSlot(shard, shard.outputSlots[k]);
                std::memcpy(rows, part.bytes.data(), part.bytes.size());
            }
        });
        lastSplit_ = true;
        hasRun_ = true;
        return out;
    }

    static std::size_t rowBytes(const Tensor& t) { return t.shape.empty() || t.shape[0] == 0 ? 0 : t.bytes.size() / std::size_t(t.shape[0]); }

    // Rows [first, first + the slot's batch) of `t` into a shard's input slot.
    static void writeRows(Program& p, int id, const Tensor& t, int64_t first)
    {
        Slot& s = p.slot(id);
        const std::byte* src = t.bytes.data() + rowBytes(t) * std::size_t(first);
        const std::size_t bytes = rowBytes(t) * std::size_t(s.shape[0]);
        if (t.dtype != s.dtype)
            fail("run: input ", quoted(s.name), " must be ", dtypeName(s.dtype), ", got ", dtypeName(t.dtype));
        if (!s.blocked) {
            std::memcpy(s.data(), src, bytes);
            return;
        }
        memory plain(plainDesc(s.shape, s.dtype), cpuEngine(), const_cast<std::byte*>(src));
        dnnl::reorder(plain, s.mem).execute(p.stream, plain, s.mem);
        p.stream.wait();
    }

    // Float outputs within a relative 1e-4 of the batch's largest magnitude (the shards
    // run other kernel blockings), anything else exactly.
    static bool sameOutputs(const std::vector<Tensor>& a, const std::vector<Tensor>& b)
    {
        if (a.size() != b.size())
            return false;
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (a[i].dtype != b[i].dtype || a[i].shape != b[i].shape)
                return false;
            if (a[i].dtype != DType::Float) {
                if (a[i].bytes != b[i].bytes)
                    return false;
                continue;
            }
            auto x = a[i].data<float>(), y = b[i].data<float>();
            double scale = 0;
            for (float v : y)
                scale = std::max(scale, double(std::fabs(v)));
            for (std::size_t k = 0; k < x.size(); ++k)
                if (!(std::fabs(double(x[k]) - double(y[k])) <= 1e-4 * scale + 1e-6))
                    return false;
        }
        return true;
    }

    // After a split run the whole program has not seen its inputs: run it on them before
    // anything reads its values, and keep later runs whole (this caller reads inside).
    void restoreFull()
    {
        if (!lastSplit_)
            return;
        std::vector<Tensor> inputs;
        for (std::size_t k = 0; k < prog_->inputSlots.size(); ++k) {
            const Slot& whole = prog_->slot(prog_->inputSlots[k]);
            Tensor t(whole.dtype, whole.shape);
            t.name = whole.name;
            int64_t first = 0;
            for (std::size_t i = 0; i < shards_.size(); ++i) {
                const Tensor part = readSlot(*shards_[i], shards_[i]->inputSlots[k]);
                std::memcpy(t.bytes.data() + rowBytes(t) * std::size_t(first), part.bytes.data(), part.bytes.size());
                first += shardSizes_[i];
            }
            inputs.push_back(std::move(t));
        }
        shards_.clear();
        splitState_ = SplitState::Off;
        computePrepared(inputs);
    }

    // QS_RUNTIME_PROFILE: `f`'s wall and CPU time added under `what`.
    template<typename F> void profiled(const std::string& what, F&& f)
    {
        if (!profile_) {
            f();
            return;
        }
        const auto t = std::chrono::steady_clock::now();
        const double c = processCpuMs();
        f();
        auto& acc = profileMs_[what];
        acc.first += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
        acc.second += processCpuMs() - c;
    }

    void runKernel(Kernel& k, const char* prefix)
    {
        if (!profile_) {
            prog_->runKernel(k);
            return;
        }
        profiled(prefix + (profile_ > 1 ? k.op + " " + k.node + " [" + k.describe() + "]" : k.op + " " + k.describe()),
            [&] { prog_->runKernel(k); });
    }

    // A value from another program into a slot of this one, as stored when the layouts
    // agree (a constant source is copied from its plain value).
    void copySlot(Program& from, Slot& src, Slot& dst)
    {
        if (src.constant && src.value && !src.allocated()) {
            writeSlot(*prog_, prog_->slotOf.at(dst.name), *src.value);
            return;
        }
        if (src.md == dst.md || (!src.blocked && !dst.blocked)) {
            std::memcpy(dst.data(), src.data(), dst.buffer.bytes);
            return;
        }
        if (!src.mem || !dst.mem)
            fail("runFrom: ", quoted(dst.name), " has no layout to copy between plans");
        dnnl::reorder(src.mem, dst.mem).execute(from.stream, src.mem, dst.mem);
        from.stream.wait();
    }

    // Undoes what runFrom() calls changed since the last run().
    void restoreBase()
    {
        profiled("(runFrom: restore)", [&] {
            for (int s : modified_) {
                auto& bytes = backup_[std::size_t(s)];
                std::memcpy(prog_->slot(s).buffer.data(), bytes.data(), bytes.size());
                backedUp_[std::size_t(s)] = 0;
            }
        });
        modified_.clear();
        lastGiven_.clear();
    }

    void attachObservers()
    {
        observers_.clear();
        observers_.resize(prog_->slots.size());
        constantObserved_.clear();
        auto observer = [&](const std::string& name) -> Observer* {
            auto it = prog_->slotOf.find(name);
            if (it == prog_->slotOf.end())
                return nullptr;
            auto& o = observers_[std::size_t(it->second)];
            if (!o) {
                const Slot& s = prog_->slot(it->second);
                o = std::make_unique<Observer>();
                o->name = name;
                o->scratch = Tensor(s.dtype, s.shape);
                o->scratch.name = name;
                if (s.blocked)
                    o->scratchMem = memory(plainDesc(s.shape, s.dtype), cpuEngine(), o->scratch.bytes.data());
                if (s.constant)
                    constantObserved_.push_back(it->second);
            }
            return o.get();
        };
        for (const auto& [name, t] : options_.valueTransforms)
            if (Observer* o = observer(name))
                o->transform = t;
        for (const auto& [name, list] : taps_)
            if (Observer* o = observer(name))
                o->taps = list;
        for (auto& k : prog_->kernels) {
            k->observed = false;
            for (int w : k->writes)
                k->observed = k->observed || observers_[std::size_t(w)] != nullptr;
        }
    }

    void notify(int slot)
    {
        Observer* o = observers_[std::size_t(slot)].get();
        if (!o)
            return;
        Slot& s = prog_->slot(slot);
        // Storage of the scratch's own: a tap that kept the last batch's tensor shares the
        // sealed scratch (below), which is then copied on write here, not overwritten.
        std::byte* scratch = o->scratch.bytes.data();
        if (s.blocked)
            o->scratchMem.set_data_handle(scratch);
        if (s.constant && !s.allocated()) {
            std::memcpy(scratch, s.value->bytes.data(), o->scratch.bytes.size());
        } else if (s.blocked) {
            dnnl::reorder(s.mem, o->scratchMem).execute(prog_->stream, s.mem, o->scratchMem);
            prog_->stream.wait();
        } else {
            std::memcpy(scratch, s.data(), o->scratch.bytes.size());
        }
        if (o->transform) {
            o->transform(o->scratch);
            if (o->scratch.shape != s.shape || o->scratch.dtype != s.dtype)
                fail("value transform for ", quoted(o->name), " changed the value's shape or type");
            if (s.blocked) {
                o->scratchMem.set_data_handle(o->scratch.bytes.data());
                dnnl::reorder(o->scratchMem, s.mem).execute(prog_->stream, o->scratchMem, s.mem);
                prog_->stream.wait();
            } else {
                std::memcpy(s.data(), std::as_const(o->scratch).bytes.data(), o->scratch.bytes.size());
            }
        }
        // A tap copying the batch shares it (TensorBytes) instead of copying its bytes.
        o->scratch.seal();
        if (!repeating_)
            for (const auto& tap : o->taps)
                tap(o->name, o->scratch);
    }

    std::vector<Tensor> outputs()
    {
        std::vector<Tensor> out;
        out.reserve(prog_->outputSlots.size());
        profiled("(read outputs)", [&] {
            for (int s : prog_->outputSlots)
                out.push_back(readSlot(*prog_, s));
        });
        return out;
    }

    std::shared_ptr<const Graph> graphOwner_; // shared with the caller or a copy of its graph
    const Graph& graph_;
    CompileOptions options_;
    std::map<std::string, Shape> shapes_;
    std::map<std::string, std::vector<Tap>> taps_;
    std::set<std::string> extraKeep_;
    std::unique_ptr<Program> prog_;
    std::map<std::string, ValueMeta> meta_;
    std::vector<std::unique_ptr<Observer>> observers_;
    std::vector<int> constantObserved_;
    // runFrom(): the last run()'s bytes of the slots it overwrote (capacity kept
    // between calls), which of them differ now, and the names that call was given.
    std::vector<std::vector<std::byte>> backup_;
    std::vector<char> backedUp_;
    std::vector<int> modified_;
    std::vector<std::string> lastGiven_;
    bool stale_ = false;
    bool hasRun_ = false;
    bool planMemory_ = true; // off once a caller reads values after a run (keepEveryValue)
    bool repeating_ = false; // repeatRun(): taps are not called
    const bool graphPasses_;                      // compileOptimizedPlan()
    std::shared_ptr<const rt::OptimizedGraph> optimized_; // the graph optimizer's copy, made once
    bool passesUsed_ = false;                     // prog_ was compiled from optimized_
    bool passesIdle_ = false; // the optimizer changed nothing the compiler would not (optimized_ let go)
    bool passesOff_ = false;                      // dropPasses(): the original graph from now on
    mutable std::optional<std::map<std::string, ValueMeta>> originalMeta_; // values optimized away
    enum class SplitState { Undecided, Off, Built, Verified };
    SplitState splitState_ = SplitState::Undecided;
    int runsAtShape_ = 0;
    bool lastSplit_ = false; // the last run went through the shards only
    std::vector<std::unique_ptr<Program>> shards_;
    std::vector<int64_t> shardSizes_;
    const int profile_ = std::getenv("QS_RUNTIME_PROFILE") ? std::max(1, std::atoi(std::getenv("QS_RUNTIME_PROFILE"))) : 0;
    std::map<std::string, std::pair<double, double>> profileMs_; // wall ms, CPU ms
};

} // namespace

std::unique_ptr<Plan> compilePlan(const Graph& graph, const CompileOptions& options)
{
    return std::make_unique<PlanImpl>(std::make_shared<const Graph>(graph), options);
}

std::unique_ptr<Plan> compileSharedPlan(std::shared_ptr<const Graph> graph, const CompileOptions& options)
{
    if (!graph)
        fail("compileSharedPlan: no graph");
    return std::make_unique<PlanImpl>(std::move(graph), options);
}

std::unique_ptr<Plan> compileOptimizedPlan(const Graph& graph, const CompileOptions& options)
{
    return std::make_unique<PlanImpl>(std::make_shared<const Graph>(graph), options, true);
}

std::unique_ptr<Plan> compileOptimizedPlan(std::shared_ptr<const Graph> graph, const CompileOptions& options)
{
    if (!graph)
        fail("compileOptimizedPlan: no graph");
    return std::make_unique<PlanImpl>(std::move(graph), options, true);
}

std::vector<std::string> supportedOperators()
{
    // Every op type with a registered builder (the table is filled by static initializers).
    return rt::registeredOps();
}

} // namespace qs
