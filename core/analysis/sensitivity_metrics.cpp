// Sensitivity metrics side by side: each data-driven metric is recomputed from
// per-batch sums, so a bootstrap replicate (batches drawn with replacement) costs
// no model runs. Percentile bootstrap, Efron & Tibshirani 1993, ch. 13.
#include "analysis/sensitivity_metrics.h"

#include "measure/stats.h"
#include "quant/session.h"
#include "util/error.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <random>
#include <set>

namespace qs {

std::vector<std::vector<int64_t>> bootstrapDraws(int64_t batches, int replicates, uint64_t seed)
{
    std::vector<std::vector<int64_t>> draws;
    if (batches <= 0)
        return draws;
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int64_t> pick(0, batches - 1);
    for (int r = 0; r < replicates; ++r) {
        std::vector<int64_t> row(static_cast<std::size_t>(batches));
        for (auto& b : row)
            b = pick(rng);
        draws.push_back(std::move(row));
    }
    return draws;
}

std::pair<double, double> percentileInterval(std::vector<double> values)
{
    if (values.empty())
        return {NAN, NAN};
    std::sort(values.begin(), values.end());
    auto at = [&](double p) {
        const double x = p * double(values.size() - 1);
        const std::size_t i = std::size_t(std::floor(x));
        const double f = x - double(i);
        return i + 1 < values.size() ? values[i] * (1 - f) + values[i + 1] * f : values[i];
    };
    return {at(0.025), at(0.975)};
}

namespace {

// Batch multiplicities: all ones for the full set, draw counts for a replicate.
using Counts = std::vector<double>;

double klOf(const std::vector<BatchSums>& b, const Counts& c)
{
    double kl = 0, n = 0;
    for (std::size_t i = 0; i < b.size() && i < c.size(); ++i) {
        kl += c[i] * b[i].klSum;
        n += c[i] * double(b[i].samples);
    }
    return n > 0 ? kl / n : 0;
}

double localSqnrOf(const std::vector<BatchSums>& b, const Counts& c)
{
    double s = 0, e = 0;
    for (std::size_t i = 0; i < b.size() && i < c.size(); ++i) {
        s += c[i] * b[i].localSignal;
        e += c[i] * b[i].localNoise;
    }
    return e > 0 ? 10 * std::log10(s / e) : INFINITY;
}

// HAWQ-V2 as measureSensitivity computes it, from the per-direction batch sums.
double hessianOf(const LayerSensitivity& l, const Counts& c)
{
    if (l.hessianPlus.empty() || l.params <= 0 || l.hessianEps <= 0)
        return NAN;
    double sum = 0;
    for (std::size_t s = 0; s < l.hessianPlus.size(); ++s)
        sum += (klOf(l.hessianPlus[s], c) + klOf(l.hessianMinus[s], c)) / (l.hessianEps * l.hessianEps);
    return sum / double(l.hessianPlus.size()) / double(l.params) * l.weightErrorSq;
}

const LayerSensitivity& layerIn(const SensitivityResult& r, const std::string& name)
{
    for (const auto& l : r.layers)
        if (l.layer == name)
            return l;
    fail("sensitivity: layer ", quoted(name), " was not measured");
}

} // namespace

SensitivityAgreement measureSensitivityAgreement(const Graph& graph, const Dataset& data,
    const MetricsOptions& options, Progress& progress, const CancelToken& cancel)
{
    const auto t0 = std::chrono::steady_clock::now();
    static const std::set<std::string> known = {"oneshot", "local", "hessian", "kurtosis"};
    std::set<std::string> want;
    for (const auto& m : options.metrics) {
        if (!known.count(m))
            fail("--metrics: unknown metric ", quoted(m), "; expected all or a list of oneshot, local, hessian, kurtosis");
        want.insert(m);
    }
    if (want.empty())
        fail("--metrics: no metric given");
    if (options.bits < 2 || options.bits > 8)
        fail("sensitivity metrics: bit width ", options.bits, " is not 2..8");
    if (options.bootstrap < 0)
        fail("--bootstrap: expected 0 or more resamples, got ", options.bootstrap);

    SensitivityOptions so;
    so.bits = {options.bits};
    so.mode = SensitivityMode::Weights;
    so.limit = options.limit;
    so.batch = options.batch;
    so.threads = options.threads;
    so.base = options.base;
    so.hutchinsonSamples = options.hutchinsonSamples;
    so.keepBatches = true;
    const int runs = int(want.count("hessian") || want.count("oneshot")) + int(want.count("local"));
    int done = 0;
    auto sweep = [&](SensitivityMethod method) {
        so.method = method;
        Progress p = progress.sub(double(done) / std::max(runs, 1), double(done + 1) / std::max(runs, 1));
        SensitivityResult r = measureSensitivity(graph, data, so, p, cancel);
        ++done;
        if (!r.complete)
            throw Cancelled(); // intervals from part of the batches would mislead
        return r;
    };
    std::optional<SensitivityResult> downstream, local;
    if (want.count("hessian"))
        downstream = sweep(SensitivityMethod::Hessian); // also measures the one-shot variant
    else if (want.count("oneshot"))
        downstream = sweep(SensitivityMethod::OneShot);
    if (want.count("local"))
        local = sweep(SensitivityMethod::Local);

    QuantizeOptions qo;
    qo.config = options.base;
    QuantSession session(graph, qo);
    SensitivityAgreement out;
    out.bits = options.bits;
    out.bootstrap = options.bootstrap;
    for (const auto& l : session.layers()) {
        out.layers.push_back(l.name);
        out.ops.push_back(l.op);
    }
    if (out.layers.empty())
        fail(graph.sourcePath, ": no quantizable layers");
    const SensitivityResult* any = downstream ? &*downstream : local ? &*local : nullptr;
    if (any) {
        out.samples = any->samples;
        const LayerSensitivity& first = layerIn(*any, out.layers.front());
        out.batches = first.byBits.count(options.bits) ? int64_t(first.byBits.at(options.bits).batches.size()) : 0;
    }

    // Each data-driven metric as a function of batch multiplicities.
    struct Column {
        MetricColumn meta;
        std::function<double(std::size_t layer, const Counts&)> eval;
    };
    std::vector<Column> columns;
    const int b = options.bits;
    if (downstream && want.count("oneshot"))
        columns.push_back({{"oneshot_kl", str("model output KL(FP32 || quantized) with only this layer at ", b,
                                              " bits, nats"), true, {}, {}, {}},
            [&, b](std::size_t li, const Counts& c) {
                return klOf(layerIn(*downstream, out.layers[li]).byBits.at(b).batches, c);
            }});
    if (local)
        columns.push_back({{"local_sqnr_db", str("the layer's own output SQNR at ", b, " bits, dB (lower: more sensitive)"),
                               false, {}, {}, {}},
            [&, b](std::size_t li, const Counts& c) {
                return localSqnrOf(layerIn(*local, out.layers[li]).byBits.at(b).batches, c);
            }});
    if (downstream && want.count("hessian"))
        columns.push_back({{"hessian_score", str("HAWQ-V2 tr(H)/n x ||Q(W)-W||^2 at ", b, " bits, ",
                                                 options.hutchinsonSamples, " Hutchinson directions"), true, {}, {}, {}},
            [&](std::size_t li, const Counts& c) { return hessianOf(layerIn(*downstream, out.layers[li]), c); }});

    const Counts ones(std::size_t(out.batches), 1.0);
    const auto draws = bootstrapDraws(out.batches, options.bootstrap, options.seed);
    for (auto& col : columns) {
        const std::size_t n = out.layers.size();
        col.meta.value.resize(n);
        col.meta.lo.resize(n);
        col.meta.hi.resize(n);
        std::vector<std::vector<double>> reps(n);
        for (std::size_t li = 0; li < n; ++li)
            col.meta.value[li] = col.eval(li, ones);
        for (const auto& row : draws) {
            cancel.check();
            Counts c(std::size_t(out.batches), 0.0);
            for (int64_t k : row)
                c[std::size_t(k)] += 1;
            for (std::size_t li = 0; li < n; ++li)
                reps[li].push_back(col.eval(li, c));
        }
        for (std::size_t li = 0; li < n; ++li) {
            if (draws.empty()) {
                col.meta.lo[li] = col.meta.hi[li] = col.meta.value[li];
            } else {
                std::tie(col.meta.lo[li], col.meta.hi[li]) = percentileInterval(reps[li]);
            }
        }
        out.metrics.push_back(std::move(col.meta));
    }
    if (want.count("kurtosis")) {
        MetricColumn k{"weight_kurtosis", "Pearson kurtosis of the (BatchNorm-folded) weight; 3 for a normal "
                                          "distribution; needs no data, so its interval is the value itself",
            true, {}, {}, {}};
        for (const auto& l : session.layers()) {
            const std::vector<float> w = session.graph().constant(l.weight)->toFloat();
            k.value.push_back(computeStats(w).kurtosis);
        }
        k.lo = k.hi = k.value;
        out.metrics.push_back(std::move(k));
    }

    const std::size_t m = out.metrics.size();
    out.spearman.assign(m, std::vector<double>(m, 1.0));
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < m; ++j) {
            if (i == j)
                continue;
            std::vector<double> a, c;
            for (std::size_t li = 0; li < out.layers.size(); ++li) {
                a.push_back(out.metrics[i].score(li));
                c.push_back(out.metrics[j].score(li));
            }
            out.spearman[i][j] = spearmanCorrelation(a, c);
        }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
}

} // namespace qs
