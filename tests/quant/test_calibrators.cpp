// Calibrators on synthetic activations, each against a reference computed here
// directly from the samples (sorting, brute-force error evaluation).
#include "measure/activations.h"
#include "quant/calibrator.h"
#include "quant/quantizer.h"

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <random>

using namespace qs;

namespace {

std::vector<float> laplaceWithOutliers(std::size_t n, uint32_t seed)
{
    std::mt19937 rng(seed);
    std::exponential_distribution<float> e(4.f);
    std::bernoulli_distribution sign(0.5);
    std::vector<float> v(n);
    for (float& x : v)
        x = sign(rng) ? e(rng) : -e(rng);
    v[5] = 9.f;   // outliers that min-max would honour
    v[17] = -6.f;
    return v;
}

CalibrationData observe(const std::vector<float>& v, std::size_t batch)
{
    ActivationObserver o(2048);
    for (std::size_t s = 0; s < v.size(); s += batch) {
        std::size_t n = std::min(batch, v.size() - s);
        Tensor t = Tensor::fromVector(Shape{int64_t(n)}, std::vector<float>(v.begin() + long(s), v.begin() + long(s + n)));
        o.observe(t);
    }
    return o.calibration();
}

double directMse(const std::vector<float>& v, ClipRange r, int bits, bool symmetric)
{
    QParams q = qparamsFor(r.lo, r.hi, bits, symmetric);
    double e = 0;
    for (float x : v) {
        double d = double(x) - fakeQuant(x, q);
        e += d * d;
    }
    return e / double(v.size());
}


// Post-ReLU shaped: a spike of exact zeros and an exponential tail.
std::vector<float> reluLike(std::size_t n, uint32_t seed)
{
    std::mt19937 rng(seed);
    std::bernoulli_distribution zero(0.6);
    std::exponential_distribution<float> e(1.2f);
    std::vector<float> v(n);
    for (float& x : v)
        x = zero(rng) ? 0.f : e(rng);
    return v;
}

// The TensorRT entropy search written out plainly on a histogram of |x| whose
// `bins` bins cover [0, hi]: the zero bin is a level of its own, bins [1, i) are
// merged into levels - 1 buckets; Q from the bins below the threshold only,
// P with the clipped mass in its last bin. Returns the upper edge of the best bin count.
double bruteForceEntropyThreshold(const std::vector<double>& hist, double hi, int levels)
{
    const int bins = int(hist.size());
    double bestKl = INFINITY;
    int bestI = bins;
    for (int i = levels; i <= bins; ++i) {
        std::vector<double> p(hist.begin(), hist.begin() + i);
        for (int k = i; k < bins; ++k)
            p[std::size_t(i - 1)] += hist[std::size_t(k)];
        std::vector<int> bucket(std::size_t(i), -1);
        for (int l = 0; l < levels - 1; ++l)
            for (int k = 1 + int(int64_t(l) * (i - 1) / (levels - 1)); k < 1 + int(int64_t(l + 1) * (i - 1) / (levels - 1)); ++k)
                bucket[std::size_t(k)] = l;
        std::vector<double> q(std::size_t(i), 0.0);
        q[0] = hist[0];
        for (int k = 1; k < i; ++k) {
            if (p[std::size_t(k)] == 0)
                continue;
            double mass = 0, used = 0; // the bucket's mass below the threshold
            for (int j = 1; j < i; ++j)
                if (bucket[std::size_t(j)] == bucket[std::size_t(k)]) {
                    mass += hist[std::size_t(j)];
                    used += p[std::size_t(j)] > 0 ? 1 : 0;
                }
            q[std::size_t(k)] = mass / used;
        }
        double sp = 0, sq = 0;
        for (int k = 0; k < i; ++k) {
            sp += p[std::size_t(k)];
            sq += q[std::size_t(k)];
        }
        double kl = 0;
        for (int k = 0; k < i; ++k)
            if (p[std::size_t(k)] > 0)
                kl += q[std::size_t(k)] == 0 ? INFINITY : p[std::size_t(k)] / sp * std::log((p[std::size_t(k)] / sp) / (q[std::size_t(k)] / sq));
        if (kl < bestKl) {
            bestKl = kl;
            bestI = i;
        }
    }
    return hi * bestI / bins;
}

} // namespace

class TestCalibrators : public QObject {
    Q_OBJECT

private slots:
    void everyCalibratorIsRegistered()
    {
        QStringList names;
        for (const auto& c : calibrators())
            names << QString::fromStdString(c.name);
        QCOMPARE(names, (QStringList{"ema", "entropy", "minmax", "mse", "percentile"}));
    }

    void histogramGrowsWithExactCounts()
    {
        std::vector<float> v = laplaceWithOutliers(50000, 1);
        // Observed in batches whose ranges keep growing (the outliers come late).
        std::reverse(v.begin(), v.end());
        CalibrationData d = observe(v, 1000);
        QCOMPARE(d.histogram.total(), uint64_t(v.size()));
        QCOMPARE(d.histogram.below + d.histogram.above, uint64_t(0));
        QCOMPARE(d.min, double(*std::min_element(v.begin(), v.end())));
        QCOMPARE(d.max, double(*std::max_element(v.begin(), v.end())));
        // Every value lies in the bin the histogram says it does.
        const Histogram& h = d.histogram;
        std::vector<uint64_t> counts(h.counts.size(), 0);
        for (float x : v)
            ++counts[std::size_t(std::clamp(int((x - h.lo) / h.binWidth()), 0, h.bins() - 1))];
        QVERIFY(counts == h.counts);
    }

    void minmaxIsTheObservedRange()
    {
        std::vector<float> v = laplaceWithOutliers(20000, 2);
        CalibrationData d = observe(v, 512);
        ClipRange r = calibrator("minmax").choose(d, 8, false, 0);
        QCOMPARE(r.lo, -6.f);
        QCOMPARE(r.hi, 9.f);
    }

    void percentileMatchesSortedSamples_data()
    {
        QTest::addColumn<double>("p");
        QTest::newRow("99") << 99.0;
        QTest::newRow("99.9") << 99.9;
        QTest::newRow("99.99") << 99.99;
    }

    void percentileMatchesSortedSamples()
    {
        QFETCH(double, p);
        std::vector<float> v = laplaceWithOutliers(100000, 3);
        CalibrationData d = observe(v, 4096);
        ClipRange r = calibrator("percentile").choose(d, 8, false, p);
        std::vector<float> sorted = v;
        std::sort(sorted.begin(), sorted.end());
        float refHi = sorted[std::size_t(p / 100.0 * double(sorted.size() - 1))];
        float refLo = sorted[std::size_t((1 - p / 100.0) * double(sorted.size() - 1))];
        const float tol = 2.5f * float(d.histogram.binWidth()); // histogram resolution
        QVERIFY2(std::abs(r.hi - refHi) < tol, qPrintable(QString("%1 vs %2").arg(r.hi).arg(refHi)));
        QVERIFY2(std::abs(r.lo - refLo) < tol, qPrintable(QString("%1 vs %2").arg(r.lo).arg(refLo)));
    }

    void mseBeatsMinmaxOnTheSamples_data()
    {
        QTest::addColumn<int>("bits");
        QTest::addColumn<bool>("symmetric");
        for (int b : {4, 6, 8})
            for (bool s : {true, false})
                QTest::newRow(qPrintable(QString("%1 %2").arg(b).arg(s ? "sym" : "affine"))) << b << s;
    }

    void mseBeatsMinmaxOnTheSamples()
    {
        QFETCH(int, bits);
        QFETCH(bool, symmetric);
        std::vector<float> v = laplaceWithOutliers(50000, 4);
        CalibrationData d = observe(v, 2048);
        ClipRange mm = calibrator("minmax").choose(d, bits, symmetric, 0);
        ClipRange mse = calibrator("mse").choose(d, bits, symmetric, 0);
        double eMm = directMse(v, mm, bits, symmetric), eMse = directMse(v, mse, bits, symmetric);
        QVERIFY2(eMse < eMm, qPrintable(QString("mse %1 vs minmax %2").arg(eMse).arg(eMm)));
        // And it is close to the best of a brute-force scan over shrink factors.
        double best = eMm;
        for (int i = 1; i < 400; ++i) {
            float f = 1.f - 0.0025f * float(i);
            best = std::min(best, directMse(v, {mm.lo * f, mm.hi * f}, bits, symmetric));
        }
        QVERIFY2(eMse <= best * 1.1, qPrintable(QString("mse %1 vs best %2").arg(eMse).arg(best)));
    }

    void entropyClipsOutliersAndKeepsTheBulk()
    {
        std::vector<float> v = laplaceWithOutliers(100000, 5);
        for (float& x : v)
            x = std::abs(x); // post-ReLU shaped
        CalibrationData d = observe(v, 4096);
        ClipRange r = calibrator("entropy").choose(d, 8, false, 0);
        std::vector<float> sorted = v;
        std::sort(sorted.begin(), sorted.end());
        QVERIFY2(r.hi < 9.f, "entropy did not clip the outlier");
        QVERIFY2(r.hi > sorted[std::size_t(0.999 * double(sorted.size()))], "entropy clipped the bulk");
        QCOMPARE(r.lo, 0.f);
    }

    void entropyMatchesBruteForceSearch_data()
    {
        QTest::addColumn<bool>("symmetric");
        QTest::newRow("affine u8") << false;
        QTest::newRow("symmetric") << true;
    }

    void entropyMatchesBruteForceSearch()
    {
        QFETCH(bool, symmetric);
        // A histogram of post-ReLU values laid out on exactly the calibrator's 2048
        // |x| bins, so the reference sees the same bins.
        std::vector<float> v = reluLike(200000, 6);
        v[3] = 9.5f;
        CalibrationData d;
        d.min = 0;
        d.max = 9.5;
        d.histogram.lo = 0;
        d.histogram.hi = 9.5;
        d.histogram.counts.assign(2048, 0);
        d.histogram.add(v);
        std::vector<double> hist(d.histogram.counts.begin(), d.histogram.counts.end());
        const double ref = bruteForceEntropyThreshold(hist, 9.5, symmetric ? 128 : 256);
        ClipRange r = calibrator("entropy").choose(d, 8, symmetric, 0);
        QCOMPARE(r.lo, 0.f);
        QVERIFY2(std::abs(r.hi - ref) < 1e-4, qPrintable(QString("%1 vs brute force %2").arg(r.hi).arg(ref)));
    }

    void entropyOnPostReluStaysNearMseOptimalClip_data()
    {
        QTest::addColumn<int>("bits");
        QTest::newRow("8") << 8;
        QTest::newRow("6") << 6;
    }

    void entropyOnPostReluStaysNearMseOptimalClip()
    {
        QFETCH(int, bits);
        std::vector<float> v = reluLike(100000, 7);
        // The long tail's end comes late, so the observer's histogram has grown
        // (bins merged) and its range reaches well past the maximum.
        v[v.size() - 100] = 9.5f;
        CalibrationData d = observe(v, 4096);
        ClipRange r = calibrator("entropy").choose(d, bits, false, 0);
        const double e = directMse(v, r, bits, false);
        double best = INFINITY, bestHi = 0;
        for (int k = 1; k <= 950; ++k) {
            double m = directMse(v, {0.f, 0.01f * float(k)}, bits, false);
            if (m < best) {
                best = m;
                bestHi = 0.01 * k;
            }
        }
        QVERIFY2(e <= 2 * best, qPrintable(QString("entropy clip %1: mse %2, best clip %3: mse %4").arg(r.hi).arg(e).arg(bestHi).arg(best)));
    }

    void entropyKeepsTheLongSideOfASignedAffineRange()
    {
        // A normalised image: the background spike at the lowest value, pixels up to
        // 2.5 times as far on the positive side.
        std::mt19937 rng(8);
        std::bernoulli_distribution background(0.5);
        std::uniform_real_distribution<float> pixel(-0.8f, 2.0f);
        std::vector<float> v(100000);
        for (float& x : v)
            x = background(rng) ? -0.8f : pixel(rng);
        CalibrationData d = observe(v, 4096);
        ClipRange r = calibrator("entropy").choose(d, 8, false, 0);
        QCOMPARE(r.lo, -0.8f);
        const double e = directMse(v, r, 8, false);
        double best = INFINITY;
        for (int k = 1; k <= 200; ++k)
            best = std::min(best, directMse(v, {-0.8f, 0.01f * float(k)}, 8, false));
        QVERIFY2(e <= 2 * best, qPrintable(QString("entropy hi %1: mse %2, best %3").arg(r.hi).arg(e).arg(best)));
    }

    void emaFollowsBatches()
    {
        CalibrationData d;
        d.batchRanges = {{-1, 1}, {-3, 3}};
        d.min = -3;
        d.max = 3;
        ClipRange r = calibrator("ema").choose(d, 8, false, 0.9);
        QCOMPARE(r.lo, -1.2f);
        QCOMPARE(r.hi, 1.2f);
    }

    void unknownCalibratorListsKnownOnes()
    {
        try {
            calibrator("magic");
            QFAIL("no error");
        } catch (const std::exception& e) {
            QVERIFY(std::string(e.what()).find("entropy") != std::string::npos);
        }
    }
};

QTEST_APPLESS_MAIN(TestCalibrators)
#include "test_calibrators.moc"
