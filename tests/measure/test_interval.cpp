// wilsonInterval against its definition, by brute force: the interval is every p0 whose
// score test does not reject the observed proportion, |p - p0| <= z sqrt(p0 (1 - p0) / n).
// A fine scan of p0 finds its ends independently of the closed form.
#include "measure/stats.h"

#include <QtTest>

#include <cmath>

using namespace qs;

class TestInterval : public QObject {
    Q_OBJECT

private slots:
    void matchesTheScoreTestByScanning_data()
    {
        QTest::addColumn<double>("p");
        QTest::addColumn<int>("n");
        QTest::newRow("92 % of 1000") << 0.92 << 1000;
        QTest::newRow("92 % of 256") << 0.92 << 256;
        QTest::newRow("50 % of 10") << 0.5 << 10;
        QTest::newRow("all of 200") << 1.0 << 200;
        QTest::newRow("none of 50") << 0.0 << 50;
    }
    void matchesTheScoreTestByScanning()
    {
        QFETCH(double, p);
        QFETCH(int, n);
        const double z = 1.96;
        double lo = 2, hi = -1;
        const int steps = 2000000;
        for (int i = 0; i <= steps; ++i) {
            const double p0 = double(i) / steps;
            if (std::abs(p - p0) <= z * std::sqrt(p0 * (1 - p0) / n) + 1e-15) {
                lo = std::min(lo, p0);
                hi = std::max(hi, p0);
            }
        }
        const auto [wlo, whi] = wilsonInterval(p, n, z);
        QVERIFY2(std::abs(wlo - lo) <= 1e-6 && std::abs(whi - hi) <= 1e-6,
            qPrintable(QStringLiteral("[%1, %2] against scanned [%3, %4]").arg(wlo).arg(whi).arg(lo).arg(hi)));
    }

    void noSamplesSaysNothing()
    {
        QCOMPARE(wilsonInterval(0.7, 0), (std::pair<double, double>(0.0, 1.0)));
    }
};

QTEST_MAIN(TestInterval)
#include "test_interval.moc"
