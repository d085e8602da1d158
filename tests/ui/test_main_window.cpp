// The studio's first screen end to end, offscreen: opens the demo model, the layer
// table matches the model, selecting a layer (in the table or the graph) fills the
// inspector's plots, the calibration job runs and cancels without stalling the GUI,
// and a corrupt file gives an error dialog while the open model stays.
#include "data/npy.h"
#include "graph/onnx_import.h"
#include "measure/layers.h"
#include "store/store.h"
#include "support/onnx_builder.h"
#include "support/stall_meter.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/graph/graph_items.h"
#include "ui/graph/graph_panel.h"
#include "ui/graph/graph_view.h"
#include "ui/inspector/inspector_panel.h"
#include "ui/jobs/job_runner.h"
#include "ui/jobs/job_status_widget.h"
#include "ui/layers/layer_filter_proxy.h"
#include "ui/layers/layer_table_model.h"
#include "ui/layers/layer_table_panel.h"
#include "ui/main_window.h"
#include "ui/widgets/elided_label.h"
#include "ui/widgets/error_reporter.h"
#include "ui/widgets/plot_view.h"
#include "util/hash.h"

#include <qcustomplot.h>

#include <QClipboard>
#include <QComboBox>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QScrollBar>
#include <QSettings>
#include <QSignalSpy>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QToolButton>
#include <QtTest>

#include <fstream>

using namespace qs;
using namespace qs::ui;

namespace {

const QString demoPath = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");

double sumY(const QCPGraph* g)
{
    double s = 0;
    // The last point closes the final bin of a step plot; it repeats that bin's count.
    for (auto it = g->data()->constBegin(); it != g->data()->constEnd() - 1; ++it)
        s += it->value;
    return s;
}

QMessageBox* visibleErrorDialog()
{
    for (QWidget* w : QApplication::topLevelWidgets())
        if (auto* box = qobject_cast<QMessageBox*>(w); box && box->isVisible())
            return box;
    return nullptr;
}

} // namespace

class TestMainWindow : public QObject {
    Q_OBJECT

    std::unique_ptr<MainWindow> window;
    std::vector<LayerSummary> expected;
    Graph demo;

    bool openAndWait(const QString& path)
    {
        QSignalSpy opened(&window->studio(), &Studio::modelOpened);
        window->studio().openModel(path);
        if (!opened.wait(60000))
            return false;
        // The weight statistics follow the model (Studio's "weights" job).
        for (int i = 0; i < 600 && !window->studio().document()->model()->weightsReady(); ++i)
            QTest::qWait(100);
        return window->studio().document()->model()->weightsReady();
    }

    void ensureDemo()
    {
        if (window->studio().document()->isEmpty())
            QVERIFY(openAndWait(demoPath));
    }

private slots:
    void initTestCase()
    {
        QCoreApplication::setOrganizationName(QStringLiteral("QuantStudioTests"));
        QCoreApplication::setApplicationName(QStringLiteral("test_main_window"));
        QSettings().clear();
        demo = importOnnx(demoPath.toStdString());
        expected = summarizeLayers(demo);
        window = std::make_unique<MainWindow>();
        window->resize(1600, 1000);
        window->show();
        QVERIFY(QTest::qWaitForWindowExposed(window.get()));
    }

    void opensDemoWithoutStallingTheGui()
    {
        test::StallMeter stall;
        stall.start();
        QVERIFY(openAndWait(demoPath));
        const double ms = stall.stop();
        qInfo("longest event-loop stall while opening the demo model: %.1f ms", ms);
        QVERIFY2(ms < 500, qPrintable(QStringLiteral("GUI blocked for %1 ms").arg(ms)));
        QCOMPARE(window->windowTitle(), QStringLiteral("fashion_cnn.onnx[*] \u2014 QuantStudio"));
        QCOMPARE(QSettings().value("files/recent").toStringList().value(0), QFileInfo(demoPath).absoluteFilePath());
    }

    void layerTableMatchesModel()
    {
        ensureDemo();
        const LayerTableModel* model = window->layerPanel()->model();
        QCOMPARE(model->rowCount(), int(expected.size()));
        QCOMPARE(model->rowCount(), 8);
        const double total = double(demo.parameterCount());
        for (int r = 0; r < model->rowCount(); ++r) {
            const LayerSummary& l = expected[std::size_t(r)];
            auto cell = [&](int c, int role = Qt::DisplayRole) { return model->index(r, c).data(role); };
            QCOMPARE(cell(LayerTableModel::Name, LayerTableModel::SortRole).toString().toStdString(), l.name);
            QCOMPARE(cell(LayerTableModel::Op).toString().toStdString(), l.op);
            QCOMPARE(cell(LayerTableModel::Params, LayerTableModel::SortRole).toDouble(), double(l.params));
            QCOMPARE(cell(LayerTableModel::Kurtosis, LayerTableModel::SortRole).toDouble(), l.stats.kurtosis);
            QCOMPARE(cell(LayerTableModel::Outliers, LayerTableModel::SortRole).toDouble(), l.stats.outlierFraction);
            QCOMPARE(cell(LayerTableModel::ChannelRange, LayerTableModel::SortRole).toDouble(), l.stats.channelRangeRatio);
            QCOMPARE(cell(LayerTableModel::SizeShare, LayerTableModel::SortRole).toDouble(), double(l.params) / total);
            const Node& n = demo.nodes[std::size_t(demo.findNode(l.name))];
            QCOMPARE(cell(LayerTableModel::OutputShape).toString().toStdString(), demo.info(n.outputs[0])->text());
            QCOMPARE(cell(LayerTableModel::Sensitivity).toString(), QStringLiteral("\u2014"));
            QCOMPARE(cell(LayerTableModel::Bits).toString(), QStringLiteral("\u2014"));
        }
        QCOMPARE(model->index(0, LayerTableModel::OutputShape).data().toString(), QStringLiteral("[N,16,28,28]"));
    }

    void graphShowsEveryOperator()
    {
        ensureDemo();
        GraphView* view = window->graphPanel()->view();
        QCOMPARE(int(view->nodeItems().size()), int(demo.nodes.size() + demo.inputs.size() + demo.outputs.size()));
        int layers = 0;
        for (const NodeItem* item : view->nodeItems())
            layers += item->isLayer() ? 1 : 0;
        QCOMPARE(layers, 8);
        QVERIFY(window->studio().document()->model()->unsupportedNodes.empty()); // the demo runs everywhere
    }

    void selectingLayerFillsInspector_data()
    {
        QTest::addColumn<int>("row");
        for (int r = 0; r < 8; ++r)
            QTest::newRow(qPrintable(QString::number(r))) << r;
    }
    void selectingLayerFillsInspector()
    {
        ensureDemo();
        QFETCH(int, row);
        QElapsedTimer clock;
        clock.start();
        window->studio().selection()->selectLayer(row);
        const double ms = double(clock.nsecsElapsed()) * 1e-6;
        qInfo("select + redraw %s: %.1f ms", expected[std::size_t(row)].name.c_str(), ms);

        InspectorPanel* inspector = window->inspector();
        QCOMPARE(inspector->shownLayer(), row);
        const LayerData& layer = *window->studio().document()->layer(row);
        // Weight histogram: one point per bin plus the closing edge; counts add up to the weights.
        const QCPGraph* hist = inspector->weightPlot()->plot()->graph(0);
        QCOMPARE(hist->dataCount(), layer.weights.histogram.bins() + 1);
        QCOMPARE(sumY(hist), double(layer.summary.stats.count));
        QCOMPARE(hist->data()->constBegin()->key, layer.weights.histogram.lo);
        QCOMPARE(double(layer.weights.histogram.total()), double(numelOf(layer.summary.weightShape)));
        // Channel plot: max and min per output channel.
        const QCPGraph* maxGraph = inspector->channelPlot()->plot()->graph(0);
        const QCPGraph* minGraph = inspector->channelPlot()->plot()->graph(1);
        const int channels = int(layer.summary.weightShape[std::size_t(layer.summary.channelAxis)]);
        QCOMPARE(maxGraph->dataCount(), channels);
        QCOMPARE(minGraph->dataCount(), channels);
        double lo = 1e30, hi = -1e30;
        for (auto it = maxGraph->data()->constBegin(); it != maxGraph->data()->constEnd(); ++it)
            hi = std::max(hi, it->value);
        for (auto it = minGraph->data()->constBegin(); it != minGraph->data()->constEnd(); ++it)
            lo = std::min(lo, it->value);
        QCOMPARE(hi, layer.summary.stats.max);
        QCOMPARE(lo, layer.summary.stats.min);
        // The numbers beside the plot.
        QCOMPARE(inspector->weightTable()->item(0, 0)->text(), QStringLiteral("weights")); // which: raw here
        QCOMPARE(inspector->weightTable()->item(0, 1)->text().trimmed(), QStringLiteral("raw"));
        QCOMPARE(inspector->weightTable()->item(5, 0)->text(), QStringLiteral("kurtosis"));
        // Table and graph follow the selection.
        const auto rows = window->layerPanel()->view()->selectionModel()->selectedRows();
        QCOMPARE(rows.size(), 1);
        QCOMPARE(window->layerPanel()->proxy()->mapToSource(rows.front()).row(), row);
        QVERIFY(window->graphPanel()->view()->itemForNode(layer.node)->isCurrent());
    }

    void logCountsToggle()
    {
        ensureDemo();
        window->studio().selection()->selectLayer(1);
        QCustomPlot* plot = window->inspector()->weightPlot()->plot();
        QCOMPARE(plot->yAxis->scaleType(), QCPAxis::stLinear);
        window->inspector()->weightLogToggle()->click();
        QCOMPARE(plot->yAxis->scaleType(), QCPAxis::stLogarithmic);
        QVERIFY(plot->yAxis->range().lower > 0);
        window->inspector()->weightLogToggle()->click();
        QCOMPARE(plot->yAxis->scaleType(), QCPAxis::stLinear);
    }

    void clickingGraphNodeSelectsLayer()
    {
        ensureDemo();
        GraphView* view = window->graphPanel()->view();
        const int row = 5;
        const int node = window->studio().document()->layer(row)->node;
        NodeItem* item = view->itemForNode(node);
        QVERIFY(item);
        view->centerOn(item);
        const QPoint pos = view->mapFromScene(item->sceneBoundingRect().center());
        QTest::mouseClick(view->viewport(), Qt::LeftButton, {}, pos);
        QCOMPARE(window->studio().selection()->currentLayer(), row);
        QCOMPARE(window->inspector()->shownLayer(), row);

        // A non-layer operator is selected too; the inspector lists its attributes.
        int relu = -1;
        for (std::size_t i = 0; i < demo.nodes.size(); ++i)
            if (demo.nodes[i].opType == "Relu") {
                relu = int(i);
                break;
            }
        NodeItem* reluItem = view->itemForNode(relu);
        view->centerOn(reluItem);
        QTest::mouseClick(view->viewport(), Qt::LeftButton, {}, view->mapFromScene(reluItem->sceneBoundingRect().center()));
        QCOMPARE(window->studio().selection()->currentNode(), relu);
        QCOMPARE(window->studio().selection()->currentLayer(), -1);
        QVERIFY(reluItem->isCurrent());
        QVERIFY(window->layerPanel()->view()->selectionModel()->selectedRows().isEmpty());
    }

    // Wheel zooms about the view, a drag on the background pans and selects nothing.
    void graphZoomsAndPans()
    {
        ensureDemo();
        GraphView* view = window->graphPanel()->view();
        window->studio().selection()->selectLayer(0);
        const double z0 = view->zoom();
        view->zoomIn();
        QVERIFY(view->zoom() > z0 * 1.2);
        QWheelEvent wheel(QPointF(50, 50), view->viewport()->mapToGlobal(QPointF(50, 50)), QPoint(), QPoint(0, -240),
                          Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase, false);
        QApplication::sendEvent(view->viewport(), &wheel);
        QVERIFY(view->zoom() < z0);
        view->zoomBy(2.5 / view->zoom()); // close enough that the graph overflows the view
        QScrollBar* bar = view->horizontalScrollBar();
        QVERIFY(bar->maximum() > 0);
        bar->setValue(bar->maximum() / 2);
        const int before = bar->value();
        // Press on empty background below the graph, drag left by 120 px.
        const QPoint start(view->viewport()->width() / 2, view->viewport()->height() - 10);
        QVERIFY(view->itemAt(start) == nullptr);
        auto send = [&](QEvent::Type type, QPoint pos, Qt::MouseButtons buttons) {
            QMouseEvent e(type, QPointF(pos), view->viewport()->mapToGlobal(QPointF(pos)), Qt::LeftButton, buttons,
                          Qt::NoModifier);
            QApplication::sendEvent(view->viewport(), &e);
        };
        send(QEvent::MouseButtonPress, start, Qt::LeftButton);
        for (int dx = 20; dx <= 120; dx += 20)
            send(QEvent::MouseMove, start - QPoint(dx, 0), Qt::LeftButton);
        send(QEvent::MouseButtonRelease, start - QPoint(120, 0), Qt::NoButton);
        QCOMPARE(bar->value(), before + 120);
        QCOMPARE(window->studio().selection()->currentLayer(), 0); // a drag is not a click
        view->fitGraph();
        QVERIFY(view->zoom() <= 1.3);
    }

    void filterAndRevealFromGraph()
    {
        ensureDemo();
        LayerTablePanel* panel = window->layerPanel();
        panel->nameFilter()->setText(QStringLiteral("res2"));
        QCOMPARE(panel->proxy()->rowCount(), 2);
        const int idx = panel->opFilter()->findData(QStringLiteral("Gemm"));
        panel->opFilter()->setCurrentIndex(idx);
        QCOMPARE(panel->proxy()->rowCount(), 0);
        panel->nameFilter()->clear();
        QCOMPARE(panel->proxy()->rowCount(), 1);
        // Selecting a filtered-out layer from the graph clears the filter so it shows.
        window->studio().selection()->selectNode(window->studio().document()->layer(0)->node);
        QCOMPARE(panel->proxy()->rowCount(), 8);
        QCOMPARE(panel->view()->selectionModel()->selectedRows().size(), 1);
    }

    // Copy Layer Table: the rows shown, raw numbers, full names, tab-separated.
    void layerTableCopiesAsTsv()
    {
        ensureDemo();
        LayerTablePanel* panel = window->layerPanel();
        panel->nameFilter()->setText(QStringLiteral("res1"));
        window->findChild<QAction*>(QStringLiteral("copyTableAction"))->trigger();
        const QStringList lines = QApplication::clipboard()->text().split(QLatin1Char('\n'), Qt::SkipEmptyParts);
        panel->nameFilter()->clear();
        QCOMPARE(lines.size(), 3); // header + res1/conv1 + res1/conv2
        const QStringList head = lines[0].split(QLatin1Char('\t'));
        QCOMPARE(head.value(1), QStringLiteral("Layer"));
        const int kurt = int(head.indexOf(QStringLiteral("Kurtosis")));
        const int params = int(head.indexOf(QStringLiteral("Params")));
        QVERIFY(kurt > 0 && params > 0);
        for (int i = 1; i <= 2; ++i) {
            const QStringList cells = lines[i].split(QLatin1Char('\t'));
            QCOMPARE(cells.size(), head.size());
            const LayerSummary* l = nullptr;
            for (const auto& e : expected)
                if (QString::fromStdString(e.name) == cells[1])
                    l = &e;
            QVERIFY2(l, qPrintable(cells[1]));
            QCOMPARE(cells[params].toLongLong(), l->params);
            QVERIFY(std::abs(cells[kurt].toDouble() - l->stats.kurtosis) <= 1e-6 * std::abs(l->stats.kurtosis));
        }
    }

    void plotsSaveAsPngAndPdf()
    {
        ensureDemo();
        QTemporaryDir dir;
        PlotView* plot = window->inspector()->weightPlot();
        QVERIFY(plot->savePng(dir.filePath("w.png")));
        QVERIFY(plot->savePdf(dir.filePath("w.pdf")));
        QVERIFY(QImage(dir.filePath("w.png")).width() >= plot->plot()->width());
        QVERIFY(QFileInfo(dir.filePath("w.pdf")).size() > 1000);
        QVERIFY(plot->csv().startsWith(QStringLiteral("bin_lo,bin_hi,count\n")));
        plot->copyImage();
        const QImage copied = QApplication::clipboard()->image();
        QVERIFY(!copied.isNull());
        QVERIFY(copied.width() >= plot->plot()->width());
    }

    void calibrationRunsAndCancels()
    {
        ensureDemo();
        window->studio().selection()->selectLayer(2);
        InspectorPanel* inspector = window->inspector();
        QVERIFY(inspector->activationPlot()->hasMessage());
        JobRunner* jobs = window->studio().jobs();

        // Cancel: the worker returns within a second; the status bar clears at once.
        test::StallMeter stall;
        stall.start();
        const int id = window->studio().runCalibration();
        QVERIFY(id > 0);
        QVERIFY(window->jobStatus()->cancelButton()->isVisible());
        QTRY_VERIFY_WITH_TIMEOUT(window->jobStatus()->progressBar()->value() > 0, 30000);
        QElapsedTimer clock;
        clock.start();
        window->jobStatus()->cancelButton()->click();
        QVERIFY(!jobs->isRunning(id));
        QVERIFY(!window->jobStatus()->cancelButton()->isVisible());
        // Polled with the event loop running, so the stall meter keeps measuring.
        QTRY_VERIFY_WITH_TIMEOUT(jobs->activeWorkers() == 0, 1000);
        qInfo("calibration worker stopped %lld ms after Cancel", static_cast<long long>(clock.elapsed()));
        QVERIFY(!window->studio().document()->activations());

        // Full run: activation histogram with each calibrator's clipping range.
        QSignalSpy done(&window->studio(), &Studio::calibrationFinished);
        // The status bar shows a running ETA once the job has measured its pace.
        auto* etaLabel = window->jobStatus()->findChild<QLabel*>(QStringLiteral("jobEta"));
        QVERIFY(etaLabel);
        QStringList etaTexts;
        double lastFraction = 0;
        bool monotonic = true;
        const auto watch = connect(jobs, &JobRunner::jobProgress, this, [&](int, double fraction, const QString&, double eta) {
            monotonic = monotonic && fraction >= lastFraction;
            lastFraction = fraction;
            if (eta > 0 && fraction < 1)
                etaTexts << etaLabel->text();
        });
        window->studio().runCalibration();
        QVERIFY(done.wait(120000));
        disconnect(watch);
        QVERIFY(monotonic);
        QVERIFY(!etaTexts.isEmpty());
        QVERIFY2(etaTexts.front().contains(QStringLiteral(" left")), qPrintable(etaTexts.front()));
        const double ms = stall.stop();
        qInfo("longest event-loop stall during calibration: %.1f ms (goal < 100 ms)", ms);
        QVERIFY2(ms < 500, qPrintable(QStringLiteral("GUI blocked for %1 ms").arg(ms)));
        QVERIFY(done.back().at(0).toBool());
        const auto& acts = window->studio().document()->activations();
        QVERIFY(acts);
        const LayerData& layer = *window->studio().document()->layer(2);
        const ActivationProfile* input = acts->find(layer.summary.name, "input");
        QVERIFY(input);
        QVERIFY(!inspector->activationPlot()->hasMessage());
        QCustomPlot* plot = inspector->activationPlot()->plot();
        QVERIFY(plot->graph(0)->dataCount() > 1);
        // Two dashed lines per calibrator (the what-if range editor adds its own, solid).
        int dashed = 0;
        for (int i = 0; i < plot->itemCount(); ++i)
            if (auto* line = qobject_cast<QCPItemStraightLine*>(plot->item(i)))
                dashed += line->pen().style() == Qt::DashLine;
        QCOMPARE(dashed, int(2 * input->clipRanges.size()));
        QCOMPARE(inspector->calibratorTable()->item(0, 0)->text().toStdString(), input->clipRanges.begin()->first);
        QVERIFY(window->layerPanel()->model()->index(2, LayerTableModel::InputKurtosis).data(LayerTableModel::SortRole).isValid());
    }

    void corruptFileShowsErrorAndKeepsModel_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("expect");
        QTest::newRow("garbage") << QByteArray("this is not a protobuf \x01\x02\x03\xff\xfe", 28) << QStringLiteral("corrupt.onnx");
        QTest::newRow("empty") << QByteArray() << QStringLiteral("corrupt.onnx");
    }
    void corruptFileShowsErrorAndKeepsModel()
    {
        ensureDemo();
        QFETCH(QByteArray, bytes);
        QFETCH(QString, expect);
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("corrupt.onnx"));
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write(bytes);
        f.close();

        QSignalSpy reported(window->studio().errors(), &ErrorReporter::reported);
        window->studio().openModel(path);
        QVERIFY(reported.wait(10000));
        const QString message = reported.front().at(1).toString();
        qInfo("error shown: %s", qPrintable(message));
        QVERIFY(message.contains(expect));
        QMessageBox* box = visibleErrorDialog();
        QVERIFY(box);
        QCOMPARE(box->informativeText(), message);
        QVERIFY(!box->isModal());
        box->close();
        // Nothing else is lost: the demo model, its table and the selection stay.
        QCOMPARE(window->layerPanel()->model()->rowCount(), 8);
        QCOMPARE(window->windowTitle(), QStringLiteral("fashion_cnn.onnx[*] \u2014 QuantStudio"));
        QVERIFY(window->studio().selection()->currentNode() >= 0);
    }

    // A model the runtime cannot run still opens for inspection; calibrating it names
    // the operator in the dialog, and the model stays open.
    void unsupportedOperatorIsNamed()
    {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("custom_op.onnx"));
        test::OnnxBuilder b = test::tinyConvModel();
        b.model().mutable_graph()->mutable_output()->Clear();
        b.node("SnakeActivation", {"y"}, {"z"}, "snake");
        b.output("z", {-1, 3, 4, 4});
        b.save(path.toStdString());
        QVERIFY(openAndWait(path));
        QCOMPARE(window->layerPanel()->model()->rowCount(), 1);
        // Said up front: the summary names the operator, the graph outlines its node.
        const auto& model = window->studio().document()->model();
        QCOMPARE(int(model->unsupportedNodes.size()), 1);
        const int snake = model->graph->findNode("snake");
        QCOMPARE(model->unsupportedNodes.front(), snake);
        QVERIFY(window->graphPanel()->view()->itemForNode(snake)->isUnsupported());
        QVERIFY(!window->graphPanel()->view()->itemForNode(model->graph->findNode("conv"))->isUnsupported());
        const QString summary = window->findChild<ElidedLabel*>(QStringLiteral("modelSummary"))->fullText();
        QVERIFY2(summary.contains(QStringLiteral("not runnable here: SnakeActivation (1 node)")), qPrintable(summary));

        QSignalSpy reported(window->studio().errors(), &ErrorReporter::reported);
        QSignalSpy finished(&window->studio(), &Studio::calibrationFinished);
        QVERIFY(window->studio().runCalibration() > 0);
        QVERIFY(reported.wait(30000));
        const QString message = reported.front().at(1).toString();
        qInfo("error shown: %s", qPrintable(message));
        QVERIFY(message.contains(QStringLiteral("unsupported operator")));
        QVERIFY(message.contains(QStringLiteral("\"snake\" (SnakeActivation")));
        QMessageBox* box = visibleErrorDialog();
        QVERIFY(box);
        QCOMPARE(box->informativeText(), message);
        box->close();
        QCOMPARE(finished.size(), 1);
        QVERIFY(!finished.front().at(0).toBool());
        QCOMPARE(window->windowTitle(), QStringLiteral("custom_op.onnx[*] \u2014 QuantStudio"));
        QCOMPARE(window->layerPanel()->model()->rowCount(), 1);
        QVERIFY(openAndWait(demoPath));
    }

    // An input whose dimensions the model leaves open ([N,2,4,W], as paddle2onnx writes
    // them): the summary shows it as the model states it, and after calibration on an
    // NPY of [3,2,4,7] as the data bound it.
    void openInputShownAsBound()
    {
        QTemporaryDir dir;
        const QString path = dir.filePath(QStringLiteral("symbolic.onnx"));
        test::OnnxBuilder b = test::tinyConvModel();
        b.model()
            .mutable_graph()
            ->mutable_input(0)
            ->mutable_type()
            ->mutable_tensor_type()
            ->mutable_shape()
            ->mutable_dim(3)
            ->set_dim_param("W");
        b.save(path.toStdString());
        const QString npy = dir.filePath(QStringLiteral("x.npy"));
        writeNpy(Tensor(DType::Float, {3, 2, 4, 7}), npy.toStdString());
        QVERIFY(openAndWait(path));
        auto* summary = window->findChild<ElidedLabel*>(QStringLiteral("modelSummary"));
        QVERIFY2(summary->fullText().contains(QStringLiteral("input x [N,2,4,W]")), qPrintable(summary->fullText()));

        const QString before = window->studio().dataPath();
        window->studio().setDataPath(npy);
        QSignalSpy finished(&window->studio(), &Studio::calibrationFinished);
        QVERIFY(window->studio().runCalibration() > 0);
        QVERIFY(finished.wait(60000));
        QVERIFY(finished.front().at(0).toBool());
        QVERIFY2(summary->fullText().contains(QStringLiteral("input x [N,2,4,7]")), qPrintable(summary->fullText()));
        window->studio().setDataPath(before);
        QVERIFY(openAndWait(demoPath));
        QVERIFY2(!summary->fullText().contains(QStringLiteral(" input ")), qPrintable(summary->fullText()));
    }

    void missingFileNamesPath()
    {
        ensureDemo();
        QSignalSpy reported(window->studio().errors(), &ErrorReporter::reported);
        window->studio().openModel(QStringLiteral("/nonexistent/model.onnx"));
        QVERIFY(reported.wait(10000));
        QVERIFY(reported.front().at(1).toString().contains(QStringLiteral("/nonexistent/model.onnx")));
        if (QMessageBox* box = visibleErrorDialog())
            box->close();
    }

    void dropOpensModel()
    {
        QMimeData mime;
        mime.setUrls({QUrl::fromLocalFile(demoPath)});
        QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(window.get(), &enter);
        QVERIFY(enter.isAccepted());
        QSignalSpy opened(&window->studio(), &Studio::modelOpened);
        QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(window.get(), &drop);
        QVERIFY(opened.wait(60000));
        QCOMPARE(window->layerPanel()->model()->rowCount(), 8);

        QMimeData text;
        text.setUrls({QUrl::fromLocalFile(QStringLiteral("/tmp/notes.txt"))});
        QDragEnterEvent other(QPoint(10, 10), Qt::CopyAction, &text, Qt::LeftButton, Qt::NoModifier);
        other.setAccepted(false);
        QApplication::sendEvent(window.get(), &other);
        QVERIFY(!other.isAccepted());
    }

    // The chosen calibration data is remembered; a file that has gone falls back to
    // the data beside the model (the demo's IDX images), else random inputs.
    void chosenDataIsRemembered()
    {
        const QString labels = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion1k-logits.npy");
        QSettings().setValue(QStringLiteral("data/path"), labels);
        {
            MainWindow w;
            QCOMPARE(w.studio().calibrationDataLabel(), QStringLiteral("fashion1k-logits.npy"));
        }
        QSettings().setValue(QStringLiteral("data/path"), QStringLiteral("/nonexistent/data.npy"));
        MainWindow w;
        QCOMPARE(w.studio().calibrationDataLabel(), QStringLiteral("64 random inputs")); // no model open yet
        QSignalSpy opened(&w.studio(), &Studio::modelOpened);
        w.studio().openModel(demoPath);
        QVERIFY(opened.wait(60000));
        QCOMPARE(w.studio().calibrationDataLabel(), QStringLiteral("fashion1k-images-idx3-ubyte.gz"));
        QSettings().remove(QStringLiteral("data/path"));
    }

    // First start (or a last model that has gone): the bundled demo opens.
    void startupOpensLastModelElseDemo()
    {
        QSettings().setValue(QStringLiteral("files/lastModel"), QStringLiteral("/nonexistent/gone.onnx"));
        MainWindow fresh;
        QSignalSpy opened(&fresh.studio(), &Studio::modelOpened);
        fresh.studio().openStartupModel();
        QVERIFY(opened.wait(60000));
        QCOMPARE(QFileInfo(opened.front().at(0).toString()).canonicalFilePath(), QFileInfo(demoPath).canonicalFilePath());
        QCOMPARE(fresh.layerPanel()->model()->rowCount(), 8);
    }

    // Runs of this model recorded in the database (by the CLI or a later studio
    // page) fill the Sensitivity and Bits columns; runs of other models do not.
    void storedRunsFillSensitivityAndBits()
    {
        ensureDemo();
        QTemporaryDir dir;
        const QString dbPath = dir.filePath(QStringLiteral("studio.db"));
        std::map<std::string, double> sqnr;
        {
            Store store = Store::open(dbPath.toStdString());
            ModelRecord m;
            m.hash = sha256File(demoPath.toStdString());
            m.name = "fashion_cnn";
            const int64_t model = store.upsertModel(m);
            ModelRecord other;
            other.hash = "ffff0000";
            other.name = "other";
            const int64_t otherModel = store.upsertModel(other);

            const int64_t sens = store.beginRun(RunStart{.modelId = model, .kind = RunKind::Sensitivity,
                                                         .config = {{"bits", {4, 8}}, {"method", "oneshot"}}});
            const int64_t quant = store.beginRun(RunStart{.modelId = model, .kind = RunKind::Quantization});
            const int64_t foreign = store.beginRun(RunStart{.modelId = otherModel, .kind = RunKind::Quantization});
            std::vector<LayerResult> sensRows, quantRows, foreignRows;
            for (std::size_t i = 0; i < expected.size(); ++i) {
                LayerResult r;
                r.layer = expected[i].name;
                r.op = expected[i].op;
                r.sensitivity = sqnr[r.layer] = 12.5 + 3.0 * double(i);
                sensRows.push_back(r);
                LayerResult q;
                q.layer = expected[i].name;
                q.weightBits = i % 2 ? 4 : 8;
                q.actBits = 8;
                quantRows.push_back(q);
                q.weightBits = 2;
                foreignRows.push_back(q);
            }
            store.addLayerResults(sens, sensRows);
            store.addLayerResults(quant, quantRows);
            store.addLayerResults(foreign, foreignRows);
            store.finishRun(sens, RunState::Done);
            store.finishRun(quant, RunState::Done);
            store.finishRun(foreign, RunState::Done);
        }
        QSignalSpy loaded(&window->studio(), &Studio::storedResultsLoaded);
        window->studio().openStore(dbPath);
        QVERIFY(loaded.wait(20000));
        const LayerTableModel* model = window->layerPanel()->model();
        for (int r = 0; r < model->rowCount(); ++r) {
            const std::string& name = expected[std::size_t(r)].name;
            QCOMPARE(model->index(r, LayerTableModel::Sensitivity).data(LayerTableModel::SortRole).toDouble(), sqnr[name]);
            QCOMPARE(model->index(r, LayerTableModel::Bits).data().toString(),
                     r % 2 ? QStringLiteral("4 / 8") : QStringLiteral("8 / 8"));
            QCOMPARE(model->index(r, LayerTableModel::Bits).data(LayerTableModel::SortRole).toDouble(), r % 2 ? 4.0 : 8.0);
        }
        // Low SQNR is the sensitive end: the first layer (12.5 dB) is flagged, the last (33.5 dB) is not.
        QVERIFY(model->index(0, LayerTableModel::Sensitivity).data(Qt::BackgroundRole).isValid());
        QVERIFY(!model->index(7, LayerTableModel::Sensitivity).data(Qt::BackgroundRole).isValid());
        QVERIFY(model->index(0, LayerTableModel::Sensitivity).data(Qt::ToolTipRole).toString().contains(QStringLiteral("4 bits")));
        // The titles say what the stored columns are, apart from the edited "W bits".
        QCOMPARE(model->headerData(LayerTableModel::Sensitivity, Qt::Horizontal, Qt::DisplayRole).toString(), QStringLiteral("SQNR @4b (dB)"));
        QCOMPARE(model->headerData(LayerTableModel::Bits, Qt::Horizontal, Qt::DisplayRole).toString(),
            QStringLiteral("Run #%1 W/A").arg(window->studio().document()->stored()->bitsRun));
    }

    // The database and the window layout come back on the next start; a file that is
    // not a store is refused with its name and the open database stays.
    void databaseAndLayoutAreRemembered()
    {
        QTemporaryDir dir;
        const QString dbPath = dir.filePath(QStringLiteral("runs.db"));
        {
            Store store = Store::open(dbPath.toStdString());
            ModelRecord m;
            m.hash = "0123abcd";
            m.name = "fashion_cnn";
            const int64_t model = store.upsertModel(m);
            store.finishRun(store.beginRun(RunStart{.modelId = model, .kind = RunKind::Calibration}), RunState::Done);
        }
        {
            MainWindow first;
            first.resize(1200, 800);
            first.show();
            QVERIFY(QTest::qWaitForWindowExposed(&first));
            QSignalSpy opened(&first.studio(), &Studio::storeOpened);
            first.studio().openStore(dbPath);
            QVERIFY(opened.wait(10000));
            QCOMPARE(first.studio().storePath(), QFileInfo(dbPath).absoluteFilePath());
            QCOMPARE(first.storeLabel()->text(), QStringLiteral("runs.db \u00B7 1 run"));

            const QString badPath = dir.filePath(QStringLiteral("notes.db"));
            QFile bad(badPath);
            QVERIFY(bad.open(QIODevice::WriteOnly));
            bad.write(QByteArray(4096, 'x'));
            bad.close();
            QSignalSpy reported(first.studio().errors(), &ErrorReporter::reported);
            first.studio().openStore(badPath);
            QVERIFY(reported.wait(10000));
            qInfo("error shown: %s", qPrintable(reported.front().at(1).toString()));
            QVERIFY(reported.front().at(1).toString().contains(QStringLiteral("notes.db")));
            if (QMessageBox* box = visibleErrorDialog())
                box->close();
            QCOMPARE(first.studio().storePath(), QFileInfo(dbPath).absoluteFilePath());
            QCOMPARE(first.storeLabel()->text(), QStringLiteral("runs.db \u00B7 1 run"));

            first.findChild<QDockWidget*>(QStringLiteral("inspectorDock"))->hide();
            first.graphPanel()->colorCombo()->setCurrentIndex(2);
            first.close(); // saves the settings
        }
        MainWindow second;
        QVERIFY(second.findChild<QDockWidget*>(QStringLiteral("inspectorDock"))->isHidden());
        QVERIFY(!second.findChild<QDockWidget*>(QStringLiteral("layersDock"))->isHidden());
        QCOMPARE(second.graphPanel()->colorCombo()->currentIndex(), 2);
        QCOMPARE(second.size(), QSize(1200, 800));
        QSignalSpy opened(&second.studio(), &Studio::storeOpened);
        second.studio().openStartupStore();
        QVERIFY(opened.wait(10000));
        QCOMPARE(second.studio().storePath(), QFileInfo(dbPath).absoluteFilePath());
    }

    // Ctrl+Z undoes a bit edit, and Ctrl+Shift+Z and Ctrl+Y redo it, without Qt's
    // "Ambiguous shortcut overload" (a key bound twice fires neither binding).
    void undoAndRedoShortcutsFire()
    {
        ensureDemo();
        using Field = QuantConfigDocument::Field;
        QuantConfigDocument* config = window->studio().config();
        config->undoStack()->clear();
        const int before = config->value(0, Field::WeightBits).toInt();
        const int edited = before == 4 ? 6 : 4;
        QVERIFY(config->setLayers({0}, Field::WeightBits, edited));
        window->activateWindow();
        QVERIFY(QTest::qWaitForWindowActive(window.get()));
        static QStringList warnings;
        warnings.clear();
        const QtMessageHandler previous = qInstallMessageHandler(
            [](QtMsgType, const QMessageLogContext&, const QString& text) { warnings << text; });
        QTest::keyClick(window.get(), Qt::Key_Z, Qt::ControlModifier);
        const int undone = config->value(0, Field::WeightBits).toInt();
        QTest::keyClick(window.get(), Qt::Key_Z, Qt::ControlModifier | Qt::ShiftModifier);
        const int redone = config->value(0, Field::WeightBits).toInt();
        QTest::keyClick(window.get(), Qt::Key_Z, Qt::ControlModifier);
        QTest::keyClick(window.get(), Qt::Key_Y, Qt::ControlModifier);
        const int redoneByY = config->value(0, Field::WeightBits).toInt();
        qInstallMessageHandler(previous);
        QVERIFY2(warnings.filter(QStringLiteral("Ambiguous")).isEmpty(), qPrintable(warnings.join(u'\n')));
        // Whatever the platform theme binds to Redo (xcb binds Ctrl+Shift+Z, offscreen
        // does not), each key is bound once.
        auto* redo = window->findChild<QAction*>(QStringLiteral("redoAction"));
        QVERIFY(redo);
        QList<QKeySequence> keys = QKeySequence::keyBindings(QKeySequence::Redo);
        keys << QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z) << QKeySequence(Qt::CTRL | Qt::Key_Y);
        for (const QKeySequence& key : keys)
            QCOMPARE(redo->shortcuts().count(key), 1);
        QCOMPARE(undone, before);
        QCOMPARE(redone, edited);
        QCOMPARE(redoneByY, edited);
        config->undoStack()->undo();
        config->undoStack()->clear();
    }

    // Menus in the usual order (Help last, after the features' menus), and Help lists
    // every key the window binds, read from the actions themselves.
    void helpIsLastAndListsShortcuts()
    {
        QStringList titles;
        for (QAction* a : window->menuBar()->actions())
            titles << a->text().remove(u'&');
        QCOMPARE(titles.last(), QStringLiteral("Help"));
        QVERIFY2(titles.indexOf(QStringLiteral("Runs")) >= 0 && titles.indexOf(QStringLiteral("Runs")) < titles.size() - 1,
            qPrintable(titles.join(u' ')));
        auto* keys = window->findChild<QAction*>(QStringLiteral("shortcutsAction"));
        QVERIFY(keys);
        keys->trigger();
        auto* dialog = window->findChild<QDialog*>(QStringLiteral("shortcutsDialog"));
        QVERIFY(dialog);
        auto* table = dialog->findChild<QTableWidget*>();
        QVERIFY(table);
        QStringList rows;
        for (int r = 0; r < table->rowCount(); ++r)
            rows << table->item(r, 1)->text() + u'=' + table->item(r, 2)->text();
        QVERIFY2(rows.contains(QStringLiteral("Calibrate=Ctrl+R")), qPrintable(rows.join(u' ')));
        QVERIFY2(rows.filter(QStringLiteral("Redo=")).value(0).contains(QStringLiteral("Ctrl+Shift+Z")),
            qPrintable(rows.join(u' ')));
        dialog->close();
    }

    // The window and its docks fit a 1366x768 screen (less a 30 px panel and the title
    // bar), with a model open and the calibration job's progress in the status bar.
    void fitsSmallScreen()
    {
        ensureDemo();
        const QSize limit(1366, 768 - 30 - 30);
        QStringList hints;
        for (QDockWidget* dock : window->findChildren<QDockWidget*>())
            hints << QStringLiteral("%1 %2x%3").arg(dock->objectName()).arg(dock->minimumSizeHint().width()).arg(dock->minimumSizeHint().height());
        hints << QStringLiteral("central %1x%2").arg(window->centralWidget()->minimumSizeHint().width()).arg(window->centralWidget()->minimumSizeHint().height());
        hints << QStringLiteral("status %1x%2").arg(window->statusBar()->minimumSizeHint().width()).arg(window->statusBar()->minimumSizeHint().height());
        hints << QStringLiteral("toolbar %1").arg(window->toolBar()->minimumSizeHint().width());
        const QSize min = window->minimumSizeHint();
        QVERIFY2(min.width() <= limit.width() && min.height() <= limit.height(),
            qPrintable(QStringLiteral("window needs %1x%2: ").arg(min.width()).arg(min.height()) + hints.join(QStringLiteral(", "))));
        const QSize old = window->size();
        window->resize(limit);
        QTest::qWait(50);
        QCOMPARE(window->size(), limit);
        window->resize(old);
    }

    void cleanupTestCase()
    {
        // Edits the tests made are not kept: answer the unsaved-changes question.
        QTimer::singleShot(50, [] {
            for (QWidget* w : QApplication::topLevelWidgets())
                if (auto* box = qobject_cast<QMessageBox*>(w); box && box->objectName() == QLatin1String("unsavedChangesBox"))
                    box->button(QMessageBox::Discard)->click();
        });
        window->close();
        window.reset();
        QSettings().clear();
    }
};

QTEST_MAIN(TestMainWindow)
#include "test_main_window.moc"
