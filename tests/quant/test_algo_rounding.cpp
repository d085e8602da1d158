// AdaRound's learned rounding beats round-to-nearest on held-out layer outputs;
// SpQR keeps exactly k% of the weights in float (the largest RTN errors, found here
// by a plain sort) and puts the rest on the grid of the inliers' ranges.
#include "algo_fixtures.h"

#include "quant/session.h"

#include <QtTest>

#include <algorithm>
#include <numeric>

using namespace qs;
using namespace qs::test;

class TestAlgoRounding : public QObject {
    Q_OBJECT

private slots:
    void adaroundBeatsRoundToNearest_data()
    {
        QTest::addColumn<QString>("layer");
        QTest::addColumn<int>("bits");
        QTest::addColumn<QString>("granularity");
        QTest::newRow("gemm W4 channel") << "gemm" << 4 << "channel";
        QTest::newRow("gemm W3 group:8") << "gemm" << 3 << "group:8";
        QTest::newRow("conv W3 channel") << "conv" << 3 << "channel";
    }

    void adaroundBeatsRoundToNearest()
    {
        QFETCH(QString, layer);
        QFETCH(int, bits);
        QFETCH(QString, granularity);
        auto [g, calib, held] = singleLayer(layer.toStdString(), 41);
        QuantSession s(g, weightOnly(bits, granularity.toStdString()));
        s.quantizeWeights();
        const auto rtn = s.weightOverrides;
        Progress p;
        algorithm("adaround")
            .apply(s, calib, nlohmann::json({{"iterations", 400}, {"samples", calib.count()}}), p, CancelToken());
        const Tensor x = held.first();
        const Tensor ref = referenceRun(g, x);
        const double eRtn = mse(ref, referenceRun(g, x, rtn));
        const double eAda = mse(ref, referenceRun(g, x, s.weightOverrides));
        qInfo("output MSE: RTN %.6g, AdaRound %.6g; %s", eRtn, eAda, s.notes["adaround"]["layers"].dump().c_str());
        QVERIFY2(eAda < 0.9 * eRtn, qPrintable(QString("AdaRound %1 vs RTN %2").arg(eAda).arg(eRtn)));
        // Only the rounding direction is learned: every weight is floor or ceil of w/scale.
        const auto& l = s.layers().front();
        const Tensor* w = g.constant(l.weight);
        auto plan = planWeightQuantization(w->toFloat(), w->shape, l.outAxis, l.inAxis, l.spec.weight);
        auto wv = w->data<float>();
        auto qv = s.weightOverrides.at(l.weight).data<float>();
        for (std::size_t e = 0; e < wv.size(); ++e) {
            const float sc = plan.params[std::size_t(plan.blockOf[e])].scale;
            QVERIFY(std::abs(qv[e] - wv[e]) <= sc * 1.0001f);
        }
    }

    void spqrKeepsExactlyKPercent_data()
    {
        QTest::addColumn<double>("percent");
        QTest::addColumn<QString>("criterion");
        QTest::addColumn<QString>("granularity");
        QTest::newRow("1% error channel") << 1.0 << "error"
                                          << "channel";
        QTest::newRow("5% magnitude tensor") << 5.0 << "magnitude"
                                             << "tensor";
        QTest::newRow("0.5% error group:8") << 0.5 << "error"
                                            << "group:8";
        QTest::newRow("0%") << 0.0 << "error"
                            << "channel";
    }

    void spqrKeepsExactlyKPercent()
    {
        QFETCH(double, percent);
        QFETCH(QString, criterion);
        QFETCH(QString, granularity);
        GraphBuilder b(Shape {1, 64});
        b.gemm(64, 32);
        Graph g = b.finish();
        QuantSession s(g, weightOnly(3, granularity.toStdString()));
        s.quantizeWeights();
        Dataset d = channelOutlierData({64}, 4, 1);
        Progress p;
        algorithm("spqr").apply(
            s, d, nlohmann::json({{"percent", percent}, {"criterion", criterion.toStdString()}}), p, CancelToken());
        const auto& l = s.layers().front();
        const Tensor* w = g.constant(l.weight);
        std::vector<float> v = w->toFloat();
        auto q = s.weightOverrides.at(l.weight).data<float>();
        const std::vector<float> rtn = fakeQuantWeight(v, w->shape, l.outAxis, l.inAxis, l.spec.weight);
        // The expected outliers, by a plain sort of the criterion.
        std::vector<std::size_t> order(v.size());
        std::iota(order.begin(), order.end(), 0);
        auto score = [&](std::size_t e) {
            return criterion == "error" ? std::abs(double(v[e]) - rtn[e]) : std::abs(double(v[e]));
        };
        std::stable_sort(order.begin(), order.end(), [&](auto a, auto c) { return score(a) > score(c); });
        const auto keep = std::size_t(std::llround(percent / 100 * double(v.size())));
        QCOMPARE(s.notes["spqr"]["layers"][0]["outliers"].get<std::size_t>(), keep);
        std::vector<char> outlier(v.size(), 0);
        for (std::size_t i = 0; i < keep; ++i)
            outlier[order[i]] = 1;
        std::vector<float> inliers = v;
        for (std::size_t e = 0; e < v.size(); ++e)
            if (outlier[e])
                inliers[e] = 0;
        auto plan = planWeightQuantization(inliers, w->shape, l.outAxis, l.inAxis, l.spec.weight);
        std::size_t floats = 0;
        for (std::size_t e = 0; e < v.size(); ++e) {
            if (outlier[e]) {
                QCOMPARE(q[e], v[e]);
                ++floats;
            } else {
                const QParams& qp = plan.params[std::size_t(plan.blockOf[e])];
                QCOMPARE(q[e], fakeQuant(v[e], qp));
                // On the grid: an integer multiple of the scale.
                const float k = q[e] / qp.scale;
                QVERIFY(std::abs(k - std::nearbyint(k)) < 1e-3f);
            }
        }
        QCOMPARE(floats, keep);
    }
};

QTEST_MAIN(TestAlgoRounding)
#include "test_algo_rounding.moc"
