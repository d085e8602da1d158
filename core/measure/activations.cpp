#include "measure/activations.h"

#include "data/input_binding.h"
#include "runtime/input_shapes.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>

namespace qs {

std::string layerInputOf(const Graph& graph, const Node& node)
{
    const std::string weight = graph.weightOf(node);
    if (node.opType == "Gather")
        return node.input(1);
    for (const auto& in : node.inputs)
        if (!in.empty() && in != weight)
            return in;
    return node.input(0);
}

void runInBatches(const Dataset& data, int64_t total, int64_t batch,
    const std::function<std::unique_ptr<Plan>(const std::map<std::string, Shape>& inputShapes)>& compile,
    const std::function<void(Plan&, int64_t n)>& attach, const CancelToken& cancel,
    const std::function<void(int64_t done)>& done)
{
    batch = std::max<int64_t>(1, std::min(batch, total));
    std::unique_ptr<Plan> plan;
    int64_t planBatch = -1;
    for (int64_t start = 0; start < total; start += batch) {
        cancel.check();
        const int64_t n = std::min(batch, total - start);
        if (n != planBatch) {
            plan = compile(data.inputShapes(n));
            attach(*plan, n);
            planBatch = n;
        }
        plan->run(data.batch(start, n));
        if (done)
            done(start + n);
    }
}

void runFp32Batches(const Graph& graph, const Dataset& data, int64_t total, int64_t batch, int threads,
    const std::function<void(Plan&, int64_t n)>& attach, const CancelToken& cancel,
    const std::function<void(int64_t done)>& done)
{
    runInBatches(
        data, total, batch,
        [&](const std::map<std::string, Shape>& shapes) {
            CompileOptions co;
            InputShapes(shapes).into(co, graph);
            co.threads = threads;
            return compilePlan(graph, co);
        },
        attach, cancel, done);
}

std::map<std::string, ActivationObserver> observeActivations(const Graph& graph, const Dataset& data,
                                                             const std::vector<std::string>& values,
                                                             const ProfileOptions& options, Progress& progress,
                                                             const CancelToken& cancel)
{
    if (graph.inputs.empty())
        fail(graph.sourcePath, ": the model has no inputs");
    const int64_t total = options.limit >= 0 ? std::min(options.limit, data.count()) : data.count();
    if (total <= 0)
        fail("dataset ", quoted(data.path), " has no samples");
    const int64_t batch = std::max<int64_t>(1, std::min(batchFor(graph, options.batch), total));

    std::map<std::string, ActivationObserver> observers;
    for (const auto& v : values)
        observers.emplace(v, ActivationObserver(options.bins));

    progress.report(0, "profiling activations");
    runFp32Batches(
        graph, data, total, batch, options.threads,
        [&](Plan& plan, int64_t) {
            for (auto& [name, obs] : observers) {
                ActivationObserver* o = &obs;
                plan.addTap(name, [o](const std::string&, const Tensor& t) { o->observe(t); });
            }
        },
        cancel,
        [&](int64_t done) {
            progress.report(double(done) / double(total), str("profiling activations: ", done, " of ", total, " samples"));
        });
    return observers;
}

} // namespace qs
