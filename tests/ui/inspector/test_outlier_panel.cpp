// The inspector's outlier section on a tiny transformer, offscreen: the profiling job
// runs off the GUI thread, the selected Gemm/MatMul layer shows its per-channel max |x|
// bars (the LayerNorm-gain channels in red) and its per-position max |x|, the
// embedding layer hides the section. It builds the shared state and the inspector
// alone; add the next case as a slot like the first. QS_SCREENSHOT=path.png saves the
// inspector of a whole window (screenshot()).
#include "quant/transformer_fixture.h"

#include "data/npy.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/document/studio.h"
#include "ui/inspector/inspector_panel.h"
#include "ui/inspector/outlier_panel.h"
#include "ui/jobs/job_runner.h"
#include "ui/main_window.h"
#include "ui/widgets/plot_view.h"

#include <qcustomplot.h>

#include <QDockWidget>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

class TestOutlierPanel : public QObject {
    Q_OBJECT

private slots:
    void initTestCase()
    {
        QCoreApplication::setOrganizationName(QStringLiteral("QuantStudioTests"));
        QCoreApplication::setApplicationName(QStringLiteral("test_outlier_panel"));
        QSettings().clear();
    }

    void profilesAndPlotsTheSelectedLayer()
    {
        QTemporaryDir dir;
        const QString tokens = dir.filePath("tokens.npy");
        writeNpy(test::tokenData({}, 24, 9).first(), tokens.toStdString());
        // The shared state and the inspector alone: the section shows inside it.
        Studio studio;
        InspectorPanel inspector(studio);
        inspector.resize(700, 1050);
        inspector.show();
        QSignalSpy opened(&studio, &Studio::modelOpened);
        studio.openGraph(std::make_shared<Graph>(test::tinyTransformer()));
        QVERIFY(opened.wait(60000));
        OutlierPanel* panel = inspector.outlierPanel();
        studio.setDataPath(tokens);

        const auto& model = *studio.document()->model();
        studio.selection()->selectLayer(model.layerRow("q_proj"));
        QVERIFY(panel->isVisible());
        QVERIFY(panel->channelPlot()->hasMessage()); // nothing profiled yet
        QSignalSpy done(panel, &OutlierPanel::profiled);
        panel->profileButton()->click();
        QVERIFY(studio.jobs()->isBusy(QStringLiteral("outliers")));
        QVERIFY(done.wait(60000));

        const LinearInputOutliers* r = panel->current();
        QVERIFY(r && r->layer == "q_proj");
        QCustomPlot* cp = panel->channelPlot()->plot();
        QCOMPARE(cp->plottableCount(), 2);
        auto* normal = qobject_cast<QCPBars*>(cp->plottable(0));
        auto* red = qobject_cast<QCPBars*>(cp->plottable(1));
        QVERIFY(normal && red);
        QCOMPARE(normal->data()->size() + red->data()->size(), 64);
        QCOMPARE(red->data()->size(), 2); // ln1's channels 5 and 17
        QCOMPARE(red->data()->at(0)->key, 5.0);
        QCOMPARE(red->data()->at(1)->key, 17.0);
        QCOMPARE(red->data()->at(0)->value, double(r->channelMaxAbs[5]));
        QCustomPlot* pp = panel->positionPlot()->plot();
        QCOMPARE(pp->graphCount(), 1);
        QCOMPARE(pp->graph(0)->data()->size(), 16);
        QVERIFY(!panel->channelPlot()->hasMessage());
        QVERIFY(panel->table()->rowCount() > 5);
        QVERIFY(panel->channelPlot()->csv().startsWith(QStringLiteral("channel,max_abs,mean_abs\n0,")));

        // Another linear layer redraws from the same profile; the embedding hides the section.
        studio.selection()->selectLayer(model.layerRow("lm_head"));
        QCOMPARE(panel->current()->layer, std::string("lm_head"));
        QCOMPARE(qobject_cast<QCPBars*>(panel->channelPlot()->plot()->plottable(1))->data()->at(0)->key, 9.0);
        studio.selection()->selectLayer(model.layerRow("embed"));
        QVERIFY(!panel->isVisible());
    }

    // QS_SCREENSHOT=out.png [QS_SCREENSHOT_MODEL=m.onnx QS_SCREENSHOT_DATA=spec QS_SCREENSHOT_LAYER=name]:
    // the inspector with activations and outliers of one layer, for the docs.
    void screenshot()
    {
        const QString shot = qEnvironmentVariable("QS_SCREENSHOT");
        if (shot.isEmpty())
            QSKIP("QS_SCREENSHOT not set");
        const QString modelPath = qEnvironmentVariable("QS_SCREENSHOT_MODEL");
        QTemporaryDir dir;
        QString data = qEnvironmentVariable("QS_SCREENSHOT_DATA");
        if (data.isEmpty()) {
            data = dir.filePath("tokens.npy");
            writeNpy(test::tokenData({}, 24, 9).first(), data.toStdString());
        }
        MainWindow window;
        window.resize(1500, 1100);
        window.show();
        QSignalSpy opened(&window.studio(), &Studio::modelOpened);
        if (modelPath.isEmpty())
            window.studio().openGraph(std::make_shared<Graph>(test::tinyTransformer()));
        else
            window.studio().openModel(modelPath);
        QVERIFY(opened.wait(60000));
        OutlierPanel* panel = window.inspector()->outlierPanel();
        window.studio().setDataPath(data);
        const std::string layer = qEnvironmentVariable("QS_SCREENSHOT_LAYER", "q_proj").toStdString();
        window.studio().selection()->selectLayer(window.studio().document()->model()->layerRow(layer));
        QSignalSpy done(panel, &OutlierPanel::profiled);
        panel->profile();
        QVERIFY(done.wait(120000));
        QSignalSpy calibrated(&window.studio(), &Studio::calibrationFinished);
        if (!modelPath.isEmpty() && window.studio().runCalibration() >= 0)
            calibrated.wait(120000);
        QWidget* dock = window.inspector()->parentWidget();
        while (dock && !qobject_cast<QDockWidget*>(dock))
            dock = dock->parentWidget();
        if (auto* d = qobject_cast<QDockWidget*>(dock))
            window.resizeDocks({d}, {900}, Qt::Horizontal);
        QTest::qWait(300);
        QVERIFY(window.inspector()->grab().save(shot));
    }
};

QTEST_MAIN(TestOutlierPanel)
#include "test_outlier_panel.moc"
