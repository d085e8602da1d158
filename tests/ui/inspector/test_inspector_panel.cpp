// The inspector's weight plots on the demo: with a BatchNorm folded into a conv there are
// two weights, the model's own and the folded one quantization sees. Whichever shows, the
// plot's title and the statistics beside it name it and agree with each other, and the
// raw one agrees with the layer table (which lists the model's weights).
#include "support/studio_window.h"
#include "ui/document/layer_metric.h"
#include "ui/document/model_document.h"
#include "ui/document/studio.h"
#include "ui/inspector/inspector_panel.h"
#include "ui/widgets/format.h"
#include "ui/widgets/plot_view.h"

#include "analysis/weight_profile.h"
#include "measure/stats.h"
#include "quant/session.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QLabel>
#include <QTableWidget>
#include <QtTest>

using namespace qs;
using namespace qs::ui;

class TestInspectorPanel : public QObject {
    Q_OBJECT

    std::unique_ptr<Studio> studio;
    std::unique_ptr<InspectorPanel> panel;

    QString stat(const QString& name) const
    {
        QTableWidget* t = panel->weightTable();
        for (int r = 0; r < t->rowCount(); ++r)
            if (t->item(r, 0) && t->item(r, 0)->text() == name)
                return t->item(r, 1)->text().trimmed();
        return QStringLiteral("(no row %1)").arg(name);
    }

    // What the plot's header says: its title and subtitle.
    static QString header(PlotView* p)
    {
        QStringList texts;
        for (QLabel* l : p->findChildren<QLabel*>())
            texts << l->text();
        return texts.join(QLatin1Char('|'));
    }

private slots:
    void initTestCase()
    {
        studio = test::openDemoStudio(QStringLiteral("test_inspector_panel"));
        QVERIFY(studio);
        panel = std::make_unique<InspectorPanel>(*studio);
        QVERIFY(test::showPanel(panel.get()));
    }

    void rawAndFoldedWeightsAreNamedAndAgree()
    {
        ModelDocument* doc = studio->document();
        const int row = 0; // the stem conv, followed by its BatchNormalization
        const LayerData* l = doc->layer(row);
        panel->showLayer(row);
        // Only the model's weights: no choice, no label needed; the table's numbers.
        QVERIFY(!panel->weightSource()->isVisible());
        QVERIFY(header(panel->weightPlot()).contains(QStringLiteral("Weights")));
        QVERIFY(!header(panel->weightPlot()).contains(QStringLiteral("BN-folded")));
        // The layer table's kurtosis column: the model's own weights.
        const double kurtosis = metricValue(LayerMetric::WeightKurtosis, *doc, row).value_or(NAN);
        QCOMPARE(kurtosis, l->summary.stats.kurtosis);
        QCOMPARE(stat(QStringLiteral("kurtosis")), formatNumber(l->summary.stats.kurtosis, 3));
        QCOMPARE(stat(QStringLiteral("weights")), QStringLiteral("raw"));

        // The folded weight, as calibration's what-if session hands it over.
        QuantSession session(*doc->model()->graph, {});
        const SessionLayer& sl = session.layers().front();
        QCOMPARE(sl.name, l->summary.name);
        const Tensor* w = session.graph().constant(sl.weight);
        QVERIFY(w);
        const std::vector<float> v = w->toFloat();
        auto view = std::make_shared<WeightView>();
        view->what = QStringLiteral("BN-folded");
        view->histogram = makeHistogram(v, weightHistogramBins(int64_t(v.size())));
        view->stats = computeStats(v);
        view->channels = channelRanges(v, w->shape, sl.outAxis);
        view->stats.channelRangeRatio = rangeRatio(view->channels);
        QVERIFY(std::abs(view->stats.max - l->summary.stats.max) > 1e-6); // folding changed the weights
        panel->setWeightView(l->summary.name, view);

        // Shown by default (what is quantized), named, and the statistics are its own.
        QVERIFY(panel->weightSource()->isVisible());
        QCOMPARE(panel->weightSource()->currentData().toString(), QStringLiteral("folded"));
        QVERIFY2(
            header(panel->weightPlot()).contains(QStringLiteral("BN-folded")), qPrintable(header(panel->weightPlot())));
        QCOMPARE(stat(QStringLiteral("weights")), QStringLiteral("BN-folded"));
        QCOMPARE(stat(QStringLiteral("max")), formatNumber(view->stats.max));
        QCOMPARE(stat(QStringLiteral("kurtosis")), formatNumber(view->stats.kurtosis, 3));
        QVERIFY(header(panel->channelPlot()).contains(QStringLiteral("BN-folded")));

        // The raw weights on request: the layer table's numbers again, and said so.
        panel->weightSource()->setCurrentIndex(panel->weightSource()->findData(QStringLiteral("raw")));
        QVERIFY2(header(panel->weightPlot()).contains(QStringLiteral("raw")), qPrintable(header(panel->weightPlot())));
        QCOMPARE(stat(QStringLiteral("weights")), QStringLiteral("raw"));
        QCOMPARE(stat(QStringLiteral("max")), formatNumber(l->summary.stats.max));
        QCOMPARE(stat(QStringLiteral("kurtosis")), formatNumber(kurtosis, 3));
        QCOMPARE(stat(QStringLiteral("ch. range ratio")), formatNumber(l->summary.stats.channelRangeRatio, 3));
        QVERIFY(header(panel->channelPlot()).contains(QStringLiteral("raw")));
        QVERIFY(panel->shownWeightView(row) == nullptr);
        // The histogram drawn is the one of the weights named.
        QCPGraph* g = panel->weightPlot()->plot()->graph(0);
        QVERIFY(g && !g->data()->isEmpty());
        QVERIFY(g->data()->constBegin()->key <= l->summary.stats.min + 1e-6);
        panel->weightSource()->setCurrentIndex(panel->weightSource()->findData(QStringLiteral("folded")));
        QVERIFY(panel->weightPlot()->plot()->graph(0)->data()->constBegin()->key <= view->stats.min + 1e-6);
    }

    void cleanupTestCase()
    {
        panel.reset();
        studio.reset();
    }
};

QTEST_MAIN(TestInspectorPanel)
#include "test_inspector_panel.moc"
