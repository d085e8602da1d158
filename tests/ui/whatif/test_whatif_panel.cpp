// The inspector's what-if panel, offscreen on the demo model: the clipping lines move
// through the editor's API and by mouse drags on the plot, the error label follows from
// the histogram, a release starts a what-if job whose numbers equal core's WhatIfSession
// for the same change, the bit spin box runs one too, and "Keep range" stores the range.
// With QS_WHATIF_SCREENSHOT=path.png the inspector is saved there.
#include "analysis/whatif.h"
#include "data/dataset.h"
#include "graph/onnx_import.h"
#include "quant/session.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/inspector/inspector_panel.h"
#include "ui/jobs/job_runner.h"
#include "ui/main_window.h"
#include "ui/whatif/range_editor.h"
#include "ui/whatif/whatif_controller.h"
#include "ui/whatif/whatif_feature.h"
#include "ui/whatif/whatif_panel.h"
#include "ui/widgets/plot_view.h"

#include <qcustomplot.h>

#include <QDockWidget>
#include <QLabel>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSpinBox>
#include <QUndoStack>
#include <QtTest>

#include <algorithm>
#include <cmath>

using namespace qs;
using namespace qs::ui;

namespace {

const QString demoPath = QStringLiteral(QS_SOURCE_DIR "/resources/demo/fashion_cnn.onnx");
const char* const demoData = QS_SOURCE_DIR "/resources/demo/fashion1k-images-idx3-ubyte.gz";
const char* const layerName = "/res1/conv1/Conv";

QuantizeOptions smallOptions()
{
    QuantizeOptions o;
    o.evalLimit = 200;
    o.calibLimit = 128;
    o.batch = 50;
    o.threads = 1;
    return o;
}

void sameResult(const WhatIfResult& gui, const WhatIfResult& core)
{
    QCOMPARE(gui.layer, core.layer);
    QCOMPARE(gui.config.toJson(), core.config.toJson());
    QCOMPARE(gui.layerSqnrDb, core.layerSqnrDb);
    QCOMPARE(gui.metrics.outputSqnrDb, core.metrics.outputSqnrDb);
    QCOMPARE(gui.metrics.kl, core.metrics.kl);
    QCOMPARE(gui.metrics.top1.value_or(-1), core.metrics.top1.value_or(-1));
    QCOMPARE(gui.top1Delta().value_or(-1), core.top1Delta().value_or(-1));
}

} // namespace

class TestWhatIfPanel : public QObject {
    Q_OBJECT

    std::unique_ptr<MainWindow> window;
    std::unique_ptr<WhatIfSession> reference; // core's own session, same data and options

    WhatIfPanel* panel() const { return window->feature<WhatIfFeature>()->panel(); }
    QCustomPlot* activationPlot() const { return window->inspector()->activationPlot()->plot(); }

    WhatIfResult waitForResult()
    {
        QSignalSpy ready(window->feature<WhatIfFeature>()->controller(), &WhatIfController::resultReady);
        if (!ready.wait(120000))
            qWarning("no what-if result");
        return window->feature<WhatIfFeature>()->controller()->lastResult().value_or(WhatIfResult{});
    }

private slots:
    void initTestCase()
    {
        QCoreApplication::setOrganizationName(QStringLiteral("QuantStudioTests"));
        QCoreApplication::setApplicationName(QStringLiteral("test_whatif_panel"));
        QSettings().clear();
        window = std::make_unique<MainWindow>();
        window->resize(1500, 1100);
        window->show();
        QVERIFY(QTest::qWaitForWindowExposed(window.get()));
        QSignalSpy opened(&window->studio(), &Studio::modelOpened);
        window->studio().openModel(demoPath);
        QVERIFY(opened.wait(60000));
        window->feature<WhatIfFeature>()->controller()->setOptions(smallOptions());
        QSignalSpy calibrated(&window->studio(), &Studio::calibrationFinished);
        QVERIFY(window->studio().runCalibration() > 0);
        QVERIFY(calibrated.wait(120000));
        QVERIFY(calibrated.first().first().toBool());

        const int row = window->studio().document()->model()->layerRow(layerName);
        QVERIFY(row >= 0);
        QSignalSpy ready(window->feature<WhatIfFeature>()->controller(), &WhatIfController::sessionReady);
        window->inspector()->showLayer(row);
        QVERIFY(ready.wait(120000)); // the panel prepares the session in the background
        QVERIFY(window->studio().jobs()->waitForIdle(60000));

        const Graph g = importOnnx(demoPath.toStdString());
        DataOptions d;
        d.spec = demoData;
        d.limit = 200;
        const Dataset data = loadDataset(d, g);
        Progress p;
        reference = std::make_unique<WhatIfSession>(g, data, data, smallOptions(), p, CancelToken());
    }

    void linesShowOnTheInputHistogram()
    {
        RangeEditor* e = panel()->activationEditor();
        QVERIFY(e->isShown());
        QVERIFY(e->loLine() && e->hiLine());
        // They start at the current configuration's range (min-max calibration).
        const ClipRange r = reference->session().activationRanges.at(window->feature<WhatIfFeature>()->controller()->layerInfo(layerName)->input);
        QCOMPARE(float(e->lo()), r.lo);
        QCOMPARE(float(e->hi()), r.hi);
        // res1's conv weight is BN-folded: the lines are on the folded weight's histogram.
        QVERIFY(panel()->weightEditor()->isShown());
    }

    void settingTheRangeUpdatesTheErrorLabel()
    {
        RangeEditor* e = panel()->activationEditor();
        const double lo = e->lo(), hi = e->hi() * 0.5;
        e->setRange(lo, hi);
        const auto err = panel()->currentError();
        QVERIFY(err.has_value());
        const ActivationProfile* p = window->studio().document()->activations()->find(layerName, "input");
        QVERIFY(p);
        const TensorQuantError want = histogramQuantError(p->calibration.histogram, float(lo), float(hi), 8, false);
        QCOMPARE(err->mse, want.mse);
        QCOMPARE(err->sqnrDb, want.sqnrDb);
        QVERIFY2(panel()->errorLabel()->text().contains(QString::number(want.sqnrDb, 'f', 1) + " dB"),
                 qPrintable(panel()->errorLabel()->text()));
        // A tighter clip changes the numbers.
        const QString before = panel()->errorLabel()->text();
        e->setRange(lo, hi * 0.5);
        QVERIFY(panel()->errorLabel()->text() != before);
    }

    void mouseDragMovesTheLineAndReleaseRunsWhatIf()
    {
        RangeEditor* e = panel()->activationEditor();
        QCustomPlot* plot = activationPlot();
        plot->replot(QCustomPlot::rpImmediateRefresh);
        const double hi0 = e->hi();
        const int x = int(std::lround(plot->xAxis->coordToPixel(hi0)));
        const int y = plot->axisRect()->center().y();
        const QString before = panel()->errorLabel()->text();
        QTest::mousePress(plot, Qt::LeftButton, {}, QPoint(x + 2, y));
        QVERIFY(e->isDragging());
        QTest::mouseMove(plot, QPoint(x + 20, y));
        QTest::mouseMove(plot, QPoint(x + 40, y));
        const double hi1 = e->hi();
        QVERIFY2(std::abs(hi1 - plot->xAxis->pixelToCoord(x + 40)) < 1e-9,
                 qPrintable(QStringLiteral("%1 vs %2").arg(hi1).arg(plot->xAxis->pixelToCoord(x + 40))));
        QVERIFY(hi1 > hi0);
        QVERIFY(panel()->errorLabel()->text() != before); // follows the drag, before the release
        QVERIFY(!window->feature<WhatIfFeature>()->controller()->isBusy());             // nothing runs while dragging
        QTest::mouseRelease(plot, Qt::LeftButton, {}, QPoint(x + 40, y));
        QVERIFY(!e->isDragging());
        QVERIFY(panel()->lastJob() > 0);
        QVERIFY(window->feature<WhatIfFeature>()->controller()->isBusy()); // the what-if runs as a job, not on the GUI thread
        const WhatIfResult gui = waitForResult();
        QCOMPARE(e->hi(), hi1); // the line stays where it was released

        // The same change through core directly.
        WhatIfChange c = *panel()->lastChange();
        QCOMPARE(c.setRanges.size(), std::size_t(1));
        QCOMPARE(double(c.setRanges.begin()->second.second), double(float(hi1)));
        sameResult(gui, reference->evaluate(c));
        QVERIFY(panel()->resultLabel()->text().contains(QString::number(gui.metrics.outputSqnrDb, 'f', 1) + " dB"));
        QVERIFY(panel()->keepButton()->isEnabled());
    }

    void releaseThroughTheApiRunsWhatIf()
    {
        RangeEditor* e = panel()->activationEditor();
        e->setRange(e->lo(), e->hi() * 0.3);
        e->finishEdit();
        const WhatIfResult gui = waitForResult();
        sameResult(gui, reference->evaluate(*panel()->lastChange()));
        QVERIFY(gui.metrics.outputSqnrDb < gui.base.outputSqnrDb); // a hard clip costs fidelity
    }

    void bitsSpinBoxRunsWhatIf()
    {
        QSpinBox* w = panel()->weightBits();
        QCOMPARE(w->value(), 8);
        w->setValue(3);
        const WhatIfResult gui = waitForResult();
        const SessionLayer* l = nullptr;
        for (const auto& x : reference->session().layers())
            if (x.name == layerName)
                l = &x;
        QVERIFY(l);
        WhatIfChange c;
        c.layer = layerName;
        c.spec = l->spec;
        c.spec->weight.bits = 3;
        sameResult(gui, reference->evaluate(c));
        QVERIFY(gui.layerSqnrDb < gui.baseLayerSqnrDb);
        QVERIFY(panel()->resultLabel()->text().contains("Top-1"));
    }

    // The weight quantized for a conv with BatchNormalization is the folded tensor: the
    // plot shows its histogram, the lines start at its range, and a dragged range is an
    // override of it whose what-if equals a full re-run of that configuration.
    void foldedWeightRangeAppliesToTheQuantizedTensor()
    {
        const WhatIfLayerInfo* info = window->feature<WhatIfFeature>()->controller()->layerInfo(layerName);
        QVERIFY(info && info->folded);
        const std::string weight = info->weight; // info is replaced when the what-if job ends
        QCOMPARE(weight, std::string(layerName) + ".weight_bnfolded");
        const Tensor* folded = reference->session().graph().constant(weight);
        QVERIFY(folded);
        const std::vector<float> v = folded->toFloat();
        const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
        const int row = window->studio().document()->model()->layerRow(layerName);
        // Not the model's own weight: that one has another range.
        QVERIFY(window->studio().document()->layer(row)->summary.stats.max != double(*mx));
        const WeightView* view = window->inspector()->weightView(row);
        QVERIFY(view);
        QCOMPARE(view->histogram.counts, makeHistogram(v, int(view->histogram.counts.size())).counts);
        QCOMPARE(view->stats.min, double(*mn));
        const ChannelRanges ch = channelRanges(v, folded->shape, 0); // a conv's output channels
        QCOMPARE(view->channels.min, ch.min);
        QCOMPARE(view->channels.max, ch.max);
        QVERIFY(window->inspector()->weightPlot()->toolTip().contains("folded"));
        RangeEditor* e = panel()->weightEditor();
        QVERIFY(e->isShown());
        QCOMPARE(e->lo(), double(*mn));
        QCOMPARE(e->hi(), double(*mx));
        // The error label is estimated from the folded histogram.
        e->setRange(*mn * 0.4, *mx * 0.4);
        const TensorQuantError want = histogramQuantError(view->histogram, *mn * 0.4f, *mx * 0.4f, 8, true);
        QCOMPARE(panel()->currentError()->mse, want.mse);
        e->finishEdit();
        const WhatIfResult gui = waitForResult();
        const WhatIfChange c = *panel()->lastChange();
        QCOMPARE(c.setRanges.size(), std::size_t(1));
        QCOMPARE(c.setRanges.begin()->first, weight);
        QVERIFY(std::find(gui.changedWeights.begin(), gui.changedWeights.end(), weight) != gui.changedWeights.end());
        QVERIFY(gui.layerSqnrDb != gui.baseLayerSqnrDb);
        sameResult(gui, reference->evaluate(c));
        // A full re-run of the same configuration from scratch.
        const Graph g = importOnnx(demoPath.toStdString());
        DataOptions d;
        d.spec = demoData;
        d.limit = 200;
        const Dataset data = loadDataset(d, g);
        QuantizeOptions o = smallOptions();
        o.config = gui.config;
        Progress p;
        const QuantizeResult full = quantizeModel(g, data, data, o, p, CancelToken());
        QVERIFY(std::abs(gui.metrics.outputSqnrDb - full.sqnrDb) < 1e-6);
        QVERIFY(std::abs(gui.metrics.kl - full.kl) < 1e-6);
        QVERIFY(std::abs(gui.metrics.top1.value_or(-1) - full.top1.value_or(-2)) < 1e-6);
        bool found = false;
        for (const auto& l : full.layers)
            if (l.name == layerName) {
                found = true;
                QVERIFY2(std::abs(gui.layerSqnrDb - l.outputSqnrDb) < 1e-6,
                         qPrintable(QStringLiteral("%1 vs %2").arg(gui.layerSqnrDb).arg(l.outputSqnrDb)));
                QVERIFY(std::abs(gui.weightSqnrDb - l.weightSqnrDb) < 1e-6);
                QVERIFY(l.weightRange.has_value());
            }
        QVERIFY(found);
    }

    void keepRangeStoresTheOverride()
    {
        RangeEditor* e = panel()->activationEditor();
        const float lo = float(e->lo()), hi = float(e->hi() * 0.8);
        e->setRange(lo, hi);
        e->finishEdit();
        waitForResult();
        QVERIFY(panel()->keepButton()->isEnabled());
        QUndoStack* undo = window->studio().config()->undoStack();
        const int steps = undo->count();
        QTest::mouseClick(panel()->keepButton(), Qt::LeftButton);
        // One undo step of the configuration document.
        QCOMPARE(undo->count(), steps + 1);
        const std::string input = window->feature<WhatIfFeature>()->controller()->layerInfo(layerName)->input;
        QVERIFY(window->studio().config()->config().ranges.count(input));
        const auto& ranges = window->feature<WhatIfFeature>()->controller()->config().ranges;
        QVERIFY(ranges.count(input));
        QCOMPARE(ranges.at(input).first, lo);
        QCOMPARE(ranges.at(input).second, hi);
        QVERIFY(panel()->keptLabel()->text().contains("Kept ranges: 1"));
        // The session follows: its current range is the kept one, and what-ifs start there.
        auto sessionHi = [&] {
            const WhatIfLayerInfo* i = window->feature<WhatIfFeature>()->controller()->layerInfo(layerName);
            return i && i->activationRange ? i->activationRange->hi : -1.f;
        };
        QTRY_COMPARE_WITH_TIMEOUT(sessionHi(), hi, 120000);
        QVERIFY(window->studio().jobs()->waitForIdle(60000));
        panel()->weightBits()->setValue(4);
        const WhatIfResult next = waitForResult();
        QCOMPARE(next.config.ranges.at(input).second, hi);

        // Undo takes the range back out, and the session follows again.
        const float minmaxHi = reference->session().activationRanges.at(input).hi;
        undo->undo();
        QVERIFY(!window->feature<WhatIfFeature>()->controller()->config().ranges.count(input));
        QVERIFY(panel()->keptLabel()->text().contains("No kept ranges"));
        QTRY_COMPARE_WITH_TIMEOUT(sessionHi(), minmaxHi, 120000);
        undo->redo();
        QTRY_COMPARE_WITH_TIMEOUT(sessionHi(), hi, 120000);
    }

    void screenshot()
    {
        const QByteArray path = qgetenv("QS_WHATIF_SCREENSHOT");
        if (path.isEmpty())
            QSKIP("set QS_WHATIF_SCREENSHOT=file.png to save the inspector");
        // A fresh session on the whole 1000-image slice, no kept ranges, one moderate clip.
        QUndoStack* undo = window->studio().config()->undoStack();
        while (!window->studio().config()->config().ranges.empty() && undo->canUndo())
            undo->undo();
        QuantizeOptions o = smallOptions();
        o.evalLimit = 1000;
        o.calibLimit = 256;
        o.batch = 100;
        window->feature<WhatIfFeature>()->controller()->setOptions(o);
        QSignalSpy ready(window->feature<WhatIfFeature>()->controller(), &WhatIfController::sessionReady);
        window->feature<WhatIfFeature>()->controller()->prepare();
        QVERIFY(ready.wait(120000));
        RangeEditor* e = panel()->activationEditor();
        e->setRange(e->lo(), e->hi() * 0.55);
        e->finishEdit();
        waitForResult();
        QTest::qWait(100);
        auto* dock = qobject_cast<QDockWidget*>(window->inspector()->parentWidget());
        QWidget* shot = dock ? static_cast<QWidget*>(dock) : window->inspector();
        QVERIFY(shot->grab().save(QString::fromLocal8Bit(path)));
    }

    // Opening a model (here the same file again) leaves none of the last what-if behind.
    void anotherModelClearsTheWhatIf()
    {
        RangeEditor* e = panel()->activationEditor();
        e->setRange(e->lo(), e->hi() * 0.5);
        QVERIFY(panel()->errorLabel()->text().contains(QStringLiteral("SQNR")));
        QSignalSpy opened(&window->studio(), &Studio::modelOpened);
        window->studio().openModel(demoPath);
        QVERIFY(opened.wait(60000));
        QVERIFY2(!panel()->errorLabel()->text().contains(QStringLiteral("SQNR")), qPrintable(panel()->errorLabel()->text()));
        QVERIFY(!panel()->lastChange().has_value());
        QVERIFY(!panel()->currentError().has_value());
        QVERIFY(!panel()->resultLabel()->text().contains(QStringLiteral("output SQNR"), Qt::CaseInsensitive));
    }

    void cleanupTestCase()
    {
        window->studio().jobs()->cancelAll();
        window->studio().jobs()->waitForWorkers(30000);
        window.reset();
        QSettings().clear();
    }
};

QTEST_MAIN(TestWhatIfPanel)
#include "test_whatif_panel.moc"
