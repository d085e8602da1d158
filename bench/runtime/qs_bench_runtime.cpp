// qs_bench_runtime MODEL --batch N --threads T [--iters K] [--warmup W]: compiles the
// model for [N, ...] once, warms up, times K runs and prints the median in ms (one
// JSON line), and the process CPU time per run (all threads; on a saturated machine it
// shows the work done where wall time shows the CPU share obtained). The ONNX Runtime
// side (bench/ort/bench_ort.js) times the same way.
#include "graph/onnx_import.h"
#include "runtime/passes/passes.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include <time.h>

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: qs_bench_runtime MODEL [--batch N] [--threads T] [--iters K] [--warmup W] [--kernels]\n");
        return 2;
    }
    std::string model = argv[1];
    int batch = 1, threads = 1, iters = 20, warmup = 5;
    bool kernels = false;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
        if (a == "--batch") batch = next();
        else if (a == "--threads") threads = next();
        else if (a == "--iters") iters = next();
        else if (a == "--warmup") warmup = next();
        else if (a == "--kernels") kernels = true;
        else { std::fprintf(stderr, "unknown argument %s\n", a.c_str()); return 2; }
    }
    try {
        qs::Graph g = qs::importOnnx(model);
        const qs::ValueInfo& in = g.inputs.at(0);
        qs::Shape shape = in.shape();
        shape[0] = batch;
        qs::CompileOptions opts;
        opts.threads = threads;
        opts.inputShapes[in.name] = shape;
        auto t0 = std::chrono::steady_clock::now();
        auto plan = qs::compileOptimizedPlan(g, opts); // as `run`; QS_RUNTIME_PASSES=none: the graph as given
        const double compileMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (kernels)
            for (const auto& k : plan->kernelSummary())
                std::fprintf(stderr, "%s\n", k.c_str());
        qs::Tensor x(qs::DType::Float, shape);
        std::mt19937 rng(42);
        std::uniform_real_distribution<float> u(-1.f, 1.f);
        for (float& v : x.data<float>())
            v = u(rng);
        const std::vector<qs::Tensor> inputs{x}; // built once: the timed loop measures run() only
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
        std::printf("{\"median_ms\": %.4f, \"min_ms\": %.4f, \"cpu_ms\": %.4f, \"compile_ms\": %.1f, \"kernels\": %zu}\n",
                    ms[ms.size() / 2], ms.front(), cpuMs, compileMs, plan->kernelSummary().size());
    } catch (const qs::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
