// GPTQ, Frantar et al. 2022 ("GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers"), Alg. 1: per layer, the input Hessian
// H = 2 X X^T of the layer-wise reconstruction loss over calibration inputs (im2col
// rows for Conv), dampened by percdamp * mean(diag H); the upper Cholesky factor U of
// H^-1 drives column-by-column quantization in blocks, each column's error spread over
// the remaining columns (lazy batch updates between blocks). Group-wise scales follow
// the layer's spec; act-order quantizes columns by decreasing diag(H) (with static
// groups computed from the original weights, so the stored layout is the spec's).
// Sequential, block by block (sec. 4 "Step 3", App. A; algo::forEachBlock): the Hessians
// of one block's layers are taken on inputs computed by the blocks before it with their
// quantized weights (the block's own layers see each other in FP32, as the paper's
// per-block hooks do), the block is quantized, and its quantized outputs feed the next;
// only one block's Hessians are held. The cuts are the residual stream's narrowest
// points (a decoder's attention and MLP halves are blocks of their own: the reference
// code's "true sequential" order); "sequential": false gives every layer the FP32
// model's inputs (the same Hessians as observing the whole model at once).
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

// Upper U with H^-1 = U^T U from H (PD), overwriting `a` (H in, scratch out): L =
// chol(H) in place, L^-1 into u, H^-1 = L^-T L^-1 into a, chol(H^-1) in place, U its
// transpose into u. Two K x K buffers instead of five (a 1.1B model's MLP has K = 8192).
bool inverseCholeskyUpper(std::vector<double>& a, int64_t n, std::vector<double>& u)
{
    if (!cholesky(a, n))
        return false;
    // Linv: inverse of the lower triangular L, row by row (forward substitution): row i
    // is (e_i - sum_{k<i} L[i][k] Linv[k]) / L[i][i]; every loop reads rows, in order.
    u.assign(std::size_t(n * n), 0.0);
    for (int64_t i = 0; i < n; ++i) {
        double* xi = u.data() + i * n;
        for (int64_t k = 0; k < i; ++k) {
            const double f = a[std::size_t(i * n + k)];
            const double* xk = u.data() + k * n;
            for (int64_t c = 0; c <= k; ++c)
                xi[c] -= f * xk[c];
        }
        const double d = a[std::size_t(i * n + i)];
        xi[i] = 1.0;
        for (int64_t c = 0; c <= i; ++c)
            xi[c] /= d;
    }
    // Hinv = Linv^T Linv = sum over rows k of Linv[k]^T Linv[k] (lower triangle, then
    // mirrored; L is no longer needed).
    std::fill(a.begin(), a.end(), 0.0);
    for (int64_t k = 0; k < n; ++k) {
        const double* xk = u.data() + k * n;
        for (int64_t i = 0; i <= k; ++i) {
            const double f = xk[i];
            if (f == 0)
                continue;
            double* hi = a.data() + i * n;
            for (int64_t j = 0; j <= i; ++j)
                hi[j] += f * xk[j];
        }
    }
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < i; ++j)
            a[std::size_t(j * n + i)] = a[std::size_t(i * n + j)];
    if (!cholesky(a, n))
        return false;
    std::fill(u.begin(), u.end(), 0.0);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j <= i; ++j)
            u[std::size_t(j * n + i)] = a[std::size_t(i * n + j)];
    return true;
}

struct GptqOptions {
    double percdamp = 0.01;
    int64_t blockSize = 128;
    bool actOrder = false;
};

// Quantizes W [rows][k] against Hessian h (k x k); returns the quantized-dequantized matrix.
// `params` receives the grid chosen per block (planWeightQuantization's block order).
std::vector<float> gptqLayer(const algo::LinearLayer& L, std::vector<float> w, const std::vector<double>& h,
    const GptqOptions& o, double& dampUsed, std::vector<QParams>& params)
{
    const int64_t rows = L.rows, k = L.cols;
    const QuantSpec& spec = L.info.spec.weight;
    // Dead inputs (never nonzero): their weights cannot matter; GPTQ zeroes them (and
    // gives them a unit diagonal below).
    std::vector<char> dead(static_cast<std::size_t>(k), 0);
    for (int64_t i = 0; i < k; ++i)
        if (h[std::size_t(i * k + i)] == 0) {
            dead[std::size_t(i)] = 1;
            for (int64_t r = 0; r < rows; ++r)
                w[std::size_t(r * k + i)] = 0;
        }
    auto hAt = [&](int64_t i, int64_t j) { return i == j && dead[std::size_t(i)] ? 1.0 : h[std::size_t(i * k + j)]; };
    std::vector<int64_t> perm(static_cast<std::size_t>(k));
    std::iota(perm.begin(), perm.end(), 0);
    if (o.actOrder)
        std::stable_sort(perm.begin(), perm.end(),
            [&](int64_t a, int64_t b) { return hAt(a, a) > hAt(b, b); });
    // Static block params from the original weights for per-tensor, per-channel and
    // (act-order) groups; natural-order groups are found when their first column comes up.
    const bool lazyGroups = spec.granularity == Granularity::Group && !o.actOrder;
    params = algo::blockParams(L, w, spec);

    std::vector<double> hp(static_cast<std::size_t>(k * k));
    for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j)
            hp[std::size_t(i * k + j)] = hAt(perm[std::size_t(i)], perm[std::size_t(j)]);
    double meanDiag = 0;
    for (int64_t i = 0; i < k; ++i)
        meanDiag += hp[std::size_t(i * k + i)];
    meanDiag /= double(k);
    std::vector<double> u, hd;
    double damp = o.percdamp * meanDiag;
    for (int attempt = 0;; ++attempt) {
        hd = hp;
        for (int64_t i = 0; i < k; ++i)
            hd[std::size_t(i * k + i)] += damp;
        if (inverseCholeskyUpper(hd, k, u))
            break;
        if (attempt >= 6)
            fail("layer ", quoted(L.info.name), ": GPTQ Hessian is not positive definite even with damping ", damp);
        damp = std::max(damp, 1e-12) * 10;
    }
    dampUsed = damp;
    hp = {}; // only U from here on
    hd = {};

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
    // Block by block (algo::forEachBlock): only one block's Hessians exist at a time, and
    // with "sequential" (the default, the paper's) a block's inputs come from the
    // quantized blocks before it; false gives every layer the FP32 model's inputs.
    const bool sequential = params.value("sequential", true);
    const std::vector<algo::LinearLayer> layers = algo::linearLayers(s);
    std::vector<algo::LayerGram> grams(layers.size());
    std::vector<nlohmann::json> reports(layers.size());
    std::vector<float> rows;
    std::size_t done = 0;
    Progress pass = progress.sub(0.0, 1.0);
    const std::size_t blocks = algo::forEachBlock(
        s, calib, layers, samples, sequential,
        [&](std::size_t i, const Tensor& x) {
            rows.clear();
            algo::appendInputRows(layers[i], x, rows);
            algo::addGram(rows, layers[i].cols, grams[i].h);
            grams[i].rows += int64_t(rows.size()) / layers[i].cols;
        },
        [&](const std::vector<std::size_t>& block) {
            for (std::size_t i : block) {
                cancel.check();
                const algo::LinearLayer& L = layers[i];
                // H = 2 X X^T / n (the scale does not change the solution; damping is relative).
                std::vector<double>& h = grams[i].h;
                h.resize(std::size_t(L.cols * L.cols), 0.0); // no rows seen: all inputs dead
                for (double& v : h)
                    v *= 2.0 / double(std::max<int64_t>(grams[i].rows, 1));
                const Tensor* wt = s.graph().constant(L.info.weight);
                std::vector<float> w = algo::toMatrix(L, wt->toFloat());
                double damp = 0;
                std::vector<QParams> grid;
                std::vector<float> q = gptqLayer(L, w, h, o, damp, grid);
                const std::vector<float> rtn =
                    algo::roundToNearest(L, w, algo::blockParams(L, w, L.info.spec.weight));
                const double errGptq = algo::outputError(w, q, L.rows, L.cols, h);
                const double errRtn = algo::outputError(w, rtn, L.rows, L.cols, h);
                Tensor t = Tensor::fromVector(wt->shape, algo::fromMatrix(L, q));
                t.name = L.info.weight;
                s.weightOverrides[L.info.weight] = std::move(t);
                std::vector<float>& scales = s.weightScales[L.info.weight]; // natural-order groups chose their own
                scales.clear();
                for (const QParams& p : grid)
                    scales.push_back(p.scale);
                reports[i] = {{"layer", L.info.name}, {"columns", L.cols}, {"rows_seen", grams[i].rows},
                    {"damp", damp}, {"proxy_error_rtn", errRtn}, {"proxy_error_gptq", errGptq}};
                grams[i] = {}; // this layer's Hessian is done with
                pass.report(double(++done) / double(std::max<std::size_t>(layers.size(), 1)),
                    str("GPTQ: ", L.info.name));
            }
        },
        pass, cancel);
    nlohmann::json report = nlohmann::json::array();
    for (auto& r : reports)
        report.push_back(std::move(r));
    s.notes["gptq"] = {
        {"params",
            {{"percdamp", o.percdamp}, {"blocksize", o.blockSize}, {"act_order", o.actOrder}, {"samples", samples},
                {"sequential", sequential}}},
        {"blocks", blocks},
        {"layers", report}};
}

const bool gptqRegistered = registerAlgorithm(
    {"gptq", "GPTQ: Hessian-aware column-wise quantization (Frantar 2022)", AlgorithmInfo::Stage::AfterWeights, gptq});

} // namespace
} // namespace qs
