// The whole studio loop on the demo model, offscreen, checking the store after each
// step: a sensitivity sweep (small limit) is a stored run; a bit edit and its undo
// change the configuration but not the store; a Pareto point's bits are applied; the
// Quantize action records a run with exactly those bits; two runs compare (with the
// sweep's sensitivity beside the bits); the run exports as a QDQ file with artifacts.
#include "store/compare.h"
#include "store/store.h"
#include "support/studio_window.h"
#include "ui/compare/compare_panel.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/export/export_dialog.h"
#include "ui/jobs/job_runner.h"
#include "ui/main_window.h"
#include "ui/pareto/pareto_feature.h"
#include "ui/pareto/pareto_panel.h"
#include "ui/runs/quantize_dialog.h"
#include "ui/runs/runs_controller.h"
#include "ui/runs/runs_feature.h"
#include "ui/runs/runs_panel.h"
#include "ui/runs/runs_table_model.h"
#include "ui/sensitivity/sensitivity_feature.h"
#include "ui/sensitivity/sensitivity_panel.h"
#include "ui/widgets/error_reporter.h"

#include <QComboBox>
#include <QDockWidget>
#include <QTabWidget>
#include <QLineEdit>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QUndoStack>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

class TestStudioLoop : public QObject {
    Q_OBJECT

    std::unique_ptr<MainWindow> window;
    test::RecordingReporter* errors = nullptr;
    QTemporaryDir dir;
    QString dbPath;
    std::map<std::string, int> paretoBits;
    int64_t sensitivityRun = 0, paretoRun = 0, all8Run = 0;

    Store store() const { return Store::open(dbPath.toStdString(), {.mode = OpenMode::ReadOnly}); }
    QuantConfigDocument* config() const { return window->studio().config(); }
    std::size_t runsOf(RunKind kind) const { return store().runs({.kind = kind}).size(); }

    int64_t quantize()
    {
        QuantizeRequest r = window->feature<RunsFeature>()->controller()->defaultRequest();
        r.evalData = r.calibData; // evaluated on the calibration data, as the dialog's checkbox states it
        r.calibLimit = 64;
        r.evalLimit = 200;
        QSignalSpy stored(window->feature<RunsFeature>()->controller(), &RunsController::runStored);
        if (window->feature<RunsFeature>()->controller()->quantize(r) < 0 || !stored.wait(60000))
            return 0;
        return stored.takeFirst().at(0).toLongLong();
    }

    // QS_SCREENSHOT_DIR=<dir>: the comparison of the Pareto run with the all-8 run, tab by tab.
    void screenshots(ComparePanel* view)
    {
        if (qEnvironmentVariable("QS_SCREENSHOT_DIR").isEmpty())
            return;
        view->histogramLayer()->setCurrentIndex(1);
        for (int i = 0; i < view->tabs()->count(); ++i) {
            view->tabs()->setCurrentIndex(i);
            QVERIFY(test::screenshot(view, QStringLiteral("loop-compare-%1.png").arg(i)));
        }
        RunsPanel* browser = window->feature<RunsFeature>()->controller()->browser();
        browser->selectRuns({paretoRun, all8Run});
        window->feature<RunsFeature>()->controller()->runsDock()->setFloating(true);
        window->feature<RunsFeature>()->controller()->runsDock()->resize(1100, 260);
        QVERIFY(test::screenshot(window->feature<RunsFeature>()->controller()->runsDock(), QStringLiteral("loop-runs.png")));
        window->feature<RunsFeature>()->controller()->runsDock()->setFloating(false);
    }

private slots:
    void initTestCase()
    {
        dbPath = dir.filePath(QStringLiteral("studio.db"));
        window = test::openStudio(QStringLiteral("test_studio_loop"), dbPath, errors);
        QVERIFY(window);
        QVERIFY(store().runs().empty());
        // The data beside the model is what every step runs on.
        QVERIFY(window->studio().calibrationDataSpec().endsWith(QStringLiteral("fashion1k-images-idx3-ubyte.gz")));
    }

    void sensitivitySweepIsStored()
    {
        SensitivityPanel* panel = window->feature<SensitivityFeature>()->panel();
        panel->bitsEdit()->setText(QStringLiteral("2,4,8"));
        panel->limitSpin()->setValue(32);
        QSignalSpy finished(panel, &SensitivityPanel::sweepFinished);
        QVERIFY(panel->startSweep() > 0);
        QVERIFY(finished.wait(60000));
        QCOMPARE(finished.takeFirst().at(0).toBool(), true);
        const auto runs = store().runs();
        QCOMPARE(runs.size(), std::size_t(1));
        QCOMPARE(runs.front().kind, RunKind::Sensitivity);
        QCOMPARE(runs.front().state, RunState::Done);
        sensitivityRun = runs.front().id;
        const auto layers = store().layerResults(sensitivityRun);
        QCOMPARE(int(layers.size()), config()->layerCount());
        for (const LayerResult& l : layers)
            QVERIFY2(l.sensitivity, l.layer.c_str());
        QTRY_VERIFY_WITH_TIMEOUT(config()->sensitivity() != nullptr, 10000);
    }

    void editAndUndoChangeOnlyTheConfiguration()
    {
        const std::string first = config()->layerNames().front();
        const int before = config()->layer(0).weight.bits;
        const int undoCount = config()->undoStack()->count();
        config()->applyBits({{first, {3, 8}}});
        QCOMPARE(config()->layer(0).weight.bits, 3);
        QCOMPARE(config()->config().forLayer(first)->weight.bits, 3);
        QCOMPARE(config()->undoStack()->count(), undoCount + 1);
        config()->undoStack()->undo();
        QCOMPARE(config()->layer(0).weight.bits, before);
        QCOMPARE(store().runs().size(), std::size_t(1)); // editing records nothing
    }

    void paretoPointIsApplied()
    {
        ParetoPanel* pareto = window->feature<ParetoFeature>()->panel();
        QTRY_VERIFY_WITH_TIMEOUT(pareto->front().size() > 2, 30000);
        const int i = int(pareto->front().size()) / 2;
        const FrontPoint point = pareto->front()[std::size_t(i)];
        const int undoIndex = config()->undoStack()->index();
        pareto->applyPoint(i);
        QCOMPARE(config()->undoStack()->index(), undoIndex + 1);
        for (int r = 0; r < config()->layerCount(); ++r)
            QCOMPARE(config()->layer(r).weight.bits, point.bits.at(config()->layerNames()[std::size_t(r)]));
        std::set<int> distinct;
        for (const auto& [layer, b] : point.bits)
            distinct.insert(b);
        QVERIFY2(distinct.size() > 1 || *distinct.begin() < 8, "a mixed or reduced point");
        paretoBits = point.bits;
        QCOMPARE(store().runs().size(), std::size_t(1));
    }

    void quantizationRecordsTheParetoBits()
    {
        paretoRun = quantize();
        QVERIFY2(paretoRun > 0, qPrintable(errors->messages.join('\n')));
        QCOMPARE(runsOf(RunKind::Quantization), std::size_t(1));
        QCOMPARE(runsOf(RunKind::Sensitivity), std::size_t(1));
        const RunRecord run = store().run(paretoRun);
        QCOMPARE(run.state, RunState::Done);
        QVERIFY(run.metrics.top1 && run.metrics.sizeBits);
        for (const LayerResult& l : store().layerResults(paretoRun))
            QCOMPARE(l.weightBits.value_or(0), paretoBits.at(l.layer));
        QVERIFY(window->feature<RunsFeature>()->controller()->browser()->model()->rowOf(paretoRun) >= 0);

        config()->applyPreset(QuantConfigDocument::Preset::All8);
        all8Run = quantize();
        QVERIFY(all8Run > 0);
        QCOMPARE(runsOf(RunKind::Quantization), std::size_t(2));
        for (const LayerResult& l : store().layerResults(all8Run))
            QCOMPARE(l.weightBits.value_or(0), 8);
    }

    void twoRunsCompareWithTheSweepsSensitivity()
    {
        QSignalSpy shown(window->feature<RunsFeature>()->controller(), &RunsController::comparisonShown);
        QVERIFY(window->feature<RunsFeature>()->controller()->compare({all8Run, paretoRun}) > 0);
        QVERIFY(shown.wait(60000));
        auto* view = shown.takeFirst().at(0).value<ComparePanel*>();
        QCOMPARE(view->data().runs.front().id, paretoRun); // older first
        QCOMPARE(view->data().sensitivitySource.at(paretoRun), sensitivityRun);
        const RunComparison expected = compareRuns(store(), paretoRun, all8Run);
        QCOMPARE(view->configModel()->rowCount(), int(expected.config.size()));
        QCOMPARE(view->layersModel()->rowCount(), int(expected.layers.size()));
        const auto sweep = store().layerResults(sensitivityRun);
        for (int r = 0; r < view->layersModel()->rowCount(); ++r) {
            const std::string layer = view->layersModel()->item(r, 0)->toolTip().toStdString(); // the node name
            QCOMPARE(view->layersModel()->item(r, 2)->data(Qt::UserRole).toDouble(), double(paretoBits.at(layer)));
            QCOMPARE(view->layersModel()->item(r, 3)->data(Qt::UserRole).toDouble(), 8.0);
            auto s = std::find_if(sweep.begin(), sweep.end(), [&](const LayerResult& l) { return l.layer == layer; });
            QVERIFY(s != sweep.end());
            QCOMPARE(view->layersModel()->item(r, 9)->data(Qt::UserRole).toDouble(), *s->sensitivity);
        }
        QCOMPARE(store().runs().size(), std::size_t(3)); // comparing records nothing
        screenshots(view);
    }

    void exportAddsArtifacts()
    {
        ExportDialog* dialog = window->feature<RunsFeature>()->controller()->showExport(paretoRun);
        QVERIFY(dialog);
        QCOMPARE(dialog->selectedRun(), paretoRun);
        dialog->pathEdit()->setText(dir.filePath(QStringLiteral("export/pareto.onnx")));
        QSignalSpy exported(dialog, &ExportDialog::exported);
        QVERIFY(dialog->startExport() > 0);
        QVERIFY(exported.wait(60000));
        const auto artifacts = store().artifacts(paretoRun);
        QCOMPARE(artifacts.size(), std::size_t(4)); // QDQ ONNX, AIMET encodings, report HTML and CSV
        QVERIFY(store().artifacts(all8Run).empty());
        const ExportCheck* c = dialog->lastCheck();
        QVERIFY(c && c->quantizeNodes > 0);
        QCOMPARE(c->checkedLayers, config()->layerCount());
        for (const ArtifactRecord& a : artifacts)
            QVERIFY2(QFileInfo::exists(QString::fromStdString(a.path)), a.path.c_str());
        QCOMPARE(store().runs().size(), std::size_t(3));
        QVERIFY2(errors->messages.isEmpty(), qPrintable(errors->messages.join('\n')));
        QVERIFY(test::screenshot(dialog, QStringLiteral("loop-export.png")));
    }

    void cleanupTestCase()
    {
        window->studio().jobs()->cancelAll();
        QVERIFY(window->studio().jobs()->waitForWorkers(20000));
        window.reset();
    }
};

QTEST_MAIN(TestStudioLoop)
#include "test_studio_loop.moc"
