// GPTQ: on the same weights and data, the layer output error of GPTQ's weights is
// lower than round-to-nearest's (both measured by the naive reference on held-out
// samples), for Gemm and Conv (im2col), per channel and per group, with act-order.
// Also: every research algorithm runs through quantizeModel and records its parameters.
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
        auto [g, calib, held] = singleLayer(layer.toStdString(), 11);
        QuantSession s(g, weightOnly(bits, granularity.toStdString()));
        s.quantizeWeights();
        const auto rtn = s.weightOverrides;
        Progress p;
        algorithm("gptq").apply(s, calib, {{"act_order", actOrder}, {"samples", calib.count()}}, p, CancelToken());
        QVERIFY(s.notes.contains("gptq"));

        const Tensor x = held.first();
        const Tensor ref = referenceRun(s.graph(), x);
        const double eRtn = mse(ref, referenceRun(s.graph(), x, rtn));
        const double eGptq = mse(ref, referenceRun(s.graph(), x, s.weightOverrides));
        qInfo("output MSE: RTN %.6g, GPTQ %.6g; %s", eRtn, eGptq, s.notes["gptq"]["layers"].dump().c_str());
        QVERIFY2(eGptq < 0.9 * eRtn, qPrintable(QString("GPTQ %1 vs RTN %2").arg(eGptq).arg(eRtn)));

        // Every GPTQ weight lies on the spec's grid: re-quantizing with the blocks'
        // own range is exact for per-channel/tensor, and the values are few.
        const std::string w = s.layers().front().weight;
        std::set<float> distinct(
            s.weightOverrides.at(w).data<float>().begin(), s.weightOverrides.at(w).data<float>().end());
        const int64_t blocks = planWeightQuantization(g.constant(w)->toFloat(), g.constant(w)->shape,
            s.layers().front().outAxis, s.layers().front().inAxis, s.layers().front().spec.weight)
                                   .blocks();
        QVERIFY(int64_t(distinct.size()) <= blocks * ((1 << bits) - 1));
    }

    // Every research algorithm through the whole flow (fold, algorithms, calibration,
    // quantization, evaluation on the runtime) on a Gemm-ReLU-Gemm-Gemm chain, its
    // effective parameters recorded in the result's notes.
    void runsThroughQuantizeModel_data()
    {
        QTest::addColumn<QString>("name");
        QTest::addColumn<int>("bits");
        QTest::addColumn<QString>("param");
        for (const char* n : {"gptq", "awq", "smoothquant", "rotation", "adaround", "spqr"})
            QTest::newRow(n) << n << 4 << "";
        QTest::newRow("fp8_e4m3") << "fp8_e4m3" << 8 << "format";
        QTest::newRow("fp4_e2m1") << "fp4_e2m1" << 4 << "format";
    }

    void runsThroughQuantizeModel()
    {
        QFETCH(QString, name);
        QFETCH(int, bits);
        QFETCH(QString, param);
        GraphBuilder b(Shape {1, 16});
        b.gemm(16, 32);
        b.relu();
        b.gemm(32, 16);
        b.gemm(16, 10);
        Graph g = b.finish();
        Dataset calib = correlatedData({16}, 64, 3);
        Dataset eval = correlatedData({16}, 64, 4);
        QuantizeOptions o;
        o.config.defaults.weight.bits = bits;
        o.config.algorithms.push_back({name.toStdString(), nlohmann::json::object()});
        o.calibLimit = 64;
        Progress p;
        QuantizeResult r = quantizeModel(g, calib, eval, o, p, CancelToken());
        QCOMPARE(r.applied, std::vector<std::string> {name.toStdString()});
        QVERIFY2(r.algorithmNotes.contains(name.toStdString()), r.algorithmNotes.dump().c_str());
        QVERIFY(r.algorithmNotes[name.toStdString()]["params"].is_object());
        if (!param.isEmpty())
            QVERIFY(r.algorithmNotes[name.toStdString()]["params"].contains(param.toStdString()));
        QCOMPARE(r.config["algorithms"][0]["name"].get<std::string>(), name.toStdString());
        QVERIFY2(r.sqnrDb > 10, qPrintable(QString::number(r.sqnrDb)));
        if (name == "rotation")
            QCOMPARE(int(r.algorithmNotes["rotation"]["pairs"].size()), 1); // Gemm2 -> Gemm3
    }

    void rejectsBadParameters()
    {
        GraphBuilder b(Shape {1, 8});
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
