// AWQ and SmoothQuant rescale input channels between a layer and its producer (or
// an inserted Mul). Both keep the FP32 function (naive reference, 1e-5); AWQ's
// weight-only layer output error beats round-to-nearest on held-out data with
// outlier input channels; SmoothQuant lowers the layer inputs' max/std.
#include "algo_fixtures.h"

#include "quant/session.h"

#include <QtTest>

using namespace qs;
using namespace qs::test;

namespace {

struct Case {
    Graph graph;
    Shape sample;
};

// "gemm": one Gemm on the (outlier-channel) graph input, so the scale becomes a Mul;
// "gemm-chain"/"conv-chain": layer -> ReLU -> layer with outlier channels in between,
// so the second layer's scale folds into the first.
Case build(const QString& kind)
{
    if (kind == "gemm") {
        GraphBuilder b(Shape {1, 40});
        b.gemm(40, 16);
        return {b.finish(), {40}};
    }
    if (kind == "gemm-chain") {
        GraphBuilder b(Shape {1, 24});
        b.gemm(24, 40, false);
        b.outlierChannels(7, 10.f);
        b.relu();
        b.gemm(40, 12);
        return {b.finish(), {24}};
    }
    GraphBuilder b(Shape {1, 4, 8, 8});
    b.conv(4, 12, 3, 1);
    b.outlierChannels(5, 10.f);
    b.relu();
    b.conv(12, 6, 3, 1);
    return {b.finish(), {4, 8, 8}};
}

} // namespace

class TestAlgoAwqSmoothQuant : public QObject {
    Q_OBJECT

private slots:
    void awqBeatsRoundToNearest_data()
    {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<int>("bits");
        QTest::addColumn<QString>("granularity");
        QTest::newRow("gemm W3 channel (Mul)") << "gemm" << 3 << "channel";
        QTest::newRow("gemm W4 group:8 (Mul)") << "gemm" << 4 << "group:8";
        QTest::newRow("gemm chain W3 channel (folded)") << "gemm-chain" << 3 << "channel";
        QTest::newRow("conv chain W4 group:4 (folded)") << "conv-chain" << 4 << "group:4";
    }

    void awqBeatsRoundToNearest()
    {
        QFETCH(QString, kind);
        QFETCH(int, bits);
        QFETCH(QString, granularity);
        Case c = build(kind);
        Dataset calib = channelOutlierData(c.sample, 256, 21);
        Dataset held = channelOutlierData(c.sample, 128, 22);
        const Tensor x = held.batch(0, held.count()).front();
        const Tensor ref = referenceRun(c.graph, x);

        QuantSession rtn(c.graph, weightOnly(bits, granularity.toStdString()));
        rtn.quantizeWeights();
        const double eRtn = mse(ref, referenceRun(rtn.graph(), x, rtn.weightOverrides));

        QuantSession s(c.graph, weightOnly(bits, granularity.toStdString()));
        Progress p;
        algorithm("awq").apply(s, calib, nlohmann::json::object(), p, CancelToken());
        QVERIFY2(maxRelDiff(ref, referenceRun(s.graph(), x)) < 1e-5, "AWQ changed the FP32 function");
        s.quantizeWeights();
        const double eAwq = mse(ref, referenceRun(s.graph(), x, s.weightOverrides));
        qInfo("output MSE: RTN %.6g, AWQ %.6g; %s", eRtn, eAwq, s.notes["awq"].dump().c_str());
        QVERIFY2(eAwq < 0.95 * eRtn, qPrintable(QString("AWQ %1 vs RTN %2").arg(eAwq).arg(eRtn)));
    }

    void smoothQuantKeepsFunctionAndFlattensInputs_data()
    {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<double>("alpha");
        QTest::newRow("gemm (Mul)") << "gemm" << 0.5;
        QTest::newRow("gemm chain (folded)") << "gemm-chain" << 0.5;
        QTest::newRow("conv chain (folded) alpha 0.7") << "conv-chain" << 0.7;
    }

    void smoothQuantKeepsFunctionAndFlattensInputs()
    {
        QFETCH(QString, kind);
        QFETCH(double, alpha);
        Case c = build(kind);
        Dataset calib = channelOutlierData(c.sample, 128, 31);
        const Tensor x = channelOutlierData(c.sample, 64, 32).first();
        QuantizeOptions o;
        QuantSession s(c.graph, o);
        std::vector<std::string> before;
        for (const auto& l : s.layers())
            before.push_back(l.input);
        Progress p;
        algorithm("smoothquant").apply(s, calib, nlohmann::json({{"alpha", alpha}}), p, CancelToken());
        QCOMPARE(s.notes["smoothquant"]["params"]["alpha"].get<double>(), alpha);
        const double diff = maxRelDiff(referenceRun(c.graph, x), referenceRun(s.graph(), x));
        QVERIFY2(diff < 1e-5, qPrintable(QString::number(diff)));
        QCOMPARE(s.layers().size(), before.size());
        for (std::size_t i = 0; i < before.size(); ++i) {
            const double r0 = maxOverStd(referenceRun(c.graph, x, {}, before[i]));
            const double r1 = maxOverStd(referenceRun(s.graph(), x, {}, s.layers()[i].input));
            qInfo("%s input max/std %.3f -> %.3f", s.layers()[i].name.c_str(), r0, r1);
            QVERIFY2(r1 < r0, qPrintable(QString("%1 -> %2").arg(r0).arg(r1)));
        }
    }
};

QTEST_MAIN(TestAlgoAwqSmoothQuant)
#include "test_algo_awq_smoothquant.moc"
