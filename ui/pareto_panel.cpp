#include "ui/pareto_panel.h"

#include "ui/format.h"
#include "ui/job_runner.h"
#include "ui/model_document.h"
#include "ui/plot_panel.h"
#include "ui/quant_config_document.h"
#include "ui/theme.h"

#include "analysis/bit_budget.h"
#include "store/store.h"
#include "util/hash.h"

#include <qcustomplot.h>

#include <QHBoxLayout>
#include <QLabel>
#include <QPointer>
#include <QPushButton>
#include <QVBoxLayout>

#include <cmath>

namespace qs::ui {

ParetoPanel::ParetoPanel(ModelDocument* doc, QuantConfigDocument* config, JobRunner* jobs, QWidget* parent)
    : QWidget(parent), doc_(doc), config_(config), jobs_(jobs)
{
    setObjectName(QStringLiteral("paretoPanel"));
    panel_ = new PlotPanel(QStringLiteral("Mixed precision: predicted error vs size"), this);
    panel_->setObjectName(QStringLiteral("paretoChart"));
    panel_->setFileStem(QStringLiteral("pareto"));
    panel_->setCsvProvider([this] { return csv(); });
    QCustomPlot* p = panel_->plot();
    p->xAxis->setLabel(QStringLiteral("model size (KiB, stored)"));
    p->yAxis->setLabel(QStringLiteral("output SQNR (dB, higher = less error)"));
    p->legend->setVisible(true);
    p->legend->setBrush(QColor(255, 255, 255, 220));
    p->legend->setBorderPen(QPen(QColor(0xd1, 0xd5, 0xdb)));
    p->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignBottom | Qt::AlignRight);

    frontGraph_ = p->addGraph();
    frontGraph_->setName(QStringLiteral("Pareto front (predicted)"));
    frontGraph_->setPen(QPen(theme::accent, 1.6));
    frontGraph_->setLineStyle(QCPGraph::lsStepLeft);
    frontGraph_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, theme::accent, Qt::white, 6));
    measuredGraph_ = p->addGraph();
    measuredGraph_->setName(QStringLiteral("measured runs"));
    measuredGraph_->setLineStyle(QCPGraph::lsNone);
    measuredGraph_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssSquare, QColor(0x37, 0x41, 0x51), QColor(0x9c, 0xa3, 0xaf), 8));
    bestGraph_ = p->addGraph();
    bestGraph_->setName(QStringLiteral("best within budget"));
    bestGraph_->setLineStyle(QCPGraph::lsNone);
    bestGraph_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(theme::good, 2.5), Qt::NoBrush, 15));
    current_ = p->addGraph();
    current_->setName(QStringLiteral("current configuration"));
    current_->setLineStyle(QCPGraph::lsNone);
    current_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssStar, QPen(theme::warn, 2.5), theme::warn, 16));

    budgetLine_ = new QCPItemStraightLine(p);
    budgetLine_->setPen(QPen(theme::good, 1.5, Qt::DashLine));
    budgetLine_->setSelectedPen(QPen(theme::good, 2.5, Qt::DashLine));
    budgetText_ = new QCPItemText(p);
    budgetText_->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
    budgetText_->position->setTypeX(QCPItemPosition::ptPlotCoords);
    budgetText_->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    budgetText_->setColor(theme::good);
    budgetText_->setPadding(QMargins(4, 2, 4, 2));
    budgetText_->setBrush(QColor(255, 255, 255, 210));

    summary_ = new QLabel(this);
    summary_->setObjectName(QStringLiteral("paretoSummary"));
    summary_->setWordWrap(true);
    summary_->setTextFormat(Qt::RichText);
    applyBest_ = new QPushButton(QStringLiteral("Apply Best Within Budget"), this);
    applyBest_->setObjectName(QStringLiteral("paretoApplyBest"));
    connect(applyBest_, &QPushButton::clicked, this, [this] { applyPoint(best_); });
    auto* row = new QHBoxLayout;
    row->setContentsMargins(8, 2, 8, 4);
    row->addWidget(summary_, 1);
    row->addWidget(applyBest_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(2);
    layout->addWidget(panel_, 1);
    layout->addLayout(row);

    // Click a front point to apply it; drag the budget line to move the budget.
    connect(p, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        if (e->button() != Qt::LeftButton)
            return;
        QCustomPlot* plot = panel_->plot();
        const double lineX = plot->xAxis->coordToPixel(budgetKiB_);
        if (budgetSet_ && std::abs(e->pos().x() - lineX) <= 6 && plot->axisRect()->rect().contains(e->pos())) {
            dragging_ = true;
            plot->setInteraction(QCP::iRangeDrag, false); // the line moves, not the view
            return;
        }
        const int i = pointAt(e->pos());
        if (i >= 0)
            applyPoint(i);
    });
    connect(p, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        QCustomPlot* plot = panel_->plot();
        const double lineX = plot->xAxis->coordToPixel(budgetKiB_);
        if (dragging_)
            setBudgetKiB(plot->xAxis->pixelToCoord(e->pos().x()));
        else
            plot->setCursor(budgetSet_ && std::abs(e->pos().x() - lineX) <= 6 ? Qt::SplitHCursor
                            : pointAt(e->pos()) >= 0                             ? Qt::PointingHandCursor
                                                                                 : Qt::ArrowCursor);
    });
    connect(p, &QCustomPlot::mouseRelease, this, [this] {
        if (dragging_)
            panel_->plot()->setInteraction(QCP::iRangeDrag, true);
        dragging_ = false;
    });

    connect(config_, &QuantConfigDocument::sensitivityChanged, this, &ParetoPanel::recompute);
    connect(config_, &QuantConfigDocument::sizesChanged, this, &ParetoPanel::recompute);
    connect(config_, &QuantConfigDocument::configChanged, this, [this] {
        updateCurrent();
        panel_->plot()->replot();
    });
    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        measured_.clear();
        budgetSet_ = false;
    });
    recompute();
}

double ParetoPanel::sizeKiB(const FrontPoint& p) const
{
    const int64_t other = config_->sizes() ? config_->sizes()->otherBits : 0;
    return double(p.sizeBits + other) / 8192.0;
}

void ParetoPanel::recompute()
{
    const auto sizes = config_->sizes();
    const auto sens = config_->sensitivity();
    const int generation = ++computeGeneration_;
    front_.clear();
    best_ = -1;
    if (!sizes || !sens || sens->layers.empty()) {
        redraw();
        emit frontChanged();
        return;
    }
    QuantConfig base = config_->config();
    base.layers.clear();
    QPointer<ParetoPanel> self(this);
    // The DP is exact over 4096 cost buckets per layer: milliseconds for the demo, more for
    // hundreds of layers, so always off the GUI thread.
    jobs_->start(QStringLiteral("pareto"), QStringLiteral("Computing the Pareto front"),
                 [self, sizes, sens, base, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
                     std::vector<int> bits;
                     for (const auto& l : sens->layers)
                         for (const auto& [b, m] : l.byBits)
                             if (std::find(bits.begin(), bits.end(), b) == bits.end())
                                 bits.push_back(b);
                     std::sort(bits.begin(), bits.end());
                     auto front = std::make_shared<std::vector<FrontPoint>>(
                         paretoFront(mixedLayerOptions(*sizes, *sens, bits, base, false)));
                     return [self, front, generation] {
                         if (!self || self->computeGeneration_ != generation)
                             return;
                         self->front_ = std::move(*front);
                         self->redraw();
                         emit self->frontChanged();
                     };
                 });
}

void ParetoPanel::reloadMeasured()
{
    const auto model = doc_->model();
    const QString store = storePath_ ? storePath_() : QString();
    if (!model || model->path.isEmpty() || store.isEmpty())
        return;
    const std::string path = model->path.toStdString(), db = store.toStdString();
    const int generation = doc_->generation();
    QPointer<ParetoPanel> self(this);
    jobs_->start(QStringLiteral("pareto-runs"), QStringLiteral("Reading measured runs"),
                 [self, path, db, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
                     StoreOptions options;
                     options.mode = OpenMode::ReadOnly;
                     const Store s = Store::open(db, options);
                     RunFilter f;
                     f.model = sha256File(path);
                     f.state = RunState::Done;
                     auto runs = std::make_shared<std::vector<MeasuredRun>>();
                     for (const RunRecord& r : s.runs(f)) {
                         if (!r.metrics.sizeBits || !r.metrics.sqnrDb || !std::isfinite(*r.metrics.sqnrDb))
                             continue;
                         runs->push_back({r.id, QString::fromStdString(runKindName(r.kind)), *r.metrics.sizeBits / 8192.0,
                                          *r.metrics.sqnrDb, r.metrics.top1});
                     }
                     return [self, runs, generation] {
                         if (!self || self->doc_->generation() != generation)
                             return;
                         self->measured_ = std::move(*runs);
                         self->redraw();
                         emit self->measuredChanged();
                     };
                 });
}

void ParetoPanel::redraw()
{
    QCustomPlot* p = panel_->plot();
    QVector<double> x, y;
    for (const auto& f : front_)
        if (std::isfinite(f.predictedSqnrDb)) {
            x << sizeKiB(f);
            y << f.predictedSqnrDb;
        }
    frontGraph_->setData(x, y, true);
    QVector<double> mx, my;
    for (const auto& m : measured_) {
        mx << m.sizeKiB;
        my << m.sqnrDb;
    }
    measuredGraph_->setData(mx, my);
    if (front_.empty()) {
        panel_->setMessage(config_->sensitivity() ? QStringLiteral("Computing the front\u2026")
                                                  : QStringLiteral("No sensitivity yet \u2014 run a sweep in the "
                                                                   "Sensitivity view; the front is predicted from it"));
    } else {
        panel_->setMessage(QString());
    }
    // Axes around everything drawn, the current marker included.
    updateCurrent();
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (QCPGraph* g : {frontGraph_, measuredGraph_, current_})
        for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it) {
            x0 = std::min(x0, it->key);
            x1 = std::max(x1, it->key);
            y0 = std::min(y0, it->value);
            y1 = std::max(y1, it->value);
        }
    if (std::isfinite(x0)) {
        const double dx = std::max((x1 - x0) * 0.06, 1.0), dy = std::max((y1 - y0) * 0.08, 1.0);
        p->xAxis->setRange(std::max(0.0, x0 - dx), x1 + dx);
        p->yAxis->setRange(y0 - dy, y1 + dy);
    }
    // Each measured point names its run.
    for (QCPItemText* t : runLabels_)
        p->removeItem(t);
    runLabels_.clear();
    for (const auto& m : measured_) {
        auto* t = new QCPItemText(p);
        t->position->setCoords(m.sizeKiB, m.sqnrDb);
        // Labels of points in the right half go to their left, so they stay inside the plot.
        const bool left = m.sizeKiB > p->xAxis->range().center();
        t->setPositionAlignment((left ? Qt::AlignRight : Qt::AlignLeft) | Qt::AlignVCenter);
        t->setPadding(left ? QMargins(0, 0, 8, 0) : QMargins(8, 0, 0, 0));
        t->setColor(theme::mutedText);
        t->setText(m.top1 ? QStringLiteral("#%1 \u00B7 top-1 %2").arg(m.run).arg(formatPercent(*m.top1))
                          : QStringLiteral("#%1").arg(m.run));
        t->setClipToAxisRect(true);
        runLabels_.push_back(t);
    }
    if (!budgetSet_ && !front_.empty()) {
        budgetKiB_ = config_->sizeBits() > 0 ? double(config_->sizeBits()) / 8192.0 : sizeKiB(front_.back());
        budgetSet_ = true;
    }
    updateBudget();
    p->replot();
}

void ParetoPanel::updateCurrent()
{
    current_->data()->clear();
    const int64_t bits = config_->sizeBits();
    const auto pred = config_->prediction();
    if (bits > 0 && pred && std::isfinite(pred->sqnrDb))
        current_->addData(double(bits) / 8192.0, pred->sqnrDb);
}

void ParetoPanel::setBudgetKiB(double kib)
{
    budgetKiB_ = std::max(0.0, kib);
    budgetSet_ = true;
    updateBudget();
    panel_->plot()->replot();
    emit budgetChanged(budgetKiB_);
}

void ParetoPanel::updateBudget()
{
    const bool on = budgetSet_ && !front_.empty();
    budgetLine_->setVisible(on);
    budgetText_->setVisible(on);
    bestGraph_->data()->clear();
    best_ = -1;
    if (!on) {
        summary_->setText(front_.empty() ? QString()
                                         : QStringLiteral("Drag the green line to set a size budget"));
        applyBest_->setEnabled(false);
        return;
    }
    budgetLine_->point1->setCoords(budgetKiB_, 0);
    budgetLine_->point2->setCoords(budgetKiB_, 1);
    budgetText_->position->setCoords(budgetKiB_, 0.02);
    budgetText_->setText(QStringLiteral("budget %1 KiB").arg(budgetKiB_, 0, 'f', 1));
    // FrontPoint::cost is the quantized layers' stored bits; the budget is the whole model.
    const int64_t other = config_->sizes() ? config_->sizes()->otherBits : 0;
    const auto budgetBits = int64_t(std::floor(budgetKiB_ * 8192.0)) - other;
    if (auto best = bestWithin(front_, budgetBits)) {
        for (std::size_t i = 0; i < front_.size(); ++i)
            if (front_[i].bits == best->bits)
                best_ = int(i);
    }
    if (best_ < 0) {
        summary_->setText(QStringLiteral("Nothing fits in %1 KiB: the smallest configuration needs %2 KiB")
                              .arg(budgetKiB_, 0, 'f', 1)
                              .arg(sizeKiB(front_.front()), 0, 'f', 1));
        applyBest_->setEnabled(false);
        return;
    }
    const FrontPoint& b = front_[std::size_t(best_)];
    bestGraph_->addData(sizeKiB(b), b.predictedSqnrDb);
    summary_->setText(QStringLiteral("Best within <b>%1 KiB</b>: %2 KiB, predicted <b>%3 dB</b>, %4 average weight bits")
                          .arg(budgetKiB_, 0, 'f', 1)
                          .arg(sizeKiB(b), 0, 'f', 1)
                          .arg(b.predictedSqnrDb, 0, 'f', 1)
                          .arg(b.averageBits, 0, 'f', 2));
    applyBest_->setEnabled(true);
}

void ParetoPanel::applyPoint(int index)
{
    if (index < 0 || index >= int(front_.size()))
        return;
    const FrontPoint& p = front_[std::size_t(index)];
    std::map<std::string, std::pair<int, int>> bits;
    for (const auto& [layer, b] : p.bits)
        bits[layer] = {b, 0}; // activation bits stay
    config_->applyBits(bits, QStringLiteral("Apply Pareto point (%1 KiB, %2 dB)")
                                 .arg(sizeKiB(p), 0, 'f', 1)
                                 .arg(p.predictedSqnrDb, 0, 'f', 1));
}

int ParetoPanel::pointAt(const QPoint& pos, double radius) const
{
    const QCustomPlot* p = panel_->plot();
    int best = -1;
    double bestD = radius;
    for (std::size_t i = 0; i < front_.size(); ++i) {
        if (!std::isfinite(front_[i].predictedSqnrDb))
            continue;
        const double dx = p->xAxis->coordToPixel(sizeKiB(front_[i])) - pos.x();
        const double dy = p->yAxis->coordToPixel(front_[i].predictedSqnrDb) - pos.y();
        const double d = std::hypot(dx, dy);
        if (d <= bestD) {
            bestD = d;
            best = int(i);
        }
    }
    return best;
}

QString ParetoPanel::csv() const
{
    QString out = QStringLiteral("kind,size_kib,sqnr_db,average_bits,run\n");
    for (const auto& f : front_)
        out += QStringLiteral("front,%1,%2,%3,\n").arg(sizeKiB(f), 0, 'g', 8).arg(f.predictedSqnrDb, 0, 'g', 6).arg(f.averageBits, 0, 'g', 4);
    for (const auto& m : measured_)
        out += QStringLiteral("measured,%1,%2,,%3\n").arg(m.sizeKiB, 0, 'g', 8).arg(m.sqnrDb, 0, 'g', 6).arg(m.run);
    return out;
}

} // namespace qs::ui
