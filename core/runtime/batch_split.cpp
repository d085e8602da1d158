// Which graphs may run batch-split, and the caller-participating pool that runs the
// shards (see batch_split.h).
#include "runtime/batch_split.h"

#include "runtime/compiler.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <mutex>
#include <set>
#include <thread>

namespace qs::rt {
namespace {

// Elementwise ops of one operand: sample-local whatever their attributes.
const std::set<std::string>& unaryOps()
{
    static const std::set<std::string> ops = {"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid",
        "HardSwish", "Elu", "Selu", "Celu", "Gelu", "Erf", "Exp", "Log", "Sqrt", "Abs", "Neg", "Reciprocal",
        "Floor", "Ceil", "Round", "Sign", "Softplus", "Softsign", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
        "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Identity", "Dropout", "Cast", "Not", "IsNaN", "IsInf",
        "ThresholdedRelu", "Mish"};
    return ops;
}

// Broadcasting ops of several operands: sample-local when no constant operand has a
// batch dimension of its own (numpy broadcasting aligns trailing dims).
const std::set<std::string>& broadcastOps()
{
    static const std::set<std::string> ops = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Sum", "Mean",
        "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Xor", "Where", "PRelu",
        "CastLike", "Mod", "BitShift"};
    return ops;
}

// Ops over each sample's spatial or channel dims only.
const std::set<std::string>& perSampleOps()
{
    static const std::set<std::string> ops = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool",
        "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "InstanceNormalization", "LRN", "DepthToSpace",
        "SpaceToDepth"};
    return ops;
}

int64_t normalized(int64_t axis, std::size_t rank) { return axis < 0 ? axis + int64_t(rank) : axis; }

} // namespace

bool batchLocal(const Graph& graph, const std::map<std::string, ValueMeta>& meta, int64_t batch, std::string* why)
{
    auto rankOf = [&](const std::string& v) -> std::size_t {
        auto it = meta.find(v);
        return it == meta.end() ? 0 : it->second.shape.size();
    };
    auto batched = [&](const std::string& v) { // a value whose dim 0 is the batch
        auto it = meta.find(v);
        return it != meta.end() && !it->second.shape.empty() && it->second.shape[0] == batch;
    };
    // Axes from an attribute or (opset 13+) a constant input; nullopt when not known.
    auto axesOf = [&](const Node& n, std::size_t input) -> std::optional<std::vector<int64_t>> {
        if (n.has("axes"))
            return n.attrInts("axes");
        if (input < n.inputs.size() && !n.inputs[input].empty()) {
            const Tensor* t = graph.constant(n.inputs[input]);
            if (!t)
                return std::nullopt;
            return t->toInt64();
        }
        return std::vector<int64_t>{};
    };
    auto touches0 = [&](const std::vector<int64_t>& axes, std::size_t rank) {
        for (int64_t a : axes)
            if (normalized(a, rank) == 0)
                return true;
        return false;
    };
    for (const Node& n : graph.nodes) {
        const std::string& op = n.opType;
        const std::string x = n.inputs.empty() ? std::string() : n.inputs[0];
        const std::size_t rank = rankOf(x);
        bool ok = false;
        if (!n.domain.empty() && n.domain != "ai.onnx") {
            ok = false;
        } else if (op == "Constant") {
            ok = true;
        } else if (unaryOps().count(op) || perSampleOps().count(op)) {
            ok = batched(x);
        } else if (op == "BatchNormalization") {
            ok = batched(x) && n.attrInt("training_mode", 0) == 0;
        } else if (broadcastOps().count(op)) {
            const std::size_t outRank = n.outputs.empty() ? 0 : rankOf(n.outputs[0]);
            ok = !n.outputs.empty() && batched(n.outputs[0]);
            for (const auto& in : n.inputs) {
                if (in.empty() || !graph.constant(in))
                    continue;
                const Shape& s = graph.constant(in)->shape;
                ok = ok && (s.size() < outRank || s.empty() || s[0] == 1);
            }
        } else if (op == "Flatten") {
            ok = batched(x) && normalized(n.attrInt("axis", 1), rank) >= 1;
        } else if (op == "Softmax" || op == "LogSoftmax" || op == "Hardmax") {
            const int64_t fallback = graph.opset() >= 13 ? -1 : 1;
            ok = batched(x) && rank >= 2 && normalized(n.attrInt("axis", fallback), rank) >= 1;
        } else if (op == "LayerNormalization") {
            ok = batched(x) && rank >= 2 && normalized(n.attrInt("axis", -1), rank) >= 1;
        } else if (op == "Gemm") {
            ok = batched(x) && !graph.constant(x) && n.attrInt("transA", 0) == 0;
            for (std::size_t i = 1; i < n.inputs.size(); ++i) {
                const Tensor* c = n.inputs[i].empty() ? nullptr : graph.constant(n.inputs[i]);
                ok = ok && (c != nullptr) && (i == 1 || c->shape.size() <= 1 || c->shape[0] == 1);
            }
        } else if (op == "MatMul") {
            const std::string w = n.input(1);
            ok = batched(x) && rank >= 2 &&
                 (graph.constant(w) ? rankOf(w) <= 2 : (batched(w) && rankOf(w) == rank && rank >= 3));
        } else if (op == "Transpose") {
            const auto perm = n.attrInts("perm");
            ok = batched(x) && !perm.empty() && perm[0] == 0;
        } else if (op == "Reshape") {
            const Tensor* shape = graph.constant(n.input(1));
            ok = batched(x) && !n.outputs.empty() && batched(n.outputs[0]) && shape && !shape->shape.empty() &&
                 shape->numel() > 0 && (shape->toInt64()[0] == 0 || shape->toInt64()[0] == -1);
        } else if (op == "Squeeze" || op == "Unsqueeze") {
            const auto axes = axesOf(n, 1);
            const std::size_t r = op == "Squeeze" ? rank : rankOf(n.outputs[0]);
            ok = batched(x) && axes && !axes->empty() && !touches0(*axes, r);
        } else if (op == "Concat" || op == "Split") {
            ok = batched(x) && normalized(n.attrInt("axis", 0), rank) != 0;
        } else if (op == "ReduceMean" || op == "ReduceSum" || op == "ReduceMax" || op == "ReduceMin" ||
                   op == "ReduceProd" || op == "ReduceL1" || op == "ReduceL2" || op == "ReduceSumSquare" ||
                   op == "ReduceLogSumExp" || op == "ArgMax" || op == "ArgMin") {
            std::optional<std::vector<int64_t>> axes;
            if (op == "ArgMax" || op == "ArgMin")
                axes = std::vector<int64_t>{n.attrInt("axis", 0)};
            else
                axes = axesOf(n, op == "ReduceSum" || graph.opset() >= 18 ? 1 : 99);
            ok = batched(x) && axes && !axes->empty() && !touches0(*axes, rank) &&
                 (op == "ArgMax" || op == "ArgMin" || n.attrInt("keepdims", 1) == 1 || rank >= 2);
        } else if (op == "Gather") {
            // An embedding lookup (constant table, batched indices) or a gather inside samples.
            const int64_t axis = n.attrInt("axis", 0);
            ok = graph.constant(x) ? axis == 0 && batched(n.input(1))
                                   : batched(x) && normalized(axis, rank) != 0 && graph.constant(n.input(1));
        }
        if (ok) {
            for (const auto& o : n.outputs)
                ok = ok && (o.empty() || batched(o) || op == "Constant");
        }
        if (!ok) {
            if (why)
                *why = "node \"" + n.name + "\" (" + op + ") is not known to keep samples apart";
            return false;
        }
    }
    for (const auto& in : graph.inputs)
        if (!batched(in.name)) {
            if (why)
                *why = "input \"" + in.name + "\" has no batch dimension of " + std::to_string(batch);
            return false;
        }
    for (const auto& out : graph.outputs)
        if (!batched(out.name)) {
            if (why)
                *why = "output \"" + out.name + "\" has no batch dimension of " + std::to_string(batch);
            return false;
        }
    return true;
}

std::vector<int64_t> splitBatch(int64_t batch, int parts)
{
    const int64_t n = std::max<int64_t>(1, std::min<int64_t>(parts, batch));
    std::vector<int64_t> sizes;
    for (int64_t i = 0; i < n; ++i)
        sizes.push_back(batch / n + (i < batch % n ? 1 : 0));
    return sizes;
}

namespace {

// How long an idle worker polls before it sleeps (see Pool::spinTime).
constexpr int kSpinUs = 100;

struct Job {
    const std::function<void(int)>* fn = nullptr;
    int n = 0;
    std::atomic<int> next{0};
    std::atomic<int> pending{0}; // claimed indices not finished yet, plus unclaimed ones
    std::mutex errorMutex;
    std::exception_ptr error;

    // Claims and runs indices until none are left.
    void work()
    {
        for (int i; (i = next.fetch_add(1)) < n;) {
            try {
                (*fn)(i);
            } catch (...) {
                std::lock_guard lock(errorMutex);
                if (!error)
                    error = std::current_exception();
            }
            if (pending.fetch_sub(1) == 1)
                pending.notify_all();
        }
    }
};

class Pool {
public:
    static Pool& instance()
    {
        static Pool pool;
        return pool;
    }

    void run(int n, const std::function<void(int)>& fn, int maxThreads)
    {
        auto job = std::make_shared<Job>();
        job->fn = &fn;
        job->n = n;
        job->pending = n;
        {
            std::lock_guard lock(mutex_);
            ensureWorkers();
            const int helpers = std::min({n - 1, int(workers_.size()), maxThreads > 0 ? maxThreads - 1 : n});
            for (int i = 0; i < helpers; ++i)
                queue_.push_back(job);
            queued_.store(int(queue_.size()), std::memory_order_release);
            if (sleepers_ > 0)
                cv_.notify_all();
        }
        job->work();
        // The caller polls too before it sleeps: a worker's share usually ends within
        // microseconds of the caller's, and a futex sleep and wake-up costs more.
        poll([&] { return job->pending.load(std::memory_order_acquire) == 0; });
        for (int p; (p = job->pending.load()) > 0;)
            job->pending.wait(p);
        if (job->error)
            std::rethrow_exception(job->error);
    }

private:
    Pool() = default;
    ~Pool()
    {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : workers_)
            t.join();
    }

    void ensureWorkers()
    {
        if (!workers_.empty())
            return;
        const int n = std::max(1, omp_get_num_procs() - 1);
        for (int i = 0; i < n; ++i)
            workers_.emplace_back([this] { loop(); });
    }

    // After a job a worker polls the queue for a while before it sleeps: the kernels of
    // a run come microseconds apart, and a futex wake-up costs tens of microseconds on
    // the VMs here. QS_POOL_SPIN_US sets the time (0: sleep at once).
    static std::chrono::microseconds spinTime()
    {
        static const auto us = [] {
            const char* env = std::getenv("QS_POOL_SPIN_US");
            return std::chrono::microseconds(env ? std::max(0, std::atoi(env)) : kSpinUs);
        }();
        return us;
    }

    void loop()
    {
        omp_set_num_threads(1); // the kernels of a shard run single-threaded
        for (;;) {
            poll([&] { return queued_.load(std::memory_order_acquire) > 0; });
            std::shared_ptr<Job> job;
            {
                std::unique_lock lock(mutex_);
                ++sleepers_;
                cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
                --sleepers_;
                if (stop_)
                    return;
                job = std::move(queue_.front());
                queue_.pop_front();
                queued_.store(int(queue_.size()), std::memory_order_release);
            }
            job->work(); // nothing left when the caller got there first
        }
    }

    // Returns once done() holds or spinTime() has passed.
    template <class Done> static void poll(Done done)
    {
        const auto until = std::chrono::steady_clock::now() + spinTime();
        while (!done() && std::chrono::steady_clock::now() < until) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    }

    std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<Job>> queue_;
    std::atomic<int> queued_{0}; // queue_.size(), read without the lock while polling
    int sleepers_ = 0;           // workers waiting on cv_
    std::vector<std::thread> workers_;
    bool stop_ = false;
};

} // namespace

void parallelShards(int n, const std::function<void(int)>& fn, int maxThreads)
{
    if (n <= 0)
        return;
    if (n == 1) {
        fn(0);
        return;
    }
    Pool::instance().run(n, fn, maxThreads);
}

} // namespace qs::rt
