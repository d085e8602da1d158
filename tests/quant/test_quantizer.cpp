// Quantization grids and fake quantization against naive reference loops, for
// every granularity, symmetric and affine, at 2..8 bits.
#include "quant/quantizer.h"
#include "util/error.h"

#include <QtTest>

#include <cmath>
#include <random>

using namespace qs;

namespace {

// Reference: quantize-dequantize one value with the textbook formulas.
float referenceQdq(float x, float lo, float hi, int bits, bool symmetric)
{
    double scale, zp, qmin, qmax;
    if (symmetric) {
        qmax = std::pow(2.0, bits - 1) - 1;
        qmin = -qmax;
        double m = std::max(std::abs(double(lo)), std::abs(double(hi)));
        scale = m > 0 ? m / qmax : 1;
        zp = 0;
    } else {
        qmin = 0;
        qmax = std::pow(2.0, bits) - 1;
        double l = std::min(double(lo), 0.0), h = std::max(double(hi), 0.0);
        scale = h - l > 0 ? (h - l) / qmax : 1;
        zp = std::min(qmax, std::max(qmin, std::nearbyint(-l / scale)));
    }
    double q = std::nearbyint(double(x) / scale) + zp;
    q = std::min(qmax, std::max(qmin, q));
    return float((q - zp) * scale);
}

std::vector<float> randomWeights(std::size_t n, uint32_t seed)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0.f, 0.3f);
    std::vector<float> w(n);
    for (float& v : w)
        v = g(rng);
    w[n / 3] = 2.5f; // an outlier
    return w;
}

} // namespace

class TestQuantizer : public QObject {
    Q_OBJECT

private slots:
    void grids_data()
    {
        QTest::addColumn<int>("bits");
        QTest::addColumn<bool>("symmetric");
        for (int bits = 2; bits <= 8; ++bits)
            for (bool sym : {true, false})
                QTest::newRow(qPrintable(QString("%1-bit %2").arg(bits).arg(sym ? "sym" : "affine"))) << bits << sym;
    }

    void grids()
    {
        QFETCH(int, bits);
        QFETCH(bool, symmetric);
        const float lo = -0.7f, hi = 1.9f;
        QParams q = qparamsFor(lo, hi, bits, symmetric);
        if (symmetric) {
            QCOMPARE(q.qmax, (1 << (bits - 1)) - 1);
            QCOMPARE(q.qmin, -q.qmax);
            QCOMPARE(q.zeroPoint, 0);
        } else {
            QCOMPARE(q.qmin, 0);
            QCOMPARE(q.qmax, (1 << bits) - 1);
        }
        for (float x = -2.f; x <= 2.5f; x += 0.01f)
            QCOMPARE(fakeQuant(x, q), referenceQdq(x, lo, hi, bits, symmetric));
        // Zero is exactly representable on every grid.
        QCOMPARE(fakeQuant(0.f, q), 0.f);
    }

    void weightGranularity_data()
    {
        QTest::addColumn<int>("granularity");
        QTest::addColumn<int>("groupSize");
        QTest::addColumn<bool>("symmetric");
        QTest::newRow("tensor sym") << int(Granularity::Tensor) << 0 << true;
        QTest::newRow("tensor affine") << int(Granularity::Tensor) << 0 << false;
        QTest::newRow("channel sym") << int(Granularity::Channel) << 0 << true;
        QTest::newRow("channel affine") << int(Granularity::Channel) << 0 << false;
        QTest::newRow("group 4") << int(Granularity::Group) << 4 << true;
        QTest::newRow("group 3 (ragged)") << int(Granularity::Group) << 3 << false;
    }

    void weightGranularity()
    {
        QFETCH(int, granularity);
        QFETCH(int, groupSize);
        QFETCH(bool, symmetric);
        // Conv weight [O=5, I=10, 3, 3]: out axis 0, in axis 1.
        const int O = 5, I = 10, K = 9;
        std::vector<float> w = randomWeights(std::size_t(O * I * K), 7);
        QuantSpec spec;
        spec.bits = 4;
        spec.symmetric = symmetric;
        spec.granularity = Granularity(granularity);
        spec.groupSize = groupSize;
        std::vector<float> got = fakeQuantWeight(w, {O, I, 3, 3}, 0, 1, spec);

        // Reference: explicit loops over blocks.
        auto blockOf = [&](int o, int i) {
            if (spec.granularity == Granularity::Tensor)
                return 0;
            if (spec.granularity == Granularity::Channel)
                return o;
            int groups = (I + groupSize - 1) / groupSize;
            return o * groups + i / groupSize;
        };
        std::map<int, std::pair<float, float>> ranges;
        for (int o = 0; o < O; ++o)
            for (int i = 0; i < I; ++i)
                for (int k = 0; k < K; ++k) {
                    float v = w[std::size_t((o * I + i) * K + k)];
                    auto [it, fresh] = ranges.try_emplace(blockOf(o, i), v, v);
                    it->second.first = std::min(it->second.first, v);
                    it->second.second = std::max(it->second.second, v);
                }
        for (int o = 0; o < O; ++o)
            for (int i = 0; i < I; ++i)
                for (int k = 0; k < K; ++k) {
                    std::size_t e = std::size_t((o * I + i) * K + k);
                    auto [lo, hi] = ranges.at(blockOf(o, i));
                    QCOMPARE(got[e], referenceQdq(w[e], lo, hi, 4, symmetric));
                }
        auto plan = planWeightQuantization(w, {O, I, 3, 3}, 0, 1, spec);
        QCOMPARE(plan.blocks(), int64_t(ranges.size()));
    }

    void gemmChannelsAlongLastAxis()
    {
        // Gemm B [K=6, N=3] without transB: output channels are columns.
        std::vector<float> w = {1, 10, 100, -1, -10, -100, 0.5f, 5, 50, 0, 0, 0, 0.25f, 2.5f, 25, 1, 1, 1};
        QuantSpec spec;
        spec.bits = 8;
        spec.granularity = Granularity::Channel;
        auto plan = planWeightQuantization(w, {6, 3}, 1, 0, spec);
        QCOMPARE(plan.blocks(), int64_t(3));
        QCOMPARE(plan.params[0].scale, 1.f / 127.f);
        QCOMPARE(plan.params[2].scale, 100.f / 127.f);
    }

    void stochasticRoundingIsUnbiased()
    {
        std::vector<float> w(20000, 0.3f);
        w[0] = 1.f; // sets the range: scale 1/7 at 4 bits symmetric
        QuantSpec spec;
        spec.bits = 4;
        spec.rounding = Rounding::Stochastic;
        std::vector<float> q = fakeQuantWeight(w, {20000}, 0, 0, spec, 42);
        double mean = 0;
        for (std::size_t i = 1; i < q.size(); ++i)
            mean += q[i];
        mean /= double(q.size() - 1);
        QVERIFY2(std::abs(mean - 0.3) < 0.005, qPrintable(QString::number(mean)));
        // Nearest rounding is biased on this input: 0.3 * 7 = 2.1 -> 2/7 = 0.2857.
        spec.rounding = Rounding::Nearest;
        QCOMPARE(fakeQuantWeight(w, {20000}, 0, 0, spec)[1], 2.f / 7.f);
    }

    void mseWeightRangeBeatsMinMaxWithAnOutlier()
    {
        // Gaussian weights plus one outlier per channel, 4 bits per channel: min-max
        // spends the grid on the outlier; the MSE range clips it and errs less overall.
        std::mt19937 rng(3);
        std::normal_distribution<float> nd(0.f, 1.f);
        const Shape shape{4, 256};
        std::vector<float> w(1024);
        for (float& v : w)
            v = nd(rng);
        for (int c = 0; c < 4; ++c)
            w[std::size_t(c * 256)] = 9.f;
        QuantSpec spec{.bits = 4, .granularity = Granularity::Channel};
        auto error = [&](const QuantSpec& sp) {
            std::vector<float> q = fakeQuantWeight(w, shape, 0, 1, sp);
            double e = 0;
            for (std::size_t i = 0; i < w.size(); ++i)
                e += double(w[i] - q[i]) * (w[i] - q[i]);
            return e;
        };
        const double minmax = error(spec);
        spec.calibrator = "mse";
        const double mse = error(spec);
        QVERIFY2(mse < 0.8 * minmax, qPrintable(QString("%1 vs %2").arg(mse).arg(minmax)));
        auto plan = planWeightQuantization(w, shape, 0, 1, spec);
        QVERIFY(plan.params[0].scale < 9.f / 7.f); // clipped below the outlier
        spec.calibrator = "entropy";
        QVERIFY_EXCEPTION_THROWN(planWeightQuantization(w, shape, 0, 1, spec), qs::Error);
    }

    void affineMseRangeRefinesEachEnd()
    {
        // One long tail per channel (an outlier above, none below): clipping both ends
        // by one factor must give up range below the mean to tame the outlier; the
        // affine search may clip only the top. Reference: every shared factor of the
        // grid, computed here by brute force.
        constexpr int kN = 4000;
        std::mt19937 rng(5);
        std::normal_distribution<float> nd(0.f, 1.f);
        const Shape shape{3, kN};
        std::vector<float> w(3 * kN);
        for (float& v : w)
            v = nd(rng);
        for (int c = 0; c < 3; ++c)
            w[std::size_t(c * kN)] = 10.f;
        QuantSpec spec{.bits = 4, .symmetric = false, .granularity = Granularity::Channel, .calibrator = "mse"};
        auto channelError = [&](int c, const QParams& q) {
            double e = 0;
            for (int i = 0; i < kN; ++i) {
                const float v = w[std::size_t(c * kN + i)];
                e += double(v - fakeQuant(v, q)) * (v - fakeQuant(v, q));
            }
            return e;
        };
        const auto plan = planWeightQuantization(w, shape, 0, 1, spec);
        for (int c = 0; c < 3; ++c) {
            const auto first = w.begin() + c * kN;
            const float lo = *std::min_element(first, first + kN), hi = *std::max_element(first, first + kN);
            double bestShared = INFINITY;
            for (int k = 0; k < 26; ++k) {
                const float f = 1.f - 0.02f * float(k);
                bestShared = std::min(bestShared, channelError(c, qparamsFor(lo * f, hi * f, 4, false)));
            }
            const double chosen = channelError(c, plan.params[std::size_t(c)]);
            QVERIFY2(chosen < 0.9 * bestShared, qPrintable(QString("channel %1: %2 vs shared-factor best %3")
                                                                 .arg(c).arg(chosen).arg(bestShared)));
        }
    }

    void nonFiniteWeightsAreAnError()
    {
        std::vector<float> w = {0.1f, NAN, 0.3f};
        QuantSpec spec;
        bool threw = false;
        try {
            fakeQuantWeight(w, {3}, 0, 0, spec);
        } catch (const std::exception& e) {
            threw = std::string(e.what()).find("non-finite") != std::string::npos;
        }
        QVERIFY(threw);
    }

    void storedBitsCountsScales()
    {
        QuantSpec spec;
        spec.bits = 4;
        spec.symmetric = true;
        QCOMPARE(storedBits(1000, 10, spec), int64_t(4000 + 10 * 32));
        spec.symmetric = false;
        QCOMPARE(storedBits(1000, 10, spec), int64_t(4000 + 10 * 32 + 10 * 4));
        spec.bits = 32;
        QCOMPARE(storedBits(1000, 10, spec), int64_t(32000));
    }
};

QTEST_APPLESS_MAIN(TestQuantizer)
#include "test_quantizer.moc"
