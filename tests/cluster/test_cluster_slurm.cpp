// A sharded sensitivity sweep through a real Slurm: a one-node cluster started in a
// temporary folder (tools/slurm_local.sh: munged, slurmctld, slurmd, generated
// slurm.conf), the sweep submitted with --slurm as a job array, its merged run compared
// with the local sweep bit for bit; a killed shard is retried, one killed twice is
// reported by shard with its log; the scheduler alone follows, tells how tasks ended
// and cancels. The daemons are stopped at the end.
#include "cluster/merge.h"
#include "cluster/scheduler.h"
#include "cluster/sweep_fixture.h"

#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>

#include <csignal>
#include <sys/types.h>

using namespace qs;
using namespace qs::test;

namespace {

const QString kScript = QS_SOURCE_DIR "/tools/slurm_local.sh";

struct Script {
    int exitCode;
    QString out;
};

Script slurmLocal(const QStringList& args)
{
    QProcess p;
    p.setProcessChannelMode(QProcess::MergedChannels);
    p.start("bash", QStringList {kScript} + args);
    p.waitForFinished(120000);
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromUtf8(p.readAll()).trimmed()};
}

// The allow-listed reason for `message`, or empty when the skip is not allowed.
QString allowedSkip(const QString& message)
{
    QFile f(QS_SOURCE_DIR "/tests/cluster/slurm_skips.txt");
    if (!f.open(QIODevice::ReadOnly))
        return {};
    for (const QString& line : QString::fromUtf8(f.readAll()).split('\n')) {
        const QStringList parts = line.split('\t');
        if (line.startsWith('#') || parts.size() != 2)
            continue;
        if (message.contains(parts[0]))
            return parts[1];
    }
    return {};
}

} // namespace

class TestClusterSlurm : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString cluster_;
    std::vector<pid_t> daemons_;
    QString path(const QString& name) const { return dir_.filePath(name); }

    void stopCluster()
    {
        if (!cluster_.isEmpty())
            slurmLocal({"stop", cluster_});
        cluster_.clear();
    }

    // The sweep through --slurm in 3 shards; its JSON and CLI result.
    // kill: QS_CLUSTER_KILL_SHARD for the sweep (SHARD[:ATTEMPTS]), or none.
    QJsonObject slurmSweep(const QString& db, CliResult& r, const QByteArray& kill = {})
    {
        if (!kill.isEmpty())
            qputenv("QS_CLUSTER_KILL_SHARD", kill);
        r = cli(sweepArgs() << "--slurm"
                            << "--shards"
                            << "3"
                            << "--cpus-per-task"
                            << "1"
                            << "--time"
                            << "5"
                            << "--mem"
                            << "500M"
                            << "--db" << path(db) << "--work-dir" << path(db + ".shards") << "--json");
        qunsetenv("QS_CLUSTER_KILL_SHARD");
        if (r.exitCode != 0)
            qWarning("exit %d: %s", r.exitCode, r.err.constData());
        return QJsonDocument::fromJson(r.out).object();
    }

    void expectEqualToLocal(const QString& db)
    {
        const Store local = openStore(path("local.db")), merged = openStore(path(db));
        const int64_t a = onlyRun(local), b = onlyRun(merged);
        QVERIFY(a > 0 && b > 0);
        const auto diff = storedRunDifferences(local, a, merged, b);
        QVERIFY2(diff.empty(), diff.empty() ? "" : diff.front().c_str());
        QCOMPARE(merged.run(b).state, RunState::Done);
    }

public:
    ~TestClusterSlurm() override { stopCluster(); }

private slots:
    void initTestCase()
    {
        QVERIFY(dir_.isValid());
        const Script check = slurmLocal({"check"});
        if (check.exitCode != 0) {
            const QString reason = allowedSkip(check.out);
            if (reason.isEmpty())
                QFAIL(qPrintable("cannot start Slurm, and slurm_skips.txt does not allow it: " + check.out));
            QSKIP(qPrintable(check.out + " (allowed: " + reason + ")"));
        }
        QVERIFY(cliOk(sweepArgs() << "--db" << path("local.db")));
        cluster_ = path("slurm");
        const Script start = slurmLocal({"start", cluster_});
        if (start.exitCode != 0) {
            const QString log = start.out;
            stopCluster();
            const QString reason = allowedSkip(log);
            if (reason.isEmpty())
                QFAIL(qPrintable("tools/slurm_local.sh start failed: " + log));
            QSKIP(qPrintable(log + " (allowed: " + reason + ")"));
        }
        qputenv("SLURM_CONF", (cluster_ + "/slurm.conf").toUtf8());
        for (const char* pidFile : {"munged.pid", "slurmctld.pid", "slurmd.pid"}) {
            QFile f(cluster_ + "/" + pidFile);
            QVERIFY(f.open(QIODevice::ReadOnly));
            daemons_.push_back(pid_t(f.readAll().trimmed().toInt()));
        }
    }

    void slurmSweepEqualsTheLocalSweep()
    {
        CliResult r;
        const QJsonObject j = slurmSweep("slurm.db", r);
        QCOMPARE(r.exitCode, 0);
        QVERIFY(j["complete"].toBool());
        expectEqualToLocal("slurm.db");
        // The run records the job id.
        const Store merged = openStore(path("slurm.db"));
        const nlohmann::json cluster = merged.run(onlyRun(merged)).metrics.extra["cluster"];
        QCOMPARE(QString::fromStdString(cluster["jobs"][0].get<std::string>()), j["jobs"].toArray()[0].toString());
        QCOMPARE(cluster["shard_count"].get<int>(), 3);
    }

    void killedShardIsRetriedOnce()
    {
        CliResult r;
        const QJsonObject j = slurmSweep("retried.db", r, "1");
        QCOMPARE(r.exitCode, 0);
        QCOMPARE(j["jobs"].toArray().size(), 2); // the array, then the retry
        QCOMPARE(j["shards"].toArray()[1].toObject()["attempts"].toInt(), 2);
        QCOMPARE(j["shards"].toArray()[0].toObject()["attempts"].toInt(), 1);
        QFile firstLog(path("retried.db.shards/shard-1.log"));
        QVERIFY(firstLog.open(QIODevice::ReadOnly));
        QVERIFY(firstLog.readAll().contains("killed by QS_CLUSTER_KILL_SHARD"));
        expectEqualToLocal("retried.db");
    }

    void shardFailingTwiceIsReportedWithItsLog()
    {
        CliResult r;
        const QJsonObject j = slurmSweep("failed.db", r, "2:2");
        QCOMPARE(r.exitCode, 1);
        const QString log = path("failed.db.shards/shard-2.attempt2.log");
        QVERIFY2(r.err.contains("shard 2/3 failed after 2 attempts"), r.err.constData());
        QVERIFY2(r.err.contains(log.toUtf8()), r.err.constData());
        QVERIFY(QFile::exists(log));
        QVERIFY(!j["complete"].toBool());
        const Store store = openStore(path("failed.db"));
        const RunRecord run = store.run(onlyRun(store));
        QCOMPARE(run.state, RunState::Failed);
        QVERIFY2(run.error.find("shard 2/3 failed") != std::string::npos, run.error.c_str());
        // What the other shards measured is kept: 16 of the 24 (layer, bits) pairs.
        int pairs = 0;
        for (const LayerResult& l : store.layerResults(run.id))
            pairs += int(l.sensitivityDetail.size());
        QCOMPARE(pairs, 16);
    }

    // The scheduler alone, given the config (as the studio does) rather than the
    // environment: an array whose task 1 fails, followed to the end, and a cancelled task.
    void schedulerFollowsAndCancelsTasks()
    {
        SlurmOptions o;
        o.conf = (cluster_ + "/slurm.conf").toStdString();
        o.time = "2";
        o.memory = "100M";
        SlurmScheduler slurm(o);
        const QByteArray conf = qgetenv("SLURM_CONF");
        qunsetenv("SLURM_CONF");
        QFile script(path("task.sh"));
        QVERIFY(script.open(QIODevice::WriteOnly));
        script.write("#!/bin/bash\n[ \"$SLURM_ARRAY_TASK_ID\" = 1 ] && exit 3\n"
                     "[ \"$SLURM_ARRAY_TASK_ID\" = 2 ] && sleep 60\nexit 0\n");
        script.close();
        const std::string job =
            slurm.submit(path("task.sh").toStdString(), {0, 1, 2}, path("task-%a.log").toStdString());
        QElapsedTimer clock;
        clock.start();
        std::map<int, std::string> queued = slurm.queued(job);
        while ((queued.count(0) || queued.count(1) || !queued.count(2) || queued.at(2) != "RUNNING") &&
            clock.elapsed() < 30000) {
            QTest::qWait(200);
            queued = slurm.queued(job);
        }
        QCOMPARE(QString::fromStdString(queued[2]), QStringLiteral("RUNNING"));
        QVERIFY2(slurm.endState(job, 0).rfind("COMPLETED 0:0", 0) == 0, slurm.endState(job, 0).c_str());
        QVERIFY2(slurm.endState(job, 1).rfind("FAILED 3:0", 0) == 0, slurm.endState(job, 1).c_str());
        slurm.cancel(job);
        while (slurm.queued(job).count(2) && clock.elapsed() < 40000)
            QTest::qWait(200);
        QVERIFY(!slurm.queued(job).count(2));
        QVERIFY2(slurm.endState(job, 2).rfind("CANCELLED", 0) == 0, slurm.endState(job, 2).c_str());
        qputenv("SLURM_CONF", conf);
        // A bad option is refused before anything is submitted.
        SlurmOptions bad = o;
        bad.time = "soon";
        bool refused = false;
        try {
            SlurmScheduler refusedScheduler(bad);
        } catch (const std::exception& e) { // qs::Error
            refused = std::string(e.what()).find("--time \"soon\"") != std::string::npos;
        }
        QVERIFY(refused);
    }

    void cleanupTestCase()
    {
        stopCluster();
        for (pid_t pid : daemons_)
            QVERIFY2(::kill(pid, 0) != 0, qPrintable(QString("daemon %1 still running").arg(pid)));
        qunsetenv("SLURM_CONF");
    }
};

QTEST_GUILESS_MAIN(TestClusterSlurm)
#include "test_cluster_slurm.moc"
