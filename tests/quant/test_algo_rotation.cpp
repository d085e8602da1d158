// Rotation between linear layers keeps the FP32 function (naive reference, 1e-5)
// and spreads the outlier channels of the rotated activation (max/std drops).
#include "algo_fixtures.h"

#include "quant/session.h"

#include <QtTest>

using namespace qs;
using namespace qs::test;

class TestAlgoRotation : public QObject {
    Q_OBJECT

private slots:
    void keepsFunctionAndSpreadsOutliers_data()
    {
        QTest::addColumn<QString>("kind");
        QTest::addColumn<QString>("chain");
        QTest::addColumn<int>("channels");
        QTest::addColumn<QString>("expect");
        QTest::newRow("hadamard gemm 32") << "hadamard"
                                          << "gemm" << 32 << "hadamard";
        QTest::newRow("hadamard gemm 24 falls back") << "hadamard"
                                                     << "gemm" << 24 << "random";
        QTest::newRow("random gemm [K,N] 20") << "random"
                                              << "gemm-kn" << 20 << "random";
        QTest::newRow("hadamard conv 16") << "hadamard"
                                          << "conv" << 16 << "hadamard";
    }

    void keepsFunctionAndSpreadsOutliers()
    {
        QFETCH(QString, kind);
        QFETCH(QString, chain);
        QFETCH(int, channels);
        QFETCH(QString, expect);
        const bool conv = chain == "conv";
        GraphBuilder b(conv ? Shape {1, 3, 6, 6} : Shape {1, 12});
        if (conv) {
            b.conv(3, channels, 3, 1);
            b.outlierChannels(7, 12.f);
            b.conv(channels, 5, 3, 1);
        } else {
            b.gemm(12, channels, chain == "gemm");
            b.outlierChannels(7, 12.f);
            b.gemm(channels, 6, chain == "gemm");
        }
        Graph g = b.finish();
        const Shape sample = conv ? Shape {3, 6, 6} : Shape {12};
        Dataset calib = channelOutlierData(sample, 64, 51, 100, 1.f);
        QuantSession s(g, QuantizeOptions {});
        const std::string hidden = s.layers()[1].input;
        Progress p;
        algorithm("rotation").apply(s, calib, nlohmann::json({{"kind", kind.toStdString()}}), p, CancelToken());
        const Tensor x = channelOutlierData(sample, 32, 52, 100, 1.f).first();
        const double diff = maxRelDiff(referenceRun(g, x), referenceRun(s.graph(), x));
        QVERIFY2(diff < 1e-5, qPrintable(QString::number(diff)));
        const double r0 = maxOverStd(referenceRun(g, x, {}, hidden));
        const double r1 = maxOverStd(referenceRun(s.graph(), x, {}, hidden));
        qInfo("hidden max/std %.3f -> %.3f", r0, r1);
        QVERIFY2(r1 < 0.8 * r0, qPrintable(QString("%1 -> %2").arg(r0).arg(r1)));
        const auto& pair = s.notes["rotation"]["pairs"][0];
        QVERIFY(pair["rotation"].get<std::string>().rfind(expect.toStdString(), 0) == 0);
        QVERIFY(pair["activation"]["after"]["max_over_std"].get<double>() <
            pair["activation"]["before"]["max_over_std"].get<double>());
        QVERIFY(pair["weight_layer"]["after"].contains("kurtosis"));
    }
};

QTEST_MAIN(TestAlgoRotation)
#include "test_algo_rotation.moc"
