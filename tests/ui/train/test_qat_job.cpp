// The studio's training job, offscreen on the demo model and its bundled 1000 images:
// "Train (QAT)..." sits beside Quantize; a few-step job plots every step's loss and
// learning rate and each held-out evaluation as they arrive, fills the scale table,
// and records its checkpoints as runs (the curves they store are the plotted ones)
// that the runs list shows; Cancel stops the worker within a second and keeps the
// checkpoints recorded so far. QS_SCREENSHOT_DIR=<dir> saves the window.
#include "store/store.h"
#include "support/studio_window.h"
#include "ui/jobs/job_runner.h"
#include "ui/main_window.h"
#include "ui/runs/runs_controller.h"
#include "ui/runs/runs_feature.h"
#include "ui/runs/runs_panel.h"
#include "ui/runs/runs_table_model.h"
#include "ui/train/qat_controller.h"
#include "ui/train/qat_dialog.h"
#include "ui/train/qat_panel.h"
#include "ui/train/train_feature.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QDockWidget>
#include <QMenu>
#include <QMenuBar>
#include <QProgressBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

class TestQatJob : public QObject {
    Q_OBJECT

    std::unique_ptr<MainWindow> window;
    test::RecordingReporter* errors = nullptr;
    QTemporaryDir dir;
    QString dbPath;

    QatController* controller() const { return window->feature<TrainFeature>()->controller(); }
    QatPanel* panel() const { return window->feature<TrainFeature>()->panel(); }
    RunsPanel* browser() const { return window->feature<RunsFeature>()->controller()->browser(); }
    Store store() const { return Store::open(dbPath.toStdString(), {.mode = OpenMode::ReadOnly}); }
    int points(QatPanel::Curve c) const { return panel()->plot()->graph(c)->dataCount(); }
    bool listed(qint64 runId) const
    {
        for (const RunRecord& r : browser()->model()->runs())
            if (r.id == runId)
                return true;
        return false;
    }

    static QatRequest smallRequest()
    {
        QatRequest r;
        r.trainData = r.evalData = test::demoImagesPath; // the last evalLimit images held out
        r.steps = 6;
        r.batch = 16;
        r.evalEvery = 2;
        r.evalLimit = 64;
        r.checkpointEvery = 3;
        r.lr = 1e-3;
        return r;
    }

private slots:
    void initTestCase()
    {
        QVERIFY(dir.isValid());
        dbPath = dir.filePath(QStringLiteral("studio.db"));
        window = test::openStudio(QStringLiteral("test_qat_job"), dbPath, errors);
        QVERIFY(window);
        QTRY_VERIFY_WITH_TIMEOUT(!window->studio().jobs()->isBusy(QStringLiteral("runs-list")), 10000);
        window->studio().config()->applyPreset(QuantConfigDocument::Preset::W4A8);
    }

    void actionSitsBesideQuantize()
    {
        QAction* train = controller()->trainAction();
        QVERIFY(train->isEnabled());
        QAction* quantize = window->feature<RunsFeature>()->controller()->quantizeAction();
        QMenu* menu = nullptr;
        for (QAction* top : window->menuBar()->actions())
            if (top->menu() && top->menu()->actions().contains(quantize))
                menu = top->menu();
        QVERIFY(menu);
        const QList<QAction*> items = menu->actions();
        QCOMPARE(items.indexOf(train), items.indexOf(quantize) + 1);
    }

    void dialogReturnsItsFields()
    {
        QatDialog dialog(smallRequest(), QStringLiteral("W4"));
        QCOMPARE(dialog.request().steps, 6);
        QVERIFY(!dialog.request().blockwise);
        dialog.steps()->setValue(40);
        dialog.mode()->setCurrentIndex(1);
        const QatRequest r = dialog.request();
        QCOMPARE(r.steps, 40);
        QVERIFY(r.blockwise);
        QCOMPARE(r.batch, 16);
        QCOMPARE(r.checkpointEvery, 3);
        QCOMPARE(r.trainData, test::demoImagesPath);
    }

    // Every step reaches the plot; held-out points at 0, 2, 4 and 6; checkpoints at
    // steps 3 and 6 are runs tagged qat, listed, whose stored curves are the plotted ones.
    void trainingPlotsStepsAndRecordsCheckpoints()
    {
        QSignalSpy stored(controller(), &QatController::checkpointStored);
        QSignalSpy finished(controller(), &QatController::finished);
        const int id = controller()->train(smallRequest());
        QVERIFY(id > 0);
        QVERIFY(window->feature<TrainFeature>()->dock()->isVisible());
        QVERIFY(panel()->cancelButton()->isEnabled());
        QVERIFY(finished.wait(120000));
        QVERIFY2(errors->messages.isEmpty(), qPrintable(errors->messages.join('\n')));
        QTRY_COMPARE_WITH_TIMEOUT(stored.count(), 2, 5000);
        QVERIFY(!panel()->cancelButton()->isEnabled());
        QCOMPARE(panel()->progressBar()->value(), 1000);

        QCOMPARE(points(QatPanel::TrainLoss), 6);
        QCOMPARE(points(QatPanel::LearningRate), 6);
        QCOMPARE(points(QatPanel::HeldOutKd), 4);
        const auto held = panel()->plot()->graph(QatPanel::HeldOutKd)->data();
        QList<double> heldSteps;
        for (auto it = held->constBegin(); it != held->constEnd(); ++it)
            heldSteps << it->key;
        QCOMPARE(heldSteps, (QList<double> {0, 2, 4, 6}));
        QVERIFY(panel()->scaleTable()->rowCount() > 0);

        QCOMPARE(stored.at(0).at(1).toLongLong(), 3);
        QCOMPARE(stored.at(1).at(1).toLongLong(), 6);
        const qint64 last = stored.at(1).at(0).toLongLong();
        const RunRecord run = store().run(last);
        QCOMPARE(run.state, RunState::Done);
        QVERIFY(std::find(run.tags.begin(), run.tags.end(), "qat") != run.tags.end());
        QCOMPARE(run.config.at("qat").at("step").get<int>(), 6);
        const nlohmann::json& steps = run.metrics.extra.at("qat").at("steps");
        QCOMPARE(int(steps.size()), 6);
        const auto loss = panel()->plot()->graph(QatPanel::TrainLoss)->data();
        for (int i = 0; i < 6; ++i) {
            QCOMPARE(loss->at(i)->key, steps[std::size_t(i)].at("step").get<double>());
            QCOMPARE(loss->at(i)->value, steps[std::size_t(i)].at("loss").get<double>());
        }
        QTRY_VERIFY_WITH_TIMEOUT(listed(last) && listed(stored.at(0).at(0).toLongLong()), 10000);
        QVERIFY(test::screenshot(window.get(), QStringLiteral("studio_qat.png")));
    }

    // Cancel during a long job: the worker returns within a second, no step arrives
    // after, and the checkpoint recorded before stays a finished run in the list.
    void cancelStopsWithinASecond()
    {
        QatRequest r = smallRequest();
        r.steps = 100000;
        r.evalEvery = 0;
        r.checkpointEvery = 2;
        QSignalSpy stored(controller(), &QatController::checkpointStored);
        QSignalSpy finished(controller(), &QatController::finished);
        QVERIFY(controller()->train(r) > 0);
        QVERIFY(stored.wait(120000));
        QTRY_VERIFY_WITH_TIMEOUT(points(QatPanel::TrainLoss) >= 3, 60000);
        QTest::mouseClick(panel()->cancelButton(), Qt::LeftButton);
        QVERIFY(window->studio().jobs()->waitForWorkers(1000));
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 1000);
        QVERIFY(!panel()->cancelButton()->isEnabled());
        QCoreApplication::processEvents();
        const int after = points(QatPanel::TrainLoss);
        QTest::qWait(300);
        QCOMPARE(points(QatPanel::TrainLoss), after);
        QVERIFY(after < 100000);
        const qint64 checkpoint = stored.at(0).at(0).toLongLong();
        QCOMPARE(store().run(checkpoint).state, RunState::Done);
        QTRY_VERIFY_WITH_TIMEOUT(listed(checkpoint), 10000);
        QVERIFY(controller()->trainAction()->isEnabled());
    }

    void cleanupTestCase() { window.reset(); }
};

QTEST_MAIN(TestQatJob)
#include "test_qat_job.moc"
