#include "ui/inspector/outlier_panel.h"

#include "data/dataset.h"
#include "ui/document/model_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"
#include "ui/widgets/format.h"
#include "ui/widgets/icons.h"
#include "ui/widgets/plot_view.h"
#include "ui/widgets/theme.h"

#include <qcustomplot.h>

#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QPointer>
#include <QPushButton>
#include <QTableWidget>
#include <QThread>
#include <QVBoxLayout>

#include <algorithm>

namespace qs::ui {
namespace {

const QColor channelColor(0x3b, 0x82, 0xf6);
const QColor outlierColor(0xdc, 0x26, 0x26);
const QColor tokenColor(0x7c, 0x3a, 0xed);
constexpr double kOutlierFactor = 6; // a channel whose max |x| is 6x the median channel's

double medianOf(std::vector<float> v)
{
    if (v.empty())
        return 0;
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
    return v[v.size() / 2];
}

QCPBars* barsOf(QCustomPlot* plot, const QColor& color)
{
    auto* b = new QCPBars(plot->xAxis, plot->yAxis);
    b->setWidthType(QCPBars::wtPlotCoords);
    b->setWidth(0.8);
    b->setPen(Qt::NoPen);
    b->setBrush(color);
    return b;
}

QCPItemStraightLine* dashedLevel(QCustomPlot* plot, double y, const QColor& color)
{
    auto* line = new QCPItemStraightLine(plot);
    line->point1->setCoords(0, y);
    line->point2->setCoords(1, y);
    line->setPen(QPen(color, 1, Qt::DashLine));
    return line;
}

} // namespace

OutlierPanel::OutlierPanel(Studio& studio, QWidget* parent)
    : QWidget(parent), studio_(studio), doc_(studio.document()), jobs_(studio.jobs())
{
    connect(doc_, &ModelDocument::modelChanged, this, [this] { jobs_->cancelKind(QStringLiteral("outliers")); });
    setObjectName(QStringLiteral("outlierPanel"));
    channelPlot_ = new PlotView(QStringLiteral("Input channels"), this);
    channelPlot_->setFileStem(QStringLiteral("outlier-channels"));
    channelPlot_->plot()->xAxis->setLabel(QStringLiteral("input channel"));
    channelPlot_->plot()->yAxis->setLabel(QStringLiteral("max |x| over tokens"));
    positionPlot_ = new PlotView(QStringLiteral("Massive activations"), this);
    positionPlot_->setFileStem(QStringLiteral("token-max"));
    positionPlot_->plot()->xAxis->setLabel(QStringLiteral("token position"));
    positionPlot_->plot()->yAxis->setLabel(QStringLiteral("max |x| over channels"));
    button_ = new QPushButton(icon(IconId::Calibrate), QStringLiteral("Profile linear-layer inputs"), this);
    button_->setObjectName(QStringLiteral("profileOutliers"));
    button_->setToolTip(QStringLiteral("Runs the FP32 model over the calibration data and records, at every "
                                       "Gemm/MatMul input, each channel's and each token's largest |x|"));
    connect(button_, &QPushButton::clicked, this, [this] { profile(); });
    channelPlot_->addTool(button_);

    table_ = new QTableWidget(0, 2, this);
    table_->setObjectName(QStringLiteral("outlierTable"));
    table_->horizontalHeader()->hide();
    table_->verticalHeader()->hide();
    table_->setShowGrid(false);
    table_->setSelectionMode(QAbstractItemView::NoSelection);
    table_->setFocusPolicy(Qt::NoFocus);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setFrameShape(QFrame::NoFrame);
    table_->setStyleSheet(QStringLiteral("QTableWidget { background: #fafbfc; border-left: 1px solid #eceef1; }"));
    table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 4);
    table_->horizontalHeader()->setStretchLastSection(true);
    table_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    table_->setFixedWidth(220);
    // Small minimums: below the inspector's three sections, this one must not force the window taller.
    table_->setMinimumHeight(40);
    channelPlot_->setMinimumHeight(70);
    positionPlot_->setMinimumHeight(70);
    QFont small = table_->font();
    small.setPointSizeF(small.pointSizeF() * 0.92);
    table_->setFont(small);
    QSharedPointer<QCPAxisTickerFixed> integers(new QCPAxisTickerFixed);
    integers->setTickStep(1);
    integers->setScaleStrategy(QCPAxisTickerFixed::ssMultiples); // whole positions and channels only
    positionPlot_->plot()->xAxis->setTicker(integers);
    channelPlot_->plot()->xAxis->setTicker(integers);

    channelPlot_->setCsvProvider([this] {
        const LinearInputOutliers* r = current();
        if (!r)
            return QString();
        QString s = QStringLiteral("channel,max_abs,mean_abs\n");
        for (std::size_t c = 0; c < r->channelMaxAbs.size(); ++c)
            s += QStringLiteral("%1,%2,%3\n").arg(c).arg(r->channelMaxAbs[c], 0, 'g', 9).arg(r->channelMeanAbs[c], 0, 'g', 9);
        return s;
    });
    positionPlot_->setCsvProvider([this] {
        const LinearInputOutliers* r = current();
        if (!r)
            return QString();
        QString s = QStringLiteral("position,max_abs\n");
        for (std::size_t p = 0; p < r->positionMaxAbs.size(); ++p)
            s += QStringLiteral("%1,%2\n").arg(p).arg(r->positionMaxAbs[p], 0, 'g', 9);
        return s;
    });

    auto* plots = new QVBoxLayout;
    plots->setContentsMargins(0, 0, 0, 0);
    plots->setSpacing(8);
    plots->addWidget(channelPlot_, 1);
    plots->addWidget(positionPlot_, 1);
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addLayout(plots, 1);
    layout->addWidget(table_);

    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        results_.reset();
        layer_.clear();
        draw();
    });
    draw();
}

const LinearInputOutliers* OutlierPanel::current() const
{
    if (!results_)
        return nullptr;
    for (const auto& r : *results_)
        if (r.layer == layer_)
            return &r;
    return nullptr;
}

void OutlierPanel::showLayer(const std::string& layer)
{
    layer_ = layer;
    draw();
}

int OutlierPanel::profile()
{
    const auto model = doc_->model();
    if (!model)
        return -1;
    const QString label = studio_.calibrationDataLabel();
    constexpr int64_t kSamples = 64;
    // Only the samples profiled are read (an image folder is not hashed whole).
    const DataOptions options = studio_.calibrationDataOptions(kSamples);
    const int generation = doc_->generation();
    QPointer<OutlierPanel> self(this);
    return jobs_->start(QStringLiteral("outliers"), QStringLiteral("Profiling linear-layer inputs on %1").arg(label),
        [self, model, options, label, generation](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            progress.report(0, "loading data");
            const Dataset data = loadDataset(options, *model->graph);
            cancel.check();
            OutlierOptions o;
            o.limit = kSamples;
            o.threads = std::max(1, QThread::idealThreadCount() - 1); // one core stays with the GUI
            Progress run = progress.sub(0.05, 1);
            auto result = std::make_shared<const std::vector<LinearInputOutliers>>(
                profileLinearOutliers(*model->graph, data, o, run, cancel));
            const QString used = QStringLiteral("%1 (%2 samples)").arg(label).arg(std::min<int64_t>(data.count(), o.limit));
            return [self, result, used, generation] {
                if (!self || self->doc_->generation() != generation)
                    return;
                self->results_ = result;
                self->dataLabel_ = used;
                self->draw();
                emit self->profiled();
            };
        });
}

void OutlierPanel::draw()
{
    QCustomPlot* cp = channelPlot_->plot();
    QCustomPlot* pp = positionPlot_->plot();
    cp->clearPlottables();
    cp->clearItems();
    pp->clearPlottables();
    pp->clearItems();
    const LinearInputOutliers* r = current();
    std::vector<std::pair<QString, QString>> rows;
    if (!r) {
        const QString msg = !results_ ? QStringLiteral("Profile the inputs of the linear layers to see outlier "
                                                       "channels and massive activations.")
                                      : QStringLiteral("No profile for this layer (only Gemm/MatMul inputs).");
        channelPlot_->setMessage(msg);
        positionPlot_->setMessage(QString());
        channelPlot_->setSubtitle(QString());
        positionPlot_->setSubtitle(QString());
    } else {
        channelPlot_->setMessage(QString());
        positionPlot_->setMessage(QString());
        const double median = medianOf(r->channelMaxAbs);
        QVector<double> x, y, ox, oy;
        int outliers = 0;
        for (std::size_t c = 0; c < r->channelMaxAbs.size(); ++c) {
            const double v = r->channelMaxAbs[c];
            const bool out = median > 0 && v > kOutlierFactor * median;
            outliers += out;
            (out ? ox : x).push_back(double(c));
            (out ? oy : y).push_back(v);
        }
        barsOf(cp, channelColor)->setData(x, y, true);
        QCPBars* red = barsOf(cp, outlierColor);
        red->setData(ox, oy, true);
        red->setName(QStringLiteral("> %1x median").arg(kOutlierFactor));
        dashedLevel(cp, median, theme::mutedText);
        const float top = *std::max_element(r->channelMaxAbs.begin(), r->channelMaxAbs.end());
        cp->xAxis->setRange(-1, double(r->channels));
        cp->yAxis->setRange(0, std::max(1e-12, double(top)) * 1.08);
        channelPlot_->setSubtitle(QStringLiteral("max |x| per channel \u00B7 red: > %1\u00D7 median (dashed)")
                                      .arg(kOutlierFactor));

        QVector<double> px, py;
        for (std::size_t p = 0; p < r->positionMaxAbs.size(); ++p) {
            px.push_back(double(p));
            py.push_back(r->positionMaxAbs[p]);
        }
        QCPGraph* g = pp->addGraph();
        g->setData(px, py, true);
        g->setPen(QPen(tokenColor, 1.5));
        g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, tokenColor, tokenColor.lighter(160),
            r->positionMaxAbs.size() > 256 ? 2 : 5));
        QColor fill = tokenColor;
        fill.setAlpha(40);
        g->setBrush(fill);
        dashedLevel(pp, r->tokenMedianMaxAbs, theme::mutedText);
        const float ptop = r->positionMaxAbs.empty()
            ? 1.f
            : *std::max_element(r->positionMaxAbs.begin(), r->positionMaxAbs.end());
        pp->xAxis->setRange(-0.5, double(std::max<int64_t>(r->positions, 1)) - 0.5);
        pp->yAxis->setRange(0, std::max(1e-12, double(ptop)) * 1.1);
        positionPlot_->setSubtitle(
            QStringLiteral("max |x| per token position \u00B7 %1 \u00B7 dashed: median")
                .arg(dataLabel_));

        QStringList top4;
        for (int64_t c : r->topChannels(4))
            top4 << QStringLiteral("%1").arg(c);
        rows = {{QStringLiteral("input"), QString::fromStdString(r->input)},
            {QStringLiteral("channels \u00B7 tokens"), QStringLiteral("%1 \u00B7 %2").arg(r->channels).arg(r->tokens)},
            {QStringLiteral("max |x|"), formatNumber(r->tokenMaxAbs)},
            {QStringLiteral("median channel"), formatNumber(median)},
            {QStringLiteral("outlier channels"), QString::number(outliers)},
            {QStringLiteral("top channels"), top4.join(QStringLiteral(", "))},
            {QStringLiteral("channel max/med"), formatNumber(r->channelOutlierRatio())},
            {QStringLiteral("token max/med"), formatNumber(r->massiveRatio())},
            {QStringLiteral("peak at"), QStringLiteral("pos %1, ch %2").arg(r->peakPosition).arg(r->peakChannel)},
            {QStringLiteral("weight kurtosis"), formatNumber(r->weightKurtosis)},
            {QStringLiteral("weight max/std"), formatNumber(r->weightMaxOverStd)}};
    }
    table_->setRowCount(int(rows.size()));
    for (int i = 0; i < int(rows.size()); ++i) {
        auto* k = new QTableWidgetItem(rows[std::size_t(i)].first);
        k->setForeground(theme::mutedText);
        auto* v = new QTableWidgetItem(rows[std::size_t(i)].second + QStringLiteral("  "));
        v->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        table_->setItem(i, 0, k);
        table_->setItem(i, 1, v);
    }
    table_->resizeColumnToContents(0);
    button_->setText(results_ ? QStringLiteral("Profile again") : QStringLiteral("Profile linear-layer inputs"));
    cp->replot();
    pp->replot();
}

} // namespace qs::ui
