// qs_bench_sensitivity MODEL DATA [--limit N] [--batch N] [--bits 2,4,8] [--mode weights]
//   [--repeat R] [--threads T] [--only cached|naive]: times the one-at-a-time sweep both
// ways in the same process, alternating cached (downstream-only) and naive (full re-run
// per configuration), and prints one JSON line with the medians of wall and process CPU
// time and their ratios (--only: one side alone, for profiling with QS_RUNTIME_PROFILE).
//
// Both sides are measureSensitivity() with the same graph, data, batch size, bit widths,
// thread count and runtime, and both first build the QuantSession and (activations,
// both) observe the layer inputs once to choose their ranges. Then:
// - naive: one FP32 plan runs every batch (the reference outputs); per configuration,
//   a whole-model plan is compiled with the layer's quantized weight as an initializer
//   override and/or its input fake-quantized by a value transform, and runs every batch.
// - cached: per batch, one FP32 run of a plan keeping every layer input; per layer, one
//   plan holding a copy of the layer's segment (the layer and its single-consumer chain
//   up to the next kept value) per configuration with that configuration's weight or
//   quantized input, computed once from the layer's cached inputs; per configuration,
//   runFrom() re-runs only what is downstream of the segment's end (copied over from the
//   segment plan as stored), or of the quantized input for activation-only
//   configurations, restoring the FP32 values only when the next layer starts.
#include "../bench_util.h"

#include "analysis/sensitivity.h"
#include "graph/onnx_import.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace {

using qs::bench::median;

double processCpuSeconds()
{
    timespec ts {};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

std::vector<int> parseBits(const std::string& s)
{
    std::vector<int> out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
        std::size_t comma = s.find(',', pos);
        if (comma == std::string::npos)
            comma = s.size();
        out.push_back(std::stoi(s.substr(pos, comma - pos)));
        pos = comma + 1;
    }
    return out;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3) {
        std::fprintf(stderr,
            "usage: qs_bench_sensitivity MODEL DATA [--limit N] [--batch N] [--bits LIST] "
            "[--mode weights|activations|both] [--repeat R] [--threads T]\n");
        return 2;
    }
    try {
        qs::SensitivityOptions o;
        o.limit = 32;
        o.batch = 16;
        int repeat = 3;
        std::string only; // "cached" or "naive": time one side alone (for profiling)
        qs::bench::forEachOption(argc, argv, 3, [&](const std::string& a, const std::string& v) {
            if (a == "--limit")
                o.limit = std::stoll(v);
            else if (a == "--batch")
                o.batch = std::stoll(v);
            else if (a == "--bits")
                o.bits = parseBits(v);
            else if (a == "--mode")
                o.mode = qs::parseSensitivityMode(v);
            else if (a == "--repeat")
                repeat = std::stoi(v);
            else if (a == "--threads")
                o.threads = std::stoi(v);
            else if (a == "--only" && (v == "cached" || v == "naive"))
                only = v;
            else
                qs::fail("unknown argument ", a);
        });
        qs::Graph g = qs::importOnnx(argv[1]);
        qs::DataOptions d;
        d.spec = argv[2];
        d.limit = o.limit;
        qs::Dataset data = qs::loadDataset(d, g);
        std::vector<double> cached, naive, cachedCpu, naiveCpu; // wall and process CPU seconds
        double worstDiffDb = 0;
        std::size_t layers = 0;
        for (int r = 0; r < repeat; ++r) {
            qs::Progress p;
            if (!only.empty()) {
                o.naive = only == "naive";
                const double c0 = processCpuSeconds();
                qs::SensitivityResult a = qs::measureSensitivity(g, data, o, p, qs::CancelToken());
                std::fprintf(stderr, "repeat %d: %s %.2f s (cpu %.2f s)\n", r + 1, only.c_str(), a.seconds,
                    processCpuSeconds() - c0);
                continue;
            }
            o.naive = false;
            const double c0 = processCpuSeconds();
            qs::SensitivityResult a = qs::measureSensitivity(g, data, o, p, qs::CancelToken());
            const double c1 = processCpuSeconds();
            o.naive = true;
            qs::SensitivityResult b = qs::measureSensitivity(g, data, o, p, qs::CancelToken());
            cachedCpu.push_back(c1 - c0);
            naiveCpu.push_back(processCpuSeconds() - c1);
            cached.push_back(a.seconds);
            naive.push_back(b.seconds);
            layers = a.layers.size();
            // Both ways must measure the same thing, or the timing means nothing.
            for (std::size_t l = 0; l < a.layers.size(); ++l)
                for (const auto& [bits, m] : a.layers[l].byBits) {
                    const double x = m.sqnrDb, y = b.layers[l].byBits.at(bits).sqnrDb;
                    if (std::isfinite(x) && std::isfinite(y))
                        worstDiffDb = std::max(worstDiffDb, std::abs(x - y));
                }
            std::fprintf(stderr,
                "repeat %d: cached %.2f s (cpu %.2f), naive %.2f s (cpu %.2f), ratio %.3f (cpu %.3f)\n", r + 1,
                a.seconds, cachedCpu.back(), b.seconds, naiveCpu.back(), a.seconds / b.seconds,
                cachedCpu.back() / naiveCpu.back());
        }
        if (!only.empty())
            return 0;
        const double mc = median(cached), mn = median(naive);
        const double cc = median(cachedCpu), nc = median(naiveCpu);
        std::printf("{\"layers\": %zu, \"configurations\": %zu, \"samples\": %lld, \"cached_s\": %.4f, "
                    "\"naive_s\": %.4f, \"ratio\": %.4f, \"cached_cpu_s\": %.4f, \"naive_cpu_s\": %.4f, "
                    "\"cpu_ratio\": %.4f, \"max_sqnr_diff_db\": %.3g}\n",
            layers, layers * o.bits.size(), (long long)data.count(), mc, mn, mc / mn, cc, nc, cc / nc, worstDiffDb);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qs_bench_sensitivity: %s\n", e.what());
        return 1;
    }
}
