// Run Sweep on Cluster, offscreen, on the demo model: the dialog submits the Sensitivity
// view's sweep as shards (here to a LocalScheduler: child processes of the test running
// quantstudio-cli, the same job script Slurm runs), shows done/running/pending counts and
// a row per shard, fills the heatmap as shards merge, records one run equal to the
// studio's own local sweep bit for bit, a shard failing twice is reported in its row
// with its log, and Cancel ends the shards within a second.
// QS_CLUSTER_SCREENSHOT=DIR saves the dialog and the view after the sweep.
#include "cluster/merge.h"
#include "store/store.h"
#include "support/studio_window.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"
#include "ui/sensitivity/cluster_sweep_dialog.h"
#include "ui/sensitivity/sensitivity_panel.h"

#include <QElapsedTimer>
#include <QLineEdit>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace qs;
using namespace qs::ui;

class TestClusterSweepDialog : public QObject {
    Q_OBJECT

    QTemporaryDir dir;
    std::unique_ptr<Studio> studio;
    std::unique_ptr<SensitivityPanel> panel;
    std::unique_ptr<ClusterSweepDialog> dialog;

    QString dbPath() const { return dir.filePath(QStringLiteral("runs.db")); }

private slots:
    void initTestCase()
    {
        studio = qs::test::openDemoStudio(QStringLiteral("test_cluster_sweep_dialog"));
        QVERIFY(studio);
        QSignalSpy store(studio.get(), &Studio::storeOpened);
        studio->openStore(dbPath());
        QVERIFY(store.wait(30000));
        panel = std::make_unique<SensitivityPanel>(*studio);
        QVERIFY(qs::test::showPanel(panel.get()));
        panel->bitsEdit()->setText(QStringLiteral("2,4,8"));
        panel->limitSpin()->setValue(32);
        dialog = std::make_unique<ClusterSweepDialog>(*studio, *panel);
        dialog->setSchedulerFactory([](const SlurmOptions&) { return std::make_unique<LocalScheduler>(2); });
        dialog->shardsSpin()->setValue(3);
        dialog->workDirEdit()->setText(dir.filePath(QStringLiteral("shards")));
        dialog->cliEdit()->setText(QStringLiteral(QS_CLI_PATH));
        dialog->show();
        QVERIFY(QTest::qWaitForWindowExposed(dialog.get()));
    }

    void shardsMergeIntoOneRunEqualToTheLocalSweep()
    {
        // The studio's own sweep, for the comparison.
        QSignalSpy localDone(panel.get(), &SensitivityPanel::sweepFinished);
        QVERIFY(panel->startSweep() > 0);
        QVERIFY(localDone.wait(60000));
        const int64_t localRun = panel->lastRunId();
        QVERIFY(localRun > 0);

        QSignalSpy finished(dialog.get(), &ClusterSweepDialog::finished);
        int partialViews = 0; // progress shown with some shards done and others not
        QTimer watch;
        connect(&watch, &QTimer::timeout, this, [&] {
            const ClusterProgress& p = dialog->progress();
            partialViews += p.done > 0 && p.done < 3 ? 1 : 0;
        });
        watch.start(20);
        QVERIFY(dialog->submit() > 0);
        QVERIFY(dialog->isRunning());
        QVERIFY(finished.wait(120000));
        watch.stop();
        QCOMPARE(finished.front().front().toBool(), true);
        QCOMPARE(dialog->progress().done, 3);
        QCOMPARE(dialog->shardTable()->rowCount(), 3);
        QCOMPARE(dialog->shardTable()->item(2, 1)->text(), QStringLiteral("done"));
        QVERIFY2(dialog->statusText().contains("recorded as run"), qPrintable(dialog->statusText()));
        // The heatmap holds every (layer, bits) pair.
        for (int row = 0; row < 8; ++row)
            for (int bits : {2, 4, 8})
                QVERIFY(std::isfinite(panel->cellValue(row, bits)));
        const int64_t clusterRun = panel->lastRunId();
        QVERIFY(clusterRun > localRun);
        const Store store = Store::open(dbPath().toStdString());
        const auto diff = storedRunDifferences(store, localRun, store, clusterRun);
        QVERIFY2(diff.empty(), diff.empty() ? "" : diff.front().c_str());
        qInfo("progress showed partial merges %d times", partialViews);

        if (const QByteArray shots = qgetenv("QS_CLUSTER_SCREENSHOT"); !shots.isEmpty()) {
            QVERIFY(dialog->grab().save(QString::fromUtf8(shots) + "/slurm_dialog.png"));
            QVERIFY(panel->grab().save(QString::fromUtf8(shots) + "/slurm_heatmap.png"));
        }
    }

    void failedShardIsReportedInItsRow()
    {
        // Shard 1 kills itself on both attempts: retried once, then failed with its log.
        qputenv("QS_CLUSTER_KILL_SHARD", "1:2");
        QSignalSpy finished(dialog.get(), &ClusterSweepDialog::finished);
        QVERIFY(dialog->submit() > 0);
        const bool ended = finished.wait(120000);
        qunsetenv("QS_CLUSTER_KILL_SHARD");
        QVERIFY(ended);
        QCOMPARE(finished.front().front().toBool(), false);
        QCOMPARE(dialog->progress().failed, 1);
        QCOMPARE(dialog->progress().done, 2);
        QCOMPARE(dialog->shardTable()->item(1, 1)->text(), QStringLiteral("failed"));
        QCOMPARE(dialog->shardTable()->item(1, 2)->text(), QStringLiteral("2"));
        const QString row = dialog->shardTable()->item(1, 4)->text();
        QVERIFY2(
            row.contains("shard-1.attempt2.log") && row.contains("killed by QS_CLUSTER_KILL_SHARD"), qPrintable(row));
        QVERIFY2(dialog->statusText().contains("shard 1/3 failed after 2 attempts"), qPrintable(dialog->statusText()));
        // The other shards' pairs are shown and stored; the run is failed, not the sensitivity result.
        const Store store = Store::open(dbPath().toStdString());
        QCOMPARE(store.run(panel->lastRunId()).state, RunState::Failed);
        if (const QByteArray shots = qgetenv("QS_CLUSTER_SCREENSHOT"); !shots.isEmpty())
            QVERIFY(dialog->grab().save(QString::fromUtf8(shots) + "/slurm_dialog_failed_shard.png"));
    }

    void cancelEndsTheShardsWithinASecond()
    {
        dialog->shardsSpin()->setValue(6);
        panel->limitSpin()->setValue(256);
        QVERIFY(dialog->submit() > 0);
        QElapsedTimer clock;
        clock.start();
        while (dialog->progress().running == 0 && clock.elapsed() < 60000)
            QTest::qWait(20);
        QVERIFY(dialog->progress().running > 0);
        QElapsedTimer cancel;
        cancel.start();
        dialog->cancel();
        QVERIFY(studio->jobs()->waitForWorkers(5000));
        QVERIFY2(cancel.elapsed() < 1000, qPrintable(QString::number(cancel.elapsed())));
        QTest::qWait(50);
        QVERIFY(!dialog->isRunning());
        QVERIFY2(dialog->statusText().contains("Cancelled"), qPrintable(dialog->statusText()));
    }
};

QTEST_MAIN(TestClusterSweepDialog)
#include "test_cluster_sweep_dialog.moc"
