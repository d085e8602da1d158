// SpQR's stored size counts its float outliers: every weight at the spec's bits, one
// 32-bit scale per block, plus a 32-bit value and a 32-bit index per weight kept in
// float. The outliers are counted by brute force (criterion "magnitude": the largest
// |w| of each layer, each left exactly at its float value) and the size summed by hand from the shapes, against the session's
// layer sizes, the result's size and compression (what the store and the CLI report
// show) and the size the studio's footer predicts from the config (ModelSizeTable).
#include "algo_fixtures.h"

#include "analysis/bit_budget.h"
#include "export/replay.h"
#include "quant/session.h"

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <functional>

using namespace qs;
using namespace qs::test;

class TestSpqrSize : public QObject {
    Q_OBJECT

private slots:
    void sizeCountsFloatOutliers_data()
    {
        QTest::addColumn<double>("percent");
        QTest::newRow("0%") << 0.0;
        QTest::newRow("1%") << 1.0;
        QTest::newRow("5%") << 5.0;
    }

    void sizeCountsFloatOutliers()
    {
        QFETCH(double, percent);
        GraphBuilder b(Shape {1, 16});
        b.gemm(16, 32);
        b.relu();
        b.gemm(32, 20, false);
        const Graph g = b.finish();
        const Dataset calib = correlatedData({16}, 32, 3);
        QuantizeOptions o;
        o.config.defaults.weight.bits = 4;
        o.config.algorithms.push_back({"spqr", {{"percent", percent}, {"criterion", "magnitude"}}});
        o.calibLimit = 32;
        Progress p;
        auto session = prepareSession(g, o, calib, p, CancelToken());
        const QuantSession& s = *session;

        // By hand: 4 bits per weight, one 32-bit scale per output channel (symmetric:
        // no zero points), 64 bits per outlier; biases in float.
        int64_t want = 0, fp32 = 0, outliersSeen = 0, wantLayers = 0;
        for (const SessionLayer& l : s.layers()) {
            const Tensor& w = *s.graph().constant(l.weight);
            const std::vector<float> v = w.toFloat(), q = s.weightOverrides.at(l.weight).toFloat();
            // Brute force: the round(percent x elements) largest magnitudes, each of
            // which must have stayed exactly its float value.
            std::vector<float> mags;
            for (float x : v)
                mags.push_back(std::abs(x));
            std::sort(mags.begin(), mags.end(), std::greater<>());
            const auto keep = std::size_t(std::llround(percent / 100.0 * double(v.size())));
            int64_t outliers = 0;
            for (std::size_t e = 0; e < v.size(); ++e)
                if (keep > 0 && std::abs(v[e]) >= mags[keep - 1]) {
                    QCOMPARE(q[e], v[e]);
                    ++outliers;
                }
            QCOMPARE(outliers, int64_t(keep));
            const int64_t outChannels = w.shape[std::size_t(l.outAxis)];
            const int64_t layerBits = w.numel() * 4 + outChannels * 32 + outliers * 64;
            QCOMPARE(s.layerSizeBits(l), layerBits);
            const int64_t biasBits = s.graph().constant(l.bias)->numel() * 32;
            want += layerBits + biasBits;
            wantLayers += layerBits;
            fp32 += w.numel() * 32 + biasBits;
            outliersSeen += outliers;
        }
        if (percent > 0)
            QVERIFY(outliersSeen > 0);
        QCOMPARE(s.sizeBits(), want);
        QCOMPARE(s.floatSizeBits(), fp32);
        // The studio's footer: predicted from the shapes and the config.
        QCOMPARE(modelSizeTable(s).sizeBits(o.config), want);

        // The result (stored as the run's size and compression, printed by the CLI).
        const QuantizeResult r = quantizeModel(g, calib, calib, o, p, CancelToken());
        QCOMPARE(r.sizeBits, want);
        QCOMPARE(r.fp32SizeBits, fp32);
        QCOMPARE(r.compression, double(fp32) / double(want));
        int64_t layers = 0;
        for (const auto& l : r.layers)
            layers += l.sizeBits;
        QCOMPARE(layers, wantLayers);
        QCOMPARE(r.algorithmNotes["spqr"]["outlier_bits"].get<int64_t>(), outliersSeen * 64);
    }
};

QTEST_APPLESS_MAIN(TestSpqrSize)
#include "test_spqr_size.moc"
