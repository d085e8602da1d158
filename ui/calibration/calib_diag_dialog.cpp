#include "ui/calibration/calib_diag_dialog.h"

#include "ui/document/model_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_progress_row.h"
#include "ui/jobs/job_runner.h"
#include "ui/widgets/format.h"
#include "ui/widgets/plot_view.h"
#include "ui/widgets/theme.h"

#include "data/dataset.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QThread>
#include <QVBoxLayout>

#include <optional>

namespace qs::ui {
namespace {

QLabel* heading(const QString& text, QWidget* parent)
{
    auto* l = new QLabel(text, parent);
    QFont f = l->font();
    f.setBold(true);
    l->setFont(f);
    return l;
}

QLabel* mutedLabel(const QString& text, QWidget* parent)
{
    auto* l = new QLabel(text, parent);
    l->setProperty("role", "muted");
    return l;
}

} // namespace

CalibDiagDialog::CalibDiagDialog(Studio& studio, QWidget* parent)
    : QDialog(parent), studio_(studio), doc_(studio.document()), jobs_(studio.jobs())
{
    setObjectName(QStringLiteral("calibDiagDialog"));
    setWindowTitle(QStringLiteral("Calibration Diagnostics"));
    setModal(false);
    resize(1180, 760);

    data_ = new QLabel(this);
    data_->setObjectName(QStringLiteral("calibDiagData"));
    data_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    eval_ = new QLineEdit(this);
    eval_->setObjectName(QStringLiteral("calibDiagEval"));
    eval_->setPlaceholderText(QStringLiteral("optional: an IDX or NPY file to compare the calibration data with"));
    eval_->setClearButtonEnabled(true);
    auto* browse = new QPushButton(QStringLiteral("Browse\u2026"), this);
    browse->setObjectName(QStringLiteral("calibDiagBrowse"));
    connect(browse, &QPushButton::clicked, this, &CalibDiagDialog::chooseEval);
    limit_ = new QSpinBox(this);
    limit_->setObjectName(QStringLiteral("calibDiagLimit"));
    limit_->setRange(16, 1000000);
    limit_->setValue(1000);
    limit_->setSingleStep(128);
    limit_->setSuffix(QStringLiteral(" samples"));
    limit_->setToolTip(QStringLiteral("Calibration samples the ranges converge towards (and evaluation samples compared)"));
    tolerance_ = new QDoubleSpinBox(this);
    tolerance_->setObjectName(QStringLiteral("calibDiagTolerance"));
    tolerance_->setRange(0.1, 50);
    tolerance_->setDecimals(1);
    tolerance_->setValue(2.0);
    tolerance_->setSingleStep(0.5);
    tolerance_->setSuffix(QStringLiteral(" %"));
    tolerance_->setToolTip(QStringLiteral("A range within this relative change of the full set's counts as converged"));
    run_ = new QPushButton(QStringLiteral("Run Diagnostics"), this);
    run_->setObjectName(QStringLiteral("calibDiagRun"));
    run_->setDefault(true);
    connect(run_, &QPushButton::clicked, this, [this] { start(); });
    progress_ = new JobProgressRow(jobs_, this);
    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("calibDiagStatus"));
    status_->setProperty("role", "muted");
    status_->setWordWrap(true);

    auto* form = new QGridLayout;
    form->setHorizontalSpacing(8);
    form->addWidget(mutedLabel(QStringLiteral("Calibration data"), this), 0, 0);
    form->addWidget(data_, 0, 1, 1, 3);
    form->addWidget(mutedLabel(QStringLiteral("Evaluation data"), this), 1, 0);
    form->addWidget(eval_, 1, 1, 1, 2);
    form->addWidget(browse, 1, 3);
    auto* settings = new QHBoxLayout;
    settings->setSpacing(8);
    settings->addWidget(limit_);
    settings->addSpacing(12);
    settings->addWidget(mutedLabel(QStringLiteral("Tolerance"), this));
    settings->addWidget(tolerance_);
    settings->addStretch(1);
    settings->addWidget(run_);
    form->addWidget(mutedLabel(QStringLiteral("Samples"), this), 2, 0);
    form->addLayout(settings, 2, 1, 1, 3);
    form->setColumnStretch(1, 1);

    chart_ = new PlotView(QStringLiteral("Range change vs calibration samples"), this);
    chart_->setObjectName(QStringLiteral("calibDiagChart"));
    chart_->setFileStem(QStringLiteral("calibration-convergence"));
    chart_->setCsvProvider([this] { return chartCsv(); });
    layer_ = new QComboBox(this);
    layer_->setObjectName(QStringLiteral("calibDiagLayer"));
    layer_->setToolTip(QStringLiteral("The layer whose input range the chart shows"));
    layer_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    chart_->addTool(layer_);
    connect(layer_, &QComboBox::currentIndexChanged, this, [this] { rebuildChart(); });
    QCustomPlot* p = chart_->plot();
    p->xAxis->setScaleType(QCPAxis::stLogarithmic);
    auto logTicker = QSharedPointer<QCPAxisTickerLog>::create();
    logTicker->setLogBase(2);
    logTicker->setSubTickCount(0);
    p->xAxis->setTicker(logTicker);
    p->xAxis->setNumberFormat(QStringLiteral("f"));
    p->xAxis->setNumberPrecision(0);
    p->xAxis->setLabel(QStringLiteral("calibration samples (log scale)"));
    p->yAxis->setLabel(QStringLiteral("range change vs the full set (%)"));
    p->legend->setVisible(true);
    p->legend->setBrush(QColor(255, 255, 255, 220));
    p->legend->setBorderPen(QPen(theme::opBorder));
    p->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);

    recommended_ = new QLabel(this);
    recommended_->setObjectName(QStringLiteral("calibDiagRecommended"));
    QFont big = recommended_->font();
    big.setPointSizeF(big.pointSizeF() * 2.4);
    big.setBold(true);
    recommended_->setFont(big);
    recommended_->setText(dash());
    recommendedDetail_ = new QLabel(this);
    recommendedDetail_->setObjectName(QStringLiteral("calibDiagRecommendedDetail"));
    recommendedDetail_->setWordWrap(true);
    recommendedDetail_->setProperty("role", "muted");

    banner_ = new QLabel(this);
    banner_->setObjectName(QStringLiteral("calibDiagShiftBanner"));
    banner_->setWordWrap(true);
    banner_->setTextFormat(Qt::RichText);
    banner_->setStyleSheet(QStringLiteral("QLabel { background: #fef3c7; color: #78350f; border: 1px solid #d97706; "
                                          "border-radius: 4px; padding: 8px; }"));
    banner_->hide();
    shiftText_ = new QLabel(this);
    shiftText_->setObjectName(QStringLiteral("calibDiagShiftSummary"));
    shiftText_->setWordWrap(true);
    shiftText_->setTextFormat(Qt::RichText);
    shiftText_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    channels_ = new QTableWidget(0, 7, this);
    channels_->setObjectName(QStringLiteral("calibDiagChannels"));
    channels_->setHorizontalHeaderLabels({QStringLiteral("Ch."), QStringLiteral("Cal mean"), QStringLiteral("Eval mean"),
                                          QStringLiteral("Shift (\u03C3)"), QStringLiteral("Cal std"),
                                          QStringLiteral("Eval std"), QStringLiteral("Std ratio")});
    channels_->verticalHeader()->hide();
    channels_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    channels_->setSelectionMode(QAbstractItemView::NoSelection);
    channels_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    channels_->horizontalHeader()->setMinimumSectionSize(40);
    channels_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    channels_->setToolTip(QStringLiteral("Model input channels after normalization; cells past a threshold are marked"));
    channels_->hide();

    auto* side = new QVBoxLayout;
    side->setSpacing(6);
    side->addWidget(heading(QStringLiteral("Recommended calibration size"), this));
    side->addWidget(recommended_);
    side->addWidget(recommendedDetail_);
    side->addSpacing(10);
    side->addWidget(heading(QStringLiteral("Calibration vs evaluation data"), this));
    side->addWidget(banner_);
    side->addWidget(shiftText_);
    side->addWidget(channels_);
    side->addStretch(1);
    auto* body = new QHBoxLayout;
    body->addWidget(chart_, 3);
    body->addLayout(side, 2);

    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(progress_);
    layout->addWidget(status_);
    layout->addLayout(body, 1);

    connect(progress_, &JobProgressRow::finished, this, [this](JobOutcome outcome, const QString& message) {
        if (outcome == JobOutcome::Cancelled)
            status_->setText(QStringLiteral("Cancelled."));
        else if (outcome == JobOutcome::Failed)
            status_->setText(QStringLiteral("Failed: %1").arg(message));
        updateControls();
        emit diagnosisFinished(outcome == JobOutcome::Done);
    });
    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        jobs_->cancelKind(QStringLiteral("calib-diag"));
        showResult(nullptr);
        updateControls();
    });
    showResult(nullptr);
    updateControls();
}

void CalibDiagDialog::showEvent(QShowEvent* event)
{
    QDialog::showEvent(event);
    updateControls(); // the window's data may have changed since
}

CalibDiagOptions CalibDiagDialog::currentOptions() const
{
    CalibDiagOptions o;
    o.tolerance = tolerance_->value() / 100;
    o.limit = limit_->value();
    o.threads = std::max(1, QThread::idealThreadCount() - 1); // one core stays free for the GUI thread
    return o;
}

bool CalibDiagDialog::isRunning() const
{
    return progress_->isRunning();
}

void CalibDiagDialog::cancel()
{
    progress_->cancel();
}

void CalibDiagDialog::updateControls()
{
    const bool running = isRunning();
    const QString spec = studio_.calibrationDataSpec();
    data_->setText(spec.isEmpty() ? dash() : QFileInfo(spec).fileName().isEmpty() ? spec : QFileInfo(spec).fileName());
    data_->setToolTip(spec + QStringLiteral("\n(File \u203A Calibration Data chooses it)"));
    run_->setEnabled(!running && doc_->model() && !spec.isEmpty());
    eval_->setEnabled(!running);
    limit_->setEnabled(!running);
    tolerance_->setEnabled(!running);
}

void CalibDiagDialog::chooseEval()
{
    const QString start = eval_->text().isEmpty() ? QFileInfo(studio_.calibrationDataSpec()).absolutePath() : eval_->text();
    const QString path = QFileDialog::getOpenFileName(this, QStringLiteral("Evaluation Data"), start,
                                                      QStringLiteral("Data (*.gz *-ubyte *.idx *.npy);;All files (*)"));
    if (!path.isEmpty())
        eval_->setText(path);
}

int CalibDiagDialog::start()
{
    const auto model = doc_->model();
    if (!model || isRunning())
        return -1;
    const CalibDiagOptions opts = currentOptions();
    const DataOptions dataOptions = studio_.calibrationDataOptions(opts.limit);
    const DataOptions evalOptions = studio_.dataOptionsFor(eval_->text().trimmed(), studio_.dataPreprocess(), opts.limit);
    const std::string evalPath = eval_->text().trimmed().toStdString();
    const int generation = doc_->generation();
    QPointer<CalibDiagDialog> self(this);
    const int job = progress_->start(
        QStringLiteral("calib-diag"), QStringLiteral("Calibration diagnostics of %1").arg(model->displayName()),
        [self, model, opts, dataOptions, evalOptions, evalPath, generation](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            progress.report(0, "loading data");
            const Dataset calib = loadDataset(dataOptions, *model->graph);
            std::optional<Dataset> eval;
            if (!evalPath.empty()) {
                eval = loadDataset(evalOptions, *model->graph);
            }
            cancel.check();
            Progress sub = progress.sub(0.03, 1);
            auto r = std::make_shared<const CalibDiagnostics>(
                diagnoseCalibration(*model->graph, calib, eval ? &*eval : nullptr, opts, sub, cancel));
            return [self, r, generation] {
                if (self && self->doc_->generation() == generation)
                    self->showResult(r);
            };
        });
    status_->setText(QStringLiteral("Collecting ranges on up to %1 samples\u2026").arg(opts.limit));
    updateControls();
    return job;
}

int CalibDiagDialog::shownLayer() const
{
    return result_ ? layer_->currentIndex() : -1;
}

void CalibDiagDialog::showLayer(int layer)
{
    layer_->setCurrentIndex(layer);
}

bool CalibDiagDialog::shiftWarningShown() const
{
    return !banner_->isHidden();
}

void CalibDiagDialog::showResult(std::shared_ptr<const CalibDiagnostics> d)
{
    result_ = std::move(d);
    {
        QSignalBlocker block(layer_);
        layer_->clear();
        if (result_) {
            // The slowest layer of the calibrator that needs the most samples.
            std::string worst;
            int64_t most = -1;
            for (const auto& c : result_->calibrators)
                if (c.recommended > most) {
                    most = c.recommended;
                    worst = c.worstLayer;
                }
            int current = 0;
            for (std::size_t i = 0; i < result_->layers.size(); ++i) {
                const bool slowest = result_->layers[i] == worst;
                layer_->addItem(QString::fromStdString(result_->layers[i]) + (slowest ? QStringLiteral("  (slowest)") : QString()));
                if (slowest)
                    current = int(i);
            }
            layer_->setCurrentIndex(current);
        }
    }
    layer_->setEnabled(result_ && !result_->layers.empty());
    if (!result_) {
        recommended_->setText(dash());
        recommendedDetail_->setText(QStringLiteral("Run the diagnostics to see how many calibration samples the ranges need."));
        status_->setText(QString());
    } else {
        recommended_->setText(QStringLiteral("%1 samples").arg(formatCount(result_->recommended)));
        QStringList per;
        for (const auto& c : result_->calibrators)
            per << QStringLiteral("%1 %2").arg(QString::fromStdString(c.calibrator), formatCount(c.recommended));
        QString detail = QStringLiteral("The largest over the calibrators (%1): from there on every layer's range stays "
                                        "within %2 of the full %3 samples.")
                             .arg(per.join(QStringLiteral(", ")), formatPercent(result_->tolerance, 1),
                                  formatCount(result_->sizes.empty() ? 0 : result_->sizes.back()));
        if (!result_->sizes.empty() && result_->recommended >= result_->sizes.back())
            detail += QStringLiteral(" The ranges still move at the full set: more calibration data may help.");
        recommendedDetail_->setText(detail);
        status_->setText(QStringLiteral("%1 layers \u00B7 %2 calibrators \u00B7 sizes %3")
                             .arg(result_->layers.size())
                             .arg(result_->calibrators.size())
                             .arg([&] {
                                 QStringList s;
                                 for (int64_t n : result_->sizes)
                                     s << QString::number(n);
                                 return s.join(QStringLiteral(", "));
                             }()));
    }
    rebuildChart();
    showShift();
}

void CalibDiagDialog::rebuildChart()
{
    QCustomPlot* p = chart_->plot();
    p->clearGraphs();
    p->clearItems();
    const int li = shownLayer();
    if (!result_ || li < 0 || result_->sizes.empty()) {
        chart_->setMessage(QStringLiteral("Run the diagnostics to see how the ranges converge"));
        p->replot();
        return;
    }
    chart_->setMessage(QString());
    layer_->setToolTip(QStringLiteral("The layer whose input range the chart shows; its input is %1")
                           .arg(QString::fromStdString(result_->values[std::size_t(li)])));
    double top = result_->tolerance * 100 * 2;
    for (std::size_t ci = 0; ci < result_->calibrators.size(); ++ci) {
        const auto& c = result_->calibrators[ci];
        QCPGraph* g = p->addGraph();
        g->setName(QStringLiteral("%1 (recommends %2)").arg(QString::fromStdString(c.calibrator), formatCount(c.recommended)));
        const QColor color = theme::seriesColor(int(ci));
        g->setPen(QPen(color, 2));
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, color, Qt::white, 7));
        for (const auto& r : c.ranges[std::size_t(li)]) {
            g->addData(double(r.samples), r.relChange * 100);
            top = std::max(top, r.relChange * 100);
        }
    }
    const double tol = result_->tolerance * 100;
    auto* line = new QCPItemStraightLine(p);
    line->point1->setCoords(1, tol);
    line->point2->setCoords(2, tol);
    line->setPen(QPen(theme::warn, 1.5, Qt::DashLine));
    auto* tolText = new QCPItemText(p);
    tolText->position->setTypeX(QCPItemPosition::ptAxisRectRatio);
    tolText->position->setTypeY(QCPItemPosition::ptPlotCoords);
    tolText->position->setCoords(0.01, tol);
    tolText->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
    tolText->setText(QStringLiteral("tolerance %1").arg(formatPercent(result_->tolerance, 1)));
    tolText->setColor(theme::warn);
    auto* rec = new QCPItemStraightLine(p);
    rec->point1->setCoords(double(result_->recommended), 0);
    rec->point2->setCoords(double(result_->recommended), 1);
    rec->setPen(QPen(theme::accent, 1.5, Qt::DotLine));
    auto* recText = new QCPItemText(p);
    recText->position->setTypeX(QCPItemPosition::ptPlotCoords);
    recText->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    recText->position->setCoords(double(result_->recommended), 0.5);
    recText->setPositionAlignment(Qt::AlignHCenter | Qt::AlignBottom); // rotated: left of the line
    recText->setRotation(-90);
    recText->setText(QStringLiteral("recommended %1").arg(formatCount(result_->recommended)));
    recText->setColor(theme::accent);
    const double lo = double(result_->sizes.front()), hi = double(result_->sizes.back());
    p->xAxis->setRange(lo / 1.4, hi * 1.4);
    p->yAxis->setRange(-top * 0.04, top * 1.1);
    p->replot();
}

void CalibDiagDialog::showShift()
{
    channels_->setRowCount(0);
    if (!result_ || !result_->shift) {
        banner_->hide();
        channels_->hide();
        shiftText_->setText(result_ ? QStringLiteral("No evaluation data given: choose a file above to check whether the "
                                                     "calibration data look like what the model will see.")
                                    : QString());
        return;
    }
    const DistributionShift& s = *result_->shift;
    const CalibDiagOptions o = currentOptions();
    if (s.warning) {
        QString html = QStringLiteral("<b>\u26A0 The calibration data differ from the evaluation data</b>"
                                      "<ul style='margin-top:4px; margin-bottom:0px; margin-left:-20px'>");
        for (const auto& r : s.reasons)
            html += QStringLiteral("<li>%1</li>").arg(QString::fromStdString(r).toHtmlEscaped());
        html += QStringLiteral("</ul>Ranges calibrated on these data may clip or waste resolution on the evaluation data.");
        banner_->setText(html);
        banner_->show();
    } else {
        banner_->hide();
    }
    const QString ks = QStringLiteral("KS statistic D = %1 on %2 (%3 vs %4 values; threshold %5)")
                           .arg(QString::number(s.ks, 'f', 4), QString::fromStdString(s.ksValue).toHtmlEscaped(),
                                formatCount(s.ksCalValues), formatCount(s.ksEvalValues), QString::number(o.ksThreshold));
    shiftText_->setText(s.warning ? ks
                                  : QStringLiteral("<span style='color:%1'><b>\u2713 No distribution shift detected</b></span>"
                                                   "<br>%2")
                                        .arg(theme::good.name(), ks));
    channels_->show();
    channels_->setRowCount(int(s.channels.size()));
    const QColor flagged(0xfd, 0xe6, 0x8a);
    for (int r = 0; r < int(s.channels.size()); ++r) {
        const ChannelShift& c = s.channels[std::size_t(r)];
        const QString cells[] = {QString::number(c.channel),     formatNumber(c.calMean, 4), formatNumber(c.evalMean, 4),
                                 formatNumber(c.meanShift, 3),   formatNumber(c.calStd, 4),  formatNumber(c.evalStd, 4),
                                 formatNumber(c.stdRatio, 3)};
        for (int col = 0; col < 7; ++col) {
            auto* item = new QTableWidgetItem(cells[col]);
            item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            if ((col == 3 && c.meanShift > o.meanShiftThreshold) || (col == 6 && c.stdRatio > o.stdRatioThreshold))
                item->setBackground(flagged);
            channels_->setItem(r, col, item);
        }
    }
    // As tall as its rows (a few input channels), at most ten of them before it scrolls.
    int height = channels_->horizontalHeader()->sizeHint().height() + 2 * channels_->frameWidth();
    for (int r = 0; r < std::min(channels_->rowCount(), 10); ++r)
        height += channels_->rowHeight(r);
    channels_->setFixedHeight(height);
}

QString CalibDiagDialog::chartCsv() const
{
    const int li = shownLayer();
    if (!result_ || li < 0)
        return {};
    QString out = QStringLiteral("samples");
    for (const auto& c : result_->calibrators)
        out += QStringLiteral(",%1_rel_change").arg(QString::fromStdString(c.calibrator));
    out += QLatin1Char('\n');
    for (std::size_t si = 0; si < result_->sizes.size(); ++si) {
        out += QString::number(result_->sizes[si]);
        for (const auto& c : result_->calibrators)
            out += QLatin1Char(',') + QString::number(c.ranges[std::size_t(li)][si].relChange, 'g', 6);
        out += QLatin1Char('\n');
    }
    return out;
}

} // namespace qs::ui
