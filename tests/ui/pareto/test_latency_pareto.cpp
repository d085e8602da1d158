// The Pareto panel's measured-latency axis and the precision boundaries on the graph, on
// the demo model offscreen with a fresh store: the panel's latency front is the core's for
// the same profile, switching axes keeps the configuration and the marker consistent,
// clicking a latency point applies its configuration, a second window reuses the stored
// profile instead of measuring, a measurement cancels within a second, and the boundary
// marks are the crossings the profile and layerLinks' producer/consumer sets imply.
#include "analysis/bit_budget.h"
#include "analysis/latency.h"
#include "analysis/latency_front.h"
#include "graph/graph.h"
#include "quant/session.h"
#include "support/studio_window.h"
#include "support/synthetic_sensitivity.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/graph/graph_items.h"
#include "ui/graph/graph_legend.h"
#include "ui/graph/graph_panel.h"
#include "ui/graph/graph_view.h"
#include "ui/jobs/job_runner.h"
#include "ui/main_window.h"
#include "ui/pareto/latency_table_model.h"
#include "ui/pareto/pareto_feature.h"
#include "ui/pareto/pareto_panel.h"
#include "ui/pareto/precision_boundary_overlay.h"
#include "ui/widgets/plot_view.h"

#include <qcustomplot.h>

#include <QAction>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QLabel>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTableView>
#include <QTemporaryDir>
#include <QUndoStack>
#include <QtTest>

#include <cmath>

using namespace qs;
using namespace qs::ui;

namespace {

LatencyOptions quickOptions()
{
    LatencyOptions o;
    o.batch = 1;
    o.threads = 1;
    o.warmup = 1;
    o.repeats = 3;
    return o;
}

} // namespace

class TestLatencyPareto : public QObject {
    Q_OBJECT

    QTemporaryDir dir;
    QString db;
    std::unique_ptr<MainWindow> window;
    qs::test::RecordingReporter* errors = nullptr;
    ParetoPanel* pareto = nullptr;
    QuantConfigDocument* config = nullptr;
    int64_t firstProfileId = 0;

    bool openWindow()
    {
        window = qs::test::openStudio(QStringLiteral("test_latency_pareto"), db, errors);
        if (!window)
            return false;
        config = window->studio().config();
        pareto = window->feature<ParetoFeature>()->panel();
        window->feature<ParetoFeature>()->dock()->show();
        window->feature<ParetoFeature>()->dock()->raise();
        QSignalSpy front(pareto, &ParetoPanel::frontChanged);
        config->setSensitivity(qs::test::syntheticSensitivity(config->layerNames()));
        return front.wait(10000);
    }

    // Switches to the latency axis and waits for the profile and the latency front.
    bool showLatency()
    {
        pareto->setLatencyOptions(quickOptions());
        pareto->setCostAxis(ParetoPanel::CostAxis::Latency);
        for (int i = 0; i < 600; ++i) {
            if (pareto->latencyProfile() && !pareto->front().empty() && !window->studio().jobs()->isBusy())
                return true;
            QTest::qWait(50);
        }
        return false;
    }

    std::vector<FrontPoint> coreLatencyFront() const
    {
        const auto sens = config->sensitivity();
        std::vector<int> bits = {2, 4, 8};
        QuantConfig base = config->config();
        base.layers.clear();
        MixedConstraints c;
        c.allowedBits = {2, 4, 8};
        c.maxBits = kFloatBits;
        return latencyFront(*config->sizes(), *sens, bits, base, *pareto->latencyProfile(), *pareto->latencyLinks(),
            pareto->inputNoise(), c);
    }

    QPoint pixelOf(int i) const
    {
        QCustomPlot* p = pareto->chart()->plot();
        return {int(std::lround(p->xAxis->coordToPixel(pareto->costOf(i)))),
            int(std::lround(p->yAxis->coordToPixel(pareto->front()[std::size_t(i)].predictedSqnrDb)))};
    }

private slots:
    void initTestCase()
    {
        QVERIFY(dir.isValid());
        db = dir.filePath(QStringLiteral("studio.db"));
        QVERIFY(openWindow());
        QVERIFY(!pareto->isaLabel()->text().isEmpty());
        QVERIFY(pareto->isaLabel()->text().contains(QStringLiteral("oneDNN")));
    }

    void latencyFrontIsTheCoresForTheProfile()
    {
        QVERIFY(showLatency());
        QVERIFY(!pareto->profileFromStore()); // a fresh store: measured
        const LatencyProfile& profile = *pareto->latencyProfile();
        QVERIFY(profile.id > 0);
        firstProfileId = profile.id;
        QCOMPARE(profile.repeats, 3);
        QVERIFY(pareto->profileLabel()->text().contains(QStringLiteral("measured now")));
        QCOMPARE(pareto->latencyModel()->rowCount(), int(config->layerNames().size()));

        // The links as the panel has them are the core's of the folded graph.
        QuantSession folded(*window->studio().document()->model()->graph, {});
        const LayerLinks links = layerLinks(folded.graph());
        QCOMPARE(pareto->latencyLinks()->layers, links.layers);
        QCOMPARE(pareto->latencyLinks()->producers, links.producers);

        const std::vector<FrontPoint> expected = coreLatencyFront();
        QCOMPARE(pareto->front().size(), expected.size());
        QVERIFY(expected.size() >= 2);
        for (std::size_t i = 0; i < expected.size(); ++i) {
            const FrontPoint& p = pareto->front()[i];
            QCOMPARE(p.bits, expected[i].bits);
            QVERIFY(p.predictedSqnrDb == expected[i].predictedSqnrDb || // both +inf for the all-float point
                std::abs(p.predictedSqnrDb - expected[i].predictedSqnrDb) < 1e-9);
            const double ms = predictLatencyMs(profile, links, int8Layers(expected[i]));
            QVERIFY2(std::abs(pareto->costOf(int(i)) - ms) < 1e-9, qPrintable(QString::number(i)));
        }
        // Drawn: every point but the all-float one (no predicted noise: SQNR off the chart).
        int finite = 0;
        for (const auto& p : expected)
            finite += std::isfinite(p.predictedSqnrDb) ? 1 : 0;
        QCOMPARE(pareto->frontGraph()->data()->size(), finite);
        // The least noisy end is every layer in float (no noise at all, so off the chart): the FP32 prediction.
        const FrontPoint& last = pareto->front().back();
        QVERIFY(int8Layers(last).empty());
        QVERIFY(std::abs(pareto->costOf(int(expected.size()) - 1) - predictLatencyMs(profile, links, {})) < 1e-9);
        QVERIFY(pareto->chart()->plot()->xAxis->label().contains(QStringLiteral("latency")));
    }

    void switchingAxesKeepsConfigAndMarker()
    {
        const nlohmann::json before = config->config().toJson();
        const int undo = config->undoStack()->count();
        const std::vector<FrontPoint> latencyFront = pareto->front();
        QSignalSpy front(pareto, &ParetoPanel::frontChanged);
        pareto->setCostAxis(ParetoPanel::CostAxis::Size);
        QVERIFY(front.wait(10000));
        QCOMPARE(config->config().toJson(), before);
        QCOMPARE(config->undoStack()->count(), undo);
        // The size front is the plain size DP again, and the marker sits at the config's size.
        QuantConfig base = config->config();
        base.layers.clear();
        const auto sizeFront =
            paretoFront(mixedLayerOptions(*config->sizes(), *config->sensitivity(), {2, 4, 8}, base, false));
        QCOMPARE(pareto->front().size(), sizeFront.size());
        for (std::size_t i = 0; i < sizeFront.size(); ++i)
            QCOMPARE(pareto->front()[i].bits, sizeFront[i].bits);
        QCOMPARE(pareto->currentGraph()->data()->size(), 1);
        QCOMPARE(pareto->currentGraph()->data()->begin()->key, double(config->sizeBits()) / 8192.0);

        // Back: the profile is kept (no job measures), the same latency front returns.
        QSignalSpy started(window->studio().jobs(), &JobRunner::jobStarted);
        pareto->setCostAxis(ParetoPanel::CostAxis::Latency);
        QVERIFY(front.wait(10000));
        for (const auto& s : started)
            QVERIFY(!s.at(1).toString().startsWith(QStringLiteral("Measuring latency")));
        QCOMPARE(pareto->front().size(), latencyFront.size());
        for (std::size_t i = 0; i < latencyFront.size(); ++i)
            QCOMPARE(pareto->front()[i].bits, latencyFront[i].bits);
        QCOMPARE(pareto->currentGraph()->data()->size(), 1);
        QVERIFY(std::abs(pareto->currentGraph()->data()->begin()->key - *pareto->currentLatencyMs()) < 1e-12);
        QCOMPARE(config->config().toJson(), before);
    }

    void clickingALatencyPointAppliesItsConfig()
    {
        QCustomPlot* p = pareto->chart()->plot();
        p->replot();
        // A point with some layers in INT8 and some in float: the interesting kind.
        int target = -1;
        for (std::size_t i = 0; i < pareto->front().size(); ++i) {
            const auto n = int8Layers(pareto->front()[i]).size();
            if (n > 0 && n < pareto->front()[i].bits.size() && std::isfinite(pareto->front()[i].predictedSqnrDb))
                target = int(i);
        }
        QVERIFY(target >= 0);
        const FrontPoint point = pareto->front()[std::size_t(target)];
        QCOMPARE(pareto->pointAt(pixelOf(target), 2), target);
        const int undo = config->undoStack()->count();
        QTest::mouseClick(p, Qt::LeftButton, Qt::NoModifier, pixelOf(target));
        QCOMPARE(config->undoStack()->count(), undo + 1);
        QCOMPARE(int8Layers(config->config(), config->layerNames()), int8Layers(point));
        for (const auto& [layer, bits] : point.bits) {
            const int row = int(std::find(config->layerNames().begin(), config->layerNames().end(), layer) -
                config->layerNames().begin());
            const LayerQuant q = config->layer(row);
            QCOMPARE(q.weight.bits, bits);
            QCOMPARE(q.activation.bits, bits < 16 ? 8 : kFloatBits);
        }
        // The marker now sits on the point clicked, on this axis.
        QVERIFY(std::abs(*pareto->currentLatencyMs() - pareto->costOf(target)) < 1e-9);
        const auto marker = pareto->currentGraph()->data()->begin();
        QVERIFY(std::abs(marker->key - pareto->costOf(target)) < 1e-9);
        QVERIFY(std::abs(marker->value - point.predictedSqnrDb) < 1e-6);
    }

    void budgetLinePicksWithinMilliseconds()
    {
        const auto& front = pareto->front();
        double lo = INFINITY, hi = -INFINITY;
        for (std::size_t i = 0; i < front.size(); ++i) {
            lo = std::min(lo, pareto->costOf(int(i)));
            hi = std::max(hi, pareto->costOf(int(i)));
        }
        const double budget = (lo + hi) / 2;
        pareto->setBudgetMs(budget);
        const int best = pareto->bestIndex();
        QVERIFY(best >= 0);
        QVERIFY(pareto->costOf(best) <= budget);
        for (std::size_t i = 0; i < front.size(); ++i)
            if (pareto->costOf(int(i)) <= budget)
                QVERIFY(front[i].predictedNoise >= front[std::size_t(best)].predictedNoise);
        pareto->setBudgetMs(lo / 2);
        QCOMPARE(pareto->bestIndex(), -1);
        pareto->setBudgetMs(hi);
    }

    void boundaryMarksAreTheProfilesCrossings()
    {
        PrecisionBoundaryOverlay* overlay = window->feature<ParetoFeature>()->boundaries();
        QVERIFY(overlay->hasProfile());
        const Graph& g = *window->studio().document()->model()->graph;
        const GraphLayout& layout = *window->studio().document()->layout();
        const LatencyProfile& profile = *pareto->latencyProfile();
        const LayerLinks& links = *pareto->latencyLinks();
        GraphView* view = window->graphPanel()->view();
        const auto& names = config->layerNames();
        QVERIFY(names.size() >= 8);

        // Several INT8 sets: the first layers only, every other layer, all but the last.
        std::vector<std::set<std::string>> cases = {{names[0], names[1], names[2]}, {}, {}};
        for (std::size_t i = 0; i < names.size(); i += 2)
            cases[1].insert(names[i]);
        cases[2] = std::set<std::string>(names.begin(), names.end() - 1);
        for (const auto& int8 : cases) {
            std::map<std::string, std::pair<int, int>> bits;
            for (const auto& n : names)
                bits[n] = int8.count(n) ? std::pair(8, 8) : std::pair(kFloatBits, kFloatBits);
            QSignalSpy changed(overlay, &PrecisionBoundaryOverlay::marksChanged);
            config->applyBits(bits);
            QVERIFY(changed.count() >= 1);

            // Expected, by hand: an INT8 layer quantizes its input unless every layer feeding it
            // (and nothing else) is INT8, and dequantizes its output unless every reader is INT8.
            std::set<std::pair<int, int>> expectEdges;
            double expectTotal = 0;
            int expectCount = 0;
            for (std::size_t li = 0; li < links.layers.size(); ++li) {
                const std::string& name = links.layers[li];
                if (!int8.count(name))
                    continue;
                const LayerLatency* row = nullptr;
                for (const auto& l : profile.layers)
                    if (l.layer == name)
                        row = &l;
                QVERIFY(row && row->int8Ms);
                bool inFloat = links.floatIn[li] || links.producers[li].empty();
                for (std::size_t p : links.producers[li])
                    inFloat = inFloat || !int8.count(links.layers[p]);
                bool outFloat = links.floatOut[li] || links.consumers[li].empty();
                for (std::size_t c : links.consumers[li])
                    outFloat = outFloat || !int8.count(links.layers[c]);
                const int node = g.findNode(name);
                const Node& n = g.nodes[std::size_t(node)];
                if (inFloat) {
                    expectTotal += *row->quantizeMs;
                    ++expectCount;
                    // The demo's layers read their data as input 0, from a node or the graph input.
                    const int producer = g.producerOf(n.inputs[0]);
                    int fromBox = producer >= 0 ? layout.boxOfNode(producer) : -1;
                    for (std::size_t b = 0; producer < 0 && b < layout.boxes.size(); ++b)
                        if (layout.boxes[b].kind == GraphLayout::BoxKind::Input)
                            fromBox = int(b);
                    expectEdges.insert({fromBox, layout.boxOfNode(node)});
                }
                if (outFloat) {
                    expectTotal += *row->dequantizeMs;
                    ++expectCount;
                    // After the layer's BatchNorm and Relu (one kernel): where its value leaves it.
                    int end = node;
                    for (;;) {
                        const auto& readers = g.consumersOf(g.nodes[std::size_t(end)].outputs[0]);
                        if (readers.size() != 1)
                            break;
                        const std::string& op = g.nodes[std::size_t(readers[0])].opType;
                        if (op != "BatchNormalization" && op != "Relu")
                            break;
                        end = readers[0];
                    }
                    for (const auto& e : layout.edges)
                        if (e.from == layout.boxOfNode(end))
                            expectEdges.insert({e.from, e.to});
                }
            }
            std::set<std::pair<int, int>> marked;
            for (const auto& m : view->edgeMarks()) {
                marked.insert({m.from, m.to});
                EdgeItem* item = view->edgeItem(m.from, m.to);
                QVERIFY(item && item->isMarked());
                QVERIFY(item->toolTip().contains(QStringLiteral("ms measured")));
            }
            QCOMPARE(marked, expectEdges);
            QCOMPARE(int(overlay->marks().size()), expectCount);
            QVERIFY(std::abs(overlay->totalMs() - expectTotal) < 1e-12);
            // The total is what the whole prediction charges beyond the kernels.
            double kernels = profile.otherMs;
            for (const auto& l : profile.layers)
                kernels += int8.count(l.layer) ? *l.int8Ms : l.fp32Ms;
            QVERIFY(std::abs(predictLatencyMs(profile, links, int8) - kernels - expectTotal) < 1e-9);
            QVERIFY(view->legend()->note().contains(QString::number(expectTotal, 'g', 3) + QStringLiteral(" ms")));
            int unmarked = 0;
            for (const auto& e : layout.edges)
                if (EdgeItem* item = view->edgeItem(e.from, e.to); item && !item->isMarked())
                    ++unmarked;
            QCOMPARE(unmarked, int(layout.edges.size() - marked.size()));
        }
        {
            // For the docs: every other layer in INT8, the whole graph in view.
            std::map<std::string, std::pair<int, int>> bits;
            for (std::size_t i = 0; i < names.size(); ++i)
                bits[names[i]] = cases[1].count(names[i]) ? std::pair(8, 8) : std::pair(kFloatBits, kFloatBits);
            config->applyBits(bits);
            view->zoomBy(0.75 / view->zoom()); // readable, around the first residual block
            view->centerOn(view->itemForNode(g.findNode(names[2])));
            QVERIFY(qs::test::screenshot(window->graphPanel(), QStringLiteral("graph-boundaries.png")));
        }

        // The View menu's toggle hides them, and shows them again.
        QAction* toggle = window->feature<ParetoFeature>()->boundaryAction();
        QVERIFY(toggle && toggle->isChecked());
        toggle->trigger();
        QVERIFY(view->edgeMarks().empty());
        QVERIFY(view->legend()->note().isEmpty());
        toggle->trigger();
        QVERIFY(!view->edgeMarks().empty());
    }

    void latencyTableSorts()
    {
        QTableView* table = pareto->latencyTable();
        table->sortByColumn(LatencyTableModel::Fp32Ms, Qt::DescendingOrder);
        const auto* m = table->model();
        QVERIFY(m->rowCount() > 2);
        for (int r = 1; r < m->rowCount(); ++r)
            QVERIFY(m->index(r - 1, LatencyTableModel::Fp32Ms).data(LatencyTableModel::SortRole).toDouble() >=
                m->index(r, LatencyTableModel::Fp32Ms).data(LatencyTableModel::SortRole).toDouble());
        auto* tabs = pareto->findChild<QTabWidget*>(QStringLiteral("paretoTabs"));
        QVERIFY(tabs && tabs->indexOf(table) >= 0);
        tabs->setCurrentWidget(table);
        QVERIFY(qs::test::screenshot(window->feature<ParetoFeature>()->dock(), QStringLiteral("pareto-latency-table.png")));
        tabs->setCurrentIndex(0);
    }

    void measurementCancelsWithinASecond()
    {
        LatencyOptions heavy = quickOptions();
        heavy.batch = 16;
        heavy.repeats = 31;
        pareto->setLatencyOptions(heavy); // a new (batch, threads): a new measurement starts
        QVERIFY(pareto->isMeasuring());
        QSignalSpy progress(window->studio().jobs(), &JobRunner::jobProgress);
        for (int i = 0; i < 400 && pareto->isMeasuring(); ++i) {
            bool past = false;
            for (const auto& p : progress)
                past = past || p.at(1).toDouble() > 0.1;
            if (past)
                break;
            QTest::qWait(10);
        }
        QVERIFY2(pareto->isMeasuring(), "the measurement ended before it could be cancelled");
        QVERIFY(pareto->findChild<QWidget*>(QStringLiteral("paretoLatencyCancel"))->isVisible());
        QElapsedTimer clock;
        clock.start();
        pareto->cancelProfile();
        QVERIFY(!pareto->isMeasuring());
        QVERIFY(window->studio().jobs()->waitForWorkers(5000));
        QVERIFY2(clock.elapsed() < 1000, qPrintable(QStringLiteral("%1 ms").arg(clock.elapsed())));
        qInfo("cancelled: worker returned %lld ms after cancel", static_cast<long long>(clock.elapsed()));
        QVERIFY(pareto->profileLabel()->text().contains(QStringLiteral("cancelled")));
        QCOMPARE(pareto->latencyProfile()->id, firstProfileId); // the old profile stays
        pareto->setLatencyOptions(quickOptions());
        QVERIFY(showLatency());
        QVERIFY(pareto->profileFromStore());
    }

    void secondWindowReusesTheStoredProfile()
    {
        {
            double lo = INFINITY, hi = -INFINITY;
            for (std::size_t i = 0; i < pareto->front().size(); ++i)
                if (std::isfinite(pareto->front()[i].predictedSqnrDb)) {
                    lo = std::min(lo, pareto->costOf(int(i)));
                    hi = std::max(hi, pareto->costOf(int(i)));
                }
            pareto->setBudgetMs(lo + 0.6 * (hi - lo));
            QVERIFY(qs::test::screenshot(window->feature<ParetoFeature>()->dock(), QStringLiteral("pareto-latency.png")));
        }
        window.reset();
        QVERIFY(openWindow());
        QSignalSpy started(window->studio().jobs(), &JobRunner::jobStarted);
        QVERIFY(showLatency());
        QVERIFY(pareto->profileFromStore());
        QCOMPARE(pareto->latencyProfile()->id, firstProfileId);
        QVERIFY(pareto->profileLabel()->text().contains(QStringLiteral("cached from")));
        QVERIFY(errors->messages.isEmpty());
    }

    void cleanupTestCase() { window.reset(); }
};

QTEST_MAIN(TestLatencyPareto)
#include "test_latency_pareto.moc"
