// GPTQ, Frantar et al. 2022 ("GPTQ: Accurate Post-Training Quantization for
// Generative Pre-trained Transformers"), Alg. 1: per layer, the input Hessian
// H = 2 X X^T of the layer-wise reconstruction loss over calibration inputs (im2col
// rows for Conv), dampened by percdamp * mean(diag H); the upper Cholesky factor U of
// H^-1 drives column-by-column quantization in blocks, each column's error spread over
// the remaining columns (lazy batch updates between blocks: one blocked matrix product
// per block of 128 columns; inside a block each row runs its own recurrence, rows on the
// threads; U from util/linalg's blocked Cholesky and triangular inverse). Group-wise scales follow
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
#include "util/linalg.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qs {
namespace {

struct GptqOptions {
    double percdamp = 0.01;
    int64_t blockSize = 128;
    bool actOrder = false;
};

// Quantizes W [rows][k] against Hessian h (k x k); returns the quantized-dequantized matrix.
// `params` receives the grid chosen per block (planWeightQuantization's block order);
// `proxyError` the layer's output error sum_x ||(W - Q) x||^2 = tr(D h D^T), D = W - Q,
// from the column errors: D = E U (E the errors divided by U's diagonal, as the
// recurrence spreads them), so with U^T U = (h + damp I + dead diagonal)^-1,
// D (h + damp I + dead) D^T = E E^T, and tr(D h D^T) = ||E||^2 - damp ||D||^2 - the dead
// columns' ||D||^2 (h has no rows for them); no K x K product needed.
std::vector<float> gptqLayer(const algo::LinearLayer& L, std::vector<float> w, const std::vector<double>& h,
    const GptqOptions& o, double& dampUsed, std::vector<QParams>& params, double& proxyError)
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

    double meanDiag = 0;
    for (int64_t i = 0; i < k; ++i)
        meanDiag += hAt(i, i);
    meanDiag /= double(k);
    // U, the upper Cholesky factor of (H + damp I)^-1 in permuted order (util/linalg:
    // blocked and threaded; one K x K buffer besides H, 512 MB at K = 8192).
    std::vector<double> u(static_cast<std::size_t>(k * k));
    double damp = o.percdamp * meanDiag;
    for (int attempt = 0;; ++attempt) {
        for (int64_t i = 0; i < k; ++i)
            for (int64_t j = 0; j < k; ++j)
                u[std::size_t(i * k + j)] = hAt(perm[std::size_t(i)], perm[std::size_t(j)]);
        for (int64_t i = 0; i < k; ++i)
            u[std::size_t(i * k + i)] += damp;
        if (linalg::inverseCholeskyUpper(u, k))
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
    std::vector<double> errSq(static_cast<std::size_t>(rows), 0.0); // per row: sum of E^2
    for (int64_t i1 = 0; i1 < k; i1 += bs) {
        const int64_t i2 = std::min(k, i1 + bs), count = i2 - i1;
        // Rows are independent: each row's columns of the block in order, its error spread
        // over the block's later columns (a row's block and U's block stay in cache), the
        // rows on the threads. Natural-order groups take their params from the row's
        // updated weights when their first column comes up.
#pragma omp parallel for schedule(static) if (rows * count * count > (int64_t(1) << 20))
        for (int64_t r = 0; r < rows; ++r) {
            double* wr = wp.data() + r * k;
            double* er = err.data() + r * bs;
            for (int64_t i = i1; i < i2; ++i) {
                const int64_t col = perm[std::size_t(i)];
                if (lazyGroups && col % groupCols == 0) {
                    float lo = INFINITY, hi = -INFINITY;
                    for (int64_t c = col; c < std::min(k, col + groupCols); ++c) {
                        lo = std::min(lo, float(wr[c]));
                        hi = std::max(hi, float(wr[c]));
                    }
                    if (spec.range)
                        lo = spec.range->first, hi = spec.range->second;
                    params[std::size_t(L.blockOf(r, col))] = qparamsFor(lo, hi, spec.bits, spec.symmetric);
                }
                const double x = wr[i];
                const float qv = fakeQuant(float(x), params[std::size_t(L.blockOf(r, col))]);
                q[std::size_t(r * k + col)] = qv;
                const double e = (x - qv) / u[std::size_t(i * k + i)];
                er[i - i1] = e;
                errSq[std::size_t(r)] += e * e;
                const double* ui = u.data() + i * k;
                for (int64_t j = i + 1; j < i2; ++j)
                    wr[j] -= e * ui[j];
            }
        }
        // Lazy batch update of the columns after the block: W[:, i2:] -= E U[i1:i2, i2:],
        // one blocked product per block of columns (the paper's lazy batches).
        linalg::gemm(rows, k - i2, count, -1.0, err.data(), bs, u.data() + i1 * k + i2, k, false, wp.data() + i2, k);
    }
    double e2 = 0, d2 = 0, dead2 = 0;
    for (int64_t r = 0; r < rows; ++r) {
        e2 += errSq[std::size_t(r)];
        for (int64_t c = 0; c < k; ++c) {
            const double d = double(w[std::size_t(r * k + c)]) - q[std::size_t(r * k + c)];
            (dead[std::size_t(c)] ? dead2 : d2) += d * d;
        }
    }
    proxyError = std::max(0.0, e2 - damp * (d2 + dead2) - dead2);
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
                double errGptq = 0;
                std::vector<float> q = gptqLayer(L, w, h, o, damp, grid, errGptq);
                const std::vector<float> rtn =
                    algo::roundToNearest(L, w, algo::blockParams(L, w, L.info.spec.weight));
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
