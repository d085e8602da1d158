// Model size from shapes and predicted error from sensitivity curves, against sizes
// counted by hand from the demo model's weight shapes and noise sums done by hand.
#include "analysis/bit_budget.h"
#include "graph/onnx_import.h"
#include "quant/session.h"

#include <QtTest>

#include <cmath>

using namespace qs;

namespace {

const std::string demoPath = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";

// Stored bits counted the long way: per output channel (or group) one 32-bit scale, plus
// a zero point of `bits` per block when affine.
int64_t byHand(const LayerShape& l, int bits, const std::string& granularity, bool symmetric)
{
    int64_t blocks = 1;
    if (granularity == "channel") {
        blocks = l.weightShape[std::size_t(l.outAxis)];
    } else if (granularity.rfind("group:", 0) == 0) {
        const int64_t g = std::stoll(granularity.substr(6));
        const int64_t in = l.weightShape[std::size_t(l.inAxis)];
        blocks = l.weightShape[std::size_t(l.outAxis)] * ((in + std::min(g, in) - 1) / std::min(g, in));
    }
    return l.elements * bits + blocks * 32 + (symmetric ? 0 : blocks * bits);
}

LayerSensitivity curve(const std::string& name, std::map<int, double> sqnr)
{
    LayerSensitivity l;
    l.layer = name;
    for (auto [b, s] : sqnr)
        l.byBits[b].sqnrDb = s;
    return l;
}

} // namespace

class TestBitBudget : public QObject {
    Q_OBJECT
    Graph demo;
    ModelSizeTable table;

private slots:
    void initTestCase()
    {
        demo = importOnnx(demoPath);
        table = modelSizeTable(demo);
        QCOMPARE(int(table.layers.size()), 8);
    }

    void sizeMatchesHandCount_data()
    {
        QTest::addColumn<int>("bits");
        QTest::addColumn<QString>("granularity");
        QTest::addColumn<bool>("symmetric");
        for (int b : {2, 4, 8})
            for (const char* g : {"tensor", "channel", "group:8"})
                for (bool sym : {true, false})
                    QTest::newRow(qPrintable(QStringLiteral("%1 %2 %3").arg(b).arg(g).arg(sym ? "sym" : "affine")))
                        << b << QString::fromLatin1(g) << sym;
    }
    void sizeMatchesHandCount()
    {
        QFETCH(int, bits);
        QFETCH(QString, granularity);
        QFETCH(bool, symmetric);
        QuantConfig c;
        c.defaults.weight.bits = bits;
        c.defaults.weight.symmetric = symmetric;
        parseGranularity(granularity.toStdString(), c.defaults.weight);
        int64_t expected = table.otherBits;
        for (const auto& l : table.layers)
            expected += byHand(l, bits, granularity.toStdString(), symmetric);
        QCOMPARE(table.sizeBits(c), expected);
        // And the quantization session counts the same (it quantizes the weights for real).
        QuantizeOptions o;
        o.config = c;
        QuantSession s(demo, o);
        s.quantizeWeights();
        QCOMPARE(s.sizeBits(), expected);
        QCOMPARE(table.floatBits, s.floatSizeBits());
    }

    void excludedAndFloatLayersStayFloat()
    {
        QuantConfig c;
        c.excluded.insert(table.layers[0].layer);
        LayerQuant f = c.defaults;
        f.weight.bits = 32;
        c.layers[table.layers[1].layer] = f;
        int64_t expected = table.otherBits + table.layers[0].elements * 32 + table.layers[1].elements * 32;
        for (std::size_t i = 2; i < table.layers.size(); ++i)
            expected += byHand(table.layers[i], 8, "channel", true);
        QCOMPARE(table.sizeBits(c), expected);
        QuantConfig all32;
        all32.defaults.weight.bits = 32;
        QCOMPARE(table.sizeBits(all32), table.floatBits);
    }

    void noiseInterpolatesInDecibels_data()
    {
        QTest::addColumn<int>("bits");
        QTest::addColumn<double>("sqnrDb"); // expected; NaN: no noise
        QTest::newRow("measured") << 4 << 20.0;
        QTest::newRow("between") << 5 << 25.0;  // halfway 20 dB .. 30 dB (4 and 6 bits)
        QTest::newRow("between 6 and 8") << 7 << 35.0;
        QTest::newRow("below the curve") << 2 << 20.0;
        QTest::newRow("float") << 16 << double(NAN);
    }
    void noiseInterpolatesInDecibels()
    {
        QFETCH(int, bits);
        QFETCH(double, sqnrDb);
        const LayerSensitivity l = curve("a", {{4, 20.0}, {6, 30.0}, {8, 40.0}});
        const double n = layerNoise(l, bits);
        if (std::isnan(sqnrDb))
            QCOMPARE(n, 0.0);
        else
            QVERIFY(std::abs(n - std::pow(10.0, -sqnrDb / 10)) < 1e-12);
        QVERIFY(layerNoise(LayerSensitivity{}, 4) < 0);
    }

    void predictionSumsLayerNoise()
    {
        SensitivityResult s;
        s.mode = SensitivityMode::Weights;
        s.layers = {curve("a", {{4, 10.0}, {8, 30.0}}), curve("b", {{4, 20.0}, {8, 40.0}})};
        QuantConfig c;
        c.defaults.weight.bits = 4;
        LayerQuant b8 = c.defaults;
        b8.weight.bits = 8;
        c.layers["b"] = b8;
        const ErrorPrediction p = predictError(s, c, {"a", "b", "c"});
        QCOMPARE(p.layersPredicted, 2);
        QCOMPARE(p.layersMissing, 1); // "c" has no curve
        QCOMPARE(p.interpolated, 0);
        QVERIFY(std::abs(p.noise - (0.1 + 1e-4)) < 1e-12);
        QVERIFY(std::abs(p.sqnrDb - -10 * std::log10(0.1001)) < 1e-9);
        c.excluded.insert("a");
        QVERIFY(std::abs(predictError(s, c, {"a", "b"}).sqnrDb - 40.0) < 1e-9);
    }

    void optionsFeedTheFront()
    {
        SensitivityResult s;
        for (const auto& l : table.layers)
            s.layers.push_back(curve(l.layer, {{4, 15.0}, {8, 35.0}}));
        QuantConfig base;
        const auto opts = mixedLayerOptions(table, s, {4, 8}, base, false);
        QCOMPARE(opts.size(), table.layers.size());
        for (std::size_t i = 0; i < opts.size(); ++i) {
            QCOMPARE(opts[i].options.size(), std::size_t(2));
            QCOMPARE(opts[i].options[0].sizeBits, byHand(table.layers[i], 4, "channel", true));
            QCOMPARE(opts[i].options[0].cost, opts[i].options[0].sizeBits);
            QVERIFY(std::abs(opts[i].options[1].noise - std::pow(10.0, -3.5)) < 1e-12);
        }
        const auto byAvg = mixedLayerOptions(table, s, {4, 8}, base, true);
        QCOMPARE(byAvg[0].options[1].cost, table.layers[0].elements * 8);
        const QuantConfig c = configForBits(base, {{table.layers[0].layer, 4}});
        QCOMPARE(c.forLayer(table.layers[0].layer)->weight.bits, 4);
        QCOMPARE(c.forLayer(table.layers[1].layer)->weight.bits, 8);
    }

    // The table of an imported graph (from its shapes, no working copy of the weights,
    // unless BatchNorm folding changes them) equals the one of a session's working graph.
    void shapeTableEqualsSessionTable_data()
    {
        QTest::addColumn<QString>("model");
        for (const char* m : {"fashion_cnn.onnx", "byte_gpt.onnx", "byte_gpt_tiny_decomposed.onnx",
                 "byte_gpt_torch_encoder.onnx"})
            QTest::newRow(m) << QString::fromLatin1(m);
    }

    void shapeTableEqualsSessionTable()
    {
        QFETCH(QString, model);
        const Graph g = importOnnx(QS_SOURCE_DIR "/resources/demo/" + model.toStdString());
        const ModelSizeTable a = modelSizeTable(g);
        const ModelSizeTable b = modelSizeTable(QuantSession(g, QuantizeOptions {}));
        QVERIFY(!a.layers.empty());
        QCOMPARE(a.layers.size(), b.layers.size());
        for (std::size_t i = 0; i < a.layers.size(); ++i) {
            QCOMPARE(a.layers[i].layer, b.layers[i].layer);
            QCOMPARE(a.layers[i].weightShape, b.layers[i].weightShape);
            QCOMPARE(a.layers[i].outAxis, b.layers[i].outAxis);
            QCOMPARE(a.layers[i].inAxis, b.layers[i].inAxis);
            QCOMPARE(a.layers[i].elements, b.layers[i].elements);
        }
        QCOMPARE(a.otherBits, b.otherBits);
        QCOMPARE(a.floatBits, b.floatBits);
        QCOMPARE(a.kvContext, b.kvContext);
        QCOMPARE(a.operands.size(), b.operands.size());
        for (std::size_t i = 0; i < a.operands.size(); ++i) {
            QCOMPARE(a.operands[i].point, b.operands[i].point);
            QCOMPARE(a.operands[i].tokenElements, b.operands[i].tokenElements);
            QCOMPARE(a.operands[i].heads, b.operands[i].heads);
            QCOMPARE(a.operands[i].cached, b.operands[i].cached);
        }
        QuantConfig w4;
        w4.defaults.weight.bits = 4;
        QCOMPARE(a.sizeBits(w4), b.sizeBits(w4));
    }
};

QTEST_MAIN(TestBitBudget)
#include "test_bit_budget.moc"
