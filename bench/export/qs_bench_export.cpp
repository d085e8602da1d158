// qs_bench_export DB RUN BATCH THREADS ITERS WARMUP: our execution of a stored
// quantization run (re-derived session; simulated quantization, or INT8 when the run
// says so and the build has it) and of its FP32 graph, timed like bench/ort/bench_ort.js:
// one plan, warm-up runs, median of ITERS runs in ms (one JSON line).
#include "export/replay.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace {

double medianMs(qs::Plan& plan, const qs::Tensor& input, int iters, int warmup)
{
    for (int i = 0; i < warmup; ++i)
        plan.run({input});
    std::vector<double> ms;
    for (int i = 0; i < iters; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        plan.run({input});
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 7) {
        std::fprintf(stderr, "usage: qs_bench_export DB RUN BATCH THREADS ITERS WARMUP\n");
        return 2;
    }
    try {
        qs::Store store = qs::Store::open(argv[1], {.mode = qs::OpenMode::ReadOnly});
        qs::Progress progress;
        qs::CancelToken cancel;
        qs::RunReplay replay = qs::replayRun(store, std::atoll(argv[2]), progress, cancel);
        const int64_t batch = std::atoll(argv[3]);
        const int iters = std::atoi(argv[5]), warmup = std::atoi(argv[6]);
        qs::Shape shape = replay.calib.first().shape;
        shape[0] = batch;
        qs::Tensor input(qs::DType::Float, shape);
        std::mt19937 rng(42);
        std::uniform_real_distribution<float> uni(-1.f, 1.f);
        for (float& x : input.data<float>())
            x = uni(rng);
        // The run's own execution: oneDNN's integer kernels for an --int8 run,
        // simulated quantization otherwise; FP32 of the same working graph beside it.
        const bool int8 = replay.session->options().int8;
        qs::CompileOptions q = int8 ? replay.session->int8CompileOptions(shape)
                                    : replay.session->compileOptions(true, shape),
                           f = replay.session->compileOptions(false, shape);
        q.threads = f.threads = std::atoi(argv[4]);
        auto qPlan = qs::compilePlan(replay.session->graph(), q);
        auto fPlan = qs::compilePlan(replay.session->graph(), f);
        const double qMs = medianMs(*qPlan, input, iters, warmup);
        const double fMs = medianMs(*fPlan, input, iters, warmup);
        std::printf("{\"median_ms\": %.6f, \"fp32_median_ms\": %.6f, \"int8\": %s}\n", qMs, fMs,
            int8 ? "true" : "false");
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qs_bench_export: %s\n", e.what());
        return 1;
    }
}
