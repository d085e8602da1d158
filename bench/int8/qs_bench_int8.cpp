// qs_bench_int8 MODEL --batch N --threads T [--iters K] [--warmup W] [--rounds R] [--calib C]
// [--kernels]: quantizes MODEL W8A8 (per-channel s8 weights, affine u8 activations,
// min-max over C random samples), compiles our FP32 plan and the INT8 plan for
// [N, ...], and times them alternately (R rounds of K runs each, after W warm-ups),
// so both see the same machine load. Prints one JSON line: medians over all runs and
// FP32/INT8, plus top-1 agreement of the two on the timed batch.
#include "data/dataset.h"
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "runtime/plan.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

double timeOnce(qs::Plan& plan, const std::vector<qs::Tensor>& inputs)
{
    const auto t = std::chrono::steady_clock::now();
    plan.run(inputs);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

double top1Agreement(const qs::Tensor& a, const qs::Tensor& b)
{
    const int64_t n = a.shape[0], k = a.numel() / n;
    auto x = a.data<float>(), y = b.data<float>();
    int64_t same = 0;
    for (int64_t i = 0; i < n; ++i) {
        auto xa = x.subspan(std::size_t(i * k), std::size_t(k)), ya = y.subspan(std::size_t(i * k), std::size_t(k));
        same += std::max_element(xa.begin(), xa.end()) - xa.begin() == std::max_element(ya.begin(), ya.end()) - ya.begin();
    }
    return double(same) / double(n);
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: qs_bench_int8 MODEL [--batch N] [--threads T] [--iters K] [--warmup W] "
                             "[--rounds R] [--calib C] [--kernels]\n");
        return 2;
    }
    const std::string model = argv[1];
    int batch = 32, threads = 1, iters = 5, warmup = 2, rounds = 3, calib = 32;
    bool kernels = false;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&] { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
        if (a == "--batch") batch = next();
        else if (a == "--threads") threads = next();
        else if (a == "--iters") iters = next();
        else if (a == "--warmup") warmup = next();
        else if (a == "--rounds") rounds = next();
        else if (a == "--calib") calib = next();
        else if (a == "--kernels") kernels = true;
        else { std::fprintf(stderr, "unknown argument %s\n", a.c_str()); return 2; }
    }
    try {
        qs::Graph g = qs::importOnnx(model);
        qs::QuantizeOptions o;
        o.threads = threads;
        o.batch = std::min(batch, calib);
        o.calibLimit = calib;
        qs::QuantSession session(g, o);
        qs::DataOptions d;
        d.spec = "random:" + std::to_string(std::max(calib, batch));
        const qs::Dataset data = qs::loadDataset(d, g);
        qs::Progress progress;
        session.calibrate(data, progress, qs::CancelToken());
        session.quantizeWeights();

        const qs::Tensor x = data.batch(0, batch).front();
        qs::CompileOptions fo;
        fo.threads = threads;
        fo.inputShapes[g.inputs.at(0).name] = x.shape;
        auto fp = qs::compilePlan(g, fo); // our FP32 runtime on the model as given
        auto q = session.compileInt8(x.shape);
        if (kernels)
            for (const auto& k : q->kernelSummary())
                std::fprintf(stderr, "%s\n", k.c_str());
        const std::vector<qs::Tensor> inputs{x};
        for (int i = 0; i < warmup; ++i) {
            fp->run(inputs);
            q->run(inputs);
        }
        std::vector<double> fms, qms;
        for (int r = 0; r < rounds; ++r) {
            for (int i = 0; i < iters; ++i)
                fms.push_back(timeOnce(*fp, inputs));
            for (int i = 0; i < iters; ++i)
                qms.push_back(timeOnce(*q, inputs));
        }
        const double agree = top1Agreement(fp->run(inputs).front(), q->run(inputs).front());
        const double f = median(fms), m = median(qms);
        std::printf("{\"fp32_median_ms\": %.4f, \"int8_median_ms\": %.4f, \"fp32_over_int8\": %.3f, "
                    "\"top1_agreement\": %.4f, \"int8_kernels\": %zu}\n",
                    f, m, f / m, agree, q->kernelSummary().size());
    } catch (const qs::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
