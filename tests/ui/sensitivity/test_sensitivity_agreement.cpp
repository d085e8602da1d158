// The sensitivity dock's Compare Metrics tab on the demo model, offscreen: the table
// shows exactly what a direct measureSensitivityAgreement call with the same options
// returns (values, 95% intervals, ranks, Spearman matrix, verdict), sorts with the
// unavailable cells last, a row click selects the layer everywhere and the window's
// selection selects the row, a metric that cannot be computed says so instead of 0,
// Cancel stops the job within a second, and with a database open the comparison is
// recorded as the CLI records it.
#include "support/job_cancel.h"
#include "support/studio_window.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/jobs/job_progress_row.h"
#include "ui/jobs/job_runner.h"
#include "ui/main_window.h"
#include "ui/sensitivity/sensitivity_agreement_model.h"
#include "ui/sensitivity/sensitivity_agreement_panel.h"
#include "ui/sensitivity/sensitivity_feature.h"
#include "ui/widgets/format.h"

#include "data/dataset.h"
#include "record/sensitivity_record.h"
#include "store/store.h"

#include <QDockWidget>
#include <QElapsedTimer>
#include <QLabel>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTableView>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>

using namespace qs;
using namespace qs::ui;

namespace {

bool same(double a, double b)
{
    if (std::isnan(a) || std::isnan(b))
        return std::isnan(a) && std::isnan(b);
    if (std::isinf(a) || std::isinf(b))
        return a == b;
    return std::abs(a - b) <= 1e-9;
}

} // namespace

class TestSensitivityAgreement : public QObject {
    Q_OBJECT

    std::unique_ptr<MainWindow> window;
    SensitivityAgreementPanel* view = nullptr;

private slots:
    void initTestCase()
    {
        window = qs::test::openDemoWindow(QStringLiteral("test_sensitivity_agreement"));
        QVERIFY(window);
        view = window->feature<SensitivityFeature>()->agreement();
        QVERIFY(view);
        QVERIFY(window->studio().calibrationDataSpec().contains(QStringLiteral("fashion1k")));
        window->feature<SensitivityFeature>()->dock()->show();
        window->feature<SensitivityFeature>()->dock()->raise();
        auto* tabs = window->feature<SensitivityFeature>()->dock()->findChild<QTabWidget*>(QStringLiteral("sensitivityTabs"));
        QVERIFY(tabs);
        tabs->setCurrentWidget(view);
    }

    void tableEqualsDirectMeasurement()
    {
        view->bitsSpin()->setValue(4);
        view->bootstrapSpin()->setValue(40);
        view->limitSpin()->setValue(32);
        QSignalSpy finished(view, &SensitivityAgreementPanel::comparisonFinished);
        const int job = view->start();
        QVERIFY(job > 0);
        QVERIFY(view->progressRow()->isRunning());
        QVERIFY(!view->compareButton()->isEnabled());
        QVERIFY(finished.wait(90000));
        QCOMPARE(finished.front().front().toBool(), true);
        QVERIFY(view->compareButton()->isEnabled());

        const MetricsOptions opts = view->currentOptions();
        QCOMPARE(opts.bits, 4);
        QCOMPARE(opts.bootstrap, 40);
        DataOptions d;
        d.spec = window->studio().calibrationDataSpec().toStdString();
        d.limit = opts.limit;
        const Graph& graph = *window->studio().document()->model()->graph;
        const Dataset data = loadDataset(d, graph);
        Progress progress;
        CancelToken cancel;
        const SensitivityAgreement direct = measureSensitivityAgreement(graph, data, opts, progress, cancel);

        SensitivityAgreementModel* m = view->model();
        QCOMPARE(m->rowCount(), int(direct.layers.size()));
        QCOMPARE(m->metricCount(), 4);
        QCOMPARE(m->metricCount(), int(direct.metrics.size()));
        for (int row = 0; row < m->rowCount(); ++row) {
            QCOMPARE(m->index(row, 0).data(Qt::ToolTipRole).toString(),
                     QStringLiteral("%1 (%2)").arg(QString::fromStdString(direct.layers[std::size_t(row)]),
                                                   QString::fromStdString(direct.ops[std::size_t(row)])));
            QCOMPARE(m->index(row, 0).data(SensitivityAgreementModel::LayerRowRole).toInt(),
                     window->studio().document()->model()->layerRow(direct.layers[std::size_t(row)]));
            for (int k = 0; k < m->metricCount(); ++k) {
                const MetricColumn& c = direct.metrics[std::size_t(k)];
                const QModelIndex cell = m->index(row, SensitivityAgreementModel::valueColumn(k));
                const double v = cell.data(SensitivityAgreementModel::ValueRole).toDouble();
                const double lo = cell.data(SensitivityAgreementModel::LoRole).toDouble();
                const double hi = cell.data(SensitivityAgreementModel::HiRole).toDouble();
                QVERIFY2(same(v, c.value[std::size_t(row)]), qPrintable(QStringLiteral("%1 %2: %3 vs %4").arg(row).arg(k)
                                                                           .arg(v, 0, 'g', 17).arg(c.value[std::size_t(row)], 0, 'g', 17)));
                QVERIFY(same(lo, c.lo[std::size_t(row)]));
                QVERIFY(same(hi, c.hi[std::size_t(row)]));
                if (c.name != "weight_kurtosis" && std::isfinite(v)) {
                    QVERIFY(lo <= v + 1e-12 && v <= hi + 1e-12);
                    QCOMPARE(cell.data().toString(), agreementCellText(v, lo, hi));
                }
            }
        }
        // Ranks: 1 is the highest score, every rank once (no ties on real data).
        for (int k = 0; k < m->metricCount(); ++k) {
            const MetricColumn& c = direct.metrics[std::size_t(k)];
            std::vector<int> seen;
            for (int row = 0; row < m->rowCount(); ++row) {
                const int rank = m->index(row, SensitivityAgreementModel::rankColumn(k)).data(SensitivityAgreementModel::RankRole).toInt();
                int higher = 0;
                for (std::size_t o = 0; o < c.value.size(); ++o)
                    higher += c.score(o) > c.score(std::size_t(row)) ? 1 : 0;
                QCOMPARE(rank, higher + 1);
                QCOMPARE(m->index(row, SensitivityAgreementModel::rankColumn(k)).data().toString(), QString::number(rank));
            }
        }
        // The Spearman matrix, printed and coloured.
        QTableWidget* s = view->spearmanTable();
        QCOMPARE(s->rowCount(), 4);
        QCOMPARE(s->columnCount(), 4);
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 4; ++j) {
                QVERIFY(same(s->item(i, j)->data(Qt::UserRole).toDouble(), direct.spearman[std::size_t(i)][std::size_t(j)]));
                QCOMPARE(s->item(i, j)->text(), QString::number(direct.spearman[std::size_t(i)][std::size_t(j)], 'f', 2)
                                                    .replace(QLatin1Char('-'), QChar(0x2212)));
            }
        QCOMPARE(view->verdictLabel()->text(), agreementVerdict(direct));
        QVERIFY(!view->verdictLabel()->text().isEmpty());
        if (!qEnvironmentVariable("QS_SCREENSHOT_DIR").isEmpty()) { // the dock floated wide enough for every column
            QDockWidget* dock = window->feature<SensitivityFeature>()->dock();
            dock->setFloating(true);
            dock->resize(1180, 640);
            QTest::qWait(100);
            QVERIFY(qs::test::screenshot(dock, QStringLiteral("sensitivity-agreement.png")));
            dock->setFloating(false);
            QTest::qWait(50);
        }
    }

    void sortsAndSelects()
    {
        QTableView* table = view->table();
        auto* proxy = table->model();
        const int col = SensitivityAgreementModel::valueColumn(0); // one-shot KL
        table->sortByColumn(col, Qt::DescendingOrder);
        for (int r = 1; r < proxy->rowCount(); ++r)
            QVERIFY(proxy->index(r - 1, col).data(SensitivityAgreementModel::ValueRole).toDouble() >=
                    proxy->index(r, col).data(SensitivityAgreementModel::ValueRole).toDouble());
        QCOMPARE(proxy->index(0, SensitivityAgreementModel::rankColumn(0)).data(SensitivityAgreementModel::RankRole).toInt(), 1);

        // A click on a row selects that layer in the window.
        const QModelIndex second = proxy->index(1, 0);
        const int layer = second.data(SensitivityAgreementModel::LayerRowRole).toInt();
        QVERIFY(layer >= 0);
        QTest::mouseClick(table->viewport(), Qt::LeftButton, Qt::NoModifier, table->visualRect(second).center());
        QCOMPARE(window->studio().selection()->currentLayer(), layer);
        // And the window's selection selects the row.
        const int other = proxy->index(proxy->rowCount() - 1, 0).data(SensitivityAgreementModel::LayerRowRole).toInt();
        window->studio().selection()->selectLayer(other);
        QCOMPARE(table->currentIndex().data(SensitivityAgreementModel::LayerRowRole).toInt(), other);
        QCOMPARE(window->studio().selection()->currentLayer(), other);
        table->sortByColumn(0, Qt::AscendingOrder);
    }

    void unavailableMetricSaysSo()
    {
        auto r = std::make_shared<SensitivityAgreement>();
        r->layers = {"a", "b", "c"};
        r->ops = {"Conv", "Conv", "Gemm"};
        r->bootstrap = 10;
        r->batches = 4;
        r->metrics.push_back({"oneshot_kl", "kl", true, {0.3, 0.1, 0.2}, {0.2, 0.05, 0.1}, {0.4, 0.2, 0.3}});
        r->metrics.push_back({"hessian_score", "h", true, {0.5, NAN, 0.1}, {0.4, NAN, 0.05}, {0.6, NAN, 0.2}});
        r->metrics.push_back({"weight_kurtosis", "k", true, {4.0, 2.0, 3.0}, {4.0, 2.0, 3.0}, {4.0, 2.0, 3.0}});
        r->spearman = {{1, 0.5, 1}, {0.5, 1, 0.5}, {1, 0.5, 1}};
        SensitivityAgreementModel m;
        m.setResult(r, {0, 1, 2});
        const QModelIndex h = m.index(1, SensitivityAgreementModel::valueColumn(1));
        QCOMPARE(h.data().toString(), QStringLiteral("not computable"));
        QVERIFY(!h.data(SensitivityAgreementModel::AvailableRole).toBool());
        QVERIFY(h.data(Qt::ToolTipRole).toString().contains(QStringLiteral("could not be computed")));
        QCOMPARE(m.index(1, SensitivityAgreementModel::rankColumn(1)).data().toString(), dash());
        QCOMPARE(m.index(0, SensitivityAgreementModel::rankColumn(1)).data(SensitivityAgreementModel::RankRole).toInt(), 1);
        QCOMPARE(m.index(2, SensitivityAgreementModel::rankColumn(1)).data(SensitivityAgreementModel::RankRole).toInt(), 2);
        QCOMPARE(m.index(0, SensitivityAgreementModel::valueColumn(2)).data().toString(), QStringLiteral("4")); // no interval
        // Sorted either way, the unavailable cell comes last.
        SensitivityAgreementProxy proxy;
        proxy.setSourceModel(&m);
        proxy.setSortRole(SensitivityAgreementModel::SortRole);
        for (Qt::SortOrder order : {Qt::AscendingOrder, Qt::DescendingOrder}) {
            proxy.sort(SensitivityAgreementModel::valueColumn(1), order);
            QCOMPARE(proxy.index(2, 0).data(SensitivityAgreementModel::LayerRowRole).toInt(), 1);
        }
        // The verdict leaves the incomplete metric out and says so; the complete two agree.
        const QString verdict = agreementVerdict(*r);
        QVERIFY2(verdict.startsWith(QStringLiteral("All 2 metrics agree")), qPrintable(verdict));
        QVERIFY2(verdict.contains(QStringLiteral("Hessian unavailable")), qPrintable(verdict));
        // Disagreement in words.
        r->spearman = {{1, 0.5, 0.2}, {0.5, 1, 0.5}, {0.2, 0.5, 1}};
        QVERIFY2(agreementVerdict(*r).startsWith(QStringLiteral("No two metrics agree")), qPrintable(agreementVerdict(*r)));
    }

    void cellText_data()
    {
        QTest::addColumn<double>("value");
        QTest::addColumn<double>("lo");
        QTest::addColumn<double>("hi");
        QTest::addColumn<QString>("text");
        QTest::newRow("wide") << 0.0312 << 0.024 << 0.04 << QStringLiteral("0.0312 [0.024, 0.04]");
        QTest::newRow("narrow") << 19.94 << 19.75 << 20.07 << QStringLiteral("19.94 [19.75, 20.07]");
        QTest::newRow("tiny") << 0.00163 << 0.000605 << 0.00256 << QStringLiteral("0.00163 [0.000605, 0.00256]");
        QTest::newRow("no width") << 4.265 << 4.265 << 4.265 << QStringLiteral("4.26 [4.26, 4.26]");
        QTest::newRow("capped") << 1.0 << 1.0 - 1e-9 << 1.0 + 1e-9 << QStringLiteral("1 [1, 1]");
    }

    void cellText()
    {
        QFETCH(double, value);
        QFETCH(double, lo);
        QFETCH(double, hi);
        QFETCH(QString, text);
        QCOMPARE(agreementCellText(value, lo, hi), text);
    }

    void verdictGroups()
    {
        SensitivityAgreement r;
        r.layers = {"a", "b"};
        for (const char* n : {"oneshot_kl", "local_sqnr_db", "hessian_score", "weight_kurtosis"})
            r.metrics.push_back({n, "", true, {1, 2}, {1, 2}, {1, 2}});
        r.spearman = {{1, 0.1, 0.8, 0.2}, {0.1, 1, 0.3, 0.4}, {0.8, 0.3, 1, 0.1}, {0.2, 0.4, 0.1, 1}};
        QCOMPARE(agreementVerdict(r),
                 QStringLiteral("One-shot KL and Hessian agree (\u03C1 = 0.80); local SQNR and weight kurtosis rank the "
                                "layers differently."));
    }

    void cancelStopsWithinASecond()
    {
        view->limitSpin()->setValue(512);
        view->bootstrapSpin()->setValue(200);
        QSignalSpy finished(view, &SensitivityAgreementPanel::comparisonFinished);
        const int job = view->start();
        QVERIFY(job > 0);
        QString why;
        const double ms = qs::test::cancelByButton(window->studio().jobs(), view->progressRow(), job, 0.03, &why);
        QVERIFY2(ms >= 0, qPrintable(why));
        QCOMPARE(finished.count(), 1);
        QCOMPARE(finished.front().front().toBool(), false);
        qInfo("metric comparison stopped %.0f ms after Cancel", ms);
        QVERIFY2(ms < 1000, qPrintable(QStringLiteral("%1 ms").arg(ms)));
        QVERIFY(view->statusLabel()->text().startsWith(QStringLiteral("Cancelled")));
        QVERIFY(view->compareButton()->isEnabled());
        QCOMPARE(view->model()->rowCount(), 8); // the previous comparison stays
    }

    // With a database open, the comparison is recorded as `sensitivity --metrics --db`
    // records it: every layer's metric values and intervals, the Spearman matrix; and
    // it is not taken for a sweep (the layer table's sensitivity column stays empty).
    void recordedInTheStore()
    {
        QTemporaryDir dir;
        const QString db = dir.filePath(QStringLiteral("agreement.db"));
        QSignalSpy opened(&window->studio(), &Studio::storeOpened);
        window->studio().openStore(db);
        QVERIFY(opened.wait(20000));
        view->limitSpin()->setValue(32);
        view->bootstrapSpin()->setValue(20);
        QSignalSpy finished(view, &SensitivityAgreementPanel::comparisonFinished);
        QVERIFY(view->start() > 0);
        QVERIFY(finished.wait(90000));
        QCOMPARE(finished.front().front().toBool(), true);
        const int64_t id = view->lastRun();
        QVERIFY(id > 0);
        QVERIFY2(view->statusLabel()->text().contains(QStringLiteral("recorded as run #%1").arg(id)),
                 qPrintable(view->statusLabel()->text()));

        StoreOptions ro;
        ro.mode = OpenMode::ReadOnly;
        const Store store = Store::open(db.toStdString(), ro);
        const RunRecord run = store.run(id);
        QCOMPARE(run.kind, RunKind::Sensitivity);
        QCOMPARE(run.state, RunState::Done);
        QVERIFY(isMetricComparison(run));
        QCOMPARE(run.config.at("bootstrap").get<int>(), 20);
        const SensitivityAgreement* r = view->result();
        QVERIFY(r);
        const auto rows = store.layerResults(id);
        QCOMPARE(rows.size(), r->layers.size());
        for (std::size_t li = 0; li < rows.size(); ++li) {
            QCOMPARE(rows[li].layer, r->layers[li]);
            for (const MetricColumn& m : r->metrics) {
                const auto& cell = rows[li].sensitivityDetail.at(m.name);
                if (std::isfinite(m.value[li]))
                    QCOMPARE(cell.at("value").get<double>(), m.value[li]);
                else
                    QVERIFY(cell.at("value").is_null());
            }
        }
        const auto& spearman = run.metrics.extra.at("spearman");
        for (std::size_t i = 0; i < r->spearman.size(); ++i)
            for (std::size_t j = 0; j < r->spearman.size(); ++j)
                if (std::isfinite(r->spearman[i][j]))
                    QCOMPARE(spearman.at(i).at(j).get<double>(), r->spearman[i][j]);
        QVERIFY(!latestSensitivitySweep(store, run.modelHash));
        // QS_AGREEMENT_SCREENSHOT=path.png saves the tab as recorded.
        if (const QString shot = qEnvironmentVariable("QS_AGREEMENT_SCREENSHOT"); !shot.isEmpty())
            QVERIFY(window->feature<SensitivityFeature>()->dock()->grab().save(shot));
    }

    void cleanupTestCase()
    {
        window->studio().jobs()->cancelAll();
        window->studio().jobs()->waitForWorkers(10000);
        window.reset();
    }
};

QTEST_MAIN(TestSensitivityAgreement)
#include "test_sensitivity_agreement.moc"
