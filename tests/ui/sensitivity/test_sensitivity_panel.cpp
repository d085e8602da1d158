// The sensitivity view on the demo model, offscreen: a sweep runs as a job and fills the
// heatmap live (results arrive while the job still runs), the finished sweep is a
// sensitivity run in the open store with every layer's curve, it becomes the editor's
// prediction, clicking a heatmap cell or a bar selects that layer, and Cancel stops a
// sweep within a second leaving a cancelled run. It builds the shared state and the
// panel alone; add the next case as a slot after these.
#include "record/sensitivity_record.h"
#include "store/store.h"
#include "support/studio_window.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"
#include "ui/sensitivity/sensitivity_panel.h"
#include "ui/widgets/plot_view.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QLineEdit>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace qs;
using namespace qs::ui;

class TestSensitivityPanel : public QObject {
    Q_OBJECT

    QTemporaryDir dir;
    std::unique_ptr<Studio> studio;
    std::unique_ptr<SensitivityPanel> owned;
    SensitivityPanel* panel = nullptr;

    QString dbPath() const { return dir.filePath(QStringLiteral("runs.db")); }

private slots:
    void initTestCase()
    {
        // The shared state and the panel alone, as the Sensitivity dock shows it.
        studio = qs::test::openDemoStudio(QStringLiteral("test_sensitivity_panel"));
        QVERIFY(studio);
        QSignalSpy store(studio.get(), &Studio::storeOpened);
        studio->openStore(dbPath());
        QVERIFY(store.wait(30000));
        owned = std::make_unique<SensitivityPanel>(*studio);
        panel = owned.get();
        QVERIFY(qs::test::showPanel(panel));
        QVERIFY(panel->heatmap()->hasMessage()); // "no sweep yet"
    }

    void sweepFillsHeatmapLiveAndIsStored()
    {
        panel->bitsEdit()->setText(QStringLiteral("2,4,8"));
        panel->limitSpin()->setValue(32);
        panel->methodCombo()->setCurrentIndex(panel->methodCombo()->findData(QStringLiteral("oneshot")));
        QSignalSpy arrived(panel, &SensitivityPanel::resultArrived);
        QSignalSpy finished(panel, &SensitivityPanel::sweepFinished);
        QSignalSpy counted(studio.get(), &Studio::storeCounted);
        const int64_t runsBefore = studio->store().runs;
        int liveWhileRunning = 0;
        const auto live = connect(panel, &SensitivityPanel::resultArrived, this,
                                  [&] { liveWhileRunning += panel->isRunning() ? 1 : 0; });
        const int job = panel->startSweep();
        QVERIFY(job > 0);
        QVERIFY(studio->jobs()->isRunning(job));
        QVERIFY(finished.wait(60000));
        disconnect(live);
        QCOMPARE(finished.front().front().toBool(), true);
        QCOMPARE(arrived.count(), 8 * 3);
        QVERIFY2(liveWhileRunning > 0, "results only arrived after the job");
        // Every cell holds the measure, the colour map the same numbers.
        const SensitivityResult& r = panel->shown();
        QCOMPARE(int(r.layers.size()), 8);
        QCPColorMapData* data = panel->colorMap()->data();
        QCOMPARE(data->keySize(), 3);
        QCOMPARE(data->valueSize(), 8);
        for (int row = 0; row < 8; ++row)
            for (int c = 0; c < 3; ++c) {
                const int bits = std::vector<int>{2, 4, 8}[std::size_t(c)];
                const double v = panel->cellValue(row, bits);
                QVERIFY2(std::isfinite(v), qPrintable(QStringLiteral("row %1 bits %2").arg(row).arg(bits)));
                QCOMPARE(data->cell(c, row), v);
            }
        // 8 bits loses less than 2 bits on every layer.
        for (int row = 0; row < 8; ++row)
            QVERIFY(panel->cellValue(row, 8) > panel->cellValue(row, 2));
        QVERIFY(!panel->heatmap()->hasMessage());
        QCOMPARE(panel->barPlottable()->data()->size(), 8);

        // Recorded like `sensitivity --db` records it, and counted (the status bar's number).
        QVERIFY(panel->lastRunId() > 0);
        QTRY_COMPARE_WITH_TIMEOUT(studio->store().runs, runsBefore + 1, 30000);
        QVERIFY(counted.count() > 0);
        StoreOptions ro;
        ro.mode = OpenMode::ReadOnly;
        const Store store = Store::open(dbPath().toStdString(), ro);
        const RunRecord run = store.run(panel->lastRunId());
        QCOMPARE(run.kind, RunKind::Sensitivity);
        QCOMPARE(run.state, RunState::Done);
        QCOMPARE(run.config["bits"], nlohmann::json({2, 4, 8}));
        QCOMPARE(run.config["limit"].get<int>(), 32);
        QCOMPARE(run.config["method"].get<std::string>(), std::string("oneshot"));
        const SensitivityResult back = loadSensitivityRun(store, run.id);
        QCOMPARE(int(back.layers.size()), 8);
        for (const auto& l : back.layers) {
            const int row = studio->document()->model()->layerRow(l.layer);
            QVERIFY(row >= 0);
            QCOMPARE(int(l.byBits.size()), 3);
            for (int bits : {2, 4, 8})
                QVERIFY(std::abs(l.byBits.at(bits).sqnrDb - panel->cellValue(row, bits)) < 1e-6);
        }
        // The editor predicts from it now.
        QVERIFY(studio->config()->sensitivity());
        QVERIFY(studio->config()->prediction().has_value());
    }

    void clickingACellSelectsTheLayer_data()
    {
        QTest::addColumn<int>("row");
        QTest::addColumn<int>("column");
        QTest::newRow("first layer") << 0 << 0;
        QTest::newRow("middle") << 4 << 1;
        QTest::newRow("last layer") << 7 << 2;
    }
    void clickingACellSelectsTheLayer()
    {
        QFETCH(int, row);
        QFETCH(int, column);
        studio->selection()->selectLayer(row == 0 ? 3 : 0);
        QCustomPlot* p = panel->heatmap()->plot();
        p->replot();
        const QPoint at(int(p->xAxis->coordToPixel(column)), int(p->yAxis->coordToPixel(row)));
        QCOMPARE(panel->layerAtHeatmap(at), row);
        QTest::mouseClick(p, Qt::LeftButton, Qt::NoModifier, at);
        QCOMPARE(studio->selection()->currentLayer(), row);
        // And a bar of the drop chart.
        studio->selection()->selectLayer(row == 0 ? 3 : 0);
        QCustomPlot* b = panel->bars()->plot();
        b->replot();
        const QPoint bar(int(b->xAxis->coordToPixel(row)), int(b->yAxis->coordToPixel(0)) - 2);
        QTest::mouseClick(b, Qt::LeftButton, Qt::NoModifier, bar);
        QCOMPARE(studio->selection()->currentLayer(), row);
    }

    void cancelStopsWithinASecond()
    {
        panel->bitsEdit()->setText(QStringLiteral("2,3,4,5,6,7,8"));
        panel->limitSpin()->setValue(1000);
        QSignalSpy arrived(panel, &SensitivityPanel::resultArrived);
        QSignalSpy finished(panel, &SensitivityPanel::sweepFinished);
        const int job = panel->startSweep();
        QVERIFY(job > 0);
        QVERIFY(arrived.wait(60000)); // measuring has begun
        QElapsedTimer clock;
        clock.start();
        panel->cancelSweep();
        QVERIFY(!studio->jobs()->isRunning(job));
        QCOMPARE(finished.count(), 1);
        QCOMPARE(finished.front().front().toBool(), false);
        QVERIFY(studio->jobs()->waitForWorkers(5000));
        const double ms = double(clock.nsecsElapsed()) * 1e-6;
        qInfo("sensitivity sweep stopped %.0f ms after Cancel", ms);
        QVERIFY2(ms < 1000, qPrintable(QStringLiteral("%1 ms").arg(ms)));
        StoreOptions ro;
        ro.mode = OpenMode::ReadOnly;
        const Store store = Store::open(dbPath().toStdString(), ro);
        RunFilter f;
        f.kind = RunKind::Sensitivity;
        const auto runs = store.runs(f);
        QCOMPARE(int(runs.size()), 2);
        QCOMPARE(runs.front().state, RunState::Cancelled); // newest first
        QVERIFY(panel->runButton()->isEnabled());
    }

    void cleanupTestCase()
    {
        studio->jobs()->cancelAll();
        studio->jobs()->waitForWorkers(10000);
        owned.reset();
        studio.reset();
    }
};

QTEST_MAIN(TestSensitivityPanel)
#include "test_sensitivity_panel.moc"
