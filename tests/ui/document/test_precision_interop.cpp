// Precision interop in the studio: the bit configuration exported through the document
// is the core's text for that format, reads back into the same per-layer bits as one
// undo step, and a file naming a layer the model lacks is refused with its path and
// the configuration left as it was.
#include "interop/precision.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"

#include <QFile>
#include <QTemporaryDir>
#include <QUndoStack>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

namespace {

const QString demoPath = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");

QString readAll(const QString& path)
{
    QFile f(path);
    return f.open(QIODevice::ReadOnly) ? QString::fromUtf8(f.readAll()) : QString();
}

} // namespace

class TestPrecisionInterop : public QObject {
    Q_OBJECT

    ModelDocument doc;
    std::unique_ptr<QuantConfigDocument> config;
    QTemporaryDir dir;

    // Per layer "float" (excluded, or float bits) or "wXaY".
    QStringList bits() const
    {
        QStringList out;
        for (const auto& name : config->layerNames()) {
            const auto lq = config->config().forLayer(name);
            out << (!lq || lq->weight.isFloat() ? QStringLiteral("float")
                                                : QStringLiteral("w%1a%2").arg(lq->weight.bits).arg(lq->activation.bits));
        }
        return out;
    }

    // Layers 1 and 2 at `low` (weight, activation bits), the last at `last`, the rest the
    // defaults (W8A8): what the format can say.
    void mixedConfig(QPair<int, int> low = {4, 8}, QPair<int, int> last = {6, 8})
    {
        const auto& names = config->layerNames();
        config->applyBits({{names[1], {low.first, low.second}}, {names[2], {low.first, low.second}},
                              {names.back(), {last.first, last.second}}},
            QStringLiteral("mixed"));
    }

private slots:
    void initTestCase()
    {
        QVERIFY(dir.isValid());
        config = std::make_unique<QuantConfigDocument>(&doc);
        Progress progress;
        CancelToken cancel;
        doc.setModel(loadModelData(demoPath, progress, cancel), nullptr);
        QCOMPARE(config->layerCount(), 8);
    }

    void init()
    {
        config->setConfig(QuantConfig{});
        config->undoStack()->clear();
    }

    void roundTrip_data()
    {
        QTest::addColumn<int>("format");
        QTest::addColumn<QString>("file");
        QTest::addColumn<int>("lowBits");  // of layers 1 and 2 (weights and activations alike for float)
        QTest::addColumn<int>("lastBits"); // weight bits of the last layer
        // ONNX Runtime has 4- and 8-bit types, TensorRT int8 and float, rules anything.
        QTest::newRow("ONNX Runtime overrides") << int(PrecisionFormat::Ort) << "overrides.json" << 4 << 8;
        QTest::newRow("TensorRT layer precisions") << int(PrecisionFormat::Trt) << "trt.txt" << 32 << 32;
        QTest::newRow("rules") << int(PrecisionFormat::Rules) << "rules.txt" << 4 << 6;
    }

    void roundTrip()
    {
        QFETCH(int, format);
        QFETCH(QString, file);
        QFETCH(int, lowBits);
        QFETCH(int, lastBits);
        const auto f = PrecisionFormat(format);
        mixedConfig({lowBits, lowBits == 32 ? 32 : 8}, {lastBits, lastBits == 32 ? 32 : 8});
        const QStringList mixed = bits();
        QCOMPARE(mixed[0], QStringLiteral("w8a8"));
        QCOMPARE(mixed[1], lowBits == 32 ? QStringLiteral("float") : QStringLiteral("w%1a8").arg(lowBits));
        const QString path = dir.filePath(file);
        QStringList notes;
        QVERIFY2(config->exportPrecision(path, f, &notes), qPrintable(config->lastError()));
        // The file is the core's text for the same model and configuration.
        QCOMPARE(readAll(path), QString::fromStdString(exportPrecision(*doc.model()->graph, config->config(), f).text));

        config->setConfig(QuantConfig{});
        const QStringList plain = bits();
        QVERIFY(plain != mixed);
        const int steps = config->undoStack()->count();
        QVERIFY2(config->importPrecision(path, f, &notes), qPrintable(config->lastError()));
        QCOMPARE(bits(), mixed);
        QCOMPARE(config->undoStack()->count(), steps + 1);
        config->undoStack()->undo();
        QCOMPARE(bits(), plain);
        config->undoStack()->redo();
        QCOMPARE(bits(), mixed);
    }

    void unknownLayerIsRefusedAndNothingChanges()
    {
        mixedConfig();
        const QStringList before = bits();
        const int steps = config->undoStack()->count();
        const QString path = dir.filePath(QStringLiteral("bad-trt.txt"));
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("no_such_layer:int8\n");
        f.close();
        QVERIFY(!config->importPrecision(path, PrecisionFormat::Trt));
        QVERIFY2(config->lastError().contains(QStringLiteral("bad-trt.txt")), qPrintable(config->lastError()));
        QVERIFY2(config->lastError().contains(QStringLiteral("no_such_layer")), qPrintable(config->lastError()));
        QCOMPARE(bits(), before);
        QCOMPARE(config->undoStack()->count(), steps);
    }

    void missingFileNamesIt()
    {
        const QString path = dir.filePath(QStringLiteral("absent.json"));
        QVERIFY(!config->importPrecision(path, PrecisionFormat::Ort));
        QVERIFY2(config->lastError().contains(path), qPrintable(config->lastError()));
    }

    void aimetExportPointsToTheCli()
    {
        QVERIFY(!config->exportPrecision(dir.filePath(QStringLiteral("x.encodings")), PrecisionFormat::Aimet));
        QVERIFY2(config->lastError().contains(QStringLiteral("precision export")), qPrintable(config->lastError()));
        QVERIFY(!QFile::exists(dir.filePath(QStringLiteral("x.encodings"))));
    }
};

QTEST_MAIN(TestPrecisionInterop)
#include "test_precision_interop.moc"
