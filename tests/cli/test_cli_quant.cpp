// quantize, sensitivity and mixed from the command line: JSON keys, the run
// recorded in the store, and one-line errors.
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "support/cli_runner.h"

#include <cmath>

namespace {

using Run = qs::test::CliResult;
using qs::test::cli;

QJsonObject json(const Run& r)
{
    QJsonParseError e;
    QJsonObject o = QJsonDocument::fromJson(r.out, &e).object();
    if (e.error != QJsonParseError::NoError)
        qWarning("not JSON: %s\n%s", r.out.left(400).constData(), r.err.constData());
    return o;
}

const QString kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
const QString kData = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";

} // namespace

class TestCliQuant : public QObject {
    Q_OBJECT

private slots:
    void quantizeRecordsARun()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("studio.db");
        Run r = cli({"quantize", kModel, "--data", kData, "--wbits", "4", "--abits", "8", "--granularity", "channel",
                     "--calib", "mse", "--bias-correction", "--calib-limit", "64", "--eval-limit", "200", "--db", db,
                     "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QJsonObject j = json(r);
        for (const char* key : {"run_id", "top1", "fp32_top1", "top1_agreement", "sqnr_db", "size_bits", "compression",
                                "layers"})
            QVERIFY2(j.contains(key), key);
        QVERIFY(j["run_id"].toInteger() > 0);
        QCOMPARE(j["layers"].toArray().size(), 8);
        QJsonObject layer = j["layers"][0].toObject();
        for (const char* key : {"name", "wbits", "abits", "sqnr_db"})
            QVERIFY2(layer.contains(key), key);
        QCOMPARE(layer["wbits"].toInt(), 4);
        QVERIFY(j["top1"].toDouble() > 0.8);
        QVERIFY(j["compression"].toDouble() > 6);

        Run shown = cli({"show", QString::number(j["run_id"].toInteger()), "--db", db, "--json"});
        QVERIFY2(shown.exitCode == 0, shown.err.constData());
        QVERIFY(shown.out.contains("quantization"));
        QVERIFY(shown.out.contains("/res1/conv1/Conv"));
        QVERIFY(shown.out.contains("bias_correction"));
    }

    // Per-tensor ranges in --config: honoured by calibration and weight quantization,
    // recorded with the run (config and per-layer clip ranges), and a name that is no
    // quantized tensor is a one-line error naming it.
    void quantizeHonoursPerTensorRanges()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("studio.db");
        const QString cfg = dir.filePath("ranges.json");
        auto write = [&cfg](const QByteArray& text) {
            QFile f(cfg);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(text);
        };
        write(R"({"ranges": {"/down1/down1.2/Relu_output_0": [0, 1.5], "fc.weight": [-0.25, 0.25]}})");
        const QStringList common = {"--data", kData, "--calib-limit", "64", "--eval-limit", "100", "--json"};
        Run r = cli(QStringList{"quantize", kModel, "--config", cfg, "--db", db} + common);
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QJsonObject j = json(r);
        QCOMPARE(j["config"].toObject()["ranges"].toObject()["fc.weight"].toArray().at(1).toDouble(), 0.25);
        Run plain = cli(QStringList{"quantize", kModel} + common);
        QVERIFY2(plain.exitCode == 0, plain.err.constData());
        QVERIFY(json(plain)["sqnr_db"].toDouble() != j["sqnr_db"].toDouble()); // the ranges change the model

        Run shown = cli({"show", QString::number(j["run_id"].toInteger()), "--db", db, "--json"});
        QVERIFY2(shown.exitCode == 0, shown.err.constData());
        const QJsonObject run = QJsonDocument::fromJson(shown.out).object();
        QVERIFY2(QString::fromUtf8(shown.out).contains("/down1/down1.2/Relu_output_0"), shown.out.left(600).constData());
        bool sawAct = false, sawWeight = false;
        const QJsonArray layers = run["layers"].toArray();
        for (const auto& v : layers) {
            const QJsonObject l = v.toObject();
            if (l["layer"].toString() == "/res1/conv1/Conv") {
                sawAct = true;
                QCOMPARE(l["act_clip"].toArray().at(0).toDouble(), 0.0);
                QCOMPARE(l["act_clip"].toArray().at(1).toDouble(), 1.5);
            }
            if (l["layer"].toString() == "/fc/Gemm") {
                sawWeight = true;
                QCOMPARE(l["weight_clip"].toArray().at(0).toDouble(), -0.25);
            }
        }
        QVERIFY2(sawAct && sawWeight, shown.out.left(600).constData());

        // The source name of a BN-folded weight, and a name the model does not have.
        write(R"({"ranges": {"res1.conv1.weight": [-1, 1]}})");
        Run folded = cli(QStringList{"quantize", kModel, "--config", cfg} + common);
        QVERIFY(folded.exitCode != 0);
        QVERIFY2(folded.err.contains("ranges.res1.conv1.weight") && folded.err.contains("/res1/conv1/Conv.weight_bnfolded"),
                 folded.err.constData());
        QCOMPARE(folded.err.trimmed().count('\n'), 0);
        write(R"({"ranges": {"nope": [-1, 1]}})");
        Run unknown = cli(QStringList{"quantize", kModel, "--config", cfg} + common);
        QVERIFY(unknown.exitCode != 0);
        QVERIFY2(unknown.err.contains("ranges.nope: the model has no tensor of that name"), unknown.err.constData());
    }

    void quantizeInt8ReportsMetrics()
    {
        Run r = cli({"quantize", kModel, "--data", kData, "--int8", "--calib-limit", "64", "--eval-limit", "256",
                     "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QJsonObject j = json(r);
        QVERIFY(j["int8"].toBool());
        for (const char* key : {"top1", "fp32_top1", "top1_agreement", "sqnr_db", "latency_ms", "fp32_latency_ms"})
            QVERIFY2(j.contains(key), key);
        QVERIFY(j["top1_agreement"].toDouble() > 0.97);
        QVERIFY(j["sqnr_db"].toDouble() > 20);
        QVERIFY(std::abs(j["top1"].toDouble() - j["fp32_top1"].toDouble()) < 0.02);
        QVERIFY(j["latency_ms"].toDouble() > 0);
        QCOMPARE(j["layers"].toArray().size(), 8);

        Run text = cli({"quantize", kModel, "--data", kData, "--int8", "--calib-limit", "32", "--eval-limit", "64"});
        QVERIFY2(text.exitCode == 0, text.err.constData());
        QVERIFY(text.out.contains("[INT8 kernels, oneDNN]"));

        // A spec INT8 kernels cannot run: one line naming the layer, non-zero exit.
        Run bad = cli({"quantize", kModel, "--data", kData, "--int8", "--abits", "6", "--calib-limit", "16",
                       "--eval-limit", "16"});
        QVERIFY(bad.exitCode != 0);
        QVERIFY2(bad.err.contains("/stem/stem.0/Conv") && bad.err.contains("exactly 8"), bad.err.constData());
        QCOMPARE(bad.err.trimmed().count('\n'), 0);
    }

    void sensitivityAndMixed()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("studio.db");
        Run s = cli({"sensitivity", kModel, "--data", kData, "--bits", "3,4,8", "--limit", "32", "--db", db, "--json"});
        QVERIFY2(s.exitCode == 0, s.err.constData());
        QJsonObject j = json(s);
        for (const char* key : {"run_id", "layers", "seconds"})
            QVERIFY2(j.contains(key), key);
        QJsonObject l0 = j["layers"][0].toObject();
        QVERIFY(l0.contains("name"));
        QJsonObject by = l0["by_bits"].toObject();
        QCOMPARE(by.keys(), (QStringList{"3", "4", "8"}));
        for (const char* key : {"sqnr_db", "kl", "top1_agreement", "top1"})
            QVERIFY2(by["4"].toObject().contains(key), key);

        const QString cfg = dir.filePath("mixed.json");
        Run m = cli({"mixed", kModel, "--data", kData, "--bits", "3,4,6,8", "--budget-bits", "5", "--limit", "32",
                     "--verify", "2", "--eval-limit", "100", "--out", cfg, "--db", db, "--json"});
        QVERIFY2(m.exitCode == 0, m.err.constData());
        QJsonObject mj = json(m);
        QVERIFY(mj["front"].toArray().size() >= 3);
        QJsonObject p0 = mj["front"][0].toObject();
        for (const char* key : {"size_bits", "predicted", "measured", "config"})
            QVERIFY2(p0.contains(key), key);
        QVERIFY(mj["chosen"].toObject()["average_bits"].toDouble() <= 5.0);
        QVERIFY(!mj["chosen"].toObject()["measured"].isNull());
        QVERIFY(QFile::exists(cfg));
        // The chosen configuration runs as it is.
        Run q = cli({"quantize", kModel, "--data", kData, "--config", cfg, "--calib-limit", "32", "--eval-limit", "64",
                     "--json"});
        QVERIFY2(q.exitCode == 0, q.err.constData());

        Run runs = cli({"runs", "--db", db, "--json"});
        QVERIFY(runs.out.contains("sensitivity"));
        QVERIFY(runs.out.contains("mixed-precision-search"));
    }

    void errorsAreOneLine_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("expected");
        QTest::newRow("bad bits") << QStringList{"quantize", kModel, "--data", kData, "--wbits", "9"} << "--wbits";
        QTest::newRow("bad calibrator") << QStringList{"quantize", kModel, "--data", kData, "--calib", "magic"}
                                        << "calibrator \"magic\"";
        QTest::newRow("unknown algorithm") << QStringList{"quantize", kModel, "--data", kData, "--algo", "magic"}
                                           << "unknown algorithm \"magic\"";
        QTest::newRow("missing data") << QStringList{"quantize", kModel} << "missing --data";
        QTest::newRow("wrong data shape") << QStringList{"quantize", kModel, "--data",
                                                         QS_SOURCE_DIR "/resources/demo/fashion1k-logits.npy"}
                                          << "do not split into samples";
        QTest::newRow("no budget") << QStringList{"mixed", kModel, "--data", kData} << "--budget-bits";
        QTest::newRow("bad mode") << QStringList{"sensitivity", kModel, "--data", kData, "--mode", "x"} << "--mode";
    }

    void errorsAreOneLine()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, expected);
        Run r = cli(args);
        QVERIFY(r.exitCode != 0);
        QCOMPARE(r.err.count('\n'), 1);
        QVERIFY2(r.err.contains(expected.toUtf8()), r.err.constData());
    }
};

QTEST_GUILESS_MAIN(TestCliQuant)
#include "test_cli_quant.moc"
