// Sharded sensitivity sweeps without a scheduler: shards run one by one with --shard
// I/N, merged with `quantstudio-cli merge`, equal the whole sweep's run bit for bit;
// shards of another model, data, configuration or count are refused by file and field;
// mixed --verify shards merge the same way, by hand and through the --slurm driver.
#include "cluster/merge.h"
#include "cluster/sweep_fixture.h"

#include <QDir>
#include <QFile>
#include <QTemporaryDir>

using namespace qs;
using namespace qs::test;

class TestClusterMerge : public QObject {
    Q_OBJECT

    QTemporaryDir dir_;
    QString path(const QString& name) const { return dir_.filePath(name); }
    bool shard(const QString& spec, const QString& db, QStringList extra = {})
    {
        QStringList args = sweepArgs();
        for (int i = 0; i + 1 < extra.size(); i += 2) { // replace an option's value
            const int at = args.indexOf(extra[i]);
            if (at >= 0)
                args[at + 1] = extra[i + 1];
            else
                args << extra[i] << extra[i + 1];
        }
        return cliOk(args << "--shard" << spec << "--db" << path(db));
    }

    // The command through --slurm with its tasks as child processes; store NAME.db.
    bool onLocalScheduler(QStringList args, int shards, const QString& name)
    {
        qputenv("QS_CLUSTER_SCHEDULER", "local");
        const bool ok = cliOk(args << "--slurm"
                                   << "--shards" << QString::number(shards) << "--db" << path(name + ".db")
                                   << "--work-dir" << path(name + ".shards"));
        qunsetenv("QS_CLUSTER_SCHEDULER");
        return ok;
    }

private slots:
    void initTestCase()
    {
        QVERIFY(dir_.isValid());
        QVERIFY(cliOk(sweepArgs() << "--db" << path("local.db")));
        QVERIFY(shard("0/2", "s0.db"));
        QVERIFY(shard("1/2", "s1.db"));
    }

    void mergedShardsEqualTheLocalRun()
    {
        CliResult r;
        QVERIFY(cliOk({"merge", "--db", path("main.db"), path("s1.db"), path("s0.db")}, &r));
        const Store local = openStore(path("local.db")), merged = openStore(path("main.db"));
        const int64_t a = onlyRun(local), b = onlyRun(merged);
        QVERIFY(a > 0 && b > 0);
        const auto diff = storedRunDifferences(local, a, merged, b);
        QVERIFY2(diff.empty(), diff.empty() ? "" : diff.front().c_str());
        QCOMPARE(merged.layerResults(b).size(), std::size_t(8));
        QVERIFY(!merged.run(b).config.contains("shard"));
        QCOMPARE(merged.run(b).metrics.extra["cluster"]["shards"].get<int>(), 2);
        // The comparison sees a shard's missing pairs (it is not blind).
        const Store s0 = openStore(path("s0.db"));
        QVERIFY(!storedRunDifferences(local, a, s0, onlyRun(s0)).empty());
    }

    void mergeRefusesOtherShards_data()
    {
        QTest::addColumn<QString>("spec");
        QTest::addColumn<QStringList>("change");
        QTest::addColumn<QString>("field");
        QTest::newRow("config") << "1/2" << QStringList {"--limit", "32"} << "config.limit";
        QTest::newRow("data") << "1/2" << QStringList {"--data", "random:64"} << "dataset hash";
        QTest::newRow("model") << "1/2" << QStringList {"MODEL", ""} << "model hash";
        QTest::newRow("count") << "1/3" << QStringList {} << "config.shard count";
    }

    void mergeRefusesOtherShards()
    {
        QFETCH(QString, spec);
        QFETCH(QStringList, change);
        QFETCH(QString, field);
        const QString db = QString("other-%1.db").arg(QTest::currentDataTag());
        if (change.value(0) == "MODEL") {
            // The demo model with a doc_string appended (field 6): another file, another hash.
            const QString model = path("other.onnx");
            QFile::remove(model);
            QVERIFY(QFile::copy(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx", model));
            QFile f(model);
            QVERIFY(f.open(QIODevice::Append));
            f.write(QByteArray("\x32\x01x", 3));
            f.close();
            QStringList args = sweepArgs();
            args[1] = model;
            QVERIFY(cliOk(args << "--shard" << spec << "--db" << path(db)));
        } else {
            QVERIFY(shard(spec, db, change));
        }
        CliResult r;
        QVERIFY(!cliOk({"merge", "--db", path("refused.db"), path("s0.db"), path(db)}, &r));
        QCOMPARE(r.exitCode, 1);
        const QString err = QString::fromUtf8(r.err).trimmed();
        QVERIFY2(!err.contains('\n'), qPrintable(err));
        QVERIFY2(err.contains(path(db)) && err.contains(field), qPrintable(err));
        const Store refused = openStore(path("refused.db"));
        QVERIFY(refused.runs().empty());
    }

    void mergeRefusesRepeatedOrMissingShards()
    {
        CliResult r;
        QVERIFY(!cliOk({"merge", "--db", path("refused.db"), path("s0.db"), path("s0.db")}, &r));
        QVERIFY2(r.err.contains("is also"), r.err.constData());
        QVERIFY(!cliOk({"merge", "--db", path("refused.db"), path("s0.db")}, &r));
        QVERIFY2(r.err.contains("shards 1 of 2 are missing"), r.err.constData());
        QVERIFY(!cliOk({"merge", "--db", path("refused.db"), path("local.db")}, &r));
        QVERIFY2(r.err.contains("local.db: no sensitivity, mixed or evaluation shard run"), r.err.constData());
    }

    // mixed --verify K --shard I/N: each shard verifies every N-th front point (and the
    // chosen one's turn), merge fills the front from them.
    void mixedVerifyShardsMergeToTheLocalRun()
    {
        const QStringList mixed = {"mixed", QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx", "--data",
            QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz", "--bits", "2,4,8", "--limit", "64",
            "--eval-limit", "64", "--budget-bits", "5", "--verify", "3"};
        QVERIFY(cliOk(QStringList(mixed) << "--db" << path("mixed-local.db")));
        QVERIFY(cliOk(QStringList(mixed) << "--shard"
                                         << "0/2"
                                         << "--db" << path("mixed-0.db")));
        QVERIFY(cliOk(QStringList(mixed) << "--shard"
                                         << "1/2"
                                         << "--db" << path("mixed-1.db")));
        QVERIFY(cliOk({"merge", "--db", path("mixed-main.db"), path("mixed-0.db"), path("mixed-1.db")}));
        const Store local = openStore(path("mixed-local.db")), merged = openStore(path("mixed-main.db"));
        const auto diff = storedRunDifferences(local, onlyRun(local), merged, onlyRun(merged));
        QVERIFY2(diff.empty(), diff.empty() ? "" : diff.front().c_str());
        // Each shard measured only part of the front.
        auto measured = [](const Store& s) {
            int n = 0;
            const RunRecord run = s.run(onlyRun(s));
            for (const auto& p : run.metrics.extra.at("front"))
                n += p["measured"].is_null() ? 0 : 1;
            return n;
        };
        const Store m0 = openStore(path("mixed-0.db")), m1 = openStore(path("mixed-1.db"));
        QVERIFY(measured(local) >= 2);
        QVERIFY(measured(m0) < measured(local) && measured(m1) < measured(local));
        // The same shards through the cluster driver (--slurm, tasks as child processes).
        QVERIFY(onLocalScheduler(mixed, 2, "mixed-slurm"));
        const Store driver = openStore(path("mixed-slurm.db"));
        const auto driverDiff = storedRunDifferences(local, onlyRun(local), driver, onlyRun(driver));
        QVERIFY2(driverDiff.empty(), driverDiff.empty() ? "" : driverDiff.front().c_str());
        QCOMPARE(driver.run(onlyRun(driver)).metrics.extra["cluster"]["shard_count"].get<int>(), 2);
        QVERIFY(QFile::exists(path("mixed-slurm.shards/shard-1.db")));
        // A sensitivity shard does not merge with a mixed one.
        CliResult r;
        QVERIFY(!cliOk({"merge", "--db", path("refused.db"), path("mixed-0.db"), path("s1.db")}, &r));
        QVERIFY2(r.err.contains("s1.db: run kind sensitivity"), r.err.constData());
    }

    // quantize --shard I/N evaluates a contiguous range of batches (200 samples in 7
    // batches of 32: shards of 2, 2 and 3 batches) and stores their sums; merge adds
    // them in batch order, as the local run does.
    void evaluationShardsMergeToTheLocalRun()
    {
        const QStringList q = {"quantize", QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx", "--data",
            QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz", "--wbits", "4", "--calib-limit", "64",
            "--eval-limit", "200", "--batch", "32"};
        QVERIFY(cliOk(QStringList(q) << "--db" << path("eval-local.db")));
        for (int i = 0; i < 3; ++i)
            QVERIFY(cliOk(QStringList(q) << "--shard" << QString("%1/3").arg(i) << "--db"
                                         << path(QString("eval-%1.db").arg(i))));
        const QString s0 = path("eval-0.db"), s1 = path("eval-1.db"), s2 = path("eval-2.db");
        QVERIFY(cliOk({"merge", "--db", path("eval-main.db"), s2, s0, s1}));
        const Store local = openStore(path("eval-local.db")), merged = openStore(path("eval-main.db"));
        const int64_t a = onlyRun(local), b = onlyRun(merged);
        QVERIFY(a > 0 && b > 0);
        const auto diff = storedRunDifferences(local, a, merged, b);
        QVERIFY2(diff.empty(), diff.empty() ? "" : diff.front().c_str());
        QCOMPARE(merged.run(b).metrics.extra["eval_samples"].get<int>(), 200);
        QVERIFY(merged.run(b).metrics.sqnrDb.has_value());
        // A shard alone evaluated part of the data (the comparison sees it).
        const Store one = openStore(s1);
        QCOMPARE(one.run(onlyRun(one)).metrics.extra["eval_samples"].get<int>(), 64);
        QVERIFY(!storedRunDifferences(local, a, one, onlyRun(one)).empty());
        // Through the cluster driver (tasks as child processes); --save-config is written
        // by shard 0 alone, whole (no temporary file left beside it).
        const QString saved = path("eval-slurm-config.json");
        QVERIFY(onLocalScheduler(QStringList(q) << "--save-config" << saved, 3, "eval-slurm"));
        QFile savedFile(saved);
        QVERIFY(savedFile.open(QIODevice::ReadOnly));
        QCOMPARE(nlohmann::json::parse(savedFile.readAll().toStdString())["default"]["weight"]["bits"].get<int>(), 4);
        QCOMPARE(QDir(dir_.path()).entryList({"eval-slurm-config.json.part*"}, QDir::Files).size(), 0);
        const Store driver = openStore(path("eval-slurm.db"));
        const auto driverDiff = storedRunDifferences(local, a, driver, onlyRun(driver));
        QVERIFY2(driverDiff.empty(), driverDiff.empty() ? "" : driverDiff.front().c_str());
        // Refusals: a missing or repeated shard, another config, a sensitivity shard.
        CliResult r;
        QVERIFY(!cliOk({"merge", "--db", path("eval-refused.db"), s0, s1}, &r));
        QVERIFY2(r.err.contains("shards 2 of 3 are missing"), r.err.constData());
        QVERIFY(!cliOk({"merge", "--db", path("eval-refused.db"), s0, s1, s1}, &r));
        QVERIFY2(r.err.contains("is also"), r.err.constData());
        QStringList other = q;
        other[other.indexOf("--wbits") + 1] = "8";
        QVERIFY(cliOk(other << "--shard"
                            << "2/3"
                            << "--db" << path("eval-other.db")));
        QVERIFY(!cliOk({"merge", "--db", path("eval-refused.db"), s0, s1, path("eval-other.db")}, &r));
        QVERIFY2(r.err.contains("eval-other.db: config.default"), r.err.constData());
        QVERIFY(!cliOk({"merge", "--db", path("eval-refused.db"), s0, path("s1.db")}, &r));
        QVERIFY2(r.err.contains("s1.db: run kind sensitivity"), r.err.constData());
        QVERIFY(openStore(path("eval-refused.db")).runs().empty());
    }

    void shardNeedsItsOwnStoreAndAValidSpec()
    {
        CliResult r;
        QVERIFY(!cliOk(sweepArgs() << "--shard"
                                   << "2/2"
                                   << "--db" << path("x.db"),
            &r));
        QVERIFY2(r.err.contains("--shard \"2/2\": expected I/N"), r.err.constData());
        QVERIFY(!cliOk(sweepArgs() << "--shard"
                                   << "0/2",
            &r));
        QVERIFY2(r.err.contains("give --db SHARD_STORE"), r.err.constData());
        QVERIFY(!cliOk(sweepArgs() << "--shard"
                                   << "0/2"
                                   << "--method"
                                   << "hessian"
                                   << "--db" << path("h.db"),
            &r));
        QVERIFY2(r.err.contains("Hessian"), r.err.constData());
    }
};

QTEST_GUILESS_MAIN(TestClusterMerge)
#include "test_cluster_merge.moc"
