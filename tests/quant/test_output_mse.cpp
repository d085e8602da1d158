// Weight range by layer output MSE (weight calibrator "output-mse"), against brute force
// in the test: each candidate clipping quantized naively here and the layer's output
// error measured by the naive reference interpreter (no Gram matrix, no im2col).
//  - The choice is the exact optimum over its own candidate set (symmetric), never worse
//    than the shared-factor optimum (affine), and close to the optimum of a fine grid.
//  - On a zero-DC edge filter over DC-heavy images (the demo CNN's stem), it keeps the
//    held-out output error far below weight-space MSE's.
//  - Through the session: the grids reach weightScales, the weights lie on them, and the
//    QDQ export accepts them.
#include "algo_fixtures.h"

#include "export/qdq.h"
#include "quant/algorithms/linear_layer.h"
#include "quant/session.h"

#include <QtTest>

using namespace qs;
using namespace qs::test;

namespace {

struct Factors {
    float lo = 1, hi = 1;
};

// Output channels of a [out, ...] weight (Conv, Gemm transB=1).
int64_t channelsOf(const Tensor& w) { return w.shape[0]; }

// The weight quantized per block (one block: per tensor) with each block's [min, max]
// scaled by its factors; round to nearest, as the spec's grid.
Tensor quantizeWith(const Tensor& w, const QuantSpec& spec, const std::vector<Factors>& f)
{
    const int64_t out = channelsOf(w), per = w.numel() / out;
    const bool perChannel = spec.granularity == Granularity::Channel;
    std::vector<float> v = w.toFloat(), q(v.size());
    const int64_t blocks = perChannel ? out : 1, span = perChannel ? per : w.numel();
    for (int64_t b = 0; b < blocks; ++b) {
        const auto first = v.begin() + b * span, last = first + span;
        const float lo = *std::min_element(first, last), hi = *std::max_element(first, last);
        const QParams p = qparamsFor(lo * f[std::size_t(b)].lo, hi * f[std::size_t(b)].hi, spec.bits, spec.symmetric);
        for (int64_t e = b * span; e < (b + 1) * span; ++e)
            q[std::size_t(e)] = fakeQuant(v[std::size_t(e)], p);
    }
    Tensor t = Tensor::fromVector(w.shape, q);
    t.name = w.name;
    return t;
}

// Per block: sum of squared output differences over the samples (the reference interpreter).
std::vector<double> blockErrors(const Graph& g, const std::string& weight, const Tensor& x, const Tensor& qw,
                                bool perChannel)
{
    const Tensor ref = referenceRun(g, x);
    const Tensor got = referenceRun(g, x, {{weight, qw}});
    const int64_t n = ref.shape[0], ch = ref.shape[1], inner = ref.numel() / (n * ch);
    std::vector<double> e(std::size_t(perChannel ? ch : 1), 0.0);
    auto a = ref.data<float>();
    auto b = got.data<float>();
    for (int64_t i = 0; i < ref.numel(); ++i) {
        const double d = double(a[std::size_t(i)]) - b[std::size_t(i)];
        e[perChannel ? std::size_t((i / inner) % ch) : 0] += d * d;
    }
    return e;
}

double total(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

// The grid output-mse chooses for the session's only layer, on `calib`.
std::vector<QParams> chosenGrid(QuantSession& s, const Dataset& calib)
{
    Progress p;
    s.chooseWeightGrids(calib, p, CancelToken());
    const std::string w = s.layers().front().weight;
    if (!s.weightGrids.count(w))
        throw std::runtime_error("no grid chosen for " + w);
    return s.weightGrids.at(w).params;
}

Tensor quantizeOnGrid(const Tensor& w, const std::vector<QParams>& grid)
{
    const int64_t per = grid.size() == 1 ? w.numel() : w.numel() / int64_t(grid.size());
    std::vector<float> v = w.toFloat();
    for (std::size_t e = 0; e < v.size(); ++e)
        v[e] = fakeQuant(v[e], grid[e / std::size_t(per)]);
    Tensor t = Tensor::fromVector(w.shape, v);
    t.name = w.name;
    return t;
}

QuantizeOptions outputMse(int bits, const std::string& granularity, bool symmetric)
{
    QuantizeOptions o = weightOnly(bits, granularity);
    o.config.defaults.weight.symmetric = symmetric;
    o.config.defaults.weight.calibrator = "output-mse";
    o.calibLimit = 1 << 20; // every calibration sample, as the brute force sees them
    return o;
}

// A 3x3 conv from one channel with zero-sum (edge) filters and a bias, and images that
// are mostly a constant background with bright blobs (as normalized Fashion-MNIST).
std::pair<Graph, std::pair<Dataset, Dataset>> edgeFilterCase()
{
    GraphBuilder b(Shape{1, 1, 16, 16});
    b.conv(1, 8, 3, 1, 0.5f);
    Tensor& w = b.g.initializers.at(b.g.nodes.back().input(1));
    auto v = w.data<float>();
    for (int64_t c = 0; c < 8; ++c) { // subtract the mean: every filter sums to zero
        double m = 0;
        for (int k = 0; k < 9; ++k)
            m += v[std::size_t(c * 9 + k)];
        for (int k = 0; k < 9; ++k)
            v[std::size_t(c * 9 + k)] -= float(m / 9);
    }
    auto images = [](int64_t n, uint64_t seed) {
        std::mt19937_64 rng(seed);
        std::uniform_int_distribution<int> pos(2, 13);
        std::uniform_real_distribution<float> level(1.f, 2.f);
        std::vector<float> px(std::size_t(n * 256), -0.8f);
        for (int64_t i = 0; i < n; ++i)
            for (int blob = 0; blob < 3; ++blob) {
                const int r = pos(rng), c = pos(rng);
                const float l = level(rng);
                for (int dr = -2; dr <= 2; ++dr)
                    for (int dc = -2; dc <= 2; ++dc)
                        px[std::size_t(i * 256 + (r + dr) * 16 + c + dc)] = l;
            }
        Dataset d;
        d.kind = "random";
        d.path = "test:blobs";
        d.inputs = {{"", d.path, Tensor::fromVector(Shape {n, 1, 16, 16}, px)}};
        return d;
    };
    return {b.finish(), {images(64, 5), images(64, 6)}};
}

} // namespace

class TestOutputMse : public QObject {
    Q_OBJECT

private slots:
    void optimumOverItsCandidates_data()
    {
        QTest::addColumn<QString>("layer");
        QTest::addColumn<int>("bits");
        QTest::addColumn<QString>("granularity");
        QTest::addColumn<bool>("symmetric");
        // How far above the finer grid's optimum the choice may be: at 3 bits the error
        // over the factor is jagged, and the local 0.002 refinement of the coarse best can
        // miss a distant minimum (measured: 1.28x on this case; 4 bits: <= 1.01x).
        QTest::addColumn<double>("slack");
        QTest::newRow("conv W4 channel symmetric") << "conv" << 4 << "channel" << true << 1.05;
        QTest::newRow("conv W4 channel affine") << "conv" << 4 << "channel" << false << 1.05;
        QTest::newRow("gemm W3 channel symmetric") << "gemm" << 3 << "channel" << true << 1.35;
        QTest::newRow("gemm W4 channel affine") << "gemm" << 4 << "channel" << false << 1.05;
        QTest::newRow("gemm W4 tensor symmetric") << "gemm" << 4 << "tensor" << true << 1.05;
    }

    void optimumOverItsCandidates()
    {
        QFETCH(QString, layer);
        QFETCH(int, bits);
        QFETCH(QString, granularity);
        QFETCH(bool, symmetric);
        QFETCH(double, slack);
        auto [g, calib, held] = singleLayer(layer.toStdString(), 21);
        QuantSession s(g, outputMse(bits, granularity.toStdString(), symmetric));
        const std::vector<QParams> grid = chosenGrid(s, calib);
        const SessionLayer& l = s.layers().front();
        const Tensor& w = *s.graph().constant(l.weight);
        const QuantSpec spec = s.weightSpec(l);
        const bool perChannel = spec.granularity == Granularity::Channel;
        const std::size_t blocks = perChannel ? std::size_t(channelsOf(w)) : 1;
        QCOMPARE(grid.size(), blocks);
        const Tensor& x = calib.first();
        const std::vector<double> chosen = blockErrors(g, l.weight, x, quantizeOnGrid(w, grid), perChannel);

        // Brute force: per block the least error of the shared factors 1 - 0.02 k (k <= 40,
        // the algorithm's first pass, which it refines), and of a finer grid: shared factors
        // by 0.004 (symmetric) or every (lo, hi) pair of factors by 0.04 (affine).
        std::vector<double> bestShared(blocks, INFINITY), bestGrid(blocks, INFINITY);
        const int steps = symmetric ? 201 : 21;
        const float step = symmetric ? 0.004f : 0.04f;
        for (int a = 0; a < steps; ++a)
            for (int b = symmetric ? a : 0; b < (symmetric ? a + 1 : steps); ++b) {
                const Factors f{1.f - step * float(a), 1.f - step * float(b)};
                const std::vector<double> e =
                    blockErrors(g, l.weight, x, quantizeWith(w, spec, std::vector<Factors>(blocks, f)), perChannel);
                for (std::size_t k = 0; k < blocks; ++k) {
                    bestGrid[k] = std::min(bestGrid[k], e[k]);
                    if (a == b && (!symmetric || a % 5 == 0)) // factors 1 - 0.02 k (affine: even k)
                        bestShared[k] = std::min(bestShared[k], e[k]);
                }
            }
        for (std::size_t k = 0; k < blocks; ++k)
            QVERIFY2(chosen[k] <= bestShared[k] * (1 + 1e-4) + 1e-9,
                     qPrintable(QString("block %1: chosen %2 > best shared factor %3").arg(k).arg(chosen[k]).arg(bestShared[k])));
        qInfo("output error: chosen %.6g, best shared factor by 0.02 %.6g, best of the finer grid %.6g", total(chosen),
              total(bestShared), total(bestGrid));
        QVERIFY2(total(chosen) <= slack * total(bestGrid),
                 qPrintable(QString("chosen %1 vs grid optimum %2").arg(total(chosen)).arg(total(bestGrid))));
    }

    void beatsWeightMseOnEdgeFilters()
    {
        auto [g, data] = edgeFilterCase();
        const auto& [calib, held] = data;
        QuantSession out(g, outputMse(4, "channel", true));
        chosenGrid(out, calib);
        out.quantizeWeights();
        QuantizeOptions wo = outputMse(4, "channel", true);
        wo.config.defaults.weight.calibrator = "mse";
        QuantSession mse(g, wo);
        mse.quantizeWeights();
        const std::string w = out.layers().front().weight;
        const double eOut = total(blockErrors(g, w, held.first(), out.weightOverrides.at(w), false));
        const double eMse = total(blockErrors(g, w, held.first(), mse.weightOverrides.at(w), false));
        qInfo("held-out output error: output-mse %.6g, weight-space mse %.6g", eOut, eMse);
        QVERIFY2(eOut < 0.7 * eMse, qPrintable(QString("output-mse %1 vs mse %2").arg(eOut).arg(eMse)));
    }

    void sessionUsesTheGrid()
    {
        auto [g, data] = edgeFilterCase();
        QuantizeOptions o = outputMse(4, "channel", false);
        o.config.defaults.activation.bits = 8;
        QuantSession s(g, o);
        Progress p;
        s.calibrate(data.first, p, CancelToken());
        s.chooseWeightGrids(data.first, p, CancelToken());
        s.quantizeWeights();
        const SessionLayer& l = s.layers().front();
        const auto& grid = s.weightGrids.at(l.weight).params;
        const auto& scales = s.weightScales.at(l.weight);
        QCOMPARE(scales.size(), grid.size());
        for (std::size_t b = 0; b < grid.size(); ++b)
            QCOMPARE(scales[b], grid[b].scale);
        const Tensor& w = *s.graph().constant(l.weight);
        const Tensor expected = quantizeOnGrid(w, grid);
        auto a = expected.data<float>();
        auto q = s.weightOverrides.at(l.weight).data<float>();
        for (std::size_t e = 0; e < a.size(); ++e)
            QCOMPARE(q[e], a[e]);
        // The export takes the grid (it refuses weights off their plan's grid).
        QCOMPARE(s.weightPlan(l).params.front().scale, grid.front().scale);
        QVERIFY(s.notes.contains("output_mse_weights"));
        const QdqModel m = buildQdqModel(s);
        Q_UNUSED(m);
        // A spec the grid was not chosen for (here: a set range) gets that spec's own plan.
        QuantConfig other = o.config;
        other.ranges[l.weight] = {-0.25f, 0.25f};
        const QParams ranged = s.weightPlan(l, other).params.front();
        QCOMPARE(ranged.scale, qparamsFor(-0.25f, 0.25f, 4, false).scale);
    }
};

QTEST_GUILESS_MAIN(TestOutputMse)
#include "test_output_mse.moc"
