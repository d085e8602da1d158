#include "ui/inspector/inspector_panel.h"

#include "ui/document/graph_layout.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/document/studio.h"
#include "ui/inspector/outlier_panel.h"
#include "ui/widgets/elided_label.h"
#include "ui/widgets/format.h"
#include "ui/widgets/icons.h"
#include "ui/widgets/plot_view.h"
#include "ui/widgets/theme.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QScrollArea>
#include <QStackedWidget>
#include <QTableWidget>
#include <QToolButton>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace qs::ui {
namespace {

const QColor weightColor(0x3b, 0x82, 0xf6);
// Neutral slate, so that the calibrators' coloured clipping lines stand out against it.
const QColor activationColor(0x64, 0x74, 0x8b);
constexpr int maxDrawnBins = 384;     // more bins than pixels only adds aliasing
constexpr int maxDrawnChannels = 400; // likewise for channels

QTableWidget* makeSideTable(QWidget* parent, int columns = 2)
{
    auto* t = new QTableWidget(0, columns, parent);
    t->horizontalHeader()->hide();
    t->verticalHeader()->hide();
    t->setShowGrid(false);
    t->setSelectionMode(QAbstractItemView::NoSelection);
    t->setFocusPolicy(Qt::NoFocus);
    t->setEditTriggers(QAbstractItemView::NoEditTriggers);
    t->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    t->setVerticalScrollBarPolicy(Qt::ScrollBarAsNeeded);
    t->setFrameShape(QFrame::NoFrame);
    t->setStyleSheet(QStringLiteral("QTableWidget { background: #fafbfc; border-left: 1px solid #eceef1; }"));
    t->verticalHeader()->setDefaultSectionSize(t->fontMetrics().height() + 4);
    t->horizontalHeader()->setStretchLastSection(true);
    t->setFixedWidth(220);
    QFont f = t->font();
    f.setPointSizeF(f.pointSizeF() * 0.92);
    t->setFont(f);
    return t;
}

void setRows(QTableWidget* t, const std::vector<std::pair<QString, QString>>& rows)
{
    t->setRowCount(int(rows.size()));
    for (int r = 0; r < int(rows.size()); ++r) {
        auto* k = t->item(r, 0);
        auto* v = t->item(r, 1);
        if (!k) {
            k = new QTableWidgetItem;
            k->setForeground(theme::mutedText);
            t->setItem(r, 0, k);
            v = new QTableWidgetItem;
            v->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            t->setItem(r, 1, v);
        }
        k->setText(rows[std::size_t(r)].first);
        v->setText(rows[std::size_t(r)].second + QStringLiteral("  "));
    }
    t->resizeColumnToContents(0);
}

// Counts of `h` merged so that at most maxDrawnBins remain; edges stay exact.
struct DrawnHistogram {
    QVector<double> x, y; // step-left points, one per bin, plus the closing edge
    double lo = 0, hi = 0;
};

DrawnHistogram drawnHistogram(const Histogram& h, bool log)
{
    DrawnHistogram d;
    const int n = h.bins();
    if (n == 0)
        return d;
    const int group = (n + maxDrawnBins - 1) / maxDrawnBins;
    const int m = (n + group - 1) / group;
    const double width = h.binWidth() * group;
    d.x.reserve(m + 1);
    d.y.reserve(m + 1);
    for (int i = 0; i < m; ++i) {
        uint64_t c = 0;
        for (int j = i * group; j < std::min(n, (i + 1) * group); ++j)
            c += h.counts[std::size_t(j)];
        d.x.push_back(h.lo + i * width);
        // On a log axis an empty bin drops below the visible floor instead of to -infinity.
        d.y.push_back(c == 0 && log ? 0.3 : double(c));
    }
    d.x.push_back(h.lo + m * width);
    d.y.push_back(d.y.back());
    d.lo = h.lo;
    d.hi = h.lo + m * width;
    return d;
}

QCPGraph* ensureGraph(QCustomPlot* plot, int i)
{
    while (plot->graphCount() <= i)
        plot->addGraph();
    return plot->graph(i);
}

void setLogY(QCustomPlot* plot, bool log)
{
    if (log) {
        plot->yAxis->setScaleType(QCPAxis::stLogarithmic);
        QSharedPointer<QCPAxisTickerLog> t(new QCPAxisTickerLog);
        t->setLogBase(10);
        t->setSubTickCount(0);
        plot->yAxis->setTicker(t);
        plot->yAxis->setNumberFormat(QStringLiteral("eb"));
        plot->yAxis->setNumberPrecision(0);
    } else {
        plot->yAxis->setScaleType(QCPAxis::stLinear);
        plot->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
        plot->yAxis->setNumberFormat(QStringLiteral("gb"));
        plot->yAxis->setNumberPrecision(4);
    }
}

void plotHistogram(QCustomPlot* plot, const Histogram& h, bool log, const QColor& color)
{
    const DrawnHistogram d = drawnHistogram(h, log);
    QCPGraph* g = ensureGraph(plot, 0);
    g->setLineStyle(QCPGraph::lsStepLeft);
    g->setPen(QPen(color.darker(115), 1.0));
    QColor fill = color;
    fill.setAlpha(90);
    g->setBrush(fill);
    g->setData(d.x, d.y, true);
    setLogY(plot, log);
    double top = 1;
    for (double v : d.y)
        top = std::max(top, v);
    plot->xAxis->setRange(d.lo - (d.hi - d.lo) * 0.02, d.hi + (d.hi - d.lo) * 0.02);
    plot->yAxis->setRange(log ? 0.8 : 0, log ? top * 2.5 : top * 1.08);
}

QString attrText(const Attribute& a)
{
    auto join = [](const auto& v) {
        QStringList s;
        for (const auto& x : v)
            s << QString::number(x);
        return QLatin1Char('[') + s.join(QLatin1Char(',')) + QLatin1Char(']');
    };
    switch (a.kind) {
    case Attribute::Kind::Float: return formatNumber(a.f);
    case Attribute::Kind::Int: return QString::number(a.i);
    case Attribute::Kind::String: return QString::fromStdString(a.s);
    case Attribute::Kind::Ints: return join(a.ints);
    case Attribute::Kind::Floats: return join(a.floats);
    case Attribute::Kind::Strings: return QStringLiteral("%1 strings").arg(a.strings.size());
    case Attribute::Kind::Tensor: return a.tensors.empty() ? QStringLiteral("tensor") : QStringLiteral("tensor ") + formatShape(a.tensors.front().shape);
    case Attribute::Kind::Graph: return QStringLiteral("subgraph");
    default: return QStringLiteral("\u2026");
    }
}

QString convDetails(const Node& n)
{
    QStringList parts;
    auto dims = [](const std::vector<int64_t>& v) {
        QStringList s;
        for (int64_t x : v)
            s << QString::number(x);
        return s.join(QChar(0x00D7));
    };
    if (n.has("kernel_shape"))
        parts << QStringLiteral("kernel ") + dims(n.attrInts("kernel_shape"));
    if (n.has("strides")) {
        auto s = n.attrInts("strides");
        if (std::any_of(s.begin(), s.end(), [](int64_t x) { return x != 1; }))
            parts << QStringLiteral("stride ") + dims(s);
    }
    if (n.has("group") && n.attrInt("group", 1) != 1)
        parts << QStringLiteral("group %1").arg(n.attrInt("group", 1));
    if (n.has("dilations")) {
        auto d = n.attrInts("dilations");
        if (std::any_of(d.begin(), d.end(), [](int64_t x) { return x != 1; }))
            parts << QStringLiteral("dilation ") + dims(d);
    }
    if (n.opType == "Gemm" && n.attrInt("transB", 0))
        parts << QStringLiteral("transB");
    return parts.join(QStringLiteral(" \u00B7 "));
}

} // namespace

InspectorPanel::InspectorPanel(Studio& studio, QWidget* parent)
    : QWidget(parent), doc_(studio.document()), selection_(studio.selection())
{
    setObjectName(QStringLiteral("layerInspector"));
    title_ = new ElidedLabel(this);
    title_->setObjectName(QStringLiteral("inspectorTitle"));
    title_->setProperty("role", "heading");
    title_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    opBadge_ = new QLabel(this);
    opBadge_->setProperty("role", "badge");
    details_ = new QLabel(this);
    details_->setProperty("role", "muted");
    details_->setWordWrap(true);
    details_->setTextInteractionFlags(Qt::TextSelectableByMouse);

    // Weights: histogram + statistics.
    weightPlot_ = new PlotView(QStringLiteral("Weights"), this);
    weightPlot_->plot()->xAxis->setLabel(QStringLiteral("weight value"));
    weightPlot_->plot()->yAxis->setLabel(QStringLiteral("count"));
    weightLog_ = weightPlot_->addToggle(icon(IconId::LogScale), QStringLiteral("Logarithmic counts: shows the tails"));
    weightLog_->setObjectName(QStringLiteral("weightLogToggle"));
    weightSource_ = new QComboBox(this);
    weightSource_->setObjectName(QStringLiteral("weightSource"));
    weightSource_->addItem(QStringLiteral("BN-folded"), QStringLiteral("folded"));
    weightSource_->addItem(QStringLiteral("Raw"), QStringLiteral("raw"));
    weightSource_->setToolTip(QStringLiteral("BN-folded: the weight with its BatchNormalization folded in, the tensor "
                                             "that is quantized. Raw: the model's own weight, as the layer table lists "
                                             "it."));
    weightSource_->hide();
    weightPlot_->addTool(weightSource_);
    weightTable_ = makeSideTable(this);
    connect(weightSource_, &QComboBox::currentIndexChanged, this, [this] {
        if (!doc_->layer(layer_))
            return;
        drawWeights();
        drawChannels();
        weightPlot_->plot()->replot();
        channelPlot_->plot()->replot();
    });
    connect(weightLog_, &QToolButton::toggled, this, [this] {
        drawWeights();
        weightPlot_->plot()->replot();
    });

    // Channels: per-output-channel min/max and |x| 99.9th percentile.
    channelPlot_ = new PlotView(QStringLiteral("Per-channel ranges"), this);
    channelPlot_->plot()->xAxis->setLabel(QStringLiteral("output channel"));
    channelPlot_->plot()->yAxis->setLabel(QStringLiteral("weight value"));
    channelSort_ = channelPlot_->addToggle(icon(IconId::Sort), QStringLiteral("Sort channels by range, widest first"));
    channelTable_ = makeSideTable(this);
    connect(channelSort_, &QToolButton::toggled, this, [this] {
        drawChannels();
        channelPlot_->plot()->replot();
    });
    channelPlot_->plot()->legend->setVisible(true);

    // Activations: histogram with the calibrators' clipping ranges.
    activationPlot_ = new PlotView(QStringLiteral("Activations"), this);
    activationPlot_->plot()->xAxis->setLabel(QStringLiteral("activation value"));
    activationPlot_->plot()->yAxis->setLabel(QStringLiteral("count"));
    role_ = new QComboBox(this);
    role_->setObjectName(QStringLiteral("activationRole"));
    role_->addItem(QStringLiteral("Input"), QStringLiteral("input"));
    role_->addItem(QStringLiteral("Output"), QStringLiteral("output"));
    role_->setToolTip(QStringLiteral("The layer's input is what activation quantization acts on"));
    activationPlot_->addTool(role_);
    activationLog_ = activationPlot_->addToggle(icon(IconId::LogScale), QStringLiteral("Logarithmic counts"));
    activationLog_->setChecked(true);
    calibTable_ = makeSideTable(this, 3);
    calibTable_->setObjectName(QStringLiteral("calibratorTable"));
    calibTable_->setHorizontalHeaderLabels({QStringLiteral("clip range"), QStringLiteral("lo"), QStringLiteral("hi")});
    calibTable_->horizontalHeader()->show();
    calibTable_->horizontalHeader()->setDefaultAlignment(Qt::AlignRight | Qt::AlignVCenter);
    calibTable_->horizontalHeader()->setStyleSheet(
        QStringLiteral("QHeaderView::section { background: #fafbfc; font-weight: normal; color: #6b7280; padding: 2px 4px; }"));
    auto redrawActivations = [this] {
        drawActivations();
        activationPlot_->plot()->replot();
    };
    connect(role_, &QComboBox::currentIndexChanged, this, redrawActivations);
    connect(activationLog_, &QToolButton::toggled, this, redrawActivations);

    auto section = [this](PlotView* plot, QTableWidget* table) {
        auto* w = new QWidget(this);
        auto* h = new QHBoxLayout(w);
        h->setContentsMargins(0, 0, 0, 0);
        h->setSpacing(0);
        h->addWidget(plot, 1);
        h->addWidget(table);
        return w;
    };
    auto* plots = new QWidget(this);
    auto* plotsLayout = new QVBoxLayout(plots);
    plotsLayout->setContentsMargins(0, 0, 0, 0);
    plotsLayout->setSpacing(8);
    plotsLayout->addWidget(section(weightPlot_, weightTable_), 1);
    plotsLayout->addWidget(section(channelPlot_, channelTable_), 1);
    plotsLayout->addWidget(section(activationPlot_, calibTable_), 1);
    outliers_ = new OutlierPanel(studio, this);
    outliers_->hide(); // shown for Gemm/MatMul layers only; hidden, it adds nothing to the minimum size
    plotsLayout->addWidget(outliers_, 2);
    plotsLayout_ = plotsLayout;

    nodeTable_ = new QTableWidget(0, 2, this);
    nodeTable_->setHorizontalHeaderLabels({QStringLiteral("Attribute"), QStringLiteral("Value")});
    nodeTable_->verticalHeader()->hide();
    nodeTable_->horizontalHeader()->setStretchLastSection(true);
    nodeTable_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    nodeTable_->setSelectionMode(QAbstractItemView::NoSelection);
    nodeTable_->setFrameShape(QFrame::NoFrame);

    emptyLabel_ = new QLabel(this);
    emptyLabel_->setAlignment(Qt::AlignCenter);
    emptyLabel_->setWordWrap(true);
    emptyLabel_->setProperty("role", "muted");

    pages_ = new QStackedWidget(this);
    pages_->addWidget(emptyLabel_); // 0
    pages_->addWidget(plots);       // 1
    pages_->addWidget(nodeTable_);  // 2

    auto* head = new QHBoxLayout;
    head->setSpacing(8);
    head->addWidget(title_, 1);
    head->addWidget(opBadge_, 0, Qt::AlignVCenter);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(10, 8, 4, 6);
    layout->setSpacing(4);
    layout->addLayout(head);
    layout->addWidget(details_);
    layout->addSpacing(4);
    layout->addWidget(pages_, 1);

    // Empty state of the activation plot: a direct way to the calibration job.
    auto* calibrate = new QPushButton(icon(IconId::Calibrate), QStringLiteral("Calibrate"),
                                      activationPlot_->plot());
    calibrate->setObjectName(QStringLiteral("inspectorCalibrate"));
    calibrate->hide();
    connect(calibrate, &QPushButton::clicked, this, &InspectorPanel::calibrateRequested);
    connect(this, &InspectorPanel::calibrateRequested, &studio, &Studio::runCalibration);
    activationPlot_->setProperty("calibrateButton", QVariant::fromValue<QObject*>(calibrate));

    weightPlot_->setCsvProvider([this] {
        const LayerData* l = doc_->layer(layer_);
        if (!l)
            return QString();
        const WeightView* view = shownWeightView(layer_);
        const Histogram& h = view ? view->histogram : l->weights.histogram;
        QString s = QStringLiteral("bin_lo,bin_hi,count\n");
        for (int i = 0; i < h.bins(); ++i)
            s += QStringLiteral("%1,%2,%3\n").arg(h.lo + i * h.binWidth(), 0, 'g', 9).arg(h.lo + (i + 1) * h.binWidth(), 0, 'g', 9).arg(h.counts[std::size_t(i)]);
        return s;
    });
    channelPlot_->setCsvProvider([this] {
        const LayerData* l = doc_->layer(layer_);
        if (!l)
            return QString();
        const WeightView* view = shownWeightView(layer_);
        const ChannelRanges& c = view ? view->channels : l->weights.channels;
        QString s = QStringLiteral("channel,min,max,abs_p99.9\n");
        for (std::size_t i = 0; i < c.min.size(); ++i)
            s += QStringLiteral("%1,%2,%3,%4\n").arg(i).arg(c.min[i], 0, 'g', 9).arg(c.max[i], 0, 'g', 9).arg(c.absP999[i], 0, 'g', 9);
        return s;
    });
    activationPlot_->setCsvProvider([this] {
        const ActivationProfile* p = currentActivation();
        if (!p)
            return QString();
        const Histogram& h = p->calibration.histogram;
        QString s = QStringLiteral("bin_lo,bin_hi,count\n");
        for (int i = 0; i < h.bins(); ++i)
            s += QStringLiteral("%1,%2,%3\n").arg(h.lo + i * h.binWidth(), 0, 'g', 9).arg(h.lo + (i + 1) * h.binWidth(), 0, 'g', 9).arg(h.counts[std::size_t(i)]);
        return s;
    });

    connect(selection_, &LayerSelection::currentChanged, this, [this](int node, int layer) {
        if (layer >= 0)
            showLayer(layer);
        else
            showNode(node);
    });
    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        weightViews_.clear();
        showLayer(-1);
    });
    connect(doc_, &ModelDocument::activationsChanged, this, [this] {
        if (layer_ >= 0) {
            drawActivations();
            activationPlot_->plot()->replot();
        }
    });
    connect(doc_, &ModelDocument::weightsChanged, this, [this] {
        if (layer_ >= 0) { // the shown layer's statistics may have arrived
            drawWeights();
            drawChannels();
            weightPlot_->plot()->replot();
            channelPlot_->plot()->replot();
        }
    });
    showLayer(-1);
}

const ActivationProfile* InspectorPanel::currentActivation() const
{
    const LayerData* l = doc_->layer(layer_);
    const auto& a = doc_->activations();
    if (!l || !a)
        return nullptr;
    return a->find(l->summary.name, role_->currentData().toString().toStdString());
}

void InspectorPanel::showEmpty(const QString& message)
{
    title_->setFullText(doc_->model() ? doc_->model()->displayName() : QStringLiteral("No model"));
    opBadge_->hide();
    details_->setText(doc_->model() ? QStringLiteral("%1 \u00B7 %2 parameters")
                                          .arg(countOf(doc_->layerCount(), QStringLiteral("quantizable layer"),
                                                       QStringLiteral("quantizable layers")))
                                          .arg(formatCount(doc_->model()->totalParams))
                                    : QString());
    emptyLabel_->setText(message);
    pages_->setCurrentIndex(0);
}

void InspectorPanel::showNode(int node)
{
    layer_ = -1;
    node_ = node;
    const auto& m = doc_->model();
    if (!m || node < 0 || node >= int(m->graph->nodes.size())) {
        showEmpty(!m ? QStringLiteral("Open an ONNX model (Ctrl+O) or drop one on the window.")
                  : m->layers.empty()
                      ? QStringLiteral("This model has no quantizable layers (Conv, ConvTranspose, Gemm, MatMul with a "
                                       "constant weight, embedding Gather). Click an operator in the graph to see it.")
                      : QStringLiteral("Select a layer in the table or the graph to see its weights and activations."));
        return;
    }
    const Graph& g = *m->graph;
    const Node& n = g.nodes[std::size_t(node)];
    title_->setFullText(QString::fromStdString(n.name));
    opBadge_->setText(QString::fromStdString(n.opType));
    opBadge_->show();
    details_->setText(QStringLiteral("Not a quantizable layer: its output passes on in the precision of its inputs."));
    nodeTable_->setRowCount(0);
    auto add = [this](const QString& k, const QString& v) {
        const int r = nodeTable_->rowCount();
        nodeTable_->insertRow(r);
        nodeTable_->setItem(r, 0, new QTableWidgetItem(k));
        nodeTable_->setItem(r, 1, new QTableWidgetItem(v));
    };
    for (std::size_t i = 0; i < n.inputs.size(); ++i) {
        if (n.inputs[i].empty())
            continue;
        const ValueInfo* info = g.info(n.inputs[i]);
        const Tensor* c = g.constant(n.inputs[i]);
        add(QStringLiteral("input %1").arg(i),
            QString::fromStdString(n.inputs[i]) + QStringLiteral("  ") +
                (c ? formatShape(c->shape) + QStringLiteral(" constant") : info ? QString::fromStdString(info->text()) : QString()));
    }
    for (std::size_t i = 0; i < n.outputs.size(); ++i) {
        const ValueInfo* info = g.info(n.outputs[i]);
        add(QStringLiteral("output %1").arg(i),
            QString::fromStdString(n.outputs[i]) + QStringLiteral("  ") + (info ? QString::fromStdString(info->text()) : QString()));
    }
    for (const auto& [name, a] : n.attrs)
        add(QString::fromStdString(name), attrText(a));
    nodeTable_->resizeColumnToContents(0);
    pages_->setCurrentIndex(2);
}

void InspectorPanel::addPanel(QWidget* panel)
{
    plotsLayout_->addWidget(panel, 0);
}

void InspectorPanel::showLayer(int layerRow)
{
    const LayerData* l = doc_->layer(layerRow);
    if (!l) {
        showNode(-1);
        return;
    }
    layer_ = layerRow;
    node_ = l->node;
    refresh();
}

void InspectorPanel::refresh()
{
    const LayerData& l = *doc_->layer(layer_);
    const Graph& g = *doc_->model()->graph;
    const Node& n = g.nodes[std::size_t(l.node)];
    title_->setFullText(shortLayerName(l.summary.name, l.summary.op));
    title_->setToolTip(QString::fromStdString(l.summary.name));
    opBadge_->setText(QString::fromStdString(l.summary.op));
    opBadge_->show();
    QString line = QStringLiteral("W %1 \u00B7 %2 params (%3 of the model) \u00B7 out %4")
                       .arg(formatShape(l.summary.weightShape), formatCount(l.summary.params),
                            formatPercent(l.sizeShare, 1), l.outputText);
    const QString conv = convDetails(n);
    if (!conv.isEmpty())
        line += QStringLiteral("\n") + conv;
    details_->setText(line);
    pages_->setCurrentIndex(1);

    outliers_->setVisible(l.summary.kind == LayerKind::Gemm || l.summary.kind == LayerKind::MatMul);
    outliers_->showLayer(l.summary.name);
    drawWeights();
    drawChannels();
    drawActivations();
    // Immediate refresh: the inspector is on screen when the user clicks, and the
    // benchmark measures the real cost of a redraw.
    for (PlotView* p : {weightPlot_, channelPlot_, activationPlot_})
        p->plot()->replot(QCustomPlot::rpImmediateRefresh);
}

void InspectorPanel::setWeightView(const std::string& layer, std::shared_ptr<const WeightView> view)
{
    auto it = weightViews_.find(layer);
    const WeightView* before = it == weightViews_.end() ? nullptr : it->second.get();
    if (before == view.get())
        return;
    if (view)
        weightViews_[layer] = std::move(view);
    else
        weightViews_.erase(layer);
    const LayerData* l = doc_->layer(layer_);
    if (l && l->summary.name == layer && pages_->currentIndex() == 1) {
        drawWeights();
        drawChannels();
        weightPlot_->plot()->replot();
        channelPlot_->plot()->replot();
    }
}

const WeightView* InspectorPanel::shownWeightView(int layerRow) const
{
    return weightSource_->currentData().toString() == QStringLiteral("folded") ? weightView(layerRow) : nullptr;
}

const WeightView* InspectorPanel::weightView(int layerRow) const
{
    const LayerData* l = doc_->layer(layerRow);
    if (!l)
        return nullptr;
    auto it = weightViews_.find(l->summary.name);
    return it == weightViews_.end() ? nullptr : it->second.get();
}

void InspectorPanel::drawWeights()
{
    const LayerData* l = doc_->layer(layer_);
    if (!l)
        return;
    const WeightView* available = weightView(layer_);
    weightSource_->setVisible(available != nullptr);
    const WeightView* view = shownWeightView(layer_);
    const TensorStats& s = view ? view->stats : l->summary.stats;
    const Histogram& h = view ? view->histogram : l->weights.histogram;
    QCustomPlot* plot = weightPlot_->plot();
    plotHistogram(plot, h, weightLog_->isChecked(), weightColor);
    // Which weights: named whenever the layer has two (raw and BN-folded).
    const QString which = view ? QStringLiteral("%1, as quantized").arg(view->what)
        : available            ? QStringLiteral("raw, as in the model and the layer table")
                               : QString();
    weightPlot_->setTitle(!l->weightsReady && !view ? QStringLiteral("Weights (computing statistics\u2026)")
            : which.isEmpty()                       ? QStringLiteral("Weights")
                                                    : QStringLiteral("Weights (%1)").arg(which));
    weightPlot_->setSubtitle(QStringLiteral("%1 values \u00B7 %2 bins").arg(formatCount(s.count)).arg(h.bins()));
    weightPlot_->setFileStem(shortLayerName(l->summary.name, l->summary.op).replace(QLatin1Char('/'), QLatin1Char('_')) +
                             QStringLiteral("-weights"));
    setRows(weightTable_,
        {
            {QStringLiteral("weights"), view ? view->what : QStringLiteral("raw")},
            {QStringLiteral("min"), formatNumber(s.min)},
            {QStringLiteral("max"), formatNumber(s.max)},
            {QStringLiteral("mean"), formatNumber(s.mean, 3)},
            {QStringLiteral("std"), formatNumber(s.std, 3)},
            {QStringLiteral("kurtosis"), formatNumber(s.kurtosis, 3)},
            {QStringLiteral("outliers >6\u03C3"),
                s.outlierFraction == 0 ? QStringLiteral("0") : formatPercent(s.outlierFraction, 3)},
            {QStringLiteral("ch. range ratio"), formatNumber(s.channelRangeRatio, 3)},
            {QStringLiteral("non-finite"), formatCount(s.nonFinite)},
        });
    emit plotsRedrawn();
}

void InspectorPanel::drawChannels()
{
    const LayerData* l = doc_->layer(layer_);
    if (!l)
        return;
    const WeightView* view = shownWeightView(layer_);
    const ChannelRanges& c = view ? view->channels : l->weights.channels;
    channelPlot_->setTitle(view  ? QStringLiteral("Per-channel ranges (%1)").arg(view->what)
            : weightView(layer_) ? QStringLiteral("Per-channel ranges (raw)")
                                 : QStringLiteral("Per-channel ranges"));
    const int n = int(c.min.size());
    std::vector<int> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    const bool sorted = channelSort_->isChecked();
    if (sorted)
        std::stable_sort(order.begin(), order.end(), [&c](int a, int b) {
            return c.max[std::size_t(a)] - c.min[std::size_t(a)] > c.max[std::size_t(b)] - c.min[std::size_t(b)];
        });
    // Beyond a few hundred channels a plot pixel covers several: draw the envelope of
    // each group (min of mins, max of maxes), which looks the same and redraws fast.
    const int group = std::max(1, (n + maxDrawnChannels - 1) / maxDrawnChannels);
    const int points = (n + group - 1) / group;
    QVector<double> x(points), lo(points), hi(points), pHi(points), pLo(points);
    double range = 0;
    for (int i = 0; i < points; ++i) {
        double mn = 1e300, mx = -1e300, p = 0;
        for (int j = i * group; j < std::min(n, (i + 1) * group); ++j) {
            const auto k = std::size_t(order[std::size_t(j)]);
            mn = std::min<double>(mn, c.min[k]);
            mx = std::max<double>(mx, c.max[k]);
            p = std::max<double>(p, c.absP999[k]);
        }
        x[i] = group == 1 ? i : (i + 0.5) * group - 0.5;
        lo[i] = mn;
        hi[i] = mx;
        pHi[i] = p;
        pLo[i] = -p;
        range = std::max({range, std::abs(mn), std::abs(mx)});
    }
    QCustomPlot* plot = channelPlot_->plot();
    QCPGraph* gMax = ensureGraph(plot, 0);
    QCPGraph* gMin = ensureGraph(plot, 1);
    QCPGraph* gP = ensureGraph(plot, 2);
    QCPGraph* gPn = ensureGraph(plot, 3);
    const auto style = group == 1 && n <= 256 ? QCPGraph::lsStepCenter : QCPGraph::lsLine;
    gMax->setName(QStringLiteral("min \u2013 max"));
    gMax->setLineStyle(style);
    gMax->setPen(QPen(weightColor.darker(120), 1.0));
    gMax->setBrush(QColor(weightColor.red(), weightColor.green(), weightColor.blue(), 70));
    gMax->setChannelFillGraph(gMin);
    gMax->setData(x, hi, true);
    gMin->setLineStyle(style);
    gMin->setPen(QPen(weightColor.darker(120), 1.0));
    gMin->setData(x, lo, true);
    gMin->removeFromLegend();
    gP->setName(QStringLiteral("\u00B1|x| p99.9"));
    gP->setLineStyle(style);
    // Dashes cost more than the rest of the plot on thousands of points: only for few channels.
    const QPen pPen(QColor(0xea, 0x58, 0x0c), 1.0, style == QCPGraph::lsStepCenter ? Qt::DashLine : Qt::SolidLine);
    gP->setPen(pPen);
    gP->setData(x, pHi, true);
    gPn->setLineStyle(style);
    gPn->setPen(pPen);
    gPn->setData(x, pLo, true);
    gPn->removeFromLegend();
    plot->legend->setFont(plot->xAxis->tickLabelFont());
    plot->legend->setBrush(QColor(255, 255, 255, 220));
    plot->legend->setBorderPen(QPen(QColor(0xdd, 0xe0, 0xe4)));
    plot->legend->setIconSize(14, 8);
    plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    plot->xAxis->setLabel(sorted ? QStringLiteral("output channel, widest range first") : QStringLiteral("output channel"));
    plot->xAxis->setRange(-0.5, std::max(n, 1) - 0.5);
    if (range == 0)
        range = 1;
    plot->yAxis->setRange(-range * 1.12, range * 1.5); // headroom for the legend

    // The numbers: how uneven the channels are, which channel is widest.
    std::vector<double> widths;
    widths.reserve(std::size_t(n));
    int widest = 0;
    for (int i = 0; i < n; ++i) {
        widths.push_back(double(c.max[std::size_t(i)]) - c.min[std::size_t(i)]);
        if (widths.back() > widths[std::size_t(widest)])
            widest = i;
    }
    std::vector<double> sortedWidths = widths;
    std::sort(sortedWidths.begin(), sortedWidths.end());
    const double median = sortedWidths.empty() ? 0 : sortedWidths[sortedWidths.size() / 2];
    channelPlot_->setSubtitle(group == 1 ? QStringLiteral("%1 channels").arg(n)
                                         : QStringLiteral("%1 channels, %2 per point").arg(n).arg(group));
    channelPlot_->setToolTip(QStringLiteral("Output channels along axis %1 of the weight %2")
                                 .arg(l->summary.channelAxis)
                                 .arg(formatShape(l->summary.weightShape)));
    channelPlot_->setFileStem(shortLayerName(l->summary.name, l->summary.op).replace(QLatin1Char('/'), QLatin1Char('_')) +
                              QStringLiteral("-channels"));
    setRows(channelTable_, {
                               {QStringLiteral("channels"), QString::number(n)},
                               {QStringLiteral("widest channel"), n ? QString::number(widest) : dash()},
                               {QStringLiteral("widest range"), n ? formatNumber(widths[std::size_t(widest)]) : dash()},
                               {QStringLiteral("median range"), formatNumber(median)},
                               {QStringLiteral("range ratio"),
                                formatNumber(view ? view->stats.channelRangeRatio : l->summary.stats.channelRangeRatio, 3)},
                               {QStringLiteral("per-tensor |max|"), formatNumber(range)},
                           });
}

void InspectorPanel::drawActivations()
{
    QCustomPlot* plot = activationPlot_->plot();
    auto* calibrate = qobject_cast<QPushButton*>(activationPlot_->property("calibrateButton").value<QObject*>());
    plot->clearItems();
    const ActivationProfile* p = currentActivation();
    if (!p) {
        if (plot->graphCount() > 0)
            plot->graph(0)->data()->clear();
        const bool none = !doc_->activations();
        activationPlot_->setMessage(none ? QStringLiteral("No activation statistics yet.\nA calibration pass runs the model "
                                                          "over the data and records every layer's inputs and outputs.")
                                         : QStringLiteral("No %1 statistics for this layer.").arg(role_->currentText().toLower()));
        activationPlot_->setSubtitle(QString());
        calibTable_->setRowCount(0);
        calibTable_->horizontalHeader()->hide(); // an empty table needs no column titles
        if (calibrate) {
            calibrate->setVisible(none);
            calibrate->adjustSize();
            calibrate->move((plot->width() - calibrate->width()) / 2, plot->height() / 2 + 34);
        }
        emit plotsRedrawn();
        return;
    }
    if (calibrate)
        calibrate->hide();
    activationPlot_->setMessage(QString());
    const bool log = activationLog_->isChecked();
    plotHistogram(plot, p->calibration.histogram, log, activationColor);
    plot->xAxis->setLabel(role_->currentText().toLower() + QStringLiteral(" activation value"));

    // Zoom to the occupied bins and every clipping range.
    const Histogram& h = p->calibration.histogram;
    int first = 0, last = h.bins() - 1;
    while (first < last && h.counts[std::size_t(first)] == 0)
        ++first;
    while (last > first && h.counts[std::size_t(last)] == 0)
        --last;
    double lo = h.lo + first * h.binWidth(), hi = h.lo + (last + 1) * h.binWidth();
    for (const auto& [name, r] : p->clipRanges) {
        lo = std::min<double>(lo, r.lo);
        hi = std::max<double>(hi, r.hi);
    }
    const double pad = (hi - lo) * 0.04 + 1e-12;
    plot->xAxis->setRange(lo - pad, hi + pad);

    calibTable_->clearSpans();
    calibTable_->setRowCount(0);
    calibTable_->horizontalHeader()->show();
    calibTable_->setColumnCount(3);
    int i = 0;
    const uint64_t total = h.total();
    for (const auto& [name, r] : p->clipRanges) {
        const QColor color = theme::seriesColor(i);
        for (double v : {double(r.lo), double(r.hi)}) {
            auto* line = new QCPItemStraightLine(plot);
            line->setPen(QPen(color, 1.4, Qt::DashLine));
            line->point1->setCoords(v, 0);
            line->point2->setCoords(v, 1);
            line->setClipToAxisRect(true);
        }
        // Share of the recorded values this range clips (from the cached histogram).
        uint64_t outside = h.below + h.above;
        for (int b = 0; b < h.bins(); ++b) {
            const double a = h.lo + b * h.binWidth(), z = a + h.binWidth();
            if (z <= r.lo || a >= r.hi)
                outside += h.counts[std::size_t(b)];
        }
        const int row = calibTable_->rowCount();
        calibTable_->insertRow(row);
        auto* nameItem = new QTableWidgetItem(QString::fromStdString(name));
        QPixmap swatch(10, 10);
        swatch.fill(color);
        nameItem->setIcon(QIcon(swatch));
        nameItem->setToolTip(QStringLiteral("%1: [%2, %3], clips %4 of the recorded values")
                                 .arg(QString::fromStdString(name), formatNumber(r.lo), formatNumber(r.hi),
                                      total ? formatPercent(double(outside) / double(total), 3) : dash()));
        calibTable_->setItem(row, 0, nameItem);
        auto* loItem = new QTableWidgetItem(formatNumber(r.lo, 3));
        auto* hiItem = new QTableWidgetItem(formatNumber(r.hi, 3));
        loItem->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        hiItem->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        calibTable_->setItem(row, 1, loItem);
        calibTable_->setItem(row, 2, hiItem);
        ++i;
    }
    const TensorStats& s = p->stats;
    for (const auto& [k, v] : std::vector<std::pair<QString, QString>>{
             {QStringLiteral("min / max"), formatNumber(s.min, 3) + QStringLiteral(" / ") + formatNumber(s.max, 3)},
             {QStringLiteral("mean \u00B1 std"), formatNumber(s.mean, 3) + QStringLiteral(" \u00B1 ") + formatNumber(s.std, 3)},
             {QStringLiteral("kurtosis"), formatNumber(s.kurtosis, 3)},
             {QStringLiteral("outliers >6\u03C3"), s.outlierFraction == 0 ? QStringLiteral("0") : formatPercent(s.outlierFraction, 3)}}) {
        const int row = calibTable_->rowCount();
        calibTable_->insertRow(row);
        auto* key = new QTableWidgetItem(k);
        key->setForeground(theme::mutedText);
        calibTable_->setItem(row, 0, key);
        auto* val = new QTableWidgetItem(v);
        val->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
        calibTable_->setItem(row, 1, val);
        calibTable_->setSpan(row, 1, 1, 2);
    }
    calibTable_->resizeColumnToContents(0);
    calibTable_->resizeColumnToContents(1);
    const auto& a = doc_->activations();
    activationPlot_->setSubtitle(QStringLiteral("%1 values").arg(formatCompact(double(s.count))));
    activationPlot_->setToolTip(QStringLiteral("%1 of %2: tensor %3, over %4")
                                    .arg(role_->currentText(), QString::fromStdString(p->layer), QString::fromStdString(p->value),
                                         a->dataLabel));
    activationPlot_->setFileStem(shortLayerName(doc_->layer(layer_)->summary.name, doc_->layer(layer_)->summary.op)
                                     .replace(QLatin1Char('/'), QLatin1Char('_')) +
                                 QStringLiteral("-activations-") + role_->currentData().toString());
    emit plotsRedrawn();
}

} // namespace qs::ui
