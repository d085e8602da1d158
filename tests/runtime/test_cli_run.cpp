// `quantstudio-cli run` end to end: the demo slice's accuracy as recorded at
// training time, JSON keys, random inputs without labels, one-line errors.
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QtTest>

#include "support/cli_runner.h"

namespace {

using Run = qs::test::CliResult;
using qs::test::cli;

const QString kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
const QString kImages = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";
const QString kLabels = QS_SOURCE_DIR "/resources/demo/fashion1k-labels-idx1-ubyte.gz";

} // namespace

class TestCliRun : public QObject {
    Q_OBJECT

private slots:
    void demoAccuracy_data()
    {
        QTest::addColumn<QStringList>("extra");
        QTest::newRow("batch 64, 2 threads") << QStringList{"--batch", "64", "--threads", "2"};
        QTest::newRow("batch 1 limit 100, explicit labels, mean/std") << QStringList{
            "--batch", "1", "--limit", "100", "--labels", kLabels, "--mean", "0.2860", "--std", "0.3530"};
    }

    void demoAccuracy()
    {
        QFETCH(QStringList, extra);
        Run r = cli(QStringList{"run", kModel, "--data", kImages, "--json"} + extra);
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QJsonObject j = QJsonDocument::fromJson(r.out).object();
        for (const char* key : {"images", "seconds", "images_per_second", "top1"})
            QVERIFY2(j.contains(key), key);
        const bool limited = extra.contains("--limit");
        QCOMPARE(j["images"].toInt(), limited ? 100 : 1000);
        QVERIFY(j["seconds"].toDouble() > 0);
        QVERIFY(j["images_per_second"].toDouble() > 0);
        if (!limited)
            QCOMPARE(j["top1"].toDouble(), 0.934); // quantstudio.slice_top1
        else
            QVERIFY(j["top1"].toDouble() > 0.8);
    }

    void randomHasNoTop1()
    {
        Run r = cli({"run", kModel, "--data", "random:10", "--batch", "4", "--json"});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QJsonObject j = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(j["images"].toInt(), 10);
        QVERIFY(j["top1"].isNull());
        Run text = cli({"run", kModel, "--data", "random:3"});
        QCOMPARE(text.exitCode, 0);
        QVERIFY(text.out.contains("images/s"));
    }

    void errorsAreOneLine_data()
    {
        QTest::addColumn<QStringList>("args");
        QTest::addColumn<QString>("mentions");
        QTest::newRow("missing model") << QStringList{"run", "/nonexistent.onnx"} << "/nonexistent.onnx";
        QTest::newRow("bad batch") << QStringList{"run", kModel, "--batch", "0"} << "--batch";
        QTest::newRow("missing data") << QStringList{"run", kModel, "--data", "/nope-images-idx3-ubyte"} << "nope";
    }

    void errorsAreOneLine()
    {
        QFETCH(QStringList, args);
        QFETCH(QString, mentions);
        Run r = cli(args);
        QVERIFY(r.exitCode != 0);
        QCOMPARE(r.err.trimmed().count('\n'), 0);
        QVERIFY2(r.err.contains(mentions.toUtf8()), r.err.constData());
    }
};

QTEST_APPLESS_MAIN(TestCliRun)
#include "test_cli_run.moc"
