// quantstudio-cli qat on the demo CNN and its slice: loss per step, checkpoints recorded
// as quantization runs tagged "qat" whose config holds the learned ranges, export of a
// checkpoint run (its replay re-derives the learned grids), resume, and bad options.
#include "support/cli_runner.h"

#include "store/store.h"

#include <QElapsedTimer>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

using namespace qs;
using qs::test::cli;

namespace {

const QString kModel = QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx";
const QString kData = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";

QStringList qatArgs(const QString& db)
{
    return {"qat", kModel, "--data", kData, "--limit", "128", "--eval-data", kData, "--eval-limit", "32", "--wbits",
        "4", "--abits", "4", "--batch", "16", "--steps", "4", "--checkpoint-every", "2", "--eval-every", "2",
        "--calib-limit", "32", "--db", db};
}

} // namespace

class TestCliQat : public QObject {
    Q_OBJECT

private slots:
    void checkpointsAreRunsThatExportAndResume()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("runs.qsdb");
        const auto r = cli(qatArgs(db));
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const QString out = QString::fromUtf8(r.out);
        QVERIFY2(
            out.contains(QRegularExpression("step +4  loss [0-9.]+  kd [0-9.]+  ce [0-9.]+  lr ")), qPrintable(out));
        QVERIFY(out.contains(QRegularExpression("eval +2  held-out kd [0-9.]+  top-1 [0-9.]+%")));
        QVERIFY(out.contains("CPU "));

        int64_t last = 0;
        {
            const Store store = Store::open(db.toStdString());
            const auto runs = store.runs();
            QCOMPARE(int(runs.size()), 2);
            for (const RunRecord& run : runs) {
                QCOMPARE(run.state, RunState::Done);
                QVERIFY(std::find(run.tags.begin(), run.tags.end(), "qat") != run.tags.end());
                QVERIFY(run.config.contains("ranges"));
                QCOMPARE(run.config["ranges"].size(), std::size_t(8)); // every conv and the Gemm input
                QVERIFY(run.metrics.extra["qat"]["steps"].size() >= 2);
                QVERIFY(run.metrics.top1.has_value());
            }
            QCOMPARE(runs.front().config["qat"]["step"].get<int64_t>(), int64_t(4)); // newest first
            QCOMPARE(runs.back().config["qat"]["step"].get<int64_t>(), int64_t(2));
            last = runs.front().id;
        }
        // Export replays the run: the learned ranges must come back as they were stored.
        const auto e =
            cli({"export", QString::number(last), "--format", "qdq", "--out", dir.filePath("q.onnx"), "--db", db});
        QVERIFY2(e.exitCode == 0, e.err.constData());
        QVERIFY(QFile::exists(dir.filePath("q.onnx")));

        QStringList resume = {"qat", "--db", db, "--resume", QString::number(last), "--steps", "2", "--data", kData,
            "--limit", "64", "--eval-data", kData, "--eval-limit", "32"};
        const auto rr = cli(resume);
        QVERIFY2(rr.exitCode == 0, rr.err.constData());
        QVERIFY2(QString::fromUtf8(rr.out).contains(QRegularExpression("step +6  loss")), rr.out.constData());
        const Store store = Store::open(db.toStdString());
        QCOMPARE(store.runs().front().config["qat"]["step"].get<int64_t>(), int64_t(6));
        // End to end, a checkpoint keeps its training state (Adam's moments) beside it.
        const std::string state = store.runs().front().config["qat"]["state"].get<std::string>();
        QVERIFY2(QFile::exists(QString::fromStdString(state)), state.c_str());
    }

    // SIGTERM (as Ctrl-C) stops training within a step: exit 130, checkpoints kept.
    void signalStopsTraining()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath("runs.qsdb");
        QStringList args = qatArgs(db);
        args[args.indexOf("--steps") + 1] = "100000";
        QProcess p;
        p.start(QS_CLI_PATH, args);
        QVERIFY(p.waitForStarted());
        QByteArray out;
        QElapsedTimer waited;
        waited.start();
        while (!out.contains("step      3") && waited.elapsed() < 120000) {
            p.waitForReadyRead(100);
            out += p.readAllStandardOutput();
        }
        QVERIFY2(out.contains("step      3"), out.constData());
        QElapsedTimer stop;
        stop.start();
        p.terminate();
        QVERIFY(p.waitForFinished(10000));
        qInfo("exited %lld ms after the signal", (long long)stop.elapsed());
        QVERIFY(stop.elapsed() < 2000);
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), 130);
        const Store store = Store::open(db.toStdString());
        QVERIFY(!store.runs().empty()); // the checkpoint of step 2 stays, finished
        for (const RunRecord& run : store.runs())
            QCOMPARE(run.state, RunState::Done);
    }

    void badOptionsNameTheField()
    {
        QTemporaryDir dir;
        QFile f(dir.filePath("cfg.json"));
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(R"({"default": {"weight": {"bits": 4}}, "qat": {"lr": 0.001, "stepz": 3}})");
        f.close();
        const auto r = cli({"qat", kModel, "--data", kData, "--eval-data", kData, "--config", f.fileName()});
        QCOMPARE(r.exitCode, 1);
        QVERIFY2(r.err.contains("qat.stepz: unknown field"), r.err.constData());
        const auto noHeld = cli({"qat", kModel, "--data", kData});
        QCOMPARE(noHeld.exitCode, 1);
        QVERIFY2(noHeld.err.contains("--eval-data"), noHeld.err.constData());
        const auto resume = cli({"qat", "--resume", "1", "--data", kData, "--eval-data", kData});
        QCOMPARE(resume.exitCode, 1);
        QVERIFY2(resume.err.contains("--resume: needs --db"), resume.err.constData());
    }
};

QTEST_APPLESS_MAIN(TestCliQat)
#include "test_cli_qat.moc"
