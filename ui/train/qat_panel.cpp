#include "ui/train/qat_panel.h"

#include "ui/widgets/format.h"
#include "ui/widgets/plot_view.h"
#include "ui/widgets/theme.h"

#include "train/qat.h"

#include <qcustomplot.h>

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>

namespace qs::ui {

QatPanel::QatPanel(QWidget* parent) : QWidget(parent)
{
    setObjectName(QStringLiteral("qatPanel"));
    plot_ = new PlotView(tr("Training"), this);
    plot_->setFileStem(QStringLiteral("qat-curves"));
    QCustomPlot* p = plot_->plot();
    PlotView::styleAxes(p);
    const struct {
        const char* name;
        QColor color;
        bool right;
    } curves[] = {{"training loss", theme::seriesColor(0), false}, {"held-out KD", theme::seriesColor(1), false},
        {"learning rate", theme::mutedText, true}};
    for (const auto& c : curves) {
        QCPGraph* g = p->addGraph(p->xAxis, c.right ? p->yAxis2 : p->yAxis);
        g->setName(tr(c.name));
        g->setPen(QPen(c.color, c.right ? 1.0 : 1.6, c.right ? Qt::DashLine : Qt::SolidLine));
    }
    p->graph(HeldOutKd)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
    p->xAxis->setLabel(tr("step"));
    p->yAxis->setLabel(tr("loss"));
    p->yAxis2->setLabel(tr("learning rate"));
    p->yAxis2->setVisible(true);
    p->legend->setVisible(true);
    p->legend->setBrush(QColor(255, 255, 255, 200));
    QFont small = p->legend->font();
    small.setPointSizeF(small.pointSizeF() * 0.85);
    p->legend->setFont(small);
    p->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    plot_->setCsvProvider([p] {
        QString csv = QStringLiteral("curve,step,value\n");
        for (int i = 0; i < p->graphCount(); ++i)
            for (auto it = p->graph(i)->data()->constBegin(); it != p->graph(i)->data()->constEnd(); ++it)
                csv += QStringLiteral("%1,%2,%3\n").arg(p->graph(i)->name()).arg(it->key).arg(it->value, 0, 'g', 8);
        return csv;
    });
    plot_->setMessage(tr("Train (QAT)\u2026 in the Runs menu starts a training job"));

    scales_ = new QTableWidget(0, 4, this);
    scales_->setHorizontalHeaderLabels({tr("Activation"), tr("Calibrated scale"), tr("Learned"), tr("Change")});
    scales_->horizontalHeader()->setSectionResizeMode(ValueColumn, QHeaderView::Stretch);
    scales_->verticalHeader()->hide();
    scales_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    scales_->setSortingEnabled(false);

    progress_ = new QProgressBar(this);
    progress_->setRange(0, 1000);
    progress_->setValue(0);
    progress_->setTextVisible(false);
    status_ = new QLabel(this);
    eta_ = new QLabel(this);
    cancel_ = new QPushButton(tr("Cancel"), this);
    cancel_->setEnabled(false);
    connect(cancel_, &QPushButton::clicked, this, &QatPanel::cancelRequested);

    auto* split = new QSplitter(Qt::Horizontal, this);
    split->addWidget(plot_);
    split->addWidget(scales_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    auto* bar = new QHBoxLayout;
    bar->addWidget(status_, 1);
    bar->addWidget(progress_, 1);
    bar->addWidget(eta_);
    bar->addWidget(cancel_);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(split, 1);
    layout->addLayout(bar);
}

QCustomPlot* QatPanel::plot() const
{
    return plot_->plot();
}

void QatPanel::begin(const QString& title, qint64 totalSteps)
{
    QCustomPlot* p = plot();
    for (int i = 0; i < p->graphCount(); ++i)
        p->graph(i)->data()->clear();
    p->clearItems(); // the checkpoint marks
    p->xAxis->setRange(0, double(std::max<qint64>(totalSteps, 1)));
    plot_->setTitle(title);
    plot_->setMessage(QString());
    scales_->setRowCount(0);
    initialScales_.clear();
    haveInitial_ = false;
    progress_->setValue(0);
    status_->setText(tr("calibrating and evaluating step 0"));
    eta_->clear();
    cancel_->setEnabled(true);
    p->replot();
}

void QatPanel::addStep(const train::QatStep& s)
{
    QCustomPlot* p = plot();
    p->graph(TrainLoss)->addData(double(s.step), s.loss);
    p->graph(LearningRate)->addData(double(s.step), s.lr);
    p->graph(TrainLoss)->rescaleValueAxis(false, true);
    p->graph(HeldOutKd)->rescaleValueAxis(true, true);
    p->graph(LearningRate)->rescaleValueAxis(false, true);
    p->yAxis->setRangeLower(0);
    p->yAxis2->setRangeLower(0);
    status_->setText(s.block >= 0 ? tr("step %1, block %2, loss %3").arg(s.step).arg(s.block).arg(s.loss, 0, 'g', 4)
                                  : tr("step %1, loss %2").arg(s.step).arg(s.loss, 0, 'g', 4));
    p->replot(QCustomPlot::rpQueuedReplot);
}

void QatPanel::addEval(const train::QatEval& e)
{
    QCustomPlot* p = plot();
    p->graph(HeldOutKd)->addData(double(e.step), e.kd);
    p->graph(HeldOutKd)->rescaleValueAxis(true, true);
    p->yAxis->setRangeLower(0);
    p->replot(QCustomPlot::rpQueuedReplot);
    if (!haveInitial_) {
        initialScales_ = e.scales;
        haveInitial_ = true;
    }
    scales_->setRowCount(int(e.scales.size()));
    int row = 0;
    for (const auto& [value, scale] : e.scales) {
        const auto init = initialScales_.find(value);
        const double before = init != initialScales_.end() ? double(init->second) : double(scale);
        const double change = before != 0 ? double(scale) / before - 1 : 0;
        const QString cells[] = {QString::fromStdString(value), QString::number(before, 'g', 4),
            QString::number(double(scale), 'g', 4),
            QStringLiteral("%1%2%").arg(change >= 0 ? "+" : "").arg(change * 100, 0, 'f', 1)};
        for (int c = 0; c < 4; ++c) {
            auto* item = new QTableWidgetItem(cells[c]);
            if (c != ValueColumn)
                item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            if (c == ChangeColumn && std::abs(change) >= 0.05)
                item->setForeground(theme::accent);
            scales_->setItem(row, c, item);
        }
        ++row;
    }
    QString top1 = e.top1 ? tr(", top-1 %1%").arg(*e.top1 * 100, 0, 'f', 1) : QString();
    plot_->setSubtitle(
        tr("held-out at step %1: KD %2%3 (%4 samples)").arg(e.step).arg(e.kd, 0, 'g', 4).arg(top1).arg(e.samples));
}

void QatPanel::setProgress(double fraction, double etaSeconds)
{
    progress_->setValue(int(std::lround(std::clamp(fraction, 0.0, 1.0) * 1000)));
    eta_->setText(etaSeconds >= 0 ? tr("%1 left").arg(formatDuration(etaSeconds)) : QString());
}

void QatPanel::addCheckpoint(qint64 step, qint64 runId)
{
    QCustomPlot* p = plot();
    auto* line = new QCPItemStraightLine(p);
    line->point1->setCoords(double(step), 0);
    line->point2->setCoords(double(step), 1);
    line->setPen(QPen(theme::good, 1, Qt::DotLine));
    line->setObjectName(QStringLiteral("checkpoint %1").arg(runId));
    p->replot(QCustomPlot::rpQueuedReplot);
}

void QatPanel::finish(const QString& message)
{
    cancel_->setEnabled(false);
    status_->setText(message);
    eta_->clear();
}

} // namespace qs::ui
