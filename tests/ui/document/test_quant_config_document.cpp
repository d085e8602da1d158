// The bit-width configuration document: defaults from the model, edits as single undo
// steps (bulk edits, presets, bits from a Pareto point), invalid values refused, and the
// saved JSON read back by QuantConfig::load and by `quantstudio-cli quantize --config`.
#include "support/cli_runner.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"

#include <QSignalSpy>
#include <QTemporaryDir>
#include <QUndoStack>
#include <QtTest>

#include <nlohmann/json.hpp>

using namespace qs;
using namespace qs::ui;

namespace {

const QString demoPath = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
const QString demoImages = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz");

using Field = QuantConfigDocument::Field;
using Preset = QuantConfigDocument::Preset;

} // namespace

class TestQuantConfigDocument : public QObject {
    Q_OBJECT

    ModelDocument doc;
    std::unique_ptr<QuantConfigDocument> config;

    QList<QPair<int, int>> bitsOf() const
    {
        QList<QPair<int, int>> out;
        for (int r = 0; r < config->layerCount(); ++r)
            out << qMakePair(config->layer(r).weight.bits, config->layer(r).activation.bits);
        return out;
    }

private slots:
    void initTestCase()
    {
        config = std::make_unique<QuantConfigDocument>(&doc);
        Progress progress;
        CancelToken cancel;
        QSignalSpy changed(config.get(), &QuantConfigDocument::configChanged);
        doc.setModel(loadModelData(demoPath, progress, cancel), nullptr);
        QCOMPARE(changed.count(), 1);
        QCOMPARE(config->layerCount(), 8);
    }

    void init()
    {
        config->undoStack()->clear();
        config->setConfig(QuantConfig{});
        config->undoStack()->clear();
    }

    void defaultsFromTheModel()
    {
        for (int r = 0; r < config->layerCount(); ++r) {
            QCOMPARE(config->value(r, Field::WeightBits).toInt(), 8);
            QCOMPARE(config->value(r, Field::ActivationBits).toInt(), 8);
            QCOMPARE(config->value(r, Field::Granularity).toString(), QStringLiteral("channel"));
            QCOMPARE(config->value(r, Field::Calibrator).toString(), QStringLiteral("minmax"));
        }
        QCOMPARE(QString::fromStdString(config->layerNames().front()), QString::fromStdString(doc.layer(0)->summary.name));
    }

    void bulkEditIsOneUndoStep_data()
    {
        QTest::addColumn<int>("field");
        QTest::addColumn<QVariant>("value");
        QTest::addColumn<QVariant>("shown");
        QTest::newRow("weight bits") << int(Field::WeightBits) << QVariant(4) << QVariant(4);
        QTest::newRow("activation bits") << int(Field::ActivationBits) << QVariant(6) << QVariant(6);
        QTest::newRow("float activations") << int(Field::ActivationBits) << QVariant(16) << QVariant(16);
        QTest::newRow("granularity") << int(Field::Granularity) << QVariant(QStringLiteral("group:32"))
                                     << QVariant(QStringLiteral("group:32"));
        QTest::newRow("calibrator") << int(Field::Calibrator) << QVariant(QStringLiteral("percentile:99.9"))
                                    << QVariant(QStringLiteral("percentile:99.9"));
        QTest::newRow("calibrator default param") << int(Field::Calibrator) << QVariant(QStringLiteral("percentile"))
                                                  << QVariant(QStringLiteral("percentile:99.99"));
    }
    void bulkEditIsOneUndoStep()
    {
        QFETCH(int, field);
        QFETCH(QVariant, value);
        QFETCH(QVariant, shown);
        const Field f = Field(field);
        const QVariant before = config->value(0, f);
        QSignalSpy changed(config.get(), &QuantConfigDocument::configChanged);
        QVERIFY(config->setLayers({1, 3, 5}, f, value));
        QCOMPARE(config->undoStack()->count(), 1);
        QCOMPARE(changed.count(), 1);
        for (int r = 0; r < config->layerCount(); ++r)
            QCOMPARE(config->value(r, f), (r == 1 || r == 3 || r == 5) ? shown : before);
        config->undoStack()->undo();
        for (int r = 0; r < config->layerCount(); ++r)
            QCOMPARE(config->value(r, f), before);
        QVERIFY(config->config().layers.empty()); // back to no overrides at all
        config->undoStack()->redo();
        QCOMPARE(config->value(3, f), shown);
        // The same value again changes nothing and pushes nothing.
        QVERIFY(config->setLayers({1, 3, 5}, f, value));
        QCOMPARE(config->undoStack()->count(), 1);
    }

    void invalidValuesAreRefused_data()
    {
        QTest::addColumn<int>("field");
        QTest::addColumn<QVariant>("value");
        QTest::addColumn<QString>("message");
        QTest::newRow("1 bit") << int(Field::WeightBits) << QVariant(1) << QStringLiteral("not 2..8");
        QTest::newRow("12 bits") << int(Field::ActivationBits) << QVariant(12) << QStringLiteral("not 2..8");
        QTest::newRow("text bits") << int(Field::WeightBits) << QVariant(QStringLiteral("four")) << QStringLiteral("not 2..8");
        QTest::newRow("granularity") << int(Field::Granularity) << QVariant(QStringLiteral("row"))
                                     << QStringLiteral("expected tensor, channel or group:N");
        QTest::newRow("group size") << int(Field::Granularity) << QVariant(QStringLiteral("group:0"))
                                    << QStringLiteral("group size must be an integer");
        QTest::newRow("calibrator") << int(Field::Calibrator) << QVariant(QStringLiteral("kmeans"))
                                    << QStringLiteral("expected minmax");
    }
    void invalidValuesAreRefused()
    {
        QFETCH(int, field);
        QFETCH(QVariant, value);
        QFETCH(QString, message);
        QVERIFY(!config->setLayers({0, 1}, Field(field), value));
        QVERIFY2(config->lastError().contains(message), qPrintable(config->lastError()));
        QCOMPARE(config->undoStack()->count(), 0);
        QVERIFY(config->config().layers.empty());
    }

    void presets_data()
    {
        QTest::addColumn<QList<int>>("presets");
        QTest::addColumn<QList<int>>("weightBits"); // per row
        QTest::addColumn<QList<int>>("actBits");
        QTest::newRow("W4A8") << QList<int>{int(Preset::W4A8)} << QList<int>{4, 4, 4, 4, 4, 4, 4, 4}
                              << QList<int>{8, 8, 8, 8, 8, 8, 8, 8};
        QTest::newRow("W4A8, ends at 8") << QList<int>{int(Preset::W4A8), int(Preset::KeepEnds8)}
                                         << QList<int>{8, 4, 4, 4, 4, 4, 4, 8} << QList<int>{8, 8, 8, 8, 8, 8, 8, 8};
        QTest::newRow("W4A8, then all 8") << QList<int>{int(Preset::W4A8), int(Preset::All8)}
                                          << QList<int>{8, 8, 8, 8, 8, 8, 8, 8} << QList<int>{8, 8, 8, 8, 8, 8, 8, 8};
        QTest::newRow("ends at 8 alone") << QList<int>{int(Preset::KeepEnds8)} << QList<int>{8, 8, 3, 8, 8, 8, 8, 8}
                                         << QList<int>{8, 6, 6, 6, 6, 6, 6, 8};
    }
    void presets()
    {
        QFETCH(QList<int>, presets);
        QFETCH(QList<int>, weightBits);
        QFETCH(QList<int>, actBits);
        // Start from a mixed configuration so every preset has something to change.
        QVERIFY(config->setLayers({0, 1, 2, 3, 4, 5, 6, 7}, Field::ActivationBits, 6));
        QVERIFY(config->setLayers({2}, Field::WeightBits, 3));
        const auto start = bitsOf();
        const int steps = config->undoStack()->count();
        for (int p : presets)
            config->applyPreset(Preset(p));
        QCOMPARE(config->undoStack()->count(), steps + int(presets.size()));
        for (int r = 0; r < config->layerCount(); ++r) {
            QCOMPARE(config->layer(r).weight.bits, weightBits[r]);
            QCOMPARE(config->layer(r).activation.bits, actBits[r]);
        }
        for (int i = 0; i < int(presets.size()); ++i)
            config->undoStack()->undo();
        QCOMPARE(bitsOf(), start);
    }

    void applyBitsIsOneStep()
    {
        std::map<std::string, std::pair<int, int>> bits;
        for (int r = 0; r < config->layerCount(); ++r)
            bits[config->layerNames()[std::size_t(r)]] = {2 + r % 7, r % 2 ? 0 : 4}; // 0: keep activation bits
        QSignalSpy changed(config.get(), &QuantConfigDocument::configChanged);
        config->applyBits(bits, QStringLiteral("Apply front point"));
        QCOMPARE(changed.count(), 1);
        QCOMPARE(config->undoStack()->count(), 1);
        QCOMPARE(config->undoStack()->undoText(), QStringLiteral("Apply front point"));
        for (int r = 0; r < config->layerCount(); ++r) {
            QCOMPARE(config->layer(r).weight.bits, 2 + r % 7);
            QCOMPARE(config->layer(r).activation.bits, r % 2 ? 8 : 4);
        }
        config->undoStack()->undo();
        for (int r = 0; r < config->layerCount(); ++r)
            QCOMPARE(config->layer(r).weight.bits, 8);
    }

    void jsonRoundTrip()
    {
        QTemporaryDir dir;
        QVERIFY(config->setLayers({0, 7}, Field::WeightBits, 6));
        QVERIFY(config->setLayers({1, 2}, Field::WeightBits, 4));
        QVERIFY(config->setLayers({2}, Field::ActivationBits, 16));
        QVERIFY(config->setLayers({3}, Field::Granularity, QStringLiteral("tensor")));
        QVERIFY(config->setLayers({4}, Field::Calibrator, QStringLiteral("mse")));
        const QString path = dir.filePath(QStringLiteral("cfg.json"));
        QVERIFY2(config->save(path), qPrintable(config->lastError()));
        QVERIFY(config->undoStack()->isClean());

        // The parser `quantize --config` uses.
        const QuantConfig parsed = QuantConfig::load(path.toStdString());
        for (int r = 0; r < config->layerCount(); ++r)
            QVERIFY(parsed.forLayer(config->layerNames()[std::size_t(r)]) == config->layer(r));

        // Loaded into a fresh document: the same configuration, one undo step.
        QuantConfigDocument other(&doc);
        QVERIFY2(other.load(path), qPrintable(other.lastError()));
        QCOMPARE(other.undoStack()->count(), 1);
        QCOMPARE(QString::fromStdString(other.config().toJson().dump()), QString::fromStdString(config->config().toJson().dump()));
        other.undoStack()->undo();
        QVERIFY(other.config().layers.empty());

        // A broken file changes nothing and says where it is wrong.
        QFile bad(dir.filePath(QStringLiteral("bad.json")));
        QVERIFY(bad.open(QIODevice::WriteOnly));
        bad.write(R"({"layers": {"conv1": {"weight": {"bits": 9}}}})");
        bad.close();
        QVERIFY(!other.load(bad.fileName()));
        QVERIFY2(other.lastError().contains(QStringLiteral("layers.conv1.weight.bits")), qPrintable(other.lastError()));
        QVERIFY(other.config().layers.empty());
    }

    void cliQuantizesWithTheSavedConfig()
    {
        QTemporaryDir dir;
        QVERIFY(config->setLayers({1, 2}, Field::WeightBits, 4));
        QVERIFY(config->setLayers({3}, Field::ActivationBits, 6));
        QVERIFY(config->setLayers({5}, Field::Granularity, QStringLiteral("tensor")));
        const QString path = dir.filePath(QStringLiteral("cfg.json"));
        QVERIFY(config->save(path));
        const auto r = qs::test::cli({QStringLiteral("quantize"), demoPath, QStringLiteral("--data"), demoImages,
                                      QStringLiteral("--config"), path, QStringLiteral("--calib-limit"), QStringLiteral("32"),
                                      QStringLiteral("--eval-limit"), QStringLiteral("32"), QStringLiteral("--json")});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto j = nlohmann::json::parse(r.out.toStdString());
        int seen = 0;
        for (const auto& l : j["layers"]) {
            const auto it = std::find(config->layerNames().begin(), config->layerNames().end(), l["name"].get<std::string>());
            if (it == config->layerNames().end())
                continue;
            const int row = int(it - config->layerNames().begin());
            QCOMPARE(l["wbits"].get<int>(), config->layer(row).weight.bits);
            QCOMPARE(l["abits"].get<int>(), config->layer(row).activation.bits);
            QCOMPARE(QString::fromStdString(l["granularity"].get<std::string>()).section(QLatin1Char(':'), 0, 0),
                     granularityText(config->layer(row).weight).section(QLatin1Char(':'), 0, 0));
            ++seen;
        }
        QCOMPARE(seen, config->layerCount());
    }
};

QTEST_MAIN(TestQuantConfigDocument)
#include "test_quant_config_document.moc"
