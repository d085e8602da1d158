// AdaRound, Nagel et al. 2020 ("Up or Down? Adaptive Rounding for Post-Training
// Quantization"): per layer, each weight rounds down or up as learned by a continuous
// variable V through the rectified sigmoid h(V) = clip(sigmoid(V)(zeta - gamma) + gamma,
// 0, 1), zeta = 1.1, gamma = -0.1. Loss: layer-output reconstruction on calibration
// inputs (im2col rows for Conv), sum over outputs of (W~x - Wx)^2 averaged over samples,
// plus lambda * sum(1 - |2h - 1|^beta) with beta annealed 20 -> 2 after a warm-up
// (20% of iterations, no regularizer). Plain C++ Adam on mini-batches of rows. Scales
// are the spec's min-max block scales (as RTN). Stage AfterWeights.
#include "quant/algorithms/linear_layer.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>

namespace qs {
namespace {

constexpr double kZeta = 1.1, kGamma = -0.1;

struct AdaRoundOptions {
    int iterations = 300;
    int64_t batchRows = 64;
    double lr = 0.01, lambda = 0.01, warmup = 0.2, betaStart = 20, betaEnd = 2;
    uint64_t seed = 1;
};

double sigmoid(double v)
{
    return 1.0 / (1.0 + std::exp(-v));
}

std::vector<float> adaroundLayer(const algo::LinearLayer& L, const std::vector<float>& w, const algo::RowSample& x,
    const AdaRoundOptions& o, const CancelToken& cancel)
{
    const int64_t rows = L.rows, k = L.cols, n = x.count();
    const std::vector<QParams> params = algo::blockParams(L, w, L.info.spec.weight);
    const std::size_t size = std::size_t(rows * k);
    std::vector<double> base(size), scale(size), lo(size), hi(size), v(size), m(size, 0.0), s2(size, 0.0);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < k; ++c) {
            const std::size_t e = std::size_t(r * k + c);
            const QParams& q = params[std::size_t(L.blockOf(r, c))];
            const double t = double(w[e]) / q.scale;
            base[e] = std::floor(t);
            scale[e] = q.scale;
            lo[e] = double(q.qmin - q.zeroPoint);
            hi[e] = double(q.qmax - q.zeroPoint);
            // h(V0) = the fractional part, so training starts at the float weight.
            const double p = std::clamp((t - base[e] - kGamma) / (kZeta - kGamma), 1e-4, 1 - 1e-4);
            v[e] = std::log(p / (1 - p));
        }
    auto weightOf = [&](std::size_t e, double h) { return std::clamp(base[e] + h, lo[e], hi[e]) * scale[e]; };
    std::mt19937_64 rng(o.seed);
    std::uniform_int_distribution<int64_t> pick(0, n - 1);
    const int64_t b = std::min(o.batchRows, n);
    std::vector<double> d(size), h(size), y(std::size_t(rows * b)), grad(size);
    std::vector<int64_t> idx(static_cast<std::size_t>(b));
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    const int warm = int(o.warmup * o.iterations);
    for (int it = 0; it < o.iterations; ++it) {
        if (it % 32 == 0)
            cancel.check();
        for (std::size_t e = 0; e < size; ++e) {
            h[e] = std::clamp(sigmoid(v[e]) * (kZeta - kGamma) + kGamma, 0.0, 1.0);
            d[e] = weightOf(e, h[e]) - w[e];
        }
        for (auto& i : idx)
            i = pick(rng);
        // y = D x_b for each sampled row; grad_W = 2/b sum_b y x_b^T.
        const float* xs = x.data().data();
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < b; ++j) {
                const float* xr = xs + idx[std::size_t(j)] * k;
                const double* dr = d.data() + r * k;
                double acc = 0;
                for (int64_t c = 0; c < k; ++c)
                    acc += dr[c] * xr[c];
                y[std::size_t(r * b + j)] = acc;
            }
        std::fill(grad.begin(), grad.end(), 0.0);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < b; ++j) {
                const double yr = 2.0 * y[std::size_t(r * b + j)] / double(b);
                const float* xr = xs + idx[std::size_t(j)] * k;
                double* gr = grad.data() + r * k;
                for (int64_t c = 0; c < k; ++c)
                    gr[c] += yr * xr[c];
            }
        const bool reg = it >= warm;
        const double beta = o.betaEnd +
            (o.betaStart - o.betaEnd) * (1.0 - double(it - warm) / double(std::max(1, o.iterations - warm)));
        const double c1 = 1 - std::pow(beta1, it + 1), c2 = 1 - std::pow(beta2, it + 1);
        for (std::size_t e = 0; e < size; ++e) {
            const double sg = sigmoid(v[e]);
            const double raw = sg * (kZeta - kGamma) + kGamma;
            if (raw <= 0 || raw >= 1)
                continue; // clipped: h does not depend on V here
            const double dh = sg * (1 - sg) * (kZeta - kGamma);
            const double q = base[e] + h[e];
            double g = (q > lo[e] && q < hi[e]) ? grad[e] * scale[e] : 0.0; // dW~/dh = scale unless clamped
            if (reg) {
                const double u = 2 * h[e] - 1;
                g += -o.lambda * beta * std::pow(std::abs(u), beta - 1) * (u > 0 ? 1 : -1) * 2;
            }
            g *= dh;
            m[e] = beta1 * m[e] + (1 - beta1) * g;
            s2[e] = beta2 * s2[e] + (1 - beta2) * g * g;
            v[e] -= o.lr * (m[e] / c1) / (std::sqrt(s2[e] / c2) + eps);
        }
    }
    std::vector<float> out(size);
    for (std::size_t e = 0; e < size; ++e) {
        const double hh = std::clamp(sigmoid(v[e]) * (kZeta - kGamma) + kGamma, 0.0, 1.0);
        out[e] = float(weightOf(e, hh >= 0.5 ? 1.0 : 0.0));
    }
    return out;
}

void adaround(
    QuantSession& s, const Dataset& calib, const nlohmann::json& params, Progress& progress, const CancelToken& cancel)
{
    AdaRoundOptions o;
    o.iterations = params.value("iterations", 300);
    o.batchRows = params.value("batch_rows", int64_t(64));
    o.lr = params.value("lr", 0.01);
    o.lambda = params.value("lambda", 0.01);
    o.warmup = params.value("warmup", 0.2);
    const int64_t samples = params.value("samples", int64_t(128));
    const int64_t maxRows = params.value("max_rows", int64_t(4096));
    if (o.iterations < 1 || o.batchRows < 1 || samples < 1 || maxRows < 1 || !(o.lr > 0) || !(o.lambda >= 0) ||
        !(o.warmup >= 0 && o.warmup < 1))
        fail("adaround: iterations, batch_rows, samples, max_rows >= 1, lr > 0, lambda >= 0, warmup in [0, 1)");
    std::vector<algo::LinearLayer> layers = algo::linearLayers(s);
    std::vector<algo::RowSample> sample;
    for (std::size_t i = 0; i < layers.size(); ++i)
        sample.emplace_back(layers[i].cols, maxRows, o.seed + i);
    std::vector<float> rows;
    Progress observe = progress.sub(0.0, 0.2);
    algo::streamLayerInputs(
        s, calib, layers, samples,
        [&](std::size_t i, const Tensor& x) {
            rows.clear();
            algo::appendInputRows(layers[i], x, rows);
            sample[i].add(rows);
        },
        observe, cancel);
    nlohmann::json report = nlohmann::json::array();
    for (std::size_t i = 0; i < layers.size(); ++i) {
        const algo::LinearLayer& L = layers[i];
        const Tensor* wt = s.graph().constant(L.info.weight);
        const std::vector<float> w = algo::toMatrix(L, wt->toFloat());
        std::vector<float> q = adaroundLayer(L, w, sample[i], o, cancel);
        std::vector<double> gram;
        algo::addGram(sample[i].data(), L.cols, gram);
        const std::vector<float> rtn = algo::roundToNearest(L, w, algo::blockParams(L, w, L.info.spec.weight));
        int64_t flipped = 0;
        for (std::size_t e = 0; e < q.size(); ++e)
            flipped += q[e] != rtn[e];
        report.push_back({{"layer", L.info.name}, {"proxy_error_rtn", algo::outputError(w, rtn, L.rows, L.cols, gram)},
            {"proxy_error_adaround", algo::outputError(w, q, L.rows, L.cols, gram)}, {"changed_vs_rtn", flipped}});
        Tensor t = Tensor::fromVector(wt->shape, algo::fromMatrix(L, q));
        t.name = L.info.weight;
        s.weightOverrides[L.info.weight] = std::move(t);
        // The grid AdaRound rounded on (the spec's min-max, which a range or output-MSE grid
        // chosen for RTN need not be): what INT8 lowering divides by.
        std::vector<float>& scales = s.weightScales[L.info.weight];
        scales.clear();
        for (const QParams& p : algo::blockParams(L, w, L.info.spec.weight))
            scales.push_back(p.scale);
        progress.report(0.2 + 0.8 * double(i + 1) / double(layers.size()), str("AdaRound: ", L.info.name));
    }
    s.notes["adaround"] = {
        {"params",
            {{"iterations", o.iterations}, {"batch_rows", o.batchRows}, {"lr", o.lr}, {"lambda", o.lambda},
                {"warmup", o.warmup}, {"samples", samples}, {"max_rows", maxRows}}},
        {"layers", report}};
}

const bool adaroundRegistered = registerAlgorithm({"adaround", "AdaRound: learned up/down rounding per layer (Nagel 2020)",
    AlgorithmInfo::Stage::AfterWeights, adaround});

} // namespace
} // namespace qs
