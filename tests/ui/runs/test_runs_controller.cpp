// The record-keeping half of the studio, offscreen on the demo model: Quantize runs
// as a job and its run reaches the store (same config as the bit editor's) and the
// runs panel; cancel leaves a cancelled row; the browser's filters list what the
// store's RunFilter does; notes and tags edited in place are written at once; delete
// asks first; Compare shows what core's compareRuns() finds (2 runs) or a metrics
// table and scatter (3+), also across two models; Export writes a QDQ file that
// imports again, with artifacts.
// QS_SCREENSHOT_DIR=<dir> saves PNGs of the browser, comparisons and export dialog.
#include "export/replay.h"
#include "graph/onnx_import.h"
#include "measure/stats.h"
#include "record/quantize_run.h"
#include "store/compare.h"
#include "store/store.h"
#include "support/onnx_builder.h"
#include "support/studio_window.h"
#include "ui/compare/compare_panel.h"
#include "ui/document/graph_layout.h"
#include "ui/document/layer_metric.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/export/export_dialog.h"
#include "ui/graph/graph_items.h"
#include "ui/graph/graph_panel.h"
#include "ui/graph/graph_view.h"
#include "ui/inspector/inspector_panel.h"
#include "ui/jobs/job_runner.h"
#include "ui/layers/layer_table_model.h"
#include "ui/layers/layer_table_panel.h"
#include "ui/main_window.h"
#include "ui/runs/quantize_dialog.h"
#include "ui/runs/run_details_dialog.h"
#include "ui/runs/runs_controller.h"
#include "ui/runs/runs_feature.h"
#include "ui/runs/runs_panel.h"
#include "ui/runs/runs_table_model.h"
#include "ui/sensitivity/sensitivity_feature.h"
#include "ui/sensitivity/sensitivity_panel.h"
#include "ui/widgets/elided_label.h"
#include "ui/widgets/error_reporter.h"
#include "ui/widgets/plot_view.h"

#include <qcustomplot.h>

#include <QAbstractButton>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDockWidget>
#include <QLabel>
#include <QListWidget>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QRadioButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

namespace {

QuantizeRequest smallRequest()
{
    QuantizeRequest r;
    r.calibData = r.evalData = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz");
    r.calibLimit = 64;
    r.evalLimit = 200;
    return r;
}

} // namespace

class TestRunsController : public QObject {
    Q_OBJECT

    std::unique_ptr<MainWindow> window;
    test::RecordingReporter* errors = nullptr;
    QTemporaryDir dir;
    QString dbPath;
    QList<qint64> done; // finished quantization runs, oldest first

    RunsController* runs() const { return window->feature<RunsFeature>()->controller(); }
    RunsPanel* browser() const { return window->feature<RunsFeature>()->controller()->browser(); }
    Store store() const { return Store::open(dbPath.toStdString(), {.mode = OpenMode::ReadOnly}); }

    qint64 quantizeAndWait(const QuantizeRequest& r)
    {
        QSignalSpy stored(runs(), &RunsController::runStored);
        if (runs()->quantize(r) < 0)
            return -1;
        if (!stored.wait(60000))
            return -1;
        return stored.takeFirst().at(0).toLongLong();
    }

    int listedRows() const { return browser()->proxy()->rowCount(); }

    // Selects the runs in the browser and clicks Compare: the comparison shown, or null.
    ComparePanel* compareAndWait(const QList<qint64>& ids)
    {
        browser()->selectRuns(ids);
        QSignalSpy shown(runs(), &RunsController::comparisonShown);
        browser()->compareButton()->click();
        if (!shown.wait(60000))
            return nullptr;
        return shown.takeFirst().at(0).value<ComparePanel*>();
    }

private slots:
    void initTestCase()
    {
        QVERIFY(dir.isValid());
        dbPath = dir.filePath(QStringLiteral("studio.db"));
        window = test::openStudio(QStringLiteral("test_runs_controller"), dbPath, errors);
        QVERIFY(window);
        QTRY_COMPARE_WITH_TIMEOUT(browser()->storePath(), QFileInfo(dbPath).absoluteFilePath(), 10000);
        QTRY_VERIFY_WITH_TIMEOUT(!window->studio().jobs()->isBusy(QStringLiteral("runs-list")), 10000);
        QCOMPARE(listedRows(), 0);
    }

    void dialogListsRegisteredAlgorithms()
    {
        QuantizeRequest r = smallRequest();
        r.algorithms = {QStringLiteral("cle")};
        QuantizeDialog dialog(r);
        QCOMPARE(dialog.algorithmList()->count(), int(algorithms().size()));
        QCOMPARE(dialog.request().algorithms, QStringList{QStringLiteral("cle")});
        QCOMPARE(dialog.request().calibLimit, 64);
        dialog.algorithmList()->item(0)->setCheckState(Qt::Unchecked);
        for (int i = 0; i < dialog.algorithmList()->count(); ++i)
            dialog.algorithmList()->item(i)->setCheckState(Qt::Unchecked);
        QVERIFY(dialog.request().algorithms.isEmpty());
    }

    // Two configurations from the bit editor: the stored config is the editor's, with the
    // chosen algorithms; each run shows up in the browser, selected, as soon as it is stored.
    void quantizeRecordsTheCurrentConfiguration_data()
    {
        QTest::addColumn<int>("preset"); // -1: the model's defaults
        QTest::addColumn<QStringList>("algorithms");
        QTest::addColumn<QStringList>("tags");
        QTest::newRow("defaults") << -1 << QStringList{} << QStringList{QStringLiteral("baseline")};
        QTest::newRow("w4a8+bias") << int(QuantConfigDocument::Preset::W4A8) << QStringList{QStringLiteral("bias_correction")}
                                   << QStringList{QStringLiteral("w4"), QStringLiteral("candidate")};
        QTest::newRow("w4a8") << int(QuantConfigDocument::Preset::W4A8) << QStringList{} << QStringList{QStringLiteral("w4")};
    }

    void quantizeRecordsTheCurrentConfiguration()
    {
        QFETCH(int, preset);
        QFETCH(QStringList, algorithms);
        QFETCH(QStringList, tags);
        if (preset >= 0)
            window->studio().config()->applyPreset(QuantConfigDocument::Preset(preset));
        QuantizeRequest r = smallRequest();
        r.algorithms = algorithms;
        r.tags = tags;
        r.note = QStringLiteral("from the test");
        const qint64 id = quantizeAndWait(r);
        QVERIFY2(id > 0, qPrintable(errors->messages.join('\n')));
        done << id;

        const RunRecord run = store().run(id);
        QCOMPARE(run.kind, RunKind::Quantization);
        QCOMPARE(run.state, RunState::Done);
        QCOMPARE(run.modelName, std::string("fashion_cnn"));
        QCOMPARE(int(run.tags.size()), int(tags.size()));
        QCOMPARE(run.note, std::string("from the test"));
        nlohmann::json expected = window->studio().config()->config().toJson();
        // Every key of the editor's configuration, as it is; the algorithms are the dialog's.
        for (const auto& [key, value] : expected.items())
            if (key != "algorithms")
                QCOMPARE(QString::fromStdString(run.config.value(key, nlohmann::json()).dump()),
                    QString::fromStdString(value.dump()));
        QCOMPARE(run.config["calibration"]["samples"].get<int>(), 64);
        QCOMPARE(run.config["evaluation"]["samples"].get<int>(), 200);
        QCOMPARE(int(run.config["algorithms"].size()), int(algorithms.size()));
        QVERIFY(run.metrics.top1);
        const auto layers = store().layerResults(id);
        QCOMPARE(int(layers.size()), window->studio().document()->layerCount());
        const int wantBits = preset < 0 ? 8 : 4;
        for (const LayerResult& l : layers) {
            const auto spec = window->studio().config()->config().forLayer(l.layer);
            QVERIFY(spec);
            QCOMPARE(l.weightBits.value_or(0), spec->weight.bits);
        }
        if (preset >= 0)
            QVERIFY(std::any_of(layers.begin(), layers.end(), [&](const LayerResult& l) { return l.weightBits == wantBits; }));

        QCOMPARE(listedRows(), int(done.size()));
        QCOMPARE(browser()->selectedRunIds(), QList<qint64>{id});
        // The layer table's Bits come from the newest run of this model.
        QTRY_VERIFY_WITH_TIMEOUT(window->studio().document()->stored() && window->studio().document()->stored()->bitsRun == id, 10000);
        QVERIFY(errors->messages.isEmpty());
    }

    void cancelLeavesCancelledRun()
    {
        QSignalSpy refreshed(browser(), &RunsPanel::refreshed);
        QuantizeRequest r = smallRequest();
        r.evalLimit = 1000;
        r.calibLimit = 1000;
        const int job = runs()->quantize(r);
        QVERIFY(job > 0);
        // Cancel once the run row exists (the job has begun quantizing).
        QTRY_VERIFY_WITH_TIMEOUT(store().runs({.state = RunState::Running}).size() == 1, 30000);
        window->studio().jobs()->cancel(job);
        QTRY_VERIFY_WITH_TIMEOUT(window->studio().jobs()->activeWorkers() == 0, 20000);
        QTRY_COMPARE_WITH_TIMEOUT(store().runs({.state = RunState::Cancelled}).size(), std::size_t(1), 10000);
        QTRY_COMPARE_WITH_TIMEOUT(listedRows(), int(done.size()) + 1, 10000);
        QVERIFY(errors->messages.isEmpty());
    }

    // Each filter lists exactly the runs the store's RunFilter returns.
    void filtersMatchTheStore_data()
    {
        QTest::addColumn<QString>("combo");
        QTest::addColumn<QString>("value");
        QTest::newRow("state done") << "runsStateFilter" << "done";
        QTest::newRow("state cancelled") << "runsStateFilter" << "cancelled";
        QTest::newRow("kind quantization") << "runsKindFilter" << "quantization";
        QTest::newRow("kind sensitivity") << "runsKindFilter" << "sensitivity";
        QTest::newRow("tag w4") << "runsTagFilter" << "w4";
        QTest::newRow("tag baseline") << "runsTagFilter" << "baseline";
    }

    void filtersMatchTheStore()
    {
        QFETCH(QString, combo);
        QFETCH(QString, value);
        auto* c = browser()->findChild<QComboBox*>(combo);
        QVERIFY(c);
        const int index = c->findData(value);
        QVERIFY2(index > 0, qPrintable(value));
        QSignalSpy refreshed(browser(), &RunsPanel::refreshed);
        c->setCurrentIndex(index);
        emit c->activated(index);
        QVERIFY(refreshed.wait(10000));
        RunFilter f;
        if (combo == "runsStateFilter")
            f.state = parseRunState(value.toStdString());
        if (combo == "runsKindFilter")
            f.kind = parseRunKind(value.toStdString());
        if (combo == "runsTagFilter")
            f.tag = value.toStdString();
        const auto expected = store().runs(f);
        QCOMPARE(listedRows(), int(expected.size()));
        for (const RunRecord& r : expected)
            QVERIFY(browser()->model()->rowOf(r.id) >= 0);
        c->setCurrentIndex(0);
        emit c->activated(0);
        QVERIFY(refreshed.wait(10000));
    }

    void modelFilterListsTheModel()
    {
        QComboBox* c = browser()->modelFilter();
        QCOMPARE(c->count(), 2); // All + fashion_cnn
        QCOMPARE(c->itemText(1), QStringLiteral("fashion_cnn"));
        QSignalSpy refreshed(browser(), &RunsPanel::refreshed);
        c->setCurrentIndex(1);
        emit c->activated(1);
        QVERIFY(refreshed.wait(10000));
        QCOMPARE(listedRows(), int(store().runs().size()));
        c->setCurrentIndex(0);
        emit c->activated(0);
        QVERIFY(refreshed.wait(10000));
    }

    void notesAndTagsAreWrittenAtOnce()
    {
        const qint64 id = done.front();
        RunsTableModel* m = browser()->model();
        const int row = m->rowOf(id);
        QSignalSpy edited(browser(), &RunsPanel::storeEdited);
        QVERIFY(m->setData(m->index(row, RunsTableModel::Note), QStringLiteral("reference run"), Qt::EditRole));
        QVERIFY(edited.wait(10000));
        QCOMPARE(store().run(id).note, std::string("reference run"));
        QVERIFY(m->setData(m->index(row, RunsTableModel::Tags), QStringLiteral(" baseline, keep ,, keep"), Qt::EditRole));
        QVERIFY(edited.wait(10000));
        QCOMPARE(store().run(id).tags, (std::vector<std::string>{"baseline", "keep"}));
        QCOMPARE(m->index(row, RunsTableModel::Tags).data().toString(), QStringLiteral("baseline, keep"));
        QVERIFY(m->flags(m->index(row, RunsTableModel::Note)) & Qt::ItemIsEditable);
        QVERIFY(!(m->flags(m->index(row, RunsTableModel::Top1)) & Qt::ItemIsEditable));
        runs()->runsDock()->setFloating(true);
        runs()->runsDock()->resize(1100, 300);
        QTest::qWait(50);
        QVERIFY(test::screenshot(runs()->runsDock(), QStringLiteral("runs-browser.png")));
        runs()->runsDock()->setFloating(false);
    }

    void deleteAsksFirst()
    {
        const auto cancelled = store().runs({.state = RunState::Cancelled});
        QCOMPARE(cancelled.size(), std::size_t(1));
        const qint64 id = cancelled.front().id;
        browser()->selectRuns({id});
        QCOMPARE(browser()->selectedRunIds(), QList<qint64>{id});
        // Cancel keeps it.
        browser()->deleteSelected();
        QTRY_VERIFY(browser()->confirmation() && browser()->confirmation()->isVisible());
        browser()->confirmation()->button(QMessageBox::Cancel)->click();
        QTest::qWait(200);
        QVERIFY(store().findRun(id));
        // Yes deletes it, and the list follows.
        QSignalSpy refreshed(browser(), &RunsPanel::refreshed);
        browser()->selectRuns({id});
        browser()->deleteSelected();
        QTRY_VERIFY(browser()->confirmation() && browser()->confirmation()->isVisible());
        QVERIFY(browser()->confirmation()->text().contains(QStringLiteral("#%1").arg(id)));
        browser()->confirmation()->button(QMessageBox::Yes)->click();
        QVERIFY(refreshed.wait(10000));
        QVERIFY(!store().findRun(id));
        QCOMPARE(listedRows(), int(done.size()));
    }

    void compareTwoRunsShowsCoreDifferences()
    {
        const qint64 a = done[0], b = done[1];
        browser()->selectRuns({a, b});
        QVERIFY(browser()->compareButton()->isEnabled());
        QSignalSpy shown(runs(), &RunsController::comparisonShown);
        browser()->compareButton()->click();
        QVERIFY(shown.wait(60000));
        auto* view = shown.takeFirst().at(0).value<ComparePanel*>();
        QVERIFY(view);
        const RunComparison expected = compareRuns(store(), view->data().runs[0].id, view->data().runs[1].id);
        QCOMPARE(view->configModel()->rowCount(), int(expected.config.size()));
        QVERIFY(view->configModel()->rowCount() > 0); // W8 vs W4 and bias correction
        for (int r = 0; r < view->configModel()->rowCount(); ++r) {
            QCOMPARE(view->configModel()->item(r, 0)->data(Qt::UserRole).toString().toStdString(), expected.config[std::size_t(r)].key);
            QCOMPARE(view->configModel()->item(r, 1)->background().color(), ComparePanel::changedColor());
        }
        QCOMPARE(view->metricsModel()->rowCount(), int(expected.metrics.size()));
        QCOMPARE(view->layersModel()->rowCount(), int(expected.layers.size()));
        int changed = 0;
        for (int r = 0; r < view->layersModel()->rowCount(); ++r) {
            const LayerComparison& l = expected.layers[std::size_t(r)];
            QCOMPARE(view->layersModel()->item(r, 2)->data(Qt::UserRole).toDouble(), double(*l.a.weightBits));
            QCOMPARE(view->layersModel()->item(r, 3)->data(Qt::UserRole).toDouble(), double(*l.b.weightBits));
            changed += l.a.weightBits != l.b.weightBits;
            if (l.a.sqnrDb && l.b.sqnrDb)
                QCOMPARE(view->layersModel()->item(r, 8)->data(Qt::UserRole).toDouble(), *l.b.sqnrDb - *l.a.sqnrDb);
        }
        QVERIFY(changed > 0);
        // Compare is a main view, in front of the graph.
        QCOMPARE(window->mainViews()->currentWidget(), static_cast<QWidget*>(runs()->compareTabs()));
        QVERIFY(view->isVisible());
        QTest::qWait(50);
        // Histograms: FP32 and both quantized series for weights and activations.
        view->tabs()->setCurrentIndex(3);
        view->histogramLayer()->setCurrentIndex(1);
        QCOMPARE(view->histogramPlot()->graphCount(), 3);
        QVERIFY(test::screenshot(view, QStringLiteral("compare-histograms.png")));
        view->activationsButton()->setChecked(true);
        QCOMPARE(view->histogramPlot()->graphCount(), 3);
        QVERIFY(test::screenshot(view, QStringLiteral("compare-histograms-act.png")));
        // Graphs coloured by the bits of each run.
        for (int side = 0; side < 2; ++side) {
            ModelDocument* doc = view->graphDocument(side);
            QVERIFY(doc && doc->model());
            QCOMPARE(view->graphView(side)->colorMetric(), LayerMetric::Bits);
            const auto& layers = expected.layers;
            for (int row = 0; row < doc->layerCount(); ++row) {
                const std::string& name = doc->layer(row)->summary.name;
                auto it = std::find_if(layers.begin(), layers.end(), [&](const LayerComparison& l) { return l.layer == name; });
                QVERIFY(it != layers.end());
                QCOMPARE(metricValue(LayerMetric::Bits, *doc, row).value_or(-1), double(*(side == 0 ? it->a : it->b).weightBits));
            }
        }
        view->tabs()->setCurrentIndex(1);
        QVERIFY(test::screenshot(view, QStringLiteral("compare-summary.png")));
        view->tabs()->setCurrentIndex(2);
        QVERIFY(test::screenshot(view, QStringLiteral("compare-layers.png")));
        view->tabs()->setCurrentIndex(0);
        QTest::qWait(50);
        QVERIFY(test::screenshot(window.get(), QStringLiteral("compare-graphs.png")));
    }

    // The first tab of a comparison: both graphs side by side (left a, right b), each layer's
    // box labelled with its W/A bits and SQNR (b with its delta), following each other in
    // zoom, place and selection, under the configuration differences in words.
    void compareShowsGraphsSideBySideInSync()
    {
        ComparePanel* view = compareAndWait({done[0], done[1]});
        QVERIFY(view);
        QCOMPARE(view->tabs()->currentIndex(), 0);
        QCOMPARE(view->tabs()->tabText(0), QStringLiteral("Side by Side"));
        QTest::qWait(100);
        GraphView* a = view->graphView(0);
        GraphView* b = view->graphView(1);
        QVERIFY(a->isVisible() && b->isVisible());
        const QRect ra(a->mapTo(view, QPoint(0, 0)), a->size()), rb(b->mapTo(view, QPoint(0, 0)), b->size());
        QVERIFY2(ra.right() < rb.left() && std::abs(ra.top() - rb.top()) < 4 && ra.width() > 200 && rb.width() > 200,
            "the two graphs are not side by side");
        const RunComparison c = compareRuns(store(), view->data().runs[0].id, view->data().runs[1].id);

        // Bits (and SQNR with its delta on b) on every layer's box.
        for (int side = 0; side < 2; ++side) {
            ModelDocument* doc = view->graphDocument(side);
            for (const LayerComparison& l : c.layers) {
                int node = -1;
                for (std::size_t n = 0; n < doc->model()->graph->nodes.size(); ++n)
                    if (doc->model()->graph->nodes[n].name == l.layer)
                        node = int(n);
                QVERIFY(node >= 0);
                const LayerResult& own = side == 0 ? l.a : l.b;
                const QString badge = view->graphView(side)->nodeBadge(node);
                QVERIFY2(badge.startsWith(QStringLiteral("W%1/A%2").arg(*own.weightBits).arg(own.actBits.value_or(32))),
                    qPrintable(badge));
                QCOMPARE(badge, ComparePanel::nodeBadgeText(own, side == 0 ? &l.b : &l.a, side == 1));
                if (side == 1 && l.a.sqnrDb && l.b.sqnrDb)
                    QVERIFY2(badge.contains(QLatin1Char('(')), qPrintable(badge));
            }
        }
        // The differences in words, with layers as the table names them.
        QVERIFY(!c.config.empty());
        for (const ConfigDifference& d : c.config) {
            const QString words = ComparePanel::differenceInWords(d, c);
            QVERIFY2(!words.contains(QLatin1Char('~')) && !words.startsWith(QLatin1Char('/')) &&
                    words.contains(QStringLiteral("\u2192")) && !words.contains(QStringLiteral("data data")),
                qPrintable(words));
        }
        QVERIFY(view->differencesLabel()->text().contains(QStringLiteral("What changed")));
        QCOMPARE(ComparePanel::differenceInWords({"/evaluation/data", "a.gz", "b.gz"}, c),
            QStringLiteral("Evaluation data: a.gz \u2192 b.gz"));
        QCOMPARE(ComparePanel::differenceInWords({"/calibration/samples", 64, 256}, c),
            QStringLiteral("Calibration samples: 64 \u2192 256"));
        QCOMPARE(ComparePanel::differenceInWords({"/algorithms/0/name", nullptr, "cle"}, c),
            QStringLiteral("Algorithm name: not set \u2192 cle"));
        for (const ConfigDifference& d : c.config)
            if (d.key.find("/weight/bits") != std::string::npos && d.key.rfind("/layers/", 0) == 0) {
                const QString words = ComparePanel::differenceInWords(d, c);
                QVERIFY2(words.startsWith(QStringLiteral("Weight bits of ")), qPrintable(words));
            }

        // Zoom and place follow: a zoom on the left is the zoom on the right, a pan too.
        a->zoomBy(1.6);
        QVERIFY(std::abs(b->zoom() - a->zoom()) < 1e-9);
        a->centerOn(a->sceneRect().center() + QPointF(80, 40));
        QVERIFY(QLineF(a->visibleSceneRect().center(), b->visibleSceneRect().center()).length() < 2 / a->zoom() + 2);
        b->zoomBy(0.7);
        QVERIFY(std::abs(b->zoom() - a->zoom()) < 1e-9);
        // Selection follows, by layer name, both ways.
        LayerSelection* selA = view->graphDocument(0)->findChild<LayerSelection*>();
        LayerSelection* selB = view->graphDocument(1)->findChild<LayerSelection*>();
        QVERIFY(selA && selB);
        selA->selectLayer(3);
        QCOMPARE(view->graphDocument(1)->model()->graph->nodes[std::size_t(selB->currentNode())].name,
            view->graphDocument(0)->layer(3)->summary.name);
        selB->selectLayer(5);
        QCOMPARE(view->graphDocument(0)->model()->graph->nodes[std::size_t(selA->currentNode())].name,
            view->graphDocument(1)->layer(5)->summary.name);
        window->resize(1600, 1000);
        QTest::qWait(100);
        QVERIFY(test::screenshot(window.get(), QStringLiteral("studio_compare.png")));
    }

    // One name per layer: the layer table, the graph's box, the sensitivity heatmap's row,
    // the inspector's title and the comparison's layer table all say the same.
    void layerNamesAgreeAcrossViews()
    {
        ComparePanel* view = compareAndWait({done[0], done[1]});
        QVERIFY(view);
        Studio& studio = window->studio();
        ModelDocument* doc = studio.document();
        LayerTableModel* table = window->layerPanel()->model();
        SensitivityPanel* heat = window->feature<SensitivityFeature>()->panel();
        auto* ticks = dynamic_cast<QCPAxisTickerText*>(heat->heatmap()->plot()->yAxis->ticker().data());
        QVERIFY(ticks);
        QCOMPARE(doc->layerCount(), 8);
        for (int row = 0; row < doc->layerCount(); ++row) {
            const LayerData* l = doc->layer(row);
            const QString name = table->data(table->index(row, LayerTableModel::Name), Qt::DisplayRole).toString();
            QVERIFY(!name.isEmpty());
            QCOMPARE(name, shortLayerName(l->summary.name, l->summary.op));
            // The graph's box.
            const int node = doc->model()->layers[std::size_t(row)].node;
            NodeItem* item = window->graphPanel()->view()->itemForNode(node);
            QVERIFY(item);
            QVERIFY2(item->box().lines.contains(name), qPrintable(item->box().lines.join(QLatin1Char('|'))));
            // The heatmap's row.
            QCOMPARE(ticks->ticks().value(double(row)), name);
            // The inspector's title.
            studio.selection()->selectLayer(row);
            QCOMPARE(window->inspector()->findChild<ElidedLabel*>(QStringLiteral("inspectorTitle"))->fullText(), name);
            // The comparison's layer table and histogram chooser.
            bool found = false;
            for (int r = 0; r < view->layersModel()->rowCount(); ++r)
                if (view->layersModel()->item(r, 0)->toolTip() == QString::fromStdString(l->summary.name)) {
                    QCOMPARE(view->layersModel()->item(r, 0)->text(), name);
                    found = true;
                }
            QVERIFY(found);
            QVERIFY(view->histogramLayer()->findText(name) >= 0);
        }
    }

    // Evaluation data is chosen, never the calibration file unasked: with none chosen the
    // dialog cannot quantize; "Evaluate on the calibration data" says so and fills it. The
    // runs list and a run's details say which data measured its metrics.
    void evaluationDataIsChosenAndShown()
    {
        QuantizeRequest none = smallRequest();
        none.evalData.clear();
        QuantizeDialog dialog(none);
        QVERIFY(!dialog.evalOnCalibration()->isChecked());
        QVERIFY(dialog.evalData()->text().isEmpty());
        QVERIFY(!dialog.problem().isEmpty());
        auto* ok = dialog.findChild<QDialogButtonBox*>()->button(QDialogButtonBox::Ok);
        QVERIFY(!ok->isEnabled());
        dialog.evalOnCalibration()->setChecked(true);
        QCOMPARE(dialog.request().evalData, none.calibData);
        QVERIFY(ok->isEnabled());
        QVERIFY(dialog.findChild<QLabel*>(QStringLiteral("quantizeEvalHint"))
                    ->text()
                    .contains(QStringLiteral("not held out")));
        // A held-out split of the calibration file: from the sample after those calibration takes.
        QVERIFY(dialog.heldOut()->isEnabled() && !dialog.heldOut()->isChecked());
        dialog.heldOut()->setChecked(true);
        QCOMPARE(dialog.request().evalFrom, dialog.calibLimit()->value());
        QVERIFY(dialog.findChild<QLabel*>(QStringLiteral("quantizeEvalHint"))
                    ->text()
                    .contains(QStringLiteral("held out from the 64")));
        dialog.heldOut()->setChecked(false);
        QCOMPARE(dialog.request().evalFrom, 0);
        dialog.evalOnCalibration()->setChecked(false);
        QVERIFY(!dialog.heldOut()->isEnabled());
        dialog.evalData()->setText(QStringLiteral("/elsewhere/test-images-idx3-ubyte"));
        QVERIFY(ok->isEnabled());
        QVERIFY(dialog.findChild<QLabel*>(QStringLiteral("quantizeEvalHint"))
                    ->text()
                    .contains(QStringLiteral("held out from calibration")));
        // A request that evaluated on its calibration data opens with that stated.
        QuantizeDialog same(smallRequest());
        QVERIFY(same.evalOnCalibration()->isChecked());

        // The list: done[0] measured on the calibration file; a run on a copy held out.
        RunsTableModel* m = browser()->model();
        const QString onCalib = m->index(m->rowOf(done[0]), RunsTableModel::EvalData).data().toString();
        QCOMPARE(onCalib, QStringLiteral("fashion1k-images-idx3-ubyte.gz (the calibration data, not held out)"));
        const QString held = dir.filePath(QStringLiteral("held-images-idx3-ubyte.gz"));
        QVERIFY(QFile::copy(QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz"), held));
        QVERIFY(QFile::copy(QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion1k-labels-idx1-ubyte.gz"),
            dir.filePath(QStringLiteral("held-labels-idx1-ubyte.gz"))));
        QuantizeRequest r = smallRequest();
        r.evalData = held;
        const qint64 id = quantizeAndWait(r);
        QVERIFY2(id > 0, qPrintable(errors->messages.join(QLatin1Char('\n'))));
        QTRY_VERIFY_WITH_TIMEOUT(m->rowOf(id) >= 0, 10000);
        QCOMPARE(m->index(m->rowOf(id), RunsTableModel::EvalData).data().toString(),
            QStringLiteral("held-images-idx3-ubyte.gz (held out from calibration)"));
        QVERIFY(m->index(m->rowOf(id), RunsTableModel::EvalData).data(Qt::ToolTipRole).toString().startsWith(held));
        // The held-out part of the calibration file: 200 samples from sample 64.
        QuantizeRequest split = smallRequest();
        split.evalFrom = split.calibLimit;
        const qint64 splitId = quantizeAndWait(split);
        QVERIFY2(splitId > 0, qPrintable(errors->messages.join(QLatin1Char('\n'))));
        QTRY_VERIFY_WITH_TIMEOUT(m->rowOf(splitId) >= 0, 10000);
        QCOMPARE(m->index(m->rowOf(splitId), RunsTableModel::EvalData).data().toString(),
            QStringLiteral("fashion1k-images-idx3-ubyte.gz from sample 64 (held out from calibration)"));
        const RunRecord splitRun = store().run(splitId);
        QVERIFY(splitRun.config["evaluation"]["data"].get<std::string>().ends_with("[64:]"));
        QCOMPARE(splitRun.config["evaluation"]["samples"].get<int>(), 200);
        RunDetailsDialog details(store().run(id));
        bool said = false;
        for (QLabel* label : details.findChildren<QLabel*>())
            said = said || label->text() == held + QStringLiteral(" (held out from calibration)");
        QVERIFY(said);
        auto* metrics = details.findChild<QTableWidget*>(QStringLiteral("runDetailsMetrics"));
        QVERIFY(metrics && metrics->rowCount() > 0);
        QVERIFY2(metrics->item(0, 3)->text().contains(QStringLiteral("held-images-idx3-ubyte.gz")),
            qPrintable(metrics->item(0, 3)->text()));
    }

    void compareManyRunsPlotsThemAll()
    {
        QSignalSpy shown(runs(), &RunsController::comparisonShown);
        QVERIFY(runs()->compare(done) > 0);
        QVERIFY(shown.wait(30000));
        auto* view = shown.takeFirst().at(0).value<ComparePanel*>();
        QCOMPARE(view->metricsModel()->rowCount(), int(done.size()));
        QVERIFY(!view->data().pair);
        QCOMPARE(view->scatterPlot()->graph(0)->dataCount(), int(done.size()));
        const auto points = view->scatterPlot()->graph(0)->data(); // sorted by size
        for (qint64 id : done) {
            const RunRecord r = store().run(id);
            bool found = false;
            for (auto p = points->constBegin(); p != points->constEnd(); ++p)
                found = found || (qFuzzyCompare(p->key, *r.metrics.sizeBits / 8192.0) &&
                                     qFuzzyCompare(p->value, *r.metrics.top1 * 100));
            QVERIFY2(found, qPrintable(QStringLiteral("run %1").arg(id)));
        }
        QVERIFY(test::screenshot(view, QStringLiteral("compare-many.png")));
    }

    void exportWritesCheckedArtifacts()
    {
        const qint64 id = done[1];
        browser()->selectRuns({id});
        QVERIFY(browser()->exportButton()->isEnabled());
        browser()->exportButton()->click();
        ExportDialog* dialog = runs()->exportDialog();
        QVERIFY(dialog);
        QCOMPARE(dialog->selectedRun(), id);
        const QString out = dir.filePath(QStringLiteral("out/run.onnx"));
        dialog->pathEdit()->setText(out);
        QSignalSpy exported(dialog, &ExportDialog::exported);
        dialog->exportButton()->click();
        QVERIFY(exported.wait(60000));
        const ExportCheck* c = dialog->lastCheck();
        QVERIFY(c);
        QVERIFY(QFileInfo::exists(out));
        QCOMPARE(c->onnxBytes, QFileInfo(out).size());
        QVERIFY(c->nodes > int(window->studio().document()->model()->graph->nodes.size()));
        QVERIFY(c->quantizeNodes > 0 && c->dequantizeNodes >= c->quantizeNodes);
        QCOMPARE(c->checkedLayers, window->studio().document()->layerCount());
        QVERIFY(QFileInfo::exists(c->reportPath));
        const auto artifacts = store().artifacts(id);
        QCOMPARE(int(c->artifacts.size()), int(artifacts.size()));
        QStringList formats;
        for (const ArtifactRecord& a : artifacts)
            formats << QString::fromStdString(a.format);
        QVERIFY2(formats.contains(QStringLiteral("onnx-qdq")), qPrintable(formats.join(',')));
        QVERIFY(formats.contains(QStringLiteral("report-html")));
        QVERIFY(formats.contains(QStringLiteral("encodings-json")));
        QVERIFY(QFileInfo::exists(c->encodingsPath));
        QCOMPARE(dialog->artifactsModel()->rowCount(), int(artifacts.size()));
        QVERIFY(dialog->resultLabel()->text().contains(QStringLiteral("Imported again")));
        QVERIFY(test::screenshot(dialog, QStringLiteral("export.png")));

        // Parity: the table shows, layer by layer, what the core's check of the same file says.
        QVERIFY(dialog->parityButton()->isEnabled());
        QSignalSpy checked(dialog, &ExportDialog::parityChecked);
        dialog->parityButton()->click();
        QVERIFY(checked.wait(120000));
        const ParityResult* shown = dialog->lastParity();
        QVERIFY(shown);
        ParityResult expected;
        {
            Progress quiet;
            CancelToken none;
            const Store s = Store::open(dbPath.toStdString(), {.mode = OpenMode::ReadOnly});
            RunReplay replay = replayRun(s, id, quiet, none);
            const QdqLowered lowered = lowerQdqModel(importOnnx(out.toStdString()), out.toStdString());
            expected = checkParity(*replay.session, lowered, replay.calib, {}, quiet, none);
        }
        QCOMPARE(int(shown->layers.size()), int(expected.layers.size()));
        QCOMPARE(dialog->parityModel()->rowCount(), int(expected.layers.size()));
        for (std::size_t i = 0; i < expected.layers.size(); ++i) {
            const LayerParity& e = expected.layers[i];
            QCOMPARE(dialog->parityModel()->item(int(i), 0)->text(), QString::fromStdString(e.layer));
            QCOMPARE(shown->layers[i].sqnrDb, e.sqnrDb);
            QCOMPARE(shown->layers[i].drifting, e.drifting);
            QCOMPARE(dialog->parityModel()->item(int(i), 2)->text().startsWith(QStringLiteral("INT8")), e.int8);
        }
        QCOMPARE(shown->passed(), expected.passed());
        QVERIFY2(dialog->parityLabel()->text().contains(expected.passed() ? QStringLiteral("No layer drifts")
                                                                           : QStringLiteral("introduce drift")),
            qPrintable(dialog->parityLabel()->text()));
        QVERIFY(test::screenshot(dialog, QStringLiteral("export-parity.png")));
        dialog->close();
        QVERIFY(errors->messages.isEmpty());
    }

    // Runs of two different models line up by layer name: here none match, so every layer
    // is listed as only in its run, and each side's graph is its own model's.
    void compareRunsOfTwoModels()
    {
        const QString tiny = dir.filePath(QStringLiteral("tiny.onnx"));
        test::tinyConvModel().save(tiny.toStdString());
        QSignalSpy opened(&window->studio(), &Studio::modelOpened);
        window->studio().openModel(tiny);
        QVERIFY(opened.wait(60000));
        QuantizeRequest r = smallRequest();
        r.calibData = r.evalData = QStringLiteral("random:32");
        r.evalLimit = 0;
        const qint64 other = quantizeAndWait(r);
        QVERIFY2(other > 0, qPrintable(errors->messages.join('\n')));
        QCOMPARE(store().run(other).modelName, std::string("tiny"));
        QVERIFY(!store().run(other).metrics.top1); // random data has no labels

        QSignalSpy shown(runs(), &RunsController::comparisonShown);
        QVERIFY(runs()->compare({other, done[0]}) > 0);
        QVERIFY(shown.wait(60000));
        auto* view = shown.takeFirst().at(0).value<ComparePanel*>();
        const RunComparison expected = compareRuns(store(), done[0], other);
        QVERIFY(expected.layers.empty());
        QCOMPARE(view->layersModel()->rowCount(), int(expected.onlyInA.size() + expected.onlyInB.size()));
        QCOMPARE(view->layersModel()->item(view->layersModel()->rowCount() - 1, 0)->text(), QStringLiteral("conv"));
        QCOMPARE(view->layersModel()->item(view->layersModel()->rowCount() - 1, 1)->text(), QStringLiteral("only in b"));
        QCOMPARE(view->histogramLayer()->count(), 0);
        QCOMPARE(view->graphDocument(0)->model()->displayName(), QStringLiteral("fashion_cnn.onnx"));
        QCOMPARE(view->graphDocument(1)->model()->displayName(), QStringLiteral("tiny.onnx"));
        QCOMPARE(metricValue(LayerMetric::Bits, *view->graphDocument(1), 0).value_or(-1), 8.0);
        QVERIFY(errors->messages.isEmpty());
    }

    // The list says what top-1 was measured on and how sure it is; double-clicking a run
    // (outside Tags and Note) opens its details with the FP32 baseline beside each metric.
    void runDetailsAndIntervals()
    {
        const qint64 id = done[0];
        RunsTableModel* m = browser()->model();
        const int row = m->rowOf(id);
        QVERIFY(row >= 0);
        const RunRecord run = store().run(id);
        QCOMPARE(m->index(row, RunsTableModel::Samples).data().toString(), QStringLiteral("200"));
        const auto [lo, hi] = wilsonInterval(*run.metrics.top1, 200);
        const double half = std::max(*run.metrics.top1 - lo, hi - *run.metrics.top1) * 100;
        QVERIFY(half > 1 && half < 8); // about 4 points on 200 samples
        QVERIFY2(m->index(row, RunsTableModel::Top1).data().toString().endsWith(
                     QStringLiteral("\u00B1%1").arg(half, 0, 'f', 1)),
            qPrintable(m->index(row, RunsTableModel::Top1).data().toString()));

        QTableView* view = browser()->view();
        const QModelIndex cell = browser()->proxy()->mapFromSource(m->index(row, RunsTableModel::Model));
        window->feature<RunsFeature>()->controller()->browser()->window()->activateWindow();
        view->scrollTo(cell);
        QVERIFY(view->isVisible() && view->visualRect(cell).isValid());
        QTest::mouseClick(view->viewport(), Qt::LeftButton, {}, view->visualRect(cell).center());
        QTest::mouseDClick(view->viewport(), Qt::LeftButton, {}, view->visualRect(cell).center());
        RunDetailsDialog* dialog = browser()->findChild<RunDetailsDialog*>();
        QVERIFY(dialog && dialog->isVisible());
        QTableWidget* t = dialog->metricsTable();
        QStringList rows;
        for (int r = 0; r < t->rowCount(); ++r)
            rows << t->item(r, 0)->text() + u'|' + t->item(r, 1)->text() + u'|' + t->item(r, 2)->text() + u'|' +
                        t->item(r, 3)->text();
        const QString top1 = rows.filter(QStringLiteral("Top-1 accuracy|")).value(0);
        QVERIFY2(top1.contains(QStringLiteral("95 % CI")) &&
                top1.contains(QStringLiteral("200 samples of fashion1k-images-idx3-ubyte.gz")),
            qPrintable(rows.join(u'\n')));
        QVERIFY2(!top1.section(u'|', 2, 2).startsWith(QStringLiteral("\u2014")), qPrintable(top1)); // FP32 baseline shown
        QVERIFY(rows.filter(QStringLiteral("Latency per batch (ms)|")).value(0).contains(QStringLiteral("simulated")));
        QVERIFY(dialog->configText()->toPlainText().contains(QStringLiteral("\"evaluation\"")));
        QVERIFY(test::screenshot(dialog, QStringLiteral("run-details.png")));
        dialog->close();
        // Double-clicking a note edits it instead.
        const QModelIndex note = browser()->proxy()->mapFromSource(m->index(row, RunsTableModel::Note));
        QTest::mouseClick(view->viewport(), Qt::LeftButton, {}, view->visualRect(note).center());
        QTest::mouseDClick(view->viewport(), Qt::LeftButton, {}, view->visualRect(note).center());
        QTest::qWait(20);
        QVERIFY(!browser()->findChild<RunDetailsDialog*>() || !browser()->findChild<RunDetailsDialog*>()->isVisible());
        QTest::keyClick(view->viewport()->focusWidget() ? view->viewport()->focusWidget() : view, Qt::Key_Escape);
    }

    void cleanupTestCase()
    {
        window->studio().jobs()->cancelAll();
        QVERIFY(window->studio().jobs()->waitForWorkers(20000));
        window.reset();
    }
};

QTEST_MAIN(TestRunsController)
#include "test_runs_controller.moc"
