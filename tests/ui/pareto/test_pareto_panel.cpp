// The Pareto chart on the demo model, offscreen: the front computed from a sensitivity
// result is monotone, the configuration marker sits on the point just applied (the editor's
// prediction and the front agree), clicking a point applies its bits as one undo step, the
// budget line (set or dragged) picks the best point within it, and runs measured by
// `quantize --db` appear as points, and attention operands join the front of a model that has them. It builds the shared state and the panel alone;
// add the next case as a slot after these.
#include "analysis/bit_budget.h"
#include "support/cli_runner.h"
#include "support/studio_window.h"
#include "support/synthetic_sensitivity.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"
#include "ui/pareto/pareto_panel.h"
#include "ui/widgets/plot_view.h"

#include <qcustomplot.h>

#include <QDockWidget>
#include <QSettings>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QUndoStack>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>

using namespace qs;
using namespace qs::ui;

namespace {

const QString& demoPath = qs::test::demoModelPath;
const QString& demoImages = qs::test::demoImagesPath;

} // namespace

class TestParetoPanel : public QObject {
    Q_OBJECT

    QTemporaryDir dir;
    std::unique_ptr<Studio> studio;
    std::unique_ptr<ParetoPanel> owned;
    ParetoPanel* pareto = nullptr;
    QuantConfigDocument* config = nullptr;

    QPoint pixelOf(int i) const
    {
        QCustomPlot* p = pareto->chart()->plot();
        const FrontPoint& f = pareto->front()[std::size_t(i)];
        return {int(std::lround(p->xAxis->coordToPixel(pareto->sizeKiB(f)))),
                int(std::lround(p->yAxis->coordToPixel(f.predictedSqnrDb)))};
    }

private slots:
    void initTestCase()
    {
        // The shared state and the panel alone, as the Pareto dock shows it.
        studio = qs::test::openDemoStudio(QStringLiteral("test_pareto_panel"));
        QVERIFY(studio);
        config = studio->config();
        owned = std::make_unique<ParetoPanel>(*studio);
        pareto = owned.get();
        QVERIFY(qs::test::showPanel(pareto));
        QVERIFY(pareto->front().empty());
        QVERIFY(pareto->chart()->hasMessage());

        // Sensitivity curves with layers of different tolerance (what a sweep would give).
        auto s = qs::test::syntheticSensitivity(config->layerNames());
        QSignalSpy front(pareto, &ParetoPanel::frontChanged);
        config->setSensitivity(s);
        QVERIFY(front.wait(30000) || !pareto->front().empty());
        QTRY_VERIFY_WITH_TIMEOUT(!pareto->front().empty(), 30000);
        QVERIFY(!pareto->chart()->hasMessage());
    }

    void frontIsMonotone()
    {
        const auto& f = pareto->front();
        QVERIFY(f.size() > 5);
        for (std::size_t i = 1; i < f.size(); ++i) {
            QVERIFY(f[i].sizeBits > f[i - 1].sizeBits);
            QVERIFY(f[i].predictedSqnrDb > f[i - 1].predictedSqnrDb);
        }
        // The ends: everything at 2 bits, everything at 8 bits, each the size the table counts.
        for (const auto& [layer, b] : f.front().bits)
            QCOMPARE(b, 2);
        for (const auto& [layer, b] : f.back().bits)
            QCOMPARE(b, 8);
        QuantConfig all8;
        QCOMPARE(pareto->sizeKiB(f.back()), double(config->sizes()->sizeBits(all8)) / 8192.0);
        QCOMPARE(pareto->frontGraph()->data()->size(), int(f.size()));
    }

    void clickingAPointAppliesItsBits_data()
    {
        QTest::addColumn<double>("where"); // position along the front, 0..1
        QTest::newRow("smallest") << 0.0;
        QTest::newRow("middle") << 0.5;
        QTest::newRow("near the top") << 0.85;
    }
    void clickingAPointAppliesItsBits()
    {
        QFETCH(double, where);
        config->setConfig(QuantConfig{});
        config->undoStack()->clear();
        QCustomPlot* p = pareto->chart()->plot();
        p->replot();
        const int i = int(std::lround(where * double(pareto->front().size() - 1)));
        const FrontPoint point = pareto->front()[std::size_t(i)];
        const QPoint at = pixelOf(i);
        QCOMPARE(pareto->pointAt(at), i);
        QTest::mouseClick(p, Qt::LeftButton, Qt::NoModifier, at);
        QCOMPARE(config->undoStack()->count(), 1);
        for (int r = 0; r < config->layerCount(); ++r) {
            QCOMPARE(config->layer(r).weight.bits, point.bits.at(config->layerNames()[std::size_t(r)]));
            QCOMPARE(config->layer(r).activation.bits, 8);
        }
        // The marker moved onto the point: the editor's size and prediction agree with the front's.
        QCOMPARE(pareto->currentGraph()->data()->size(), 1);
        const auto marker = *pareto->currentGraph()->data()->constBegin();
        QVERIFY(std::abs(marker.key - pareto->sizeKiB(point)) < 1e-9);
        QVERIFY(std::abs(marker.value - point.predictedSqnrDb) < 1e-9);
        // Undo restores every layer's bits.
        config->undoStack()->undo();
        for (int r = 0; r < config->layerCount(); ++r)
            QCOMPARE(config->layer(r).weight.bits, 8);
        QVERIFY(std::abs(pareto->currentGraph()->data()->constBegin()->key - pareto->sizeKiB(pareto->front().back())) < 1e-9);
    }

    void budgetPicksTheBestPoint()
    {
        const auto& f = pareto->front();
        // Between two points: the lower one is the best that fits.
        const int j = int(f.size() / 2);
        const double between = 0.5 * (pareto->sizeKiB(f[std::size_t(j)]) + pareto->sizeKiB(f[std::size_t(j) + 1]));
        pareto->setBudgetKiB(between);
        QCOMPARE(pareto->bestIndex(), j);
        QCOMPARE(*pareto->front()[std::size_t(j)].bits.begin(), *bestWithin(f, int64_t(between * 8192) - config->sizes()->otherBits)->bits.begin());
        pareto->setBudgetKiB(pareto->sizeKiB(f.front()) * 0.5);
        QCOMPARE(pareto->bestIndex(), -1);

        // Dragging the line moves the budget.
        QCustomPlot* p = pareto->chart()->plot();
        pareto->setBudgetKiB(pareto->sizeKiB(f[1]) + 0.01);
        p->replot();
        const int y = int(p->axisRect()->center().y());
        const QPoint from(int(std::lround(p->xAxis->coordToPixel(pareto->budgetKiB()))), y);
        const int k = int(f.size()) - 2;
        const QPoint to(int(std::lround(p->xAxis->coordToPixel(pareto->sizeKiB(f[std::size_t(k)]) + 0.01))) + 1, y);
        const int undoIndex = config->undoStack()->index();
        QTest::mousePress(p, Qt::LeftButton, Qt::NoModifier, from);
        QMouseEvent move(QEvent::MouseMove, QPointF(to), p->mapToGlobal(QPointF(to)), Qt::NoButton, Qt::LeftButton,
                         Qt::NoModifier);
        QApplication::sendEvent(p, &move);
        QTest::mouseRelease(p, Qt::LeftButton, Qt::NoModifier, to);
        QVERIFY2(std::abs(pareto->budgetKiB() - p->xAxis->pixelToCoord(to.x())) < 1e-6,
                 qPrintable(QStringLiteral("budget %1").arg(pareto->budgetKiB())));
        QCOMPARE(pareto->bestIndex(), k);
        QCOMPARE(config->undoStack()->index(), undoIndex); // dragging applies nothing
    }

    void measuredRunsAppear()
    {
        const QString db = dir.filePath(QStringLiteral("runs.db"));
        const auto r = qs::test::cli({QStringLiteral("quantize"), demoPath, QStringLiteral("--data"), demoImages,
                                      QStringLiteral("--wbits"), QStringLiteral("4"), QStringLiteral("--calib-limit"),
                                      QStringLiteral("32"), QStringLiteral("--eval-limit"), QStringLiteral("64"),
                                      QStringLiteral("--db"), db, QStringLiteral("--json")});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        const auto j = nlohmann::json::parse(r.out.toStdString());
        QSignalSpy measured(pareto, &ParetoPanel::measuredChanged);
        studio->openStore(db);
        QVERIFY(measured.wait(30000));
        QCOMPARE(int(pareto->measured().size()), 1);
        const MeasuredRun& m = pareto->measured().front();
        QCOMPARE(m.run, j["run_id"].get<int64_t>());
        QVERIFY(std::abs(m.sizeKiB - j["size_bits"].get<double>() / 8192.0) < 1e-9);
        QVERIFY(std::abs(m.sqnrDb - j["sqnr_db"].get<double>()) < 1e-9);
        QCOMPARE(pareto->measuredGraph()->data()->size(), 1);
        // W4 everywhere is the front's 4-bit-for-all size.
        QuantConfig w4;
        w4.defaults.weight.bits = 4;
        QCOMPARE(m.sizeKiB, double(config->sizes()->sizeBits(w4)) / 8192.0);
    }

    // A model with attention: operands a sweep measured (op "MatMul:K") join the front,
    // K and V priced by their KV cache over the panel's tokens; the tooltip lists them,
    // and clicking a point writes the operands' bits (one undo step with the layers').
    void operandsJoinTheFront()
    {
        auto gpt = std::make_unique<Studio>();
        QSignalSpy opened(gpt.get(), &Studio::modelOpened);
        gpt->openModel(QStringLiteral(QS_SOURCE_DIR "/resources/demo/byte_gpt_tiny_decomposed.onnx"));
        QVERIFY(opened.wait(60000));
        QTRY_VERIFY_WITH_TIMEOUT(gpt->config()->sizes() != nullptr, 30000);
        const auto sizes = gpt->config()->sizes();
        QCOMPARE(sizes->operands.size(), std::size_t(4));
        ParetoPanel panel(*gpt);
        QVERIFY(qs::test::showPanel(&panel));
        panel.setKvTokens(64);
        auto s = qs::test::syntheticSensitivity(gpt->config()->layerNames());
        for (const OperandShape& o : sizes->operands) {
            LayerSensitivity l;
            l.layer = o.point;
            l.op = std::string("MatMul:") + operandRoleName(o.role);
            l.byBits[2].sqnrDb = 6;
            l.byBits[4].sqnrDb = 18;
            l.byBits[8].sqnrDb = 40;
            s->layers.push_back(l);
        }
        gpt->config()->setSensitivity(s);
        QTRY_VERIFY_WITH_TIMEOUT(!panel.front().empty(), 30000);
        QVERIFY(panel.kvTokensBox()->isVisible());
        panel.chart()->plot()->replot();
        QVERIFY(qs::test::screenshot(&panel, QStringLiteral("pareto_operands.png")));
        const FrontPoint top = panel.front().back(), low = panel.front().front();
        QCOMPARE(top.operandBits.size(), std::size_t(4));
        for (const OperandShape& o : sizes->operands) {
            QCOMPARE(top.operandBits.at(o.point), 32); // the least noise: float everywhere
            if (o.cached)
                QCOMPARE(low.operandBits.at(o.point), 2); // the smallest: the narrowest cache
        }
        // The KV cache over 64 tokens, by hand: elements x 32 bits a float K and V.
        int64_t kv = 0;
        for (const OperandShape& o : sizes->operands)
            kv += o.cached ? 64 * o.tokenElements * 32 : 0;
        QCOMPARE(top.kvCacheBits, kv);
        const QString tip = panel.pointToolTip(0);
        QVERIFY2(tip.contains(QString::fromStdString(sizes->operands.front().point)), qPrintable(tip));
        QVERIFY(tip.contains(QStringLiteral("64 tokens")));

        QuantConfigDocument* c = gpt->config();
        c->undoStack()->clear();
        panel.applyPoint(0);
        QCOMPARE(c->undoStack()->count(), 1);
        for (const OperandShape& o : sizes->operands) {
            const auto spec = c->config().forOperand(o.point, o.role);
            QCOMPARE(spec.has_value(), low.operandBits.at(o.point) < 16);
            if (spec)
                QCOMPARE(spec->bits, low.operandBits.at(o.point));
        }
        // The marker sits on the point: its size counts the configuration's KV cache.
        QTRY_COMPARE(panel.currentGraph()->data()->size(), 1);
        QVERIFY(std::abs(panel.currentGraph()->data()->constBegin()->key - panel.sizeKiB(low)) < 1e-9);
        QVERIFY(std::abs(panel.currentGraph()->data()->constBegin()->value - low.predictedSqnrDb) < 1e-6);
        c->undoStack()->undo();
        for (const OperandShape& o : sizes->operands)
            QVERIFY(!c->config().forOperand(o.point, o.role).has_value());
        gpt->jobs()->cancelAll();
        gpt->jobs()->waitForWorkers(10000);
    }

    void cleanupTestCase()
    {
        studio->jobs()->cancelAll();
        studio->jobs()->waitForWorkers(10000);
        owned.reset();
        studio.reset();
    }
};

QTEST_MAIN(TestParetoPanel)
#include "test_pareto_panel.moc"
