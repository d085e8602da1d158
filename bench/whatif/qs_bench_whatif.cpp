// qs_bench_whatif MODEL DATA [--limit N] [--calib-limit N] [--batch N] [--repeat R] [--threads T]:
// for one change per layer (weight bits 8->4, activation bits 8->4, input range clipped
// to 60%), times a what-if evaluation (downstream re-run from cached activations)
// against a full simulated quantization of the same configuration from scratch
// (quantizeModel: calibrate, quantize, evaluate), alternating in the same process.
// Prints one JSON line: medians, their ratio, and the largest disagreement of the two.
#include "analysis/whatif.h"
#include "graph/onnx_import.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double seconds(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 3) {
        std::fprintf(stderr, "usage: qs_bench_whatif MODEL DATA [--limit N] [--calib-limit N] [--batch N] "
                             "[--repeat R] [--threads T]\n");
        return 2;
    }
    try {
        qs::QuantizeOptions o;
        o.evalLimit = 1000;
        o.calibLimit = 256;
        o.batch = 100;
        int repeat = 1;
        for (int i = 3; i < argc; ++i) {
            const std::string a = argv[i];
            if (i + 1 >= argc)
                qs::fail(a, ": missing value");
            const std::string v = argv[++i];
            if (a == "--limit")
                o.evalLimit = std::stoll(v);
            else if (a == "--calib-limit")
                o.calibLimit = std::stoll(v);
            else if (a == "--batch")
                o.batch = std::stoll(v);
            else if (a == "--repeat")
                repeat = std::stoi(v);
            else if (a == "--threads")
                o.threads = std::stoi(v);
            else
                qs::fail("unknown argument ", a);
        }
        qs::Graph g = qs::importOnnx(argv[1]);
        qs::DataOptions d;
        d.spec = argv[2];
        d.limit = std::max(o.evalLimit, o.calibLimit);
        qs::Dataset data = qs::loadDataset(d, g);
        qs::Progress p;
        auto t0 = std::chrono::steady_clock::now();
        qs::WhatIfSession session(g, data, data, o, p, qs::CancelToken());
        const double setup = seconds(t0);

        std::vector<qs::WhatIfChange> changes;
        for (const auto& l : session.session().layers()) {
            qs::WhatIfChange w{l.name, l.spec, {}, {}};
            w.spec->weight.bits = 4;
            qs::WhatIfChange a{l.name, l.spec, {}, {}};
            a.spec->activation.bits = 4;
            qs::WhatIfChange r{l.name, std::nullopt, {}, {}};
            const qs::ClipRange cr = session.session().activationRanges.at(l.input);
            r.setRanges[l.input] = {cr.lo * 0.6f, cr.hi * 0.6f};
            changes.insert(changes.end(), {w, a, r});
        }
        std::vector<double> whatIf, full;
        double worstDb = 0, worstTop1 = 0;
        for (int rep = 0; rep < repeat; ++rep)
            for (const auto& c : changes) {
                t0 = std::chrono::steady_clock::now();
                qs::WhatIfResult r = session.evaluate(c);
                whatIf.push_back(seconds(t0));
                t0 = std::chrono::steady_clock::now();
                qs::QuantizeOptions fo = o;
                fo.config = r.config;
                qs::QuantizeResult f = qs::quantizeModel(g, data, data, fo, p, qs::CancelToken());
                full.push_back(seconds(t0));
                // Both must measure the same thing, or the timing means nothing.
                worstDb = std::max(worstDb, std::abs(r.metrics.outputSqnrDb - f.sqnrDb));
                worstTop1 = std::max(worstTop1, std::abs(r.metrics.top1.value_or(0) - f.top1.value_or(0)));
                std::fprintf(stderr, "%-28s what-if %7.1f ms, full re-run %7.1f ms\n", c.layer.c_str(),
                             whatIf.back() * 1e3, full.back() * 1e3);
            }
        const double mw = median(whatIf), mf = median(full);
        std::printf("{\"layers\": %zu, \"changes\": %zu, \"samples\": %lld, \"setup_s\": %.3f, \"cached_mb\": %.1f, "
                    "\"whatif_median_ms\": %.2f, \"full_rerun_median_ms\": %.2f, \"ratio\": %.4f, \"speedup\": %.1f, "
                    "\"max_sqnr_diff_db\": %.3g, \"max_top1_diff\": %.3g}\n",
                    session.session().layers().size(), whatIf.size(), (long long)session.samples(), setup,
                    double(session.cachedBytes()) / 1e6, mw * 1e3, mf * 1e3, mw / mf, mf / mw, worstDb, worstTop1);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qs_bench_whatif: %s\n", e.what());
        return 1;
    }
}
