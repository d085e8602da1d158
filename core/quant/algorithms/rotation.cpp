// Orthogonal rotation of the channels between two linear layers (QuaRot, Ashkboos
// et al. 2024; QuIP's incoherence processing): for A -> B with nothing in between
// (Gemm/MatMul/Conv producing the input of a Gemm/MatMul/Conv), W_A <- Q^T W_A,
// b_A <- Q^T b_A, W_B <- W_B Q, so B sees Q^T h and computes the same function.
// Q is a normalized Walsh-Hadamard matrix (power-of-2 channels; times random signs
// unless "signs": false) or a random orthogonal matrix (Gram-Schmidt of a Gaussian),
// either way outliers of h and of W_B's input channels are spread over all channels.
// Reports kurtosis and max/std of the weights and of h before and after in the notes.
// "online": true also rotates the input of every other Gemm/MatMul layer, which has no
// linear producer to absorb Q^T (a transformer's projections after LayerNorm, GELU or
// attention): one float MatMul x Q inserted per input value (shared by the layers
// reading it), W_B <- W_B Q for each such layer (QuaRot's online Hadamard, sec. 4; here
// a dense d x d MatMul rather than a fast transform). Stage BeforeCalibration.
#include "quant/algorithms/linear_layer.h"

#include "measure/activations.h"
#include "measure/stats.h"
#include "util/error.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

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

struct LinearPair {
    algo::LinearLayer a, b;
};

std::vector<algo::LinearLayer> allViews(const QuantSession& s)
{
    std::vector<algo::LinearLayer> views;
    for (const auto& l : s.layers())
        if (auto v = algo::linearLayer(s, l))
            views.push_back(*v);
    return views;
}

std::vector<LinearPair> findPairs(const QuantSession& s)
{
    const Graph& g = s.graph();
    const std::vector<algo::LinearLayer> views = allViews(s);
    std::vector<LinearPair> pairs;
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

// An orthogonal n x n matrix of the requested kind; `used` says which it became.
std::vector<double> makeRotation(
    int64_t n, const std::string& kind, bool signs, std::mt19937_64& rng, std::string& used)
{
    used = kind;
    if (kind == "hadamard" && (n & (n - 1)) == 0) {
        std::vector<double> q = hadamard(n);
        if (signs) // Q = diag(+-1) H: still orthogonal
            for (int64_t i = 0; i < n; ++i)
                if (rng() & 1)
                    for (int64_t j = 0; j < n; ++j)
                        q[std::size_t(i * n + j)] = -q[std::size_t(i * n + j)];
        return q;
    }
    used = kind == "hadamard" ? "random (channels not a power of 2)" : "random";
    return randomOrthogonal(n, rng);
}

// Input channels of the matrix view mixed: W'[:, c, p] = sum_c' W[:, c', p] Q[c'][c]
// (the layer then reads h Q, i.e. Q^T h as a column).
std::vector<float> rotateInputChannels(const algo::LinearLayer& L, const std::vector<float>& m,
    const std::vector<double>& q, int64_t n)
{
    const int64_t sp = L.spatial();
    std::vector<float> r(m.size(), 0.f);
    for (int64_t row = 0; row < L.rows; ++row)
        for (int64_t c = 0; c < n; ++c)
            for (int64_t k = 0; k < sp; ++k) {
                double acc = 0;
                for (int64_t c2 = 0; c2 < n; ++c2)
                    acc += double(m[std::size_t(row * L.cols + c2 * sp + k)]) * q[std::size_t(c2 * n + c)];
                r[std::size_t(row * L.cols + c * sp + k)] = float(acc);
            }
    return r;
}

// The layers rotated online, by the input value they share (graph order of values).
std::vector<std::pair<std::string, std::vector<algo::LinearLayer>>> onlineTargets(
    const QuantSession& s, const std::vector<LinearPair>& pairs)
{
    std::set<std::string> inPair;
    for (const auto& p : pairs)
        inPair.insert(p.b.info.name);
    std::vector<std::pair<std::string, std::vector<algo::LinearLayer>>> out;
    for (const auto& v : allViews(s)) {
        if (v.kind == algo::LinearLayer::Kind::Conv || inPair.count(v.info.name))
            continue;
        auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == v.info.input; });
        if (it == out.end())
            out.push_back({v.info.input, {v}});
        else
            it->second.push_back(v);
    }
    return out;
}

// Inserts rot = MatMul(value, Q) before the first of `layers` and makes them read it.
std::string insertOnlineRotation(Graph& g, const std::string& value, const std::vector<algo::LinearLayer>& layers,
    const std::vector<double>& q, int64_t n)
{
    g.index();
    int first = int(g.nodes.size());
    for (const auto& L : layers)
        first = std::min(first, g.findNode(L.info.name));
    Node mm;
    mm.name = value + ".rot_online"; // the suffix keeps it float (QuantSession::refreshLayers)
    mm.opType = "MatMul";
    const std::string qname = mm.name + ".q", out = value + ".rotated";
    std::vector<float> qf(q.begin(), q.end());
    Tensor t = Tensor::fromVector(Shape {n, n}, qf);
    t.name = qname;
    g.initializers[qname] = std::move(t);
    mm.inputs = {value, qname};
    mm.outputs = {out};
    if (const ValueInfo* vi = g.info(value)) {
        ValueInfo copy = *vi;
        copy.name = out;
        g.valueInfo[out] = copy;
    }
    for (const auto& L : layers)
        g.nodes[std::size_t(g.findNode(L.info.name))].inputs[0] = out;
    g.nodes.insert(g.nodes.begin() + first, std::move(mm));
    g.index();
    return out;
}

void rotate(
    QuantSession& s, const Dataset& calib, const nlohmann::json& params, Progress& progress, const CancelToken& cancel)
{
    const std::string kind = params.value("kind", std::string("hadamard"));
    const bool signs = params.value("signs", true);
    const uint64_t seed = params.value("seed", uint64_t(1));
    const int64_t samples = params.value("samples", int64_t(64));
    const bool online = params.value("online", false);
    if (kind != "hadamard" && kind != "random")
        fail("rotation: kind must be \"hadamard\" or \"random\", got ", quoted(kind));
    std::vector<LinearPair> pairs = findPairs(s);
    const auto targets = online ? onlineTargets(s, pairs) : decltype(onlineTargets(s, pairs)) {};
    std::vector<std::string> hidden;
    for (const auto& p : pairs)
        hidden.push_back(p.b.info.input);
    for (const auto& t : targets)
        hidden.push_back(t.first);
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
        std::string used;
        const std::vector<double> q = makeRotation(n, kind, signs, rng, used);
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
        const std::vector<float> rb = rotateInputChannels(p.b, mb, q, n);
        std::vector<float> ta = algo::fromMatrix(p.a, ra), tb = algo::fromMatrix(p.b, rb);
        std::copy(ta.begin(), ta.end(), wa.data<float>().begin());
        std::copy(tb.begin(), tb.end(), wb.data<float>().begin());
        report.push_back({{"producer", p.a.info.name}, {"layer", p.b.info.name}, {"channels", n}, {"rotation", used},
            {"weight_producer", {{"before", statsJson(waBefore)}, {"after", statsJson(computeStats(ra))}}},
            {"weight_layer", {{"before", statsJson(wbBefore)}, {"after", statsJson(computeStats(rb))}}}});
    }
    std::vector<std::string> rotatedValues = hidden; // what each hidden value is after rotation
    nlohmann::json onlineReport = nlohmann::json::array();
    for (std::size_t t = 0; t < targets.size(); ++t) {
        cancel.check();
        const auto& [value, layers] = targets[t];
        const int64_t n = layers.front().cols;
        std::string used;
        const std::vector<double> q = makeRotation(n, kind, signs, rng, used);
        nlohmann::json names = nlohmann::json::array(), weights = nlohmann::json::object();
        for (const auto& L : layers) {
            Node& nb = g.nodes[std::size_t(g.findNode(L.info.name))];
            Tensor& wb = algo::ownInitializer(g, nb, 1, nb.name + ".weight_rot");
            const std::vector<float> mb = algo::toMatrix(L, wb.data<float>());
            const std::vector<float> rb = rotateInputChannels(L, mb, q, n);
            const std::vector<float> tb = algo::fromMatrix(L, rb);
            std::copy(tb.begin(), tb.end(), wb.data<float>().begin());
            names.push_back(L.info.name);
            weights[L.info.name] = {{"before", statsJson(computeStats(mb))}, {"after", statsJson(computeStats(rb))}};
        }
        rotatedValues[pairs.size() + t] = insertOnlineRotation(g, value, layers, q, n);
        onlineReport.push_back(
            {{"input", value}, {"layers", names}, {"channels", n}, {"rotation", used}, {"weights", weights}});
    }
    g.index();
    s.refreshLayers();
    auto actAfter = hidden.empty() ? std::map<std::string, ActivationObserver> {}
                                   : observeActivations(s.graph(), calib, rotatedValues, po, after, cancel);
    for (std::size_t i = 0; i < hidden.size(); ++i) {
        nlohmann::json& entry = i < pairs.size() ? report[i] : onlineReport[i - pairs.size()];
        entry["activation"] = {{"before", statsJson(actBefore.at(hidden[i]).stats())},
            {"after", statsJson(actAfter.at(rotatedValues[i]).stats())}};
    }
    s.notes["rotation"] = {
        {"params", {{"kind", kind}, {"signs", signs}, {"seed", seed}, {"samples", samples}, {"online", online}}},
        {"pairs", report}, {"online", onlineReport}};
}

const bool rotationRegistered =
    registerAlgorithm({"rotation", "Hadamard / random orthogonal rotation between linear layers (QuaRot)",
        AlgorithmInfo::Stage::BeforeCalibration, rotate});

} // namespace
} // namespace qs
