// sensitivity and mixed from the command line, beyond the JSON keys: a signal stops
// a sweep quickly and the store keeps what it measured as a cancelled run; the mixed
// front honours pins, bit limits and a byte budget, and shows measured next to predicted.
#include <QElapsedTimer>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

namespace {

const QString kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
const QString kData = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";

QJsonDocument runJson(const QStringList& args)
{
    QProcess p;
    p.start(QS_CLI_PATH, args);
    if (!p.waitForFinished(300000))
        qWarning("quantstudio-cli %s did not finish", qPrintable(args.join(' ')));
    const QByteArray out = p.readAllStandardOutput();
    if (p.exitCode() != 0) {
        qWarning("exit %d: %s", p.exitCode(), p.readAllStandardError().constData());
        return {};
    }
    return QJsonDocument::fromJson(out);
}

} // namespace

class TestCliSensitivity : public QObject {
    Q_OBJECT

private slots:
    void signalStopsTheSweepAndKeepsPartials()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("studio.db");
        QProcess p;
        // Without --json the progress line (with ETA) goes to stderr.
        p.start(QS_CLI_PATH, {"sensitivity", kModel, "--data", kData, "--limit", "1000", "--batch", "8", "--db", db});
        QVERIFY(p.waitForStarted());
        QByteArray err;
        QElapsedTimer waited;
        waited.start();
        // Wait until (layer, bits) measurements are under way.
        while (!err.contains("bits") && waited.elapsed() < 120000) {
            p.waitForReadyRead(100);
            err += p.readAllStandardError();
        }
        QVERIFY2(err.contains("ETA"), err.constData());
        QVERIFY2(err.contains("bits"), err.constData());
        QTest::qWait(100);
        QElapsedTimer stop;
        stop.start();
        p.terminate(); // SIGTERM, handled like Ctrl-C
        QVERIFY(p.waitForFinished(10000));
        const qint64 ms = stop.elapsed();
        qInfo("exited %lld ms after the signal", (long long)ms);
        QVERIFY(ms < 2000); // stops within a batch, then stores
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), 130);
        QVERIFY(p.readAllStandardOutput().contains("[INCOMPLETE]"));

        const QJsonArray list = runJson({"runs", "--db", db, "--json"}).array();
        QVERIFY2(!list.isEmpty(), "no run recorded");
        const QString id = QString::number(list[0].toObject()["id"].toInteger());
        QJsonObject shown = runJson({"show", id, "--db", db, "--json"}).object();
        QCOMPARE(shown["state"].toString(), QString("cancelled"));
        QCOMPARE(shown["metrics"].toObject()["extra"].toObject()["complete"].toBool(true), false);
        const QJsonArray layers = shown["layers"].toArray();
        QCOMPARE(layers.size(), 8);
        int measured = 0;
        for (const auto& l : layers)
            measured += l.toObject()["sensitivity_detail"].toObject().size();
        QVERIFY(measured > 0);
    }

    void hessianStoresEstimatorAndSpearman()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("studio.db");
        QJsonObject j = runJson({"sensitivity", kModel, "--data", kData, "--method", "hessian", "--hutchinson", "2",
                                    "--limit", "16", "--db", db, "--json"})
                            .object();
        QVERIFY(j["estimator"].toString().contains("Hutchinson"));
        QVERIFY(j["spearman"].isDouble());
        for (const auto& l : j["layers"].toArray())
            QVERIFY(l.toObject()["hessian_trace"].toDouble() > 0);
        QJsonObject shown = runJson({"show", QString::number(j["run_id"].toInteger()), "--db", db, "--json"}).object();
        const QJsonObject extra = shown["metrics"].toObject()["extra"].toObject();
        QCOMPARE(extra["spearman_vs_oneshot"].toDouble(), j["spearman"].toDouble());
        QCOMPARE(extra["estimator"].toString(), j["estimator"].toString());
    }

    void mixedHonoursConstraintsAndVerifies()
    {
        QTemporaryDir dir;
        const QString cfg = dir.filePath("chosen.json");
        const QString pinned = "/stem/stem.0/Conv";
        const qint64 budgetBytes = 55000;
        QJsonObject j =
            runJson({"mixed", kModel, "--data", kData, "--bits", "2,3,4,6,8", "--min-bits", "3", "--max-bits", "6",
                        "--pin", pinned + "=8", "--budget-bytes", QString::number(budgetBytes), "--limit", "32",
                        "--verify", "2", "--eval-limit", "64", "--out", cfg, "--json"})
                .object();
        QVERIFY(!j.isEmpty());
        const QJsonArray front = j["front"].toArray();
        QVERIFY(front.size() >= 3);
        int verified = 0;
        double lastSize = -1, lastPredicted = -1e9;
        for (const auto& v : front) {
            const QJsonObject p = v.toObject();
            QVERIFY(p["size_bits"].toDouble() > lastSize);
            QVERIFY(p["predicted"].toDouble() > lastPredicted); // a Pareto front: bigger is better
            lastSize = p["size_bits"].toDouble();
            lastPredicted = p["predicted"].toDouble();
            const QJsonObject layers = p["config"].toObject()["layers"].toObject();
            QVERIFY(!layers.isEmpty());
            for (auto it = layers.begin(); it != layers.end(); ++it) {
                const int bits = it.value().toObject()["weight"].toObject()["bits"].toInt();
                if (it.key() == pinned)
                    QCOMPARE(bits, 8);
                else
                    QVERIFY2(bits == 3 || bits == 4 || bits == 6, qPrintable(it.key()));
            }
            if (!p["measured"].isNull()) {
                ++verified;
                QVERIFY(p["measured"].toObject().contains("sqnr_db"));
                QVERIFY(p["measured"].toObject()["top1"].toDouble() > 0);
            }
        }
        QCOMPARE(verified, 2);
        const QJsonObject chosen = j["chosen"].toObject();
        QVERIFY(chosen["size_bits"].toDouble() <= double(budgetBytes) * 8);
        QVERIFY(!chosen["measured"].isNull());
        QVERIFY(QFile::exists(cfg));
    }
};

QTEST_APPLESS_MAIN(TestCliSensitivity)
#include "test_cli_sensitivity.moc"
