// qs_bench_runtime MODEL --batch N --threads T [--iters K] [--warmup W] [--compare]: compiles
// the model for [N, ...] once, warms up, times K runs and prints the median in ms (one
// JSON line), and the process CPU time per run (all threads; on a saturated machine it
// shows the work done where wall time shows the CPU share obtained). The ONNX Runtime
// side (bench/ort/bench_ort.js) times the same way. Inputs: the first input, batch N, or
// QS_INPUT_SPEC (JSON list of {name, type float32|int64, shape, lo, hi} or {..., value}:
// every input with its full shape, uniform in [lo, hi] from a fixed seed, or constant).
// --compare also runs the graph as given (compilePlan) on the same inputs and prints
// "max_rel_diff": the largest |optimized - given| over each output's largest magnitude.
#include "graph/onnx_import.h"
#include "runtime/passes/passes.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include <time.h>

namespace {

// The inputs QS_INPUT_SPEC names, or the first graph input at batch N in [-1, 1].
std::vector<qs::Tensor> benchInputs(const qs::Graph& g, int batch, qs::CompileOptions& opts)
{
    std::mt19937 rng(42);
    std::vector<qs::Tensor> inputs;
    const char* specText = std::getenv("QS_INPUT_SPEC");
    if (!specText) {
        const qs::ValueInfo& in = g.inputs.at(0);
        qs::Shape shape = in.shape();
        shape[0] = batch;
        opts.inputShapes[in.name] = shape;
        qs::Tensor x(qs::DType::Float, shape);
        std::uniform_real_distribution<float> u(-1.f, 1.f);
        for (float& v : x.data<float>())
            v = u(rng);
        inputs.push_back(std::move(x));
        return inputs;
    }
    const nlohmann::json spec = nlohmann::json::parse(specText);
    for (const auto& in : g.inputs) {
        auto it = std::find_if(spec.begin(), spec.end(), [&](const auto& s) { return s.at("name") == in.name; });
        if (it == spec.end())
            qs::fail("QS_INPUT_SPEC: no entry for input ", qs::quoted(in.name));
        qs::Shape shape = it->at("shape").get<qs::Shape>();
        opts.inputShapes[in.name] = shape;
        const bool isInt = it->value("type", "float32") == "int64";
        qs::Tensor x(isInt ? qs::DType::Int64 : qs::DType::Float, shape);
        if (isInt) {
            for (int64_t& v : x.data<int64_t>())
                v = it->at("value").get<int64_t>();
        } else if (it->contains("value")) {
            for (float& v : x.data<float>())
                v = it->at("value").get<float>();
        } else {
            std::uniform_real_distribution<float> u(it->value("lo", -1.f), it->value("hi", 1.f));
            for (float& v : x.data<float>())
                v = u(rng);
        }
        inputs.push_back(std::move(x));
    }
    return inputs;
}

// max over outputs of max|a - b| / max|b|.
double maxRelDiff(const std::vector<qs::Tensor>& a, const std::vector<qs::Tensor>& b)
{
    double worst = 0;
    for (std::size_t k = 0; k < a.size() && k < b.size(); ++k) {
        if (!qs::isFloating(a[k].dtype))
            continue;
        const std::vector<float> x = a[k].toFloat(), y = b[k].toFloat();
        double diff = 0, scale = 0;
        for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
            diff = std::max(diff, std::fabs(double(x[i]) - double(y[i])));
            scale = std::max(scale, std::fabs(double(y[i])));
        }
        worst = std::max(worst, scale > 0 ? diff / scale : diff);
    }
    return worst;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::fprintf(stderr,
            "usage: qs_bench_runtime MODEL [--batch N] [--threads T] [--iters K] [--warmup W] [--kernels] [--compare]\n");
        return 2;
    }
    std::string model = argv[1];
    int batch = 1, threads = 1, iters = 20, warmup = 5;
    bool kernels = false, compare = false;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
        if (a == "--batch") batch = next();
        else if (a == "--threads") threads = next();
        else if (a == "--iters") iters = next();
        else if (a == "--warmup") warmup = next();
        else if (a == "--kernels") kernels = true;
        else if (a == "--compare") compare = true;
        else { std::fprintf(stderr, "unknown argument %s\n", a.c_str()); return 2; }
    }
    try {
        qs::Graph g = qs::importOnnx(model);
        qs::CompileOptions opts;
        opts.threads = threads;
        const std::vector<qs::Tensor> inputs = benchInputs(g, batch, opts); // built once: the loop times run() only
        auto t0 = std::chrono::steady_clock::now();
        auto plan = qs::compileOptimizedPlan(g, opts); // as `run`; QS_RUNTIME_PASSES=none: the graph as given
        const double compileMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (kernels)
            for (const auto& k : plan->kernelSummary())
                std::fprintf(stderr, "%s\n", k.c_str());
        double relDiff = -1;
        if (compare)
            relDiff = maxRelDiff(plan->run(inputs), qs::compilePlan(g, opts)->run(inputs));
        for (int i = 0; i < warmup; ++i)
            plan->run(inputs);
        std::vector<double> ms;
        auto cpuNowMs = [] {
            timespec ts{};
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
            return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
        };
        const double cpu0 = cpuNowMs();
        for (int i = 0; i < iters; ++i) {
            auto t = std::chrono::steady_clock::now();
            plan->run(inputs);
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
        }
        const double cpuMs = (cpuNowMs() - cpu0) / iters;
        std::sort(ms.begin(), ms.end());
        std::printf("{\"median_ms\": %.4f, \"min_ms\": %.4f, \"cpu_ms\": %.4f, \"compile_ms\": %.1f, \"kernels\": %zu",
            ms[ms.size() / 2], ms.front(), cpuMs, compileMs, plan->kernelSummary().size());
        if (compare)
            std::printf(", \"max_rel_diff\": %.3g", relDiff);
        std::printf("}\n");
    } catch (const qs::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    } catch (const nlohmann::json::exception& e) {
        std::fprintf(stderr, "QS_INPUT_SPEC: %s\n", e.what());
        return 1;
    }
    return 0;
}
