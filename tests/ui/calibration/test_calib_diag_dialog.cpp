// The Calibration Diagnostics dialog on the demo model, offscreen: opened from the
// Analyze menu, it runs diagnoseCalibration as a job and shows the recommended size a
// direct call computes, one convergence curve per calibrator for the slowest layer with
// the tolerance line; an evaluation set of inverted images raises the shift banner with
// the core's reasons, the calibration data themselves do not; Cancel stops within a second.
#include "support/job_cancel.h"
#include "support/studio_window.h"
#include "ui/calibration/calib_diag_dialog.h"
#include "ui/calibration/calibration_feature.h"
#include "ui/document/model_document.h"
#include "ui/jobs/job_progress_row.h"
#include "ui/jobs/job_runner.h"
#include "ui/main_window.h"
#include "ui/widgets/format.h"
#include "ui/widgets/plot_view.h"

#include "data/dataset.h"
#include "data/idx.h"
#include "data/npy.h"

#include <qcustomplot.h>

#include <QAction>
#include <QComboBox>
#include <QElapsedTimer>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

class TestCalibDiagDialog : public QObject {
    Q_OBJECT

    QTemporaryDir dir;
    std::unique_ptr<MainWindow> window;
    CalibDiagDialog* view = nullptr;
    static constexpr int kSamples = 128;

    // What the dialog computes, directly: the same data, limit and options.
    CalibDiagnostics direct(const QString& evalPath) const
    {
        const Graph& graph = *window->studio().document()->model()->graph;
        DataOptions d;
        d.spec = window->studio().calibrationDataSpec().toStdString();
        d.limit = kSamples;
        const Dataset calib = loadDataset(d, graph);
        std::optional<Dataset> eval;
        if (!evalPath.isEmpty()) {
            DataOptions e;
            e.spec = evalPath.toStdString();
            e.limit = kSamples;
            eval = loadDataset(e, graph);
        }
        Progress progress;
        CancelToken cancel;
        return diagnoseCalibration(graph, calib, eval ? &*eval : nullptr, view->currentOptions(), progress, cancel);
    }

    bool run()
    {
        QSignalSpy finished(view, &CalibDiagDialog::diagnosisFinished);
        if (view->start() < 0 || !view->progressRow()->isRunning())
            return false;
        return finished.wait(90000) && finished.front().front().toBool();
    }

private slots:
    void initTestCase()
    {
        QVERIFY(dir.isValid());
        window = qs::test::openDemoWindow(QStringLiteral("test_calib_diag_dialog"));
        QVERIFY(window);
        auto* action = window->findChild<QAction*>(QStringLiteral("calibDiagAction"));
        QVERIFY(action);
        action->trigger();
        view = window->feature<CalibrationFeature>()->dialog();
        QVERIFY(view);
        QVERIFY(QTest::qWaitForWindowExposed(view));
        QCOMPARE(view->dataLabel()->text(), QStringLiteral("fashion1k-images-idx3-ubyte.gz"));
        QVERIFY(view->chart()->hasMessage());
        view->limitSpin()->setValue(kSamples);
    }

    void recommendedSizeEqualsCore()
    {
        QVERIFY(run());
        const CalibDiagnostics d = direct(QString());
        QVERIFY(view->result());
        QCOMPARE(view->result()->recommended, d.recommended);
        QCOMPARE(view->recommendedLabel()->text(), QStringLiteral("%1 samples").arg(formatCount(d.recommended)));
        QVERIFY(!view->shiftWarningShown());
        QVERIFY(view->shiftSummary()->text().startsWith(QStringLiteral("No evaluation data")));

        // The chart: the slowest layer of the most demanding calibrator, one curve per calibrator.
        const CalibratorConvergence* most = &d.calibrators.front();
        for (const auto& c : d.calibrators)
            if (c.recommended > most->recommended)
                most = &c;
        const int li = int(std::find(d.layers.begin(), d.layers.end(), most->worstLayer) - d.layers.begin());
        QCOMPARE(view->shownLayer(), li);
        QCOMPARE(view->layerCombo()->count(), int(d.layers.size()));
        QVERIFY(view->layerCombo()->currentText().contains(QStringLiteral("slowest")));
        QCustomPlot* p = view->chart()->plot();
        QVERIFY(!view->chart()->hasMessage());
        QCOMPARE(p->xAxis->scaleType(), QCPAxis::stLogarithmic);
        QCOMPARE(p->graphCount(), int(d.calibrators.size()));
        for (int g = 0; g < p->graphCount(); ++g) {
            const auto& ranges = d.calibrators[std::size_t(g)].ranges[std::size_t(li)];
            QCOMPARE(p->graph(g)->dataCount(), int(ranges.size()));
            for (int k = 0; k < int(ranges.size()); ++k) {
                QCOMPARE(p->graph(g)->data()->at(k)->key, double(ranges[std::size_t(k)].samples));
                QVERIFY(std::abs(p->graph(g)->data()->at(k)->value - 100 * ranges[std::size_t(k)].relChange) < 1e-9);
            }
        }
        bool toleranceLine = false;
        for (int i = 0; i < p->itemCount(); ++i)
            if (auto* line = qobject_cast<QCPItemStraightLine*>(p->item(i)))
                toleranceLine |= line->point1->coords().y() == 100 * d.tolerance &&
                                 line->point2->coords().y() == 100 * d.tolerance;
        QVERIFY(toleranceLine);
        // Another layer on request.
        view->layerCombo()->setCurrentIndex(0);
        QCOMPARE(p->graph(0)->data()->at(0)->value, 100 * d.calibrators[0].ranges[0][0].relChange);
    }

    void sameDataRaisesNoWarning()
    {
        view->evalEdit()->setText(qs::test::demoImagesPath);
        QVERIFY(run());
        const CalibDiagnostics d = direct(qs::test::demoImagesPath);
        QVERIFY(d.shift);
        QVERIFY(!d.shift->warning);
        QVERIFY(!view->shiftWarningShown());
        QVERIFY(view->shiftSummary()->text().contains(QStringLiteral("No distribution shift detected")));
        QCOMPARE(view->channelTable()->rowCount(), int(d.shift->channels.size()));
        QVERIFY(screenshotOk(QStringLiteral("calib-diagnostics-noshift.png")));
    }

    void invertedImagesRaiseTheBanner()
    {
        // The demo images inverted (255 - x), as an NPY of uint8.
        Tensor images = readIdx(qs::test::demoImagesPath.toStdString());
        QCOMPARE(images.dtype, DType::UInt8);
        for (auto& v : images.data<uint8_t>())
            v = uint8_t(255 - v);
        const QString shifted = dir.filePath(QStringLiteral("inverted.npy"));
        writeNpy(images, shifted.toStdString());
        view->evalEdit()->setText(shifted);
        QVERIFY(run());
        const CalibDiagnostics d = direct(shifted);
        QVERIFY(d.shift && d.shift->warning);
        QVERIFY(!view->shiftSummary()->text().contains(QStringLiteral("No distribution shift")));
        QVERIFY(view->shiftWarningShown());
        QVERIFY(view->shiftBanner()->isVisible());
        for (const auto& reason : d.shift->reasons)
            QVERIFY2(view->shiftBanner()->text().contains(QString::fromStdString(reason).toHtmlEscaped()), reason.c_str());
        QCOMPARE(view->channelTable()->rowCount(), int(d.shift->channels.size()));
        QCOMPARE(view->channelTable()->item(0, 3)->text(), formatNumber(d.shift->channels[0].meanShift, 3));
        QCOMPARE(view->recommendedLabel()->text(), QStringLiteral("%1 samples").arg(formatCount(d.recommended)));
        QVERIFY(screenshotOk(QStringLiteral("calib-diagnostics.png")));
    }

    void cancelStopsWithinASecond()
    {
        view->limitSpin()->setValue(1000);
        view->evalEdit()->clear();
        QSignalSpy finished(view, &CalibDiagDialog::diagnosisFinished);
        const int job = view->start();
        QVERIFY(job > 0);
        QString why;
        const double ms = qs::test::cancelByButton(window->studio().jobs(), view->progressRow(), job, 0.05, &why);
        QVERIFY2(ms >= 0, qPrintable(why));
        QCOMPARE(finished.count(), 1);
        QCOMPARE(finished.front().front().toBool(), false);
        qInfo("calibration diagnostics stopped %.0f ms after Cancel", ms);
        QVERIFY2(ms < 1000, qPrintable(QStringLiteral("%1 ms").arg(ms)));
        QVERIFY(view->runButton()->isEnabled());
    }

    void cleanupTestCase()
    {
        window->studio().jobs()->cancelAll();
        window->studio().jobs()->waitForWorkers(10000);
        window.reset();
    }

private:
    bool screenshotOk(const QString& name) { return qs::test::screenshot(view, name); }
};

QTEST_MAIN(TestCalibDiagDialog)
#include "test_calib_diag_dialog.moc"
