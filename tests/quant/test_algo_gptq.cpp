// GPTQ: on the same weights and data, the layer output error of GPTQ's weights is
// lower than round-to-nearest's (both measured by the naive reference on held-out
// samples), for Gemm and Conv (im2col), per channel and per group, with act-order.
#include "algo_fixtures.h"

#include "quant/session.h"

#include <QtTest>

using namespace qs;
using namespace qs::test;

class TestAlgoGptq : public QObject {
    Q_OBJECT

private slots:
    void beatsRoundToNearest_data()
    {
        QTest::addColumn<QString>("layer");
        QTest::addColumn<int>("bits");
        QTest::addColumn<QString>("granularity");
        QTest::addColumn<bool>("actOrder");
        QTest::newRow("gemm W4 channel") << "gemm" << 4 << "channel" << false;
        QTest::newRow("gemm W3 group:8") << "gemm" << 3 << "group:8" << false;
        QTest::newRow("gemm W3 group:8 act-order") << "gemm" << 3 << "group:8" << true;
        QTest::newRow("gemm [K,N] W4 tensor act-order") << "gemm-kn" << 4 << "tensor" << true;
        QTest::newRow("conv W4 channel") << "conv" << 4 << "channel" << false;
        QTest::newRow("conv W3 group:2 act-order") << "conv" << 3 << "group:2" << true;
    }

    void beatsRoundToNearest()
    {
        QFETCH(QString, layer);
        QFETCH(int, bits);
        QFETCH(QString, granularity);
        QFETCH(bool, actOrder);
        const bool conv = layer == "conv";
        GraphBuilder b(conv ? Shape{1, 6, 8, 8} : Shape{1, 48});
        if (conv)
            b.conv(6, 8, 3, 1);
        else
            b.gemm(48, 24, layer == "gemm");
        Graph g = b.finish();
        const Shape sample = conv ? Shape{6, 8, 8} : Shape{48};
        Dataset calib = correlatedData(sample, conv ? 64 : 512, 11);
        Dataset held = correlatedData(sample, conv ? 32 : 256, 12);

        QuantSession s(g, weightOnly(bits, granularity.toStdString()));
        s.quantizeWeights();
        const auto rtn = s.weightOverrides;
        Progress p;
        algorithm("gptq").apply(s, calib, {{"act_order", actOrder}, {"samples", calib.count()}}, p, CancelToken());
        QVERIFY(s.notes.contains("gptq"));

        const Tensor x = held.batch(0, held.count());
        const Tensor ref = referenceRun(s.graph(), x);
        const double eRtn = mse(ref, referenceRun(s.graph(), x, rtn));
        const double eGptq = mse(ref, referenceRun(s.graph(), x, s.weightOverrides));
        qInfo("output MSE: RTN %.6g, GPTQ %.6g; %s", eRtn, eGptq, s.notes["gptq"]["layers"].dump().c_str());
        QVERIFY2(eGptq < 0.9 * eRtn, qPrintable(QString("GPTQ %1 vs RTN %2").arg(eGptq).arg(eRtn)));

        // Every GPTQ weight lies on the spec's grid: re-quantizing with the blocks'
        // own range is exact for per-channel/tensor, and the values are few.
        const std::string w = s.layers().front().weight;
        std::set<float> distinct(s.weightOverrides.at(w).data<float>().begin(),
                                 s.weightOverrides.at(w).data<float>().end());
        const int64_t blocks = planWeightQuantization(g.constant(w)->toFloat(), g.constant(w)->shape,
                                                      s.layers().front().outAxis, s.layers().front().inAxis,
                                                      s.layers().front().spec.weight)
                                   .blocks();
        QVERIFY(int64_t(distinct.size()) <= blocks * ((1 << bits) - 1));
    }

    void rejectsBadParameters()
    {
        GraphBuilder b(Shape{1, 8});
        b.gemm(8, 4);
        QuantSession s(b.finish(), weightOnly(4, "channel"));
        Dataset d = channelOutlierData({8}, 16, 1);
        Progress p;
        QVERIFY_THROWS_EXCEPTION(
            Error, algorithm("gptq").apply(s, d, nlohmann::json({{"percdamp", -1.0}}), p, CancelToken()));
    }
};

QTEST_MAIN(TestAlgoGptq)
#include "test_algo_gptq.moc"
