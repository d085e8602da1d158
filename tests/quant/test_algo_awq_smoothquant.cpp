// AWQ and SmoothQuant rescale input channels between a layer and its producer (or
// an inserted Mul). Both keep the FP32 function (naive reference, 1e-5); AWQ's
// weight-only layer output error beats round-to-nearest on held-out data with
// outlier input channels; SmoothQuant lowers the layer inputs' max/std. Block by block
// (the default) both give the graph and scales of observing every layer at once.
#include "algo_fixtures.h"
#include "transformer_fixture.h"

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

    // Block by block (last block first, from the stored FP32 block inputs) against every
    // layer observed at once ("blockwise": false), on a chain whose scales fold across the
    // blocks (each layer is a block) and on the tiny GPT (Muls inserted, three blocks):
    // the same nodes, the same weights.
    void blockwiseEqualsWholeModel_data()
    {
        QTest::addColumn<QString>("algo");
        QTest::addColumn<QString>("kind");
        for (const char* a : {"awq", "smoothquant"}) {
            QTest::newRow(qPrintable(QString("%1 conv chain").arg(a))) << a << "conv-chain";
            QTest::newRow(qPrintable(QString("%1 gpt").arg(a))) << a << "gpt";
        }
    }

    void blockwiseEqualsWholeModel()
    {
        QFETCH(QString, algo);
        QFETCH(QString, kind);
        Graph g;
        Dataset calib;
        if (kind == "gpt") {
            const TransformerDims d;
            g = tinyTransformer(d);
            calib = tokenData(d, 12, 5);
        } else {
            GraphBuilder b(Shape {1, 4, 8, 8});
            b.conv(4, 12, 3, 1);
            b.outlierChannels(5, 10.f);
            b.relu();
            b.conv(12, 8, 3, 1);
            b.relu();
            b.conv(8, 6, 3, 1);
            g = b.finish();
            calib = channelOutlierData({4, 8, 8}, 48, 41);
        }
        QuantizeOptions o = weightOnly(4, "channel");
        o.batch = 5; // batches of 5, 5 and 2 through every block
        auto run = [&](bool blockwise) {
            auto s = std::make_unique<QuantSession>(g, o);
            Progress p;
            algorithm(algo.toStdString())
                .apply(*s, calib, {{"samples", calib.count()}, {"blockwise", blockwise}}, p, CancelToken());
            return s;
        };
        const auto whole = run(false), blocks = run(true);
        QVERIFY(blocks->notes[algo.toStdString()]["blocks"].get<int>() >= 3);
        QCOMPARE(whole->notes[algo.toStdString()]["blocks"].get<int>(), 1);
        const Graph& a = blocks->graph();
        const Graph& b = whole->graph();
        QCOMPARE(a.nodes.size(), b.nodes.size());
        for (std::size_t i = 0; i < a.nodes.size(); ++i) {
            QCOMPARE(a.nodes[i].name, b.nodes[i].name);
            QCOMPARE(a.nodes[i].inputs, b.nodes[i].inputs);
        }
        QCOMPARE(a.initializers.size(), b.initializers.size());
        int changed = 0;
        for (const auto& [name, t] : b.initializers) {
            QVERIFY2(a.initializers.count(name), name.c_str());
            if (t.dtype != DType::Float)
                continue;
            auto x = a.initializers.at(name).data<float>(), y = t.data<float>();
            for (std::size_t i = 0; i < y.size(); ++i)
                QVERIFY2(std::abs(x[i] - y[i]) <= 1e-5f * (1 + std::abs(y[i])), name.c_str());
            changed += g.initializers.count(name) == 0; // rescaled weights are new initializers
        }
        QVERIFY2(changed > 0, "the algorithm changed nothing");
    }
};

QTEST_MAIN(TestAlgoAwqSmoothQuant)
#include "test_algo_awq_smoothquant.moc"
