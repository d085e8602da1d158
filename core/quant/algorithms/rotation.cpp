// Orthogonal rotation of the channels between two linear layers (QuaRot, Ashkboos
// et al. 2024; QuIP's incoherence processing): for A -> B with nothing in between
// (Gemm/MatMul/Conv producing the input of a Gemm/MatMul/Conv), W_A <- Q^T W_A,
// b_A <- Q^T b_A, W_B <- W_B Q, so B sees Q^T h and computes the same function.
// Q is a normalized Walsh-Hadamard matrix (power-of-2 channels; times random signs
// unless "signs": false) or a random orthogonal matrix (Gram-Schmidt of a Gaussian),
// either way outliers of h and of W_B's input channels are spread over all channels.
// Reports kurtosis and max/std of the weights and of h before and after in the notes.
// Stage BeforeCalibration.
#include "quant/algorithms/linear_layer.h"

#include "analysis/activations.h"
#include "analysis/stats.h"
#include "util/error.h"

#include <cmath>
#include <random>

namespace qs {
namespace {

// Q[i][j], row-major n x n.
std::vector<double> hadamard(int64_t n)
{
    std::vector<double> h(std::size_t(n * n), 1.0);
    for (int64_t size = 1; size < n; size *= 2)
        for (int64_t i = 0; i < size; ++i)
            for (int64_t j = 0; j < size; ++j) {
                const double v = h[std::size_t(i * n + j)];
                h[std::size_t(i * n + j + size)] = v;
                h[std::size_t((i + size) * n + j)] = v;
                h[std::size_t((i + size) * n + j + size)] = -v;
            }
    const double norm = 1.0 / std::sqrt(double(n));
    for (double& v : h)
        v *= norm;
    return h;
}

std::vector<double> randomOrthogonal(int64_t n, std::mt19937_64& rng)
{
    std::normal_distribution<double> nd;
    std::vector<double> q(static_cast<std::size_t>(n * n));
    for (double& v : q)
        v = nd(rng);
    // Modified Gram-Schmidt on the rows (twice, for orthogonality to ~1e-15).
    for (int pass = 0; pass < 2; ++pass)
        for (int64_t i = 0; i < n; ++i) {
            double* qi = q.data() + i * n;
            for (int64_t j = 0; j < i; ++j) {
                const double* qj = q.data() + j * n;
                double dot = 0;
                for (int64_t c = 0; c < n; ++c)
                    dot += qi[c] * qj[c];
                for (int64_t c = 0; c < n; ++c)
                    qi[c] -= dot * qj[c];
            }
            double norm = 0;
            for (int64_t c = 0; c < n; ++c)
                norm += qi[c] * qi[c];
            norm = std::sqrt(norm);
            for (int64_t c = 0; c < n; ++c)
                qi[c] /= norm;
        }
    return q;
}

nlohmann::json statsJson(const TensorStats& t)
{
    const double peak = std::max(std::abs(t.min), std::abs(t.max));
    return {{"kurtosis", t.kurtosis}, {"max_over_std", t.std > 0 ? peak / t.std : 0.0}};
}

struct Pair {
    algo::LinearLayer a, b;
};

std::vector<Pair> findPairs(const QuantSession& s)
{
    const Graph& g = s.graph();
    std::vector<algo::LinearLayer> views;
    for (const auto& l : s.layers())
        if (auto v = algo::linearLayer(s, l))
            views.push_back(*v);
    std::vector<Pair> pairs;
    for (const auto& a : views) {
        const Node& na = g.nodes[std::size_t(g.findNode(a.info.name))];
        const std::string h = na.outputs.front();
        bool isOutput = false;
        for (const auto& o : g.outputs)
            isOutput |= o.name == h;
        const auto& users = g.consumersOf(h);
        if (isOutput || users.size() != 1)
            continue;
        for (const auto& b : views)
            if (g.findNode(b.info.name) == users[0] && b.info.input == h && b.inputChannels() == a.rows &&
                (a.kind == algo::LinearLayer::Kind::Conv) == (b.kind == algo::LinearLayer::Kind::Conv))
                pairs.push_back({a, b});
    }
    return pairs;
}

void rotate(
    QuantSession& s, const Dataset& calib, const nlohmann::json& params, Progress& progress, const CancelToken& cancel)
{
    const std::string kind = params.value("kind", std::string("hadamard"));
    const bool signs = params.value("signs", true);
    const uint64_t seed = params.value("seed", uint64_t(1));
    const int64_t samples = params.value("samples", int64_t(64));
    if (kind != "hadamard" && kind != "random")
        fail("rotation: kind must be \"hadamard\" or \"random\", got ", quoted(kind));
    std::vector<Pair> pairs = findPairs(s);
    std::vector<std::string> hidden;
    for (const auto& p : pairs)
        hidden.push_back(p.b.info.input);
    ProfileOptions po;
    po.batch = s.options().batch;
    po.limit = samples;
    po.threads = s.options().threads;
    Progress before = progress.sub(0.0, 0.4), after = progress.sub(0.6, 1.0);
    auto actBefore = hidden.empty() ? std::map<std::string, ActivationObserver> {}
                                    : observeActivations(s.graph(), calib, hidden, po, before, cancel);
    std::mt19937_64 rng(seed);
    nlohmann::json report = nlohmann::json::array();
    Graph& g = s.graph();
    for (const auto& p : pairs) {
        cancel.check();
        const int64_t n = p.a.rows;
        const bool pow2 = (n & (n - 1)) == 0;
        std::vector<double> q;
        std::string used = kind;
        if (kind == "hadamard" && pow2) {
            q = hadamard(n);
            if (signs) // Q = diag(+-1) H: still orthogonal
                for (int64_t i = 0; i < n; ++i)
                    if (rng() & 1)
                        for (int64_t j = 0; j < n; ++j)
                            q[std::size_t(i * n + j)] = -q[std::size_t(i * n + j)];
        } else {
            q = randomOrthogonal(n, rng);
            used = kind == "hadamard" ? "random (channels not a power of 2)" : "random";
        }
        Node& na = g.nodes[std::size_t(g.findNode(p.a.info.name))];
        Node& nb = g.nodes[std::size_t(g.findNode(p.b.info.name))];
        Tensor& wa = algo::ownInitializer(g, na, 1, na.name + ".weight_rot");
        Tensor& wb = algo::ownInitializer(g, nb, 1, nb.name + ".weight_rot");
        std::vector<float> ma = algo::toMatrix(p.a, wa.data<float>()), mb = algo::toMatrix(p.b, wb.data<float>());
        const TensorStats waBefore = computeStats(ma), wbBefore = computeStats(mb);
        // A: rows mixed, W_A' = Q^T W_A.
        std::vector<float> ra(ma.size(), 0.f);
        for (int64_t i = 0; i < n; ++i)
            for (int64_t j = 0; j < n; ++j) {
                const double f = q[std::size_t(j * n + i)];
                for (int64_t c = 0; c < p.a.cols; ++c)
                    ra[std::size_t(i * p.a.cols + c)] += float(f * ma[std::size_t(j * p.a.cols + c)]);
            }
        if (!na.input(2).empty()) {
            Tensor& ba = algo::ownInitializer(g, na, 2, na.name + ".bias_rot");
            if (ba.numel() != n)
                fail("rotation: node ", quoted(na.name), ": bias has ", ba.numel(), " values, expected ", n);
            std::vector<float> bv = ba.toFloat();
            for (int64_t i = 0; i < n; ++i) {
                double acc = 0;
                for (int64_t j = 0; j < n; ++j)
                    acc += q[std::size_t(j * n + i)] * bv[std::size_t(j)];
                ba.data<float>()[std::size_t(i)] = float(acc);
            }
        }
        // B: input channels mixed, W_B'[:, c, p] = sum_c' W_B[:, c', p] Q[c'][c].
        const int64_t sp = p.b.spatial();
        std::vector<float> rb(mb.size(), 0.f);
        for (int64_t r = 0; r < p.b.rows; ++r)
            for (int64_t c = 0; c < n; ++c)
                for (int64_t k = 0; k < sp; ++k) {
                    double acc = 0;
                    for (int64_t c2 = 0; c2 < n; ++c2)
                        acc += double(mb[std::size_t(r * p.b.cols + c2 * sp + k)]) * q[std::size_t(c2 * n + c)];
                    rb[std::size_t(r * p.b.cols + c * sp + k)] = float(acc);
                }
        std::vector<float> ta = algo::fromMatrix(p.a, ra), tb = algo::fromMatrix(p.b, rb);
        std::copy(ta.begin(), ta.end(), wa.data<float>().begin());
        std::copy(tb.begin(), tb.end(), wb.data<float>().begin());
        report.push_back({{"producer", p.a.info.name}, {"layer", p.b.info.name}, {"channels", n}, {"rotation", used},
            {"weight_producer", {{"before", statsJson(waBefore)}, {"after", statsJson(computeStats(ra))}}},
            {"weight_layer", {{"before", statsJson(wbBefore)}, {"after", statsJson(computeStats(rb))}}}});
    }
    g.index();
    s.refreshLayers();
    auto actAfter = hidden.empty() ? std::map<std::string, ActivationObserver> {}
                                   : observeActivations(s.graph(), calib, hidden, po, after, cancel);
    for (std::size_t i = 0; i < pairs.size(); ++i)
        report[i]["activation"] = {{"before", statsJson(actBefore.at(hidden[i]).stats())},
            {"after", statsJson(actAfter.at(hidden[i]).stats())}};
    s.notes["rotation"] = {
        {"params", {{"kind", kind}, {"signs", signs}, {"seed", seed}, {"samples", samples}}}, {"pairs", report}};
}

const bool registered =
    registerAlgorithm({"rotation", "Hadamard / random orthogonal rotation between linear layers (QuaRot)",
        AlgorithmInfo::Stage::BeforeCalibration, rotate});

} // namespace
} // namespace qs
