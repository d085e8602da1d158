// A writer killed with SIGKILL in the middle of a run: the database passes
// integrity_check, earlier runs are intact, committed layer batches are whole,
// and the killed run reads as `interrupted` (read-only opens see it at once, a
// writable open records it) -- while a live writer's run is never taken for dead.
#include "store/report.h"
#include "store/store.h"
#include "util/error.h"

#include "store_test_util.h"

#include <QElapsedTimer>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

using namespace qs;
using namespace qs::test;

namespace {

// The whole visible content of a run, for before/after comparison.
std::string snapshot(const Store& store, int64_t id)
{
    nlohmann::json j = runToJson(store.run(id));
    for (const auto& l : store.layerResults(id))
        j["layers"].push_back(layerToJson(l));
    return j.dump();
}

} // namespace

class TestStoreCrash : public QObject {
    Q_OBJECT

private slots:
    void killedWriter_data()
    {
        QTest::addColumn<QString>("mode");
        QTest::addColumn<int>("batchesBeforeKill");
        QTest::newRow("killed while writing batches") << "loop" << 6;
        QTest::newRow("killed while writing, early") << "loop" << 1;
        QTest::newRow("killed while idle") << "hold" << 1;
    }

    void killedWriter()
    {
        QFETCH(QString, mode);
        QFETCH(int, batchesBeforeKill);
        QTemporaryDir dir;
        const QString qpath = dir.filePath("studio.db");
        const std::string path = qpath.toStdString();

        // Earlier runs, finished through the API.
        std::map<int64_t, std::string> before;
        {
            Store store = Store::open(path);
            const int64_t model = store.upsertModel(sampleModel("m"));
            for (int i = 0; i < 3; ++i) {
                const int64_t id = store.beginRun({model, {}, RunKind::Quantization, {{"i", i}}, {"before"}});
                store.addLayerResults(id, {sampleLayer("conv1", 4, 20 + i), sampleLayer("conv2", 8, 30 + i)});
                store.finishRun(id, i == 1 ? RunState::Failed : RunState::Done, sampleMetrics(0.5 + i / 10.0),
                                i == 1 ? "failed on purpose" : "");
                before[id] = snapshot(store, id);
            }
        }

        QProcess child;
        child.start(QS_CRASH_WRITER_PATH, {qpath, mode});
        QVERIFY2(child.waitForStarted(10000), "cannot start store_crash_writer");
        int64_t runId = 0;
        int batches = 0;
        QElapsedTimer timer;
        timer.start();
        while (batches < batchesBeforeKill && timer.elapsed() < 30000) {
            if (!child.canReadLine() && !child.waitForReadyRead(1000)) {
                QVERIFY2(child.state() == QProcess::Running, child.readAllStandardError().constData());
                continue;
            }
            while (child.canReadLine()) {
                const QString line = QString::fromUtf8(child.readLine()).trimmed();
                if (line.startsWith("run "))
                    runId = line.mid(4).toLongLong();
                else if (line.startsWith("batch "))
                    ++batches;
            }
        }
        QVERIFY(runId > 0);
        QVERIFY(batches >= batchesBeforeKill);

        // While the writer lives, no one takes its run for interrupted.
        {
            Store other = Store::open(path);
            QCOMPARE(other.run(runId).state, RunState::Running);
            Store reader = Store::open(path, {.mode = OpenMode::ReadOnly});
            QCOMPARE(reader.run(runId).state, RunState::Running);
        }

        const qint64 pid = child.processId();
        child.kill(); // SIGKILL
        QVERIFY(child.waitForFinished(10000));
        QCOMPARE(child.exitStatus(), QProcess::CrashExit);

        {
            RawDb raw(qpath, true);
            QCOMPARE(raw.query("PRAGMA integrity_check"), QString("ok"));
            QCOMPARE(raw.query("SELECT state FROM runs WHERE id = " + std::to_string(runId)), QString("running"));
        }
        // A read-only open already shows it interrupted, without writing that down.
        {
            Store reader = Store::open(path, {.mode = OpenMode::ReadOnly});
            RunRecord r = reader.run(runId);
            QCOMPARE(r.state, RunState::Interrupted);
            QVERIFY2(r.error.find("pid " + std::to_string(pid)) != std::string::npos, r.error.c_str());
            RawDb raw(qpath, true);
            QCOMPARE(raw.query("SELECT state FROM runs WHERE id = " + std::to_string(runId)), QString("running"));
        }
        // A writable open records it.
        Store store = Store::open(path);
        RawDb raw(qpath, true);
        QCOMPARE(raw.query("SELECT state FROM runs WHERE id = " + std::to_string(runId)), QString("interrupted"));
        QCOMPARE(store.recoverInterrupted(), 0);
        RunRecord killed = store.run(runId);
        QCOMPARE(killed.state, RunState::Interrupted);
        // Committed batches are whole: at least what the child reported, in 50s.
        QVERIFY2(killed.layerCount >= batches * 50, qPrintable(QString::number(killed.layerCount)));
        QCOMPARE(killed.layerCount % 50, int64_t(0));
        const auto layers = store.layerResults(runId);
        QCOMPARE(int64_t(layers.size()), killed.layerCount);
        for (std::size_t i = 0; i < layers.size(); ++i)
            QCOMPARE(layers[i].position, int(i));
        // Earlier runs are exactly as they were.
        for (const auto& [id, snap] : before)
            QCOMPARE(snapshot(store, id), snap);
        // The killed run is immutable now, and the store goes on recording.
        QVERIFY_THROWS_EXCEPTION(Error, store.addLayerResults(runId, {sampleLayer("late", 4, 1)}));
        const int64_t next = store.beginRun({killed.modelId, {}, RunKind::Inference});
        store.finishRun(next, RunState::Done, sampleMetrics(0.9));
        QCOMPARE(store.run(next).state, RunState::Done);
        QCOMPARE(store.integrityCheck(), std::string("ok"));
    }
};

QTEST_GUILESS_MAIN(TestStoreCrash)
#include "test_store_crash.moc"
