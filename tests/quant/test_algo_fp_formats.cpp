// FP8 E4M3 / E5M2 and FP4 E2M1 rounding against a naive enumeration of every bit
// pattern's value (nearest, ties to the even mantissa, saturating); the algorithm
// puts every weight of a block on the scaled grid with the block's max|w| exact.
#include "algo_fixtures.h"

#include "quant/algorithms/fp_formats.h"
#include "quant/session.h"

#include <QtTest>

#include <cmath>
#include <random>

using namespace qs;
using namespace qs::test;

namespace {

struct Value {
    double v;
    bool evenMantissa;
};

// Every finite non-negative value of a sign/exponent/mantissa format, decoded by hand.
std::vector<Value> enumerate(int ebits, int mbits, int bias, bool ieeeSpecials, bool fnNan)
{
    std::vector<Value> out;
    for (int e = 0; e < (1 << ebits); ++e)
        for (int m = 0; m < (1 << mbits); ++m) {
            if (ieeeSpecials && e == (1 << ebits) - 1)
                continue; // inf / NaN
            if (fnNan && e == (1 << ebits) - 1 && m == (1 << mbits) - 1)
                continue; // E4M3FN's single NaN pattern
            double v = e == 0 ? std::ldexp(double(m) / (1 << mbits), 1 - bias)
                              : std::ldexp(1.0 + double(m) / (1 << mbits), e - bias);
            out.push_back({v, m % 2 == 0});
        }
    return out;
}

double naiveRound(double x, const std::vector<Value>& grid)
{
    const double a = std::abs(x);
    const Value* best = &grid.front();
    for (const Value& g : grid) {
        const double d = std::abs(g.v - a), bd = std::abs(best->v - a);
        if (d < bd || (d == bd && g.evenMantissa && !best->evenMantissa))
            best = &g;
    }
    return std::copysign(best->v, x);
}

std::vector<Value> gridOf(const QString& name)
{
    if (name == "fp8_e4m3")
        return enumerate(4, 3, 7, false, true);
    if (name == "fp8_e5m2")
        return enumerate(5, 2, 15, true, false);
    return enumerate(2, 1, 1, false, false);
}

} // namespace

class TestAlgoFpFormats : public QObject {
    Q_OBJECT

private slots:
    void matchesEnumeration_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("count"); // non-negative finite values
        QTest::addColumn<double>("max");
        QTest::newRow("fp8_e4m3") << "fp8_e4m3" << 127 << 448.0;
        QTest::newRow("fp8_e5m2") << "fp8_e5m2" << 124 << 57344.0;
        QTest::newRow("fp4_e2m1") << "fp4_e2m1" << 8 << 6.0;
    }

    void matchesEnumeration()
    {
        QFETCH(QString, format);
        QFETCH(int, count);
        QFETCH(double, max);
        const auto& f = algo::fpFormat(format.toStdString());
        std::vector<Value> grid = gridOf(format);
        QCOMPARE(int(grid.size()), count);
        double top = 0;
        for (const auto& g : grid)
            top = std::max(top, g.v);
        QCOMPARE(top, max);
        QCOMPARE(double(f.maxValue), max);
        std::vector<double> probes;
        // Every value, every midpoint (ties) and points just around them.
        std::vector<double> sorted;
        for (const auto& g : grid)
            sorted.push_back(g.v);
        std::sort(sorted.begin(), sorted.end());
        for (std::size_t i = 0; i < sorted.size(); ++i) {
            probes.push_back(sorted[i]);
            if (i + 1 < sorted.size()) {
                const double mid = 0.5 * (sorted[i] + sorted[i + 1]);
                probes.push_back(mid);
                probes.push_back(std::nextafter(float(mid), 0.f));
                probes.push_back(std::nextafter(float(mid), INFINITY));
            }
        }
        std::mt19937_64 rng(5);
        std::uniform_real_distribution<double> logU(std::log(sorted[1] / 4), std::log(max * 4));
        for (int i = 0; i < 20000; ++i)
            probes.push_back(std::exp(logU(rng)));
        for (double p : probes)
            for (double sign : {1.0, -1.0}) {
                const float x = float(sign * p);
                const float got = algo::roundToFp(x, f);
                const double want = naiveRound(x, grid);
                if (double(got) != want)
                    QFAIL(qPrintable(QString("%1(%2) = %3, expected %4")
                                         .arg(format)
                                         .arg(double(x), 0, 'g', 9)
                                         .arg(double(got), 0, 'g', 9)
                                         .arg(want, 0, 'g', 9)));
            }
    }

    void weightsLandOnTheScaledGrid_data()
    {
        QTest::addColumn<QString>("format");
        QTest::addColumn<int>("bits");
        QTest::addColumn<QString>("granularity");
        QTest::newRow("fp8_e4m3 channel") << "fp8_e4m3" << 8 << "channel";
        QTest::newRow("fp8_e5m2 tensor") << "fp8_e5m2" << 8 << "tensor";
        QTest::newRow("fp4_e2m1 group:8") << "fp4_e2m1" << 4 << "group:8";
    }

    void weightsLandOnTheScaledGrid()
    {
        QFETCH(QString, format);
        QFETCH(int, bits);
        QFETCH(QString, granularity);
        GraphBuilder b(Shape {1, 32});
        b.gemm(32, 8);
        QuantSession s(b.finish(), weightOnly(bits, granularity.toStdString()));
        s.quantizeWeights();
        Dataset d = channelOutlierData({32}, 8, 1);
        Progress p;
        algorithm(format.toStdString()).apply(s, d, nlohmann::json::object(), p, CancelToken());
        const auto& l = s.layers().front();
        const Tensor* w = s.graph().constant(l.weight);
        std::vector<float> v = w->toFloat();
        auto q = s.weightOverrides.at(l.weight).data<float>();
        auto plan = planWeightQuantization(v, w->shape, l.outAxis, l.inAxis, l.spec.weight);
        std::vector<float> absMax(plan.params.size(), 0.f);
        for (std::size_t e = 0; e < v.size(); ++e)
            absMax[std::size_t(plan.blockOf[e])] = std::max(absMax[std::size_t(plan.blockOf[e])], std::abs(v[e]));
        const std::vector<Value> grid = gridOf(format);
        const double top = algo::fpFormat(format.toStdString()).maxValue;
        for (std::size_t e = 0; e < v.size(); ++e) {
            const double scale = double(absMax[std::size_t(plan.blockOf[e])]) / top;
            const double want = naiveRound(double(v[e]) / scale, grid) * scale;
            QVERIFY2(std::abs(double(q[e]) - want) <= 1e-6 * std::abs(want) + 1e-12,
                qPrintable(QString("element %1: %2 vs %3").arg(e).arg(q[e]).arg(want)));
            if (std::abs(v[e]) == absMax[std::size_t(plan.blockOf[e])])
                QVERIFY(std::abs(q[e] - v[e]) <= 1e-6f * std::abs(v[e]));
        }
    }

    void refusesMismatchedBits()
    {
        GraphBuilder b(Shape {1, 8});
        b.gemm(8, 4);
        QuantSession s(b.finish(), weightOnly(8, "channel"));
        Dataset d = channelOutlierData({8}, 4, 1);
        Progress p;
        QVERIFY_THROWS_EXCEPTION(Error, algorithm("fp4_e2m1").apply(s, d, nlohmann::json::object(), p, CancelToken()));
    }
};

QTEST_MAIN(TestAlgoFpFormats)
#include "test_algo_fp_formats.moc"
