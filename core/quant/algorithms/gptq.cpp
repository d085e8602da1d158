// GPTQ, Frantar et al. 2022 ("GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers"), Alg. 1: per layer, the input Hessian
// H = 2 X X^T of the layer-wise reconstruction loss over calibration inputs (im2col
// rows for Conv), dampened by percdamp * mean(diag H); the upper Cholesky factor U of
// H^-1 drives column-by-column quantization in blocks, each column's error spread over
// the remaining columns (lazy batch updates between blocks). Group-wise scales follow
// the layer's spec; act-order quantizes columns by decreasing diag(H) (with static
// groups computed from the original weights, so the stored layout is the spec's).
// Stage AfterWeights: replaces weightOverrides with the quantized-dequantized weights.
#include "quant/algorithms/linear_layer.h"

#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qs {
namespace {

// Lower Cholesky factor of a symmetric positive definite matrix in place; false if not PD.
bool cholesky(std::vector<double>& a, int64_t n)
{
    for (int64_t j = 0; j < n; ++j) {
        double d = a[std::size_t(j * n + j)];
        for (int64_t k = 0; k < j; ++k)
            d -= a[std::size_t(j * n + k)] * a[std::size_t(j * n + k)];
        if (!(d > 0))
            return false;
        d = std::sqrt(d);
        a[std::size_t(j * n + j)] = d;
        for (int64_t i = j + 1; i < n; ++i) {
            double v = a[std::size_t(i * n + j)];
            for (int64_t k = 0; k < j; ++k)
                v -= a[std::size_t(i * n + k)] * a[std::size_t(j * n + k)];
            a[std::size_t(i * n + j)] = v / d;
        }
        for (int64_t k = j + 1; k < n; ++k)
            a[std::size_t(j * n + k)] = 0;
    }
    return true;
}

// Upper U with H^-1 = U^T U, from H (PD): L = chol(H), H^-1 = L^-T L^-1, U = chol(H^-1)^T.
bool inverseCholeskyUpper(const std::vector<double>& h, int64_t n, std::vector<double>& u)
{
    std::vector<double> l = h;
    if (!cholesky(l, n))
        return false;
    // Linv: inverse of the lower triangular L, column by column (forward substitution).
    std::vector<double> linv(std::size_t(n * n), 0.0);
    for (int64_t c = 0; c < n; ++c) {
        linv[std::size_t(c * n + c)] = 1.0 / l[std::size_t(c * n + c)];
        for (int64_t i = c + 1; i < n; ++i) {
            double v = 0;
            for (int64_t k = c; k < i; ++k)
                v -= l[std::size_t(i * n + k)] * linv[std::size_t(k * n + c)];
            linv[std::size_t(i * n + c)] = v / l[std::size_t(i * n + i)];
        }
    }
    // Hinv = Linv^T Linv.
    std::vector<double> hinv(std::size_t(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j) {
            double v = 0;
            for (int64_t k = i; k < n; ++k) // Linv[k][i] nonzero for k >= i
                v += linv[std::size_t(k * n + i)] * linv[std::size_t(k * n + j)];
            hinv[std::size_t(i * n + j)] = hinv[std::size_t(j * n + i)] = v;
        }
    if (!cholesky(hinv, n))
        return false;
    u.assign(std::size_t(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j)
            u[std::size_t(j * n + i)] = hinv[std::size_t(i * n + j)];
    return true;
}

struct GptqOptions {
    double percdamp = 0.01;
    int64_t blockSize = 128;
    bool actOrder = false;
};

// Quantizes W [rows][k] against Hessian h (k x k); returns the quantized-dequantized matrix.
// `params` receives the grid chosen per block (planWeightQuantization's block order).
std::vector<float> gptqLayer(const algo::LinearLayer& L, std::vector<float> w, std::vector<double> h,
    const GptqOptions& o, double& dampUsed, std::vector<QParams>& params)
{
    const int64_t rows = L.rows, k = L.cols;
    const QuantSpec& spec = L.info.spec.weight;
    // Dead inputs (never nonzero): their weights cannot matter; GPTQ zeroes them.
    for (int64_t i = 0; i < k; ++i)
        if (h[std::size_t(i * k + i)] == 0) {
            h[std::size_t(i * k + i)] = 1;
            for (int64_t r = 0; r < rows; ++r)
                w[std::size_t(r * k + i)] = 0;
        }
    std::vector<int64_t> perm(static_cast<std::size_t>(k));
    std::iota(perm.begin(), perm.end(), 0);
    if (o.actOrder)
        std::stable_sort(perm.begin(), perm.end(),
            [&](int64_t a, int64_t b) { return h[std::size_t(a * k + a)] > h[std::size_t(b * k + b)]; });
    // Static block params from the original weights for per-tensor, per-channel and
    // (act-order) groups; natural-order groups are found when their first column comes up.
    const bool lazyGroups = spec.granularity == Granularity::Group && !o.actOrder;
    params = algo::blockParams(L, w, spec);

    std::vector<double> hp(static_cast<std::size_t>(k * k));
    for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j)
            hp[std::size_t(i * k + j)] = h[std::size_t(perm[std::size_t(i)] * k + perm[std::size_t(j)])];
    double meanDiag = 0;
    for (int64_t i = 0; i < k; ++i)
        meanDiag += hp[std::size_t(i * k + i)];
    meanDiag /= double(k);
    std::vector<double> u;
    double damp = o.percdamp * meanDiag;
    for (int attempt = 0;; ++attempt) {
        std::vector<double> hd = hp;
        for (int64_t i = 0; i < k; ++i)
            hd[std::size_t(i * k + i)] += damp;
        if (inverseCholeskyUpper(hd, k, u))
            break;
        if (attempt >= 6)
            fail("layer ", quoted(L.info.name), ": GPTQ Hessian is not positive definite even with damping ", damp);
        damp = std::max(damp, 1e-12) * 10;
    }
    dampUsed = damp;

    // Work in permuted column order: wp[r][j] = w[r][perm[j]].
    std::vector<double> wp(static_cast<std::size_t>(rows * k));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < k; ++j)
            wp[std::size_t(r * k + j)] = w[std::size_t(r * k + perm[std::size_t(j)])];
    std::vector<float> q(static_cast<std::size_t>(rows * k));
    const int64_t groupCols = spec.granularity == Granularity::Group
        ? std::max<int64_t>(1, std::min<int64_t>(spec.groupSize, L.inputChannels())) * L.spatial()
        : k;
    // Blocks never split a natural-order group, so a group's params see all earlier updates.
    int64_t bs = std::max<int64_t>(1, o.blockSize);
    if (lazyGroups)
        bs = std::max<int64_t>(1, (bs + groupCols - 1) / groupCols) * groupCols;
    std::vector<double> err(static_cast<std::size_t>(rows * bs));
    for (int64_t i1 = 0; i1 < k; i1 += bs) {
        const int64_t i2 = std::min(k, i1 + bs), count = i2 - i1;
        for (int64_t i = i1; i < i2; ++i) {
            const int64_t col = perm[std::size_t(i)];
            if (lazyGroups && col % groupCols == 0)
                for (int64_t r = 0; r < rows; ++r) {
                    const auto b = std::size_t(L.blockOf(r, col));
                    float lo = INFINITY, hi = -INFINITY;
                    for (int64_t c = col; c < std::min(k, col + groupCols); ++c) {
                        lo = std::min(lo, float(wp[std::size_t(r * k + c)]));
                        hi = std::max(hi, float(wp[std::size_t(r * k + c)]));
                    }
                    if (spec.range)
                        lo = spec.range->first, hi = spec.range->second;
                    params[b] = qparamsFor(lo, hi, spec.bits, spec.symmetric);
                }
            const double d = u[std::size_t(i * k + i)];
            for (int64_t r = 0; r < rows; ++r) {
                const double x = wp[std::size_t(r * k + i)];
                const float qv = fakeQuant(float(x), params[std::size_t(L.blockOf(r, col))]);
                q[std::size_t(r * k + col)] = qv;
                const double e = (x - qv) / d;
                err[std::size_t(r * bs + (i - i1))] = e;
                for (int64_t j = i + 1; j < i2; ++j)
                    wp[std::size_t(r * k + j)] -= e * u[std::size_t(i * k + j)];
            }
        }
        // Lazy batch update of the columns after the block: W[:, i2:] -= E U[i1:i2, i2:].
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t t = 0; t < count; ++t) {
                const double e = err[std::size_t(r * bs + t)];
                if (e == 0)
                    continue;
                const double* ur = u.data() + (i1 + t) * k;
                double* wr = wp.data() + r * k;
                for (int64_t j = i2; j < k; ++j)
                    wr[j] -= e * ur[j];
            }
    }
    return q;
}

void gptq(
    QuantSession& s, const Dataset& calib, const nlohmann::json& params, Progress& progress, const CancelToken& cancel)
{
    GptqOptions o;
    o.percdamp = params.value("percdamp", 0.01);
    o.blockSize = params.value("blocksize", int64_t(128));
    o.actOrder = params.value("act_order", false);
    const int64_t samples = params.value("samples", int64_t(128));
    if (!(o.percdamp >= 0) || o.blockSize < 1 || samples < 1)
        fail("gptq: percdamp must be >= 0, blocksize and samples >= 1");
    std::vector<algo::LinearLayer> layers = algo::linearLayers(s);
    Progress observe = progress.sub(0.0, 0.5);
    std::vector<algo::LayerGram> grams = algo::layerGrams(s, calib, layers, samples, observe, cancel);
    nlohmann::json report = nlohmann::json::array();
    for (std::size_t i = 0; i < layers.size(); ++i) {
        cancel.check();
        const algo::LinearLayer& L = layers[i];
        // H = 2 X X^T / n (the scale does not change the solution; damping is relative).
        std::vector<double>& h = grams[i].h;
        for (double& v : h)
            v *= 2.0 / double(std::max<int64_t>(grams[i].rows, 1));
        const Tensor* wt = s.graph().constant(L.info.weight);
        std::vector<float> w = algo::toMatrix(L, wt->toFloat());
        double damp = 0;
        std::vector<QParams> grid;
        std::vector<float> q = gptqLayer(L, w, h, o, damp, grid);
        const std::vector<float> rtn = algo::roundToNearest(L, w, algo::blockParams(L, w, L.info.spec.weight));
        const double errGptq = algo::outputError(w, q, L.rows, L.cols, h);
        const double errRtn = algo::outputError(w, rtn, L.rows, L.cols, h);
        Tensor t = Tensor::fromVector(wt->shape, algo::fromMatrix(L, q));
        t.name = L.info.weight;
        s.weightOverrides[L.info.weight] = std::move(t);
        std::vector<float>& scales = s.weightScales[L.info.weight]; // natural-order groups chose their own
        scales.clear();
        for (const QParams& p : grid)
            scales.push_back(p.scale);
        report.push_back({{"layer", L.info.name}, {"columns", L.cols}, {"rows_seen", grams[i].rows}, {"damp", damp},
            {"proxy_error_rtn", errRtn}, {"proxy_error_gptq", errGptq}});
        progress.report(0.5 + 0.5 * double(i + 1) / double(layers.size()), str("GPTQ: ", L.info.name));
    }
    s.notes["gptq"] = {
        {"params",
            {{"percdamp", o.percdamp}, {"blocksize", o.blockSize}, {"act_order", o.actOrder}, {"samples", samples}}},
        {"layers", report}};
}

const bool gptqRegistered = registerAlgorithm(
    {"gptq", "GPTQ: Hessian-aware column-wise quantization (Frantar 2022)", AlgorithmInfo::Stage::AfterWeights, gptq});

} // namespace
} // namespace qs
