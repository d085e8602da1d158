#include "ui/compare/compare_panel.h"

#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/graph/graph_view.h"
#include "ui/layers/layer_table_model.h"
#include "ui/widgets/format.h"
#include "ui/widgets/plot_view.h"

#include "record/quantize_run.h"
#include "record/sensitivity_record.h"
#include "store/store.h"
#include "util/error.h"
#include "util/hash.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QRadioButton>
#include <QScrollBar>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QStandardItemModel>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>

#include <cmath>
#include <map>
#include <numeric>
#include <set>

namespace qs::ui {
namespace {

constexpr int SortRole = Qt::UserRole;

QString runLabel(const RunRecord& r)
{
    return QStringLiteral("#%1 %2").arg(r.id).arg(QString::fromStdString(r.modelName));
}

// +1: higher is better, -1: lower is better, 0: neither.
int betterDirection(const std::string& metric)
{
    static const std::set<std::string> up = {"top1", "sqnr_db", "cosine", "top1_agreement", "fp32_top1", "compression"};
    static const std::set<std::string> down = {"kl", "size_bits", "latency_ms"};
    return up.count(metric) ? 1 : down.count(metric) ? -1 : 0;
}

QString formatDelta(const std::string& name, double d)
{
    const QString sign = d > 0 ? QStringLiteral("+") : d < 0 ? QStringLiteral("\u2212") : QString();
    if (name == "top1" || name == "top1_agreement" || name == "fp32_top1")
        return sign + QStringLiteral("%1 pt").arg(std::abs(d) * 100, 0, 'f', 2);
    return sign + formatMetricValue(name, std::abs(d));
}

QStandardItem* textItem(const QString& text, const QVariant& sort = {})
{
    auto* item = new QStandardItem(text);
    item->setEditable(false);
    item->setData(sort.isValid() ? sort : QVariant(text), SortRole);
    return item;
}

QStandardItem* numberItem(std::optional<double> v, const std::function<QString(double)>& fmt)
{
    auto* item = textItem(v ? fmt(*v) : dash(), v ? QVariant(*v) : QVariant(-1e300));
    item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return item;
}

QStandardItem* deltaItem(std::optional<double> d, int better, const std::function<QString(double)>& fmt)
{
    QStandardItem* item = numberItem(d, fmt);
    if (d && better != 0 && std::abs(*d) > 1e-12) {
        const bool good = (*d > 0) == (better > 0);
        item->setForeground(good ? QColor(0x2e, 0x7d, 0x32) : QColor(0xc6, 0x28, 0x28));
    }
    return item;
}

QString jsonText(const nlohmann::json& j)
{
    if (j.is_null())
        return QStringLiteral("(absent)");
    if (j.is_string())
        return QString::fromStdString(j.get<std::string>());
    return QString::fromStdString(j.dump());
}

// "/layers/~1fc~1Gemm/weight/bits" -> "layers › /fc/Gemm › weight › bits" (RFC 6901 unescaped).
QString readablePointer(const std::string& pointer)
{
    QStringList parts = QString::fromStdString(pointer).split(QLatin1Char('/'), Qt::SkipEmptyParts);
    for (QString& p : parts)
        p.replace(QStringLiteral("~1"), QStringLiteral("/")).replace(QStringLiteral("~0"), QStringLiteral("~"));
    return parts.join(QStringLiteral(" › "));
}

QTableView* tableFor(QStandardItemModel* model, QWidget* parent, const QString& name)
{
    auto* proxy = new QSortFilterProxyModel(parent);
    proxy->setSourceModel(model);
    proxy->setSortRole(SortRole);
    auto* view = new QTableView(parent);
    view->setObjectName(name);
    view->setModel(proxy);
    view->setSortingEnabled(true);
    view->sortByColumn(-1, Qt::AscendingOrder);
    view->verticalHeader()->hide();
    view->verticalHeader()->setDefaultSectionSize(view->fontMetrics().height() + 8);
    view->setAlternatingRowColors(true);
    view->setSelectionBehavior(QAbstractItemView::SelectRows);
    view->horizontalHeader()->setHighlightSections(false);
    view->horizontalHeader()->setStretchLastSection(true);
    view->setWordWrap(false);
    return view;
}

void fitColumns(QTableView* view)
{
    view->resizeColumnsToContents();
    for (int c = 0; c < view->model()->columnCount(); ++c)
        view->setColumnWidth(c, std::min(view->columnWidth(c) + 12, 420));
}

std::optional<double> sizeKiB(const RunRecord& r)
{
    return r.metrics.sizeBits ? std::optional(*r.metrics.sizeBits / 8192.0) : std::nullopt;
}

// Top-1 in % where labels exist, else output SQNR in dB: what "accuracy" can mean here.
std::optional<double> accuracyOf(const RunRecord& r, bool top1)
{
    if (top1)
        return r.metrics.top1 ? std::optional(*r.metrics.top1 * 100) : std::nullopt;
    return r.metrics.sqnrDb;
}

const QColor seriesColors[] = {QColor(0x1f, 0x6f, 0xd1), QColor(0xe8, 0x6a, 0x10), QColor(0x2e, 0x9d, 0x5a),
    QColor(0x8e, 0x44, 0xad), QColor(0xc0, 0x39, 0x2b), QColor(0x16, 0xa0, 0x85)};

// Mean and standard deviation from bin centres.
std::pair<double, double> moments(const StoredHistogram& h)
{
    double n = 0, s = 0, s2 = 0;
    for (std::size_t i = 0; i < h.counts.size(); ++i) {
        const double x = 0.5 * (double(h.edges[i]) + double(h.edges[i + 1])), c = double(h.counts[i]);
        n += c;
        s += c * x;
        s2 += c * x * x;
    }
    if (n <= 0)
        return {0, 0};
    const double mean = s / n;
    return {mean, std::sqrt(std::max(0.0, s2 / n - mean * mean))};
}

// The runs' FP32 histograms have their own bins (each spans that run's quantized values
// too); the same weights give the same moments up to the bin width.
bool sameDistribution(const StoredHistogram& a, const StoredHistogram& b)
{
    const auto [ma, sa] = moments(a);
    const auto [mb, sb] = moments(b);
    const double tol = 0.02 * std::max(sa, 1e-12);
    return std::abs(ma - mb) <= tol && std::abs(sa - sb) <= tol;
}

} // namespace

std::shared_ptr<ComparisonData> loadComparison(const QString& storePath, const std::vector<int64_t>& runIds,
    const LayoutStyle& style, Progress& progress, const CancelToken& cancel)
{
    if (runIds.size() < 2)
        fail("a comparison needs at least two runs, got ", runIds.size());
    auto out = std::make_shared<ComparisonData>();
    StoreOptions options;
    options.mode = OpenMode::ReadOnly;
    const Store store = Store::open(storePath.toStdString(), options);
    progress.report(0, "reading runs");
    for (int64_t id : runIds)
        out->runs.push_back(store.run(id));
    if (runIds.size() != 2)
        return out;

    out->pair = compareRuns(store, runIds[0], runIds[1]);
    std::map<std::string, std::map<std::string, double>> latestSensitivity; // by model hash
    for (const RunRecord& r : out->runs) {
        out->layers[r.id] = store.layerResults(r.id);
        auto& sens = out->sensitivity[r.id];
        for (const LayerResult& l : out->layers[r.id])
            if (l.sensitivity)
                sens[l.layer] = *l.sensitivity;
        if (!sens.empty()) {
            out->sensitivitySource[r.id] = r.id;
            continue;
        }
        const auto found = latestSensitivitySweep(store, r.modelHash);
        if (!found)
            continue;
        out->sensitivitySource[r.id] = found->id;
        for (const LayerResult& l : store.layerResults(found->id))
            if (l.sensitivity)
                sens[l.layer] = *l.sensitivity;
    }

    std::map<int64_t, int64_t> loadedFor; // model id -> run id whose entry holds it
    for (std::size_t i = 0; i < out->runs.size(); ++i) {
        cancel.check();
        const RunRecord& r = out->runs[i];
        if (auto it = loadedFor.find(r.modelId); it != loadedFor.end()) {
            if (out->models.count(it->second)) {
                out->models[r.id] = out->models[it->second];
                out->layouts[r.id] = out->layouts[it->second];
            } else {
                out->modelProblems[r.id] = out->modelProblems[it->second];
            }
            continue;
        }
        loadedFor[r.modelId] = r.id;
        const auto model = store.model(r.modelId);
        const QString path = model ? QString::fromStdString(model->path) : QString();
        if (path.isEmpty() || !QFileInfo::exists(path)) {
            out->modelProblems[r.id] = QStringLiteral("The model file %1 is gone.").arg(path);
            continue;
        }
        if (sha256FileCached(path.toStdString()) != model->hash) {
            out->modelProblems[r.id] = QStringLiteral("%1 has changed since run #%2 was recorded.").arg(path).arg(r.id);
            continue;
        }
        Progress load = progress.sub(0.1 + 0.45 * double(i), 0.5 + 0.45 * double(i));
        auto data = loadModelData(path, load, cancel);
        out->layouts[r.id] = std::make_shared<const GraphLayout>(layoutGraph(*data->graph, style));
        out->models[r.id] = std::move(data);
    }
    return out;
}

ComparePanel::ComparePanel(std::shared_ptr<const ComparisonData> data, QWidget* parent)
    : QWidget(parent), data_(std::move(data))
{
    setObjectName(QStringLiteral("compareView"));
    tabs_ = new QTabWidget(this);
    tabs_->setDocumentMode(true);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    auto* header = new QLabel(this);
    header->setObjectName(QStringLiteral("compareHeader"));
    header->setContentsMargins(8, 6, 8, 2);
    QStringList parts;
    for (const RunRecord& r : data_->runs)
        parts << QStringLiteral("<b>#%1</b> %2 (%3, %4)")
                     .arg(r.id)
                     .arg(QString::fromStdString(r.modelName).toHtmlEscaped(),
                         QString::fromStdString(runKindName(r.kind)), QString::fromStdString(runStateName(r.state)));
    header->setText(parts.join(data_->pair ? QStringLiteral(" &nbsp;\u2192&nbsp; ") : QStringLiteral(" &nbsp;\u00B7&nbsp; ")));
    layout->addWidget(header);
    layout->addWidget(tabs_, 1);
    if (data_->pair) {
        tabs_->addTab(buildSideBySide(), QStringLiteral("Side by Side"));
        tabs_->addTab(buildSummary(), QStringLiteral("Summary"));
        tabs_->addTab(buildLayers(), QStringLiteral("Layers"));
        tabs_->addTab(buildHistograms(), QStringLiteral("Histograms"));
    } else {
        tabs_->addTab(buildMany(), QStringLiteral("Metrics"));
    }
}

QString ComparePanel::title() const
{
    QStringList ids;
    for (const RunRecord& r : data_->runs)
        ids << QStringLiteral("#%1").arg(r.id);
    return ids.join(data_->pair ? QStringLiteral(" vs ") : QStringLiteral(", "));
}

QColor ComparePanel::changedColor()
{
    return QColor(0xff, 0xf1, 0xc2);
}

QWidget* ComparePanel::buildSummary()
{
    const RunComparison& c = *data_->pair;
    auto* w = new QWidget(this);
    auto* v = new QVBoxLayout(w);

    config_ = new QStandardItemModel(0, 3, w);
    config_->setHorizontalHeaderLabels({QStringLiteral("Setting"), runLabel(c.a), runLabel(c.b)});
    for (const ConfigDifference& d : c.config) {
        QList<QStandardItem*> row = {textItem(readablePointer(d.key), QString::fromStdString(d.key)), textItem(jsonText(d.a)),
            textItem(jsonText(d.b))};
        row[0]->setToolTip(QString::fromStdString(d.key));
        for (QStandardItem* item : row)
            item->setBackground(changedColor());
        config_->appendRow(row);
    }
    auto* configLabel = new QLabel(c.config.empty() ? QStringLiteral("<b>Configuration</b>: identical")
                                                    : QStringLiteral("<b>Configuration</b>: %1 differ (highlighted)")
                                                          .arg(countOf(int64_t(c.config.size()), QStringLiteral("setting"),
                                                              QStringLiteral("settings"))),
        w);
    v->addWidget(configLabel);
    QTableView* configView = tableFor(config_, w, QStringLiteral("compareConfig"));
    v->addWidget(configView, 1);

    metrics_ = new QStandardItemModel(0, 4, w);
    metrics_->setHorizontalHeaderLabels({QStringLiteral("Metric"), runLabel(c.a), runLabel(c.b), QStringLiteral("\u0394 (b \u2212 a)")});
    for (const MetricComparison& m : c.metrics) {
        const std::string name = m.name;
        auto fmt = [name](double x) { return formatMetricValue(name, x); };
        // A delta between values that measure different things is shown in grey, never
        // coloured better or worse, with the reason beside it.
        QStandardItem* delta = deltaItem(m.delta(), m.incomparable.empty() ? betterDirection(m.name) : 0,
            [name](double d) { return formatDelta(name, d); });
        QStandardItem* title = textItem(runMetricTitle(m.name));
        title->setToolTip(QString::fromStdString(m.name));
        if (!m.incomparable.empty()) {
            const QString why = QStringLiteral("not comparable: %1").arg(QString::fromStdString(m.incomparable));
            delta->setText(delta->text() + QStringLiteral(" (not comparable)"));
            delta->setForeground(QColor(0x6b, 0x72, 0x80));
            for (QStandardItem* item : {title, delta})
                item->setToolTip(why);
        }
        metrics_->appendRow({title, numberItem(m.a, fmt), numberItem(m.b, fmt), delta});
    }
    v->addWidget(new QLabel(QStringLiteral("<b>Metrics</b> (green: better, red: worse, grey: measured "
                                           "differently)"), w));
    QTableView* metricsView = tableFor(metrics_, w, QStringLiteral("compareMetrics"));
    v->addWidget(metricsView, 1);
    fitColumns(configView);
    metricsView->horizontalHeader()->setStretchLastSection(false);
    fitColumns(metricsView);
    return w;
}

QWidget* ComparePanel::buildLayers()
{
    const RunComparison& c = *data_->pair;
    const auto& sensA = data_->sensitivity.at(c.a.id);
    const auto& sensB = data_->sensitivity.at(c.b.id);
    auto sensOf = [](const std::map<std::string, double>& m, const std::string& layer) {
        auto it = m.find(layer);
        return it == m.end() ? std::optional<double>() : std::optional(it->second);
    };
    auto bits = [](std::optional<int> b) { return b ? std::optional<double>(*b) : std::nullopt; };
    auto fmtBits = [](double b) { return QString::number(int(b)); };
    auto fmtDb = [](double x) { return formatNumber(x, 4); };
    auto fmtDeltaDb = [](double d) { return (d > 0 ? QStringLiteral("+") : QString()) + formatNumber(d, 3); };
    auto diff = [](std::optional<double> a, std::optional<double> b) {
        return a && b ? std::optional(*b - *a) : std::nullopt;
    };

    layers_ = new QStandardItemModel(0, 12, this);
    layers_->setHorizontalHeaderLabels({QStringLiteral("Layer"), QStringLiteral("Op"), QStringLiteral("W bits a"),
        QStringLiteral("W bits b"), QStringLiteral("A bits a"), QStringLiteral("A bits b"), QStringLiteral("SQNR a (dB)"),
        QStringLiteral("SQNR b (dB)"), QStringLiteral("\u0394 SQNR"), QStringLiteral("Sensitivity a"),
        QStringLiteral("Sensitivity b"), QStringLiteral("\u0394 sensitivity")});
    for (const LayerComparison& l : c.layers) {
        const auto sa = sensOf(sensA, l.layer), sb = sensOf(sensB, l.layer);
        QStandardItem* name = textItem(shortLayerName(l.layer, l.a.op)); // as the table, graph and heatmap name it
        name->setToolTip(QString::fromStdString(l.layer));
        QList<QStandardItem*> row = {name, textItem(QString::fromStdString(l.a.op)),
            numberItem(bits(l.a.weightBits), fmtBits), numberItem(bits(l.b.weightBits), fmtBits),
            numberItem(bits(l.a.actBits), fmtBits), numberItem(bits(l.b.actBits), fmtBits),
            numberItem(l.a.sqnrDb, fmtDb), numberItem(l.b.sqnrDb, fmtDb),
            deltaItem(diff(l.a.sqnrDb, l.b.sqnrDb), 1, fmtDeltaDb), numberItem(sa, fmtDb), numberItem(sb, fmtDb),
            numberItem(diff(sa, sb), fmtDeltaDb)};
        for (int col : l.a.weightBits != l.b.weightBits ? std::vector<int>{2, 3} : std::vector<int>{})
            row[col]->setBackground(changedColor());
        for (int col : l.a.actBits != l.b.actBits ? std::vector<int>{4, 5} : std::vector<int>{})
            row[col]->setBackground(changedColor());
        layers_->appendRow(row);
    }
    for (const auto& [names, side] : {std::pair{&c.onlyInA, QStringLiteral("only in a")}, {&c.onlyInB, QStringLiteral("only in b")}})
        for (const std::string& name : *names) {
            QList<QStandardItem*> row = {textItem(shortLayerName(name, std::string())), textItem(side)};
            row.front()->setToolTip(QString::fromStdString(name));
            for (int col = 2; col < 12; ++col)
                row << textItem(QString());
            layers_->appendRow(row);
        }

    auto* w = new QWidget(this);
    auto* v = new QVBoxLayout(w);
    QString note = QStringLiteral("Bits that differ are highlighted; \u0394 is b \u2212 a.");
    for (const RunRecord* r : {&c.a, &c.b}) {
        auto it = data_->sensitivitySource.find(r->id);
        if (it == data_->sensitivitySource.end())
            note += QStringLiteral(" No sensitivity is stored for the model of #%1.").arg(r->id);
        else if (it->second != r->id)
            note += QStringLiteral(" Sensitivity of #%1: from sensitivity run #%2 of its model.").arg(r->id).arg(it->second);
    }
    auto* label = new QLabel(note, w);
    label->setWordWrap(true);
    v->addWidget(label);
    QTableView* view = tableFor(layers_, w, QStringLiteral("compareLayers"));
    v->addWidget(view, 1);
    fitColumns(view);
    return w;
}

QWidget* ComparePanel::buildHistograms()
{
    auto* w = new QWidget(this);
    auto* v = new QVBoxLayout(w);
    auto* bar = new QHBoxLayout;
    histLayer_ = new QComboBox(w);
    histLayer_->setObjectName(QStringLiteral("compareHistLayer"));
    for (const LayerComparison& l : data_->pair->layers)
        histLayer_->addItem(shortLayerName(l.layer, l.a.op), QString::fromStdString(l.layer));
    auto* weights = new QRadioButton(QStringLiteral("Weights"), w);
    showActs_ = new QRadioButton(QStringLiteral("Input activations"), w);
    weights->setChecked(true);
    bar->addWidget(new QLabel(QStringLiteral("Layer"), w));
    bar->addWidget(histLayer_);
    bar->addSpacing(12);
    bar->addWidget(weights);
    bar->addWidget(showActs_);
    bar->addStretch(1);
    v->addLayout(bar);
    histPlot_ = new QCustomPlot(w);
    histPlot_->setObjectName(QStringLiteral("compareHistogram"));
    histPlot_->setMinimumHeight(260);
    PlotView::styleAxes(histPlot_);
    histPlot_->legend->setVisible(true);
    histPlot_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
    histPlot_->yAxis->setLabel(QStringLiteral("density"));
    v->addWidget(histPlot_, 1);
    connect(histLayer_, &QComboBox::currentIndexChanged, this, &ComparePanel::showHistogram);
    connect(showActs_, &QRadioButton::toggled, this, &ComparePanel::showHistogram);
    showHistogram();
    return w;
}

void ComparePanel::showHistogram()
{
    if (!histPlot_)
        return;
    histPlot_->clearGraphs();
    histPlot_->clearItems();
    const int index = histLayer_->currentIndex();
    const RunComparison& c = *data_->pair;
    if (index < 0 || index >= int(c.layers.size())) {
        histPlot_->replot();
        return;
    }
    const LayerComparison& l = c.layers[std::size_t(index)];
    const bool acts = showActs_->isChecked();
    histPlot_->xAxis->setLabel(acts ? QStringLiteral("input value") : QStringLiteral("weight value"));
    auto add = [this](const StoredHistogram& h, const QString& name, const QPen& pen, const QBrush& brush) {
        const double total = double(std::accumulate(h.counts.begin(), h.counts.end(), uint64_t(0)));
        if (h.counts.empty() || total <= 0)
            return;
        QVector<double> x, y;
        for (std::size_t i = 0; i < h.counts.size(); ++i) {
            const double width = std::max(double(h.edges[i + 1] - h.edges[i]), 1e-30);
            x << double(h.edges[i]);
            y << double(h.counts[i]) / total / width;
        }
        x << double(h.edges.back());
        y << 0;
        QCPGraph* g = histPlot_->addGraph();
        g->setName(name);
        g->setLineStyle(QCPGraph::lsStepLeft);
        g->setPen(pen);
        g->setBrush(brush);
        g->setData(x, y, true);
    };
    const std::string key = acts ? "quantized_act_hist" : "quantized_weight_hist";
    const std::optional<StoredHistogram>& fpA = acts ? l.a.actHist : l.a.weightHist;
    const std::optional<StoredHistogram>& fpB = acts ? l.b.actHist : l.b.weightHist;
    if (fpA)
        add(*fpA, QStringLiteral("FP32 (#%1)").arg(c.a.id), QPen(QColor(0x75, 0x75, 0x75), 1.2), QBrush(QColor(0, 0, 0, 28)));
    if (fpB && (!fpA || !sameDistribution(*fpA, *fpB)))
        add(*fpB, QStringLiteral("FP32 (#%1)").arg(c.b.id), QPen(QColor(0x75, 0x75, 0x75), 1.2, Qt::DashLine), Qt::NoBrush);
    int drawn = 0;
    for (const auto& [run, layer, color] : {std::tuple{&c.a, &l.a, seriesColors[0]}, {&c.b, &l.b, seriesColors[1]}})
        if (auto q = histogramFromJson(layer->extra.value(key, nlohmann::json()))) {
            add(*q, QStringLiteral("#%1 quantized (%2 bits)").arg(run->id).arg(acts ? layer->actBits.value_or(32) : layer->weightBits.value_or(32)),
                QPen(color, 1.6), Qt::NoBrush);
            ++drawn;
        }
    if (!fpA && !fpB && drawn == 0) {
        auto* text = new QCPItemText(histPlot_);
        text->position->setType(QCPItemPosition::ptAxisRectRatio);
        text->position->setCoords(0.5, 0.5);
        text->setText(QStringLiteral("No histograms stored for this layer (sensitivity runs and older runs have none)"));
    }
    histPlot_->rescaleAxes();
    // One towering bin (the background pixels of an image input, a ReLU's zeros) would flatten
    // everything else: the axis stops at 1.3x the second-highest bin of any series.
    double top = 0, second = 0;
    for (int i = 0; i < histPlot_->graphCount(); ++i) {
        double a = 0, b = 0;
        for (auto it = histPlot_->graph(i)->data()->constBegin(); it != histPlot_->graph(i)->data()->constEnd(); ++it)
            if (it->value > a) {
                b = a;
                a = it->value;
            } else if (it->value > b) {
                b = it->value;
            }
        top = std::max(top, a);
        second = std::max(second, b);
    }
    histPlot_->yAxis->setRange(0, second > 0 ? std::min(top, 1.3 * second) * 1.05 : std::max(top, 1.0) * 1.05);
    histPlot_->replot();
}

GraphView* ComparePanel::buildGraph(const RunRecord& run, ModelDocument*& doc, QWidget* parent)
{
    doc = new ModelDocument(this);
    auto* table = new LayerTableModel(doc, doc);
    auto* proxy = new QSortFilterProxyModel(doc);
    proxy->setSourceModel(table);
    auto* selectionModel = new QItemSelectionModel(proxy, doc);
    auto* selection = new LayerSelection(doc, doc);
    selection->attach(proxy, selectionModel);
    auto* view = new GraphView(doc, selection, parent);
    view->setObjectName(QStringLiteral("compareGraph%1").arg(run.id));
    view->setColorMetric(LayerMetric::Bits);
    auto model = data_->models.find(run.id);
    if (model == data_->models.end())
        return view;
    doc->setModel(model->second, data_->layouts.at(run.id));
    auto stored = std::make_shared<StoredResults>();
    stored->bitsRun = run.id;
    stored->bitsRunKind = QString::fromStdString(runKindName(run.kind));
    for (const LayerResult& l : data_->layers.at(run.id))
        if (l.weightBits)
            stored->bits[l.layer] = {*l.weightBits, l.actBits.value_or(32)};
    doc->setStored(stored);
    return view;
}

QString ComparePanel::differenceInWords(const ConfigDifference& d, const RunComparison& c)
{
    auto layerName = [&c](const QString& name) {
        const std::string n = name.toStdString();
        for (const LayerComparison& l : c.layers)
            if (l.layer == n)
                return shortLayerName(n, l.a.op);
        return shortLayerName(n, {});
    };
    QStringList parts = QString::fromStdString(d.key).split(QLatin1Char('/'), Qt::SkipEmptyParts);
    for (QString& p : parts)
        p.replace(QStringLiteral("~1"), QStringLiteral("/")).replace(QStringLiteral("~0"), QStringLiteral("~"));
    auto words = [](QStringList fields) {
        for (QString& f : fields)
            f.replace(QLatin1Char('_'), QLatin1Char(' '));
        return fields.join(QLatin1Char(' '));
    };
    auto value = [](const nlohmann::json& j) {
        if (j.is_null())
            return QStringLiteral("not set");
        if (j.is_boolean())
            return j.get<bool>() ? QStringLiteral("yes") : QStringLiteral("no");
        return jsonText(j);
    };
    QString subject;
    if (parts.size() >= 3 && parts[0] == QStringLiteral("layers"))
        subject = QStringLiteral("%1 of %2").arg(words(parts.mid(2)), layerName(parts[1]));
    else if (parts.size() >= 2 && parts[0] == QStringLiteral("default"))
        subject = QStringLiteral("%1 (every layer's default)").arg(words(parts.mid(1)));
    else if (parts.size() >= 2 && parts[0] == QStringLiteral("ranges"))
        subject = QStringLiteral("Kept range %1 of %2")
                      .arg(parts.value(2) == QStringLiteral("0") ? QStringLiteral("low") : QStringLiteral("high"),
                          layerName(parts[1]));
    else if (!parts.isEmpty() && parts[0] == QStringLiteral("algorithms"))
        subject =
            QStringLiteral("Algorithm %1").arg(words(parts.mid(2)).isEmpty() ? parts.value(1) : words(parts.mid(2)));
    else if (!parts.isEmpty() &&
        (parts[0] == QStringLiteral("calibration") || parts[0] == QStringLiteral("evaluation")))
        subject = parts.size() == 2 && parts[1] == QStringLiteral("data")
            ? QStringLiteral("%1 data").arg(parts[0])
            : QStringLiteral("%1 %2").arg(parts[0], words(parts.mid(1)));
    else if (parts == QStringList {QStringLiteral("int8")})
        subject = QStringLiteral("INT8 kernels");
    else
        subject = words(parts);
    if (!subject.isEmpty())
        subject[0] = subject[0].toUpper();
    return QStringLiteral("%1: %2 \u2192 %3").arg(subject, value(d.a), value(d.b));
}

QString ComparePanel::nodeBadgeText(const LayerResult& own, const LayerResult* other, bool showDelta)
{
    auto bits = [](std::optional<int> b) { return b ? QString::number(*b) : QStringLiteral("32"); };
    QString text = QStringLiteral("W%1/A%2").arg(bits(own.weightBits), bits(own.actBits));
    if (own.sqnrDb) {
        text += QStringLiteral(" \u00B7 %1 dB").arg(*own.sqnrDb, 0, 'f', 1);
        if (showDelta && other && other->sqnrDb) {
            const double d = *own.sqnrDb - *other->sqnrDb;
            text += QStringLiteral(" (%1%2)")
                        .arg(d < 0 ? QStringLiteral("\u2212") : QStringLiteral("+"))
                        .arg(std::abs(d), 0, 'f', 1);
        }
    }
    return text;
}

QWidget* ComparePanel::buildSideBySide()
{
    const RunComparison& c = *data_->pair;
    auto* w = new QWidget(this);
    auto* v = new QVBoxLayout(w);
    v->setContentsMargins(6, 4, 6, 4);
    // What differs, in words (defaults resolved: a layer one run sets and the other leaves
    // to its default is compared with that default).
    QStringList lines;
    for (const ConfigDifference& d : c.config)
        if (d.key.rfind("/calibration", 0) != 0 && d.key.rfind("/evaluation", 0) != 0)
            lines << differenceInWords(d, c).toHtmlEscaped();
    for (const ConfigDifference& d : c.config)
        if (d.key.rfind("/calibration", 0) == 0 || d.key.rfind("/evaluation", 0) == 0)
            lines << differenceInWords(d, c).toHtmlEscaped();
    const int shown = std::min<int>(int(lines.size()), 6);
    QString text = lines.isEmpty() ? QStringLiteral("<b>Same configuration.</b>")
                                   : QStringLiteral("<b>What changed from #%1 to #%2:</b> ").arg(c.a.id).arg(c.b.id) +
            lines.mid(0, shown).join(QStringLiteral("; "));
    if (lines.size() > shown)
        text += QStringLiteral("; and %1 more (Summary)").arg(lines.size() - shown);
    differences_ = new QLabel(text, w);
    differences_->setObjectName(QStringLiteral("compareDifferences"));
    differences_->setWordWrap(true);
    differences_->setToolTip(lines.join(QStringLiteral("<br/>")));
    v->addWidget(differences_);

    auto* split = new QSplitter(Qt::Horizontal, w);
    split->setObjectName(QStringLiteral("compareSideBySide"));
    for (int side = 0; side < 2; ++side) {
        const RunRecord& r = side == 0 ? c.a : c.b;
        auto* pane = new QWidget(split);
        auto* pv = new QVBoxLayout(pane);
        pv->setContentsMargins(2, 2, 2, 2);
        auto* label = new QLabel(QStringLiteral("<b>%1</b> \u00B7 coloured by weight bits \u00B7 W/A bits and SQNR on "
                                                "each layer%2")
                                     .arg(runLabel(r).toHtmlEscaped(),
                                         side == 1 ? QStringLiteral(" (\u0394 vs #%1)").arg(c.a.id) : QString()),
            pane);
        pv->addWidget(label);
        GraphView* view = buildGraph(r, side == 0 ? docA_ : docB_, pane);
        (side == 0 ? graphA_ : graphB_) = view;
        if (auto p = data_->modelProblems.find(r.id); p != data_->modelProblems.end()) {
            label->setText(label->text() + QStringLiteral(" \u2014 ") + p->second.toHtmlEscaped());
            view->hide();
        }
        pv->addWidget(view, 1);
        split->addWidget(pane);
    }
    split->setSizes({1, 1});
    v->addWidget(split, 1);

    // Bits and SQNR on each layer's box, run b with its delta against run a.
    std::map<std::string, const LayerComparison*> byName;
    for (const LayerComparison& l : c.layers)
        byName[l.layer] = &l;
    for (int side = 0; side < 2; ++side) {
        ModelDocument* doc = side == 0 ? docA_ : docB_;
        if (!doc->model())
            continue;
        std::map<int, QString> badges;
        const auto& nodes = doc->model()->graph->nodes;
        for (std::size_t n = 0; n < nodes.size(); ++n) {
            auto it = byName.find(nodes[n].name);
            if (it == byName.end())
                continue;
            const LayerResult& own = side == 0 ? it->second->a : it->second->b;
            const LayerResult& other = side == 0 ? it->second->b : it->second->a;
            badges[int(n)] = nodeBadgeText(own, &other, side == 1);
        }
        (side == 0 ? graphA_ : graphB_)->setNodeBadges(std::move(badges));
    }
    // Each side follows the other: zoom, place (the same layout: the same scene point in
    // the middle) and the selected layer (by name).
    for (int side = 0; side < 2; ++side) {
        GraphView* g = side == 0 ? graphA_ : graphB_;
        connect(g, &GraphView::zoomChanged, this, [this, side] { follow(side); });
        connect(g->horizontalScrollBar(), &QScrollBar::valueChanged, this, [this, side] { follow(side); });
        connect(g->verticalScrollBar(), &QScrollBar::valueChanged, this, [this, side] { follow(side); });
        ModelDocument* doc = side == 0 ? docA_ : docB_;
        LayerSelection* from = doc->findChild<LayerSelection*>();
        ModelDocument* otherDoc = side == 0 ? docB_ : docA_;
        LayerSelection* to = otherDoc->findChild<LayerSelection*>();
        if (!from || !to)
            continue;
        connect(from, &LayerSelection::currentChanged, this, [this, doc, otherDoc, to](int node) {
            if (following_ || !doc->model() || !otherDoc->model() || node < 0)
                return;
            const std::string& name = doc->model()->graph->nodes[std::size_t(node)].name;
            const auto& nodes = otherDoc->model()->graph->nodes;
            for (std::size_t n = 0; n < nodes.size(); ++n)
                if (nodes[n].name == name) {
                    following_ = true;
                    to->selectNode(int(n));
                    following_ = false;
                    return;
                }
        });
    }
    return w;
}

void ComparePanel::follow(int from)
{
    if (following_ || !graphA_ || !graphB_)
        return;
    GraphView* src = from == 0 ? graphA_ : graphB_;
    GraphView* dst = from == 0 ? graphB_ : graphA_;
    if (!src->isVisible() || !dst->isVisible())
        return;
    following_ = true;
    if (std::abs(dst->zoom() - src->zoom()) > 1e-9)
        dst->setTransform(src->transform());
    auto a = data_->layouts.find(data_->pair->a.id), b = data_->layouts.find(data_->pair->b.id);
    if (a != data_->layouts.end() && b != data_->layouts.end() && a->second == b->second)
        dst->centerOn(src->visibleSceneRect().center());
    following_ = false;
}

QWidget* ComparePanel::buildMany()
{
    auto* w = new QSplitter(Qt::Vertical, this);
    metrics_ = new QStandardItemModel(0, 9, w);
    metrics_->setHorizontalHeaderLabels({QStringLiteral("Run"), QStringLiteral("Model"), QStringLiteral("Kind"),
        QStringLiteral("Top-1"), QStringLiteral("SQNR (dB)"), QStringLiteral("Agreement"), QStringLiteral("KL"),
        QStringLiteral("Size"), QStringLiteral("Latency (ms)")});
    auto pct = [](double x) { return formatPercent(x, 2); };
    auto n = [](double x) { return formatNumber(x, 4); };
    auto bytes = [](double bits) { return formatBytes(uint64_t(std::llround(bits / 8))); };
    bool anyTop1 = false;
    for (const RunRecord& r : data_->runs) {
        anyTop1 = anyTop1 || r.metrics.top1.has_value();
        metrics_->appendRow({textItem(QStringLiteral("#%1").arg(r.id), QVariant::fromValue<qint64>(r.id)),
            textItem(QString::fromStdString(r.modelName)), textItem(QString::fromStdString(runKindName(r.kind))),
            numberItem(r.metrics.top1, pct), numberItem(r.metrics.sqnrDb, n), numberItem(r.metrics.top1Agreement, pct),
            numberItem(r.metrics.kl, n), numberItem(r.metrics.sizeBits, bytes), numberItem(r.metrics.latencyMs, n)});
    }
    QTableView* view = tableFor(metrics_, w, QStringLiteral("compareManyMetrics"));
    view->horizontalHeader()->setStretchLastSection(false);
    fitColumns(view);
    const int tableHeight = view->horizontalHeader()->sizeHint().height() +
                            std::min(int(data_->runs.size()), 8) * view->verticalHeader()->defaultSectionSize() + 4;
    view->setMinimumHeight(tableHeight);

    scatter_ = new QCustomPlot(w);
    scatter_->setObjectName(QStringLiteral("compareScatter"));
    scatter_->setMinimumHeight(260);
    PlotView::styleAxes(scatter_);
    scatter_->xAxis->setLabel(QStringLiteral("model size (KiB)"));
    scatter_->yAxis->setLabel(anyTop1 ? QStringLiteral("top-1 (%)") : QStringLiteral("output SQNR (dB)"));
    QCPGraph* g = scatter_->addGraph();
    g->setLineStyle(QCPGraph::lsNone);
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, seriesColors[0], seriesColors[0], 9));
    QVector<double> xs, ys;
    for (const RunRecord& r : data_->runs) {
        const auto x = sizeKiB(r), y = accuracyOf(r, anyTop1);
        if (!x || !y)
            continue;
        xs << *x;
        ys << *y;
        auto* label = new QCPItemText(scatter_);
        label->position->setCoords(*x, *y);
        label->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
        label->setPadding(QMargins(6, 0, 0, 4));
        label->setText(QStringLiteral("#%1").arg(r.id));
    }
    g->setData(xs, ys);
    g->setName(QStringLiteral("runs"));
    // The FP32 reference of the first run that has one: what quantization costs.
    for (const RunRecord& r : data_->runs) {
        const auto ref = anyTop1 ? r.metrics.extra.value("fp32_top1", nlohmann::json()) : nlohmann::json();
        if (!ref.is_number())
            continue;
        auto* line = new QCPItemStraightLine(scatter_);
        line->point1->setCoords(0, ref.get<double>() * 100);
        line->point2->setCoords(1, ref.get<double>() * 100);
        line->setPen(QPen(QColor(0x75, 0x75, 0x75), 1, Qt::DashLine));
        auto* text = new QCPItemText(scatter_);
        text->position->setTypeX(QCPItemPosition::ptAxisRectRatio);
        text->position->setTypeY(QCPItemPosition::ptPlotCoords);
        text->position->setCoords(0.01, ref.get<double>() * 100);
        text->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
        text->setColor(QColor(0x75, 0x75, 0x75));
        text->setText(QStringLiteral("FP32 %1").arg(formatPercent(ref.get<double>(), 2)));
        ys << ref.get<double>() * 100; // kept in range below
        break;
    }
    scatter_->rescaleAxes();
    if (!ys.isEmpty()) {
        const auto [lo, hi] = std::minmax_element(ys.begin(), ys.end());
        scatter_->yAxis->setRange(*lo, *hi);
    }
    // Room for the labels and the outermost points.
    for (QCPAxis* axis : {scatter_->xAxis, scatter_->yAxis}) {
        const QCPRange r = axis->range();
        const double pad = std::max(r.size() * 0.12, std::abs(r.center()) * 0.02 + 1e-6);
        axis->setRange(r.lower - pad, r.upper + pad);
    }
    scatter_->replot();
    w->addWidget(view);
    w->addWidget(scatter_);
    w->setStretchFactor(0, 0);
    w->setStretchFactor(1, 1);
    w->setSizes({tableHeight, 10000});
    return w;
}

} // namespace qs::ui
