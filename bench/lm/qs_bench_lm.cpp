// qs_bench_lm MODEL TEXT --batch B --context N --threads T [--iters K] [--warmup W]: the
// first B non-overlapping windows of TEXT (text:FILE semantics, data/text.h) as one
// int64 [B, N] batch; compiles once, warms up, times K runs and prints one JSON line:
// median ms, process CPU ms per run, tokens/s at the median, and the batch's mean
// next-token NLL (so both runtimes are seen computing the same thing).
// bench/lm/bench_lm_ort.js times ONNX Runtime the same way.
// --w8a8 C: quantizes the model W8A8 first (per-channel s8 weights, affine u8 activations,
// min-max over the first C windows) and times the INT8 plan (integer oneDNN primitives
// for every layer that can run as one); the JSON line then also says how many layers
// ran as INT8 primitives, how many kernels ran the 7-bit weight split (exact on an ISA
// without VNNI or AMX, see runtime/ops/int8.cpp) and how many oneDNN's reference kernels.
// --bf16: the products with constant weights in bfloat16 (CompileOptions::bf16; native on
// AVX512-BF16 or AMX, the ISA is in the JSON line).
#include "data/text.h"
#include "graph/onnx_import.h"
#include "measure/perplexity.h"
#include "quant/session.h"
#include "runtime/cpu_isa.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <time.h>

int main(int argc, char** argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: qs_bench_lm MODEL TEXT [--batch B] [--context N] [--threads T] [--iters K] "
                             "[--warmup W] [--w8a8 CALIB] [--bf16]\n");
        return 2;
    }
    const std::string model = argv[1], text = argv[2];
    int batch = 8, context = 128, threads = 1, iters = 10, warmup = 2, w8a8 = 0;
    bool bf16 = false;
    for (int i = 3; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
        if (a == "--batch") batch = next();
        else if (a == "--context") context = next();
        else if (a == "--threads") threads = next();
        else if (a == "--iters") iters = next();
        else if (a == "--warmup") warmup = next();
        else if (a == "--w8a8") w8a8 = next();
        else if (a == "--bf16") bf16 = true;
        else { std::fprintf(stderr, "unknown argument %s\n", a.c_str()); return 2; }
    }
    try {
        if (iters < 1 || batch < 1)
            qs::fail("--iters and --batch must be at least 1");
        if (bf16 && w8a8 > 0)
            qs::fail("--bf16 and --w8a8 are two precisions: choose one");
        const qs::Graph g = qs::importOnnx(model);
        const qs::Dataset data = qs::loadTextDataset(text, context, batch);
        if (data.count() < batch)
            qs::fail(text, ": has only ", data.count(), " windows of ", context, " tokens");
        std::unique_ptr<qs::Plan> plan;
        std::size_t int8Layers = 0, split = 0, reference = 0;
        if (w8a8 > 0) {
            qs::QuantizeOptions o;
            o.threads = threads;
            o.batch = std::min(batch, w8a8);
            o.calibLimit = w8a8;
            qs::QuantSession session(g, o);
            const qs::Dataset calib = qs::loadTextDataset(text, context, w8a8);
            qs::Progress progress;
            session.calibrate(calib, progress, qs::CancelToken());
            session.quantizeWeights();
            plan = session.compileInt8(
                qs::InputShapes(std::map<std::string, qs::Shape>{{g.inputs.at(0).name, data.first().shape}}));
            for (const auto& layer : session.layers())
                int8Layers += session.int8Obstacle(layer).empty();
            for (const auto& k : plan->kernelSummary()) { // "[nodes] op int8 <impl>[ (7-bit split)]"
                if (k.find("int8 ") == std::string::npos)
                    continue;
                if (k.find("(7-bit split)") != std::string::npos)
                    ++split;
                else if (k.find("int8 ref") != std::string::npos)
                    ++reference;
            }
        } else {
            qs::CompileOptions opts;
            opts.threads = threads;
            opts.bf16 = bf16;
            opts.inputShapes[g.inputs.at(0).name] = data.first().shape;
            plan = qs::compilePlan(g, opts);
        }
        const std::vector<qs::Tensor> inputs {data.first()};
        qs::PerplexityMeter ppl;
        ppl.add(plan->run(inputs).at(0), *data.targets);
        for (int i = 1; i < warmup; ++i)
            plan->run(inputs);
        auto cpuNowMs = [] {
            timespec ts{};
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
            return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
        };
        std::vector<double> ms;
        const double cpu0 = cpuNowMs();
        for (int i = 0; i < iters; ++i) {
            const auto t = std::chrono::steady_clock::now();
            plan->run(inputs);
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count());
        }
        const double cpuMs = (cpuNowMs() - cpu0) / iters;
        std::sort(ms.begin(), ms.end());
        const double median = ms[ms.size() / 2];
        std::printf("{\"median_ms\": %.4f, \"cpu_ms\": %.4f, \"tokens_per_second\": %.1f, \"mean_nll\": %.9f, "
                    "\"int8_layers\": %zu, \"int8_split_kernels\": %zu, \"int8_reference_kernels\": %zu, \"bf16\": %s, "
                    "\"isa\": \"%s\"}\n",
                    median, cpuMs, double(batch) * context * 1000.0 / median, ppl.meanNll(), int8Layers, split,
                    reference, bf16 ? "true" : "false",
                    qs::detectCpuIsa().summary().c_str());
    } catch (const qs::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
