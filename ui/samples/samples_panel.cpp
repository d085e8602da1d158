#include "ui/samples/samples_panel.h"

#include "ui/document/graph_layout.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"
#include "ui/samples/sample_image.h"
#include "ui/widgets/format.h"
#include "ui/widgets/plot_view.h"
#include "ui/widgets/theme.h"

#include "data/dataset.h"
#include "util/error.h"
#include "util/memory_budget.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QThread>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace qs::ui {
namespace {

constexpr double kInfDb = 60;      // what an error-free layer is drawn as
constexpr int kThumbPixels = 84;   // the longer side of a thumbnail, about
constexpr int kMaxFlippedShown = 240;
const QColor kWrongFill(0xfe, 0xe2, 0xe2);
const QColor kWrongText(0x99, 0x1b, 0x1b);
const QColor kBarColor(0x93, 0xa8, 0xc4);
const QColor kWorstColor(0xdc, 0x26, 0x26);

// A thumbnail scaled so its longer side is near kThumbPixels: whole-pixel upscaling
// for small images (crisp), smooth downscaling for large ones.
QImage thumbnail(const Dataset& data, const ImageLayout& layout, int64_t index)
{
    const int longer = std::max(layout.height, layout.width);
    if (longer <= kThumbPixels)
        return sampleImage(data, index, thumbnailScale(layout, kThumbPixels));
    return sampleImage(data, index, 1).scaled(kThumbPixels, kThumbPixels, Qt::KeepAspectRatio, Qt::SmoothTransformation);
}

std::vector<QImage> thumbnails(const Dataset& data, const std::vector<int64_t>& indices, const CancelToken& cancel)
{
    const auto layout = imageLayout(data);
    std::vector<QImage> out;
    for (int64_t i : indices) {
        cancel.check();
        out.push_back(thumbnail(data, *layout, i));
    }
    return out;
}

} // namespace

SamplesPanel::SamplesPanel(Studio& studio, QWidget* parent)
    : QWidget(parent), studio_(studio), doc_(studio.document()), config_(studio.config()),
      selection_(studio.selection()), jobs_(studio.jobs())
{
    connect(&studio, &Studio::dataPathChanged, this, [this] { updateControls(); });
    setObjectName(QStringLiteral("samplesPanel"));
    mode_ = new QComboBox(this);
    mode_->setObjectName(QStringLiteral("samplesMode"));
    mode_->addItem(QStringLiteral("Most divergent for layer"), int(Mode::Divergent));
    mode_->addItem(QStringLiteral("Flipped by quantization"), int(Mode::Flipped));
    mode_->setToolTip(QStringLiteral("Most divergent: the samples whose output moves most (KL) when only the selected "
                                     "layer is quantized. Flipped: the samples FP32 classifies right and the model "
                                     "quantized at these bits wrong"));
    quantize_ = new QComboBox(this);
    quantize_->setObjectName(QStringLiteral("samplesQuantize"));
    quantize_->addItem(QStringLiteral("Weights"), int(SensitivityMode::Weights));
    quantize_->addItem(QStringLiteral("Activations"), int(SensitivityMode::Activations));
    quantize_->addItem(QStringLiteral("Both"), int(SensitivityMode::Both));
    bits_ = new QSpinBox(this);
    bits_->setObjectName(QStringLiteral("samplesBits"));
    bits_->setRange(2, 8);
    bits_->setValue(4);
    bits_->setSuffix(QStringLiteral(" bits"));
    top_ = new QSpinBox(this);
    top_->setObjectName(QStringLiteral("samplesTop"));
    top_->setRange(1, 500);
    top_->setValue(24);
    top_->setPrefix(QStringLiteral("top "));
    top_->setToolTip(QStringLiteral("How many of the most divergent samples to show"));
    limit_ = new QSpinBox(this);
    limit_->setObjectName(QStringLiteral("samplesLimit"));
    limit_->setRange(8, 1000000);
    limit_->setValue(1000);
    limit_->setSingleStep(100);
    limit_->setSuffix(QStringLiteral(" samples"));
    limit_->setToolTip(QStringLiteral("Samples of the data examined (the first N)"));
    layer_ = new QLabel(this);
    layer_->setObjectName(QStringLiteral("samplesLayer"));
    layer_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    run_ = new QPushButton(QStringLiteral("Find Samples"), this);
    run_->setObjectName(QStringLiteral("samplesRun"));
    cancel_ = new QPushButton(QStringLiteral("Cancel"), this);
    cancel_->setObjectName(QStringLiteral("samplesCancel"));
    progress_ = new QProgressBar(this);
    progress_->setObjectName(QStringLiteral("samplesProgress"));
    progress_->setRange(0, 1000);
    progress_->setTextVisible(false);
    progress_->setMaximumHeight(8);
    progress_->hide();
    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("samplesStatus"));
    status_->setProperty("role", "muted");
    status_->setWordWrap(true);
    connect(run_, &QPushButton::clicked, this, [this] { run(); });
    connect(cancel_, &QPushButton::clicked, this, &SamplesPanel::cancel);
    connect(mode_, &QComboBox::currentIndexChanged, this, [this] { updateControls(); });

    auto muted = [this](const QString& t) {
        auto* l = new QLabel(t, this);
        l->setProperty("role", "muted");
        return l;
    };
    auto* row1 = new QHBoxLayout;
    row1->setContentsMargins(8, 6, 8, 2);
    row1->setSpacing(6);
    row1->addWidget(mode_);
    row1->addWidget(layer_, 1);
    row1->addStretch(1);
    auto* row2 = new QHBoxLayout;
    row2->setContentsMargins(8, 0, 8, 2);
    row2->setSpacing(6);
    row2->addWidget(muted(QStringLiteral("Quantize")));
    row2->addWidget(quantize_);
    row2->addWidget(bits_);
    row2->addWidget(top_);
    row2->addWidget(limit_);
    row2->addStretch(1);
    row2->addWidget(run_);
    row2->addWidget(cancel_);

    grid_ = new QListWidget(this);
    grid_->setObjectName(QStringLiteral("samplesGrid"));
    grid_->setViewMode(QListView::IconMode);
    grid_->setResizeMode(QListView::Adjust);
    grid_->setMovement(QListView::Static);
    grid_->setWrapping(true);
    grid_->setUniformItemSizes(true);
    grid_->setWordWrap(true);
    grid_->setSpacing(4);
    grid_->setSelectionMode(QAbstractItemView::SingleSelection);
    grid_->setToolTip(QStringLiteral("Click a sample to trace its error layer by layer"));
    auto traceItem = [this](QListWidgetItem* item) { trace(item->data(SampleIndexRole).toLongLong()); };
    connect(grid_, &QListWidget::itemClicked, this, traceItem);
    connect(grid_, &QListWidget::itemActivated, this, traceItem); // Enter on the keyboard

    tracePanel_ = new PlotView(QStringLiteral("Error along the graph"), this);
    tracePanel_->setObjectName(QStringLiteral("samplesTrace"));
    tracePanel_->setFileStem(QStringLiteral("sample-trace"));
    tracePanel_->setCsvProvider([this] { return traceCsv(); });
    QCustomPlot* p = tracePanel_->plot();
    bars_ = new QCPBars(p->xAxis, p->yAxis);
    bars_->setPen(Qt::NoPen);
    bars_->setBrush(kBarColor);
    bars_->setWidth(0.7);
    worst_ = new QCPBars(p->xAxis, p->yAxis);
    worst_->setPen(Qt::NoPen);
    worst_->setBrush(kWorstColor);
    worst_->setWidth(0.7);
    selectedBar_ = new QCPBars(p->xAxis, p->yAxis);
    selectedBar_->setPen(QPen(theme::accent, 2));
    selectedBar_->setBrush(Qt::NoBrush);
    selectedBar_->setWidth(0.78);
    worstLabel_ = new QCPItemText(p);
    worstLabel_->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
    worstLabel_->setColor(kWorstColor);
    worstLabel_->setClipToAxisRect(false);
    worstLabel_->setVisible(false);
    p->xAxis->grid()->setVisible(false);
    p->xAxis->setTickLabelRotation(40);
    p->yAxis->setLabel(QStringLiteral("layer output SQNR (dB)"));
    connect(p, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        if (e->button() != Qt::LeftButton || !trace_)
            return;
        const int i = traceBarAt(e->pos());
        if (i < 0 || !doc_->model())
            return;
        const int row = doc_->model()->layerRow(trace_->layers[std::size_t(i)].layer);
        if (row >= 0)
            selection_->selectLayer(row);
    });
    clearTrace(QStringLiteral("Click a sample to see its error layer by layer"));

    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(grid_);
    split->addWidget(tracePanel_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 4);
    layout->setSpacing(2);
    layout->addLayout(row1);
    layout->addLayout(row2);
    auto* statusRow = new QVBoxLayout;
    statusRow->setContentsMargins(8, 0, 8, 0);
    statusRow->setSpacing(2);
    statusRow->addWidget(progress_);
    statusRow->addWidget(status_);
    layout->addLayout(statusRow);
    layout->addWidget(split, 1);

    connect(doc_, &ModelDocument::modelChanged, this, &SamplesPanel::modelChanged);
    connect(selection_, &LayerSelection::currentChanged, this, [this] {
        updateLayerLabel();
        updateControls();
        markSelection();
        tracePanel_->plot()->replot();
    });
    connect(jobs_, &JobRunner::jobProgress, this, [this](int id, double fraction, const QString& stage, double eta) {
        if (id != job_)
            return;
        progress_->setValue(int(fraction * 1000));
        status_->setText(QStringLiteral("%1 % \u00B7 %2%3")
                             .arg(int(fraction * 100))
                             .arg(stage, eta >= 0 ? QStringLiteral(" \u00B7 ") + formatDuration(eta) + QStringLiteral(" left")
                                                  : QString()));
    });
    connect(jobs_, &JobRunner::jobFinished, this,
            [this](int id, const QString&, JobOutcome outcome, const QString& message, double seconds) {
                if (id != job_)
                    return;
                job_ = -1;
                progress_->hide();
                if (outcome == JobOutcome::Done) {
                    status_->setText(resultText_ + QStringLiteral(" · %1").arg(formatDuration(seconds)));
                } else {
                    const QString what = outcome == JobOutcome::Cancelled ? QStringLiteral("Cancelled.")
                                                                          : QStringLiteral("Failed: %1").arg(message);
                    status_->setText(what);
                    if (traceJob_)
                        clearTrace(what);
                }
                updateControls();
                emit jobEnded(outcome);
            });
    modelChanged();
}

void SamplesPanel::modelChanged()
{
    jobs_->cancelKind(QStringLiteral("samples"));
    jobs_->cancelKind(QStringLiteral("samples-trace"));
    ++serial_;
    data_.reset();
    dataKey_.clear();
    dataOptions_ = {};
    divergent_.clear();
    flipped_.clear();
    grid_->clear();
    classes_ = doc_->model() ? classNames(*doc_->model()->graph) : std::vector<std::string>();
    clearTrace(QStringLiteral("Click a sample to see its error layer by layer"));
    status_->setText(doc_->model() ? QStringLiteral("Select a layer and Find Samples: the inputs it hurts most, as pictures.")
                                   : QString());
    updateLayerLabel();
    updateControls();
}

bool SamplesPanel::isRunning() const
{
    return job_ >= 0 && jobs_->isRunning(job_);
}

SamplesPanel::Mode SamplesPanel::mode() const
{
    return Mode(mode_->currentData().toInt());
}

void SamplesPanel::setMode(Mode mode)
{
    mode_->setCurrentIndex(mode_->findData(int(mode)));
}

int64_t SamplesPanel::top() const
{
    return top_->value();
}

std::string SamplesPanel::layerName() const
{
    const LayerData* l = doc_->layer(selection_->currentLayer());
    return l ? l->summary.name : std::string();
}

QString SamplesPanel::className(int64_t c) const { return QString::fromStdString(classLabel(classes_, c)); }

SampleOptions SamplesPanel::options() const
{
    SampleOptions o;
    o.bits = bits_->value();
    o.mode = SensitivityMode(quantize_->currentData().toInt());
    o.base = config_->config(); // granularity, symmetry and calibrator
    o.base.layers.clear();
    o.base.ranges.clear();
    o.limit = limit_->value();
    o.calibLimit = std::min<int64_t>(256, o.limit);
    // One core stays free for the GUI thread (as calibration does).
    o.threads = std::max(1, QThread::idealThreadCount() - 1);
    return o;
}

void SamplesPanel::updateLayerLabel()
{
    const LayerData* l = doc_->layer(selection_->currentLayer());
    layer_->setText(l ? QStringLiteral("Layer <b>%1</b>").arg(shortLayerName(l->summary.name, l->summary.op).toHtmlEscaped())
                      : QStringLiteral("<span style='color:#6b7280'>no layer selected</span>"));
    layer_->setToolTip(l ? QString::fromStdString(l->summary.name) : QString());
}

void SamplesPanel::updateControls()
{
    const bool running = isRunning();
    const QString spec = studio_.calibrationDataSpec();
    disabled_ = spec.startsWith(QStringLiteral("text:"))
                    ? QStringLiteral("Samples are shown as images; the open data is text (token windows).")
                    : QString();
    const bool divergent = mode() == Mode::Divergent;
    const bool ready = doc_->model() && disabled_.isEmpty() && (!divergent || selection_->currentLayer() >= 0);
    run_->setEnabled(!running && ready);
    cancel_->setEnabled(running);
    layer_->setVisible(divergent);
    top_->setVisible(divergent);
    for (QWidget* w : std::initializer_list<QWidget*>{mode_, quantize_, bits_, top_, limit_})
        w->setEnabled(!running);
    if (!disabled_.isEmpty() && !running)
        status_->setText(disabled_);
}

void SamplesPanel::cancel()
{
    if (isRunning())
        jobs_->cancel(job_);
}

int SamplesPanel::showDivergent(int layerRow)
{
    if (!doc_->layer(layerRow))
        return -1;
    setMode(Mode::Divergent);
    if (selection_->currentLayer() != layerRow)
        selection_->selectLayer(layerRow);
    if (isRunning())
        cancel();
    return run();
}

int SamplesPanel::startJob(const QString& kind, const QString& title, bool isTrace, const std::function<void()>& before,
                           std::function<std::function<void()>(const std::shared_ptr<const Dataset>&, Progress&,
                                                               const CancelToken&)>
                               work)
{
    const auto model = doc_->model();
    updateControls();
    if (!model || !disabled_.isEmpty())
        return -1;
    if (isRunning())
        cancel();
    const int64_t limit = limit_->value();
    const DataOptions listOptions = studio_.calibrationDataOptions(limit);
    const std::string spec = listOptions.spec;
    // A trace reads the samples the shown list is of; a list reloads only when the data changed.
    const QString key = isTrace ? dataKey_
                                : QStringLiteral("%1#%2#%3").arg(QString::fromStdString(spec + "|" + listOptions.preprocess)).arg(limit).arg(doc_->generation());
    const std::shared_ptr<const Dataset> cached = key == dataKey_ ? data_ : nullptr;
    if (isTrace && dataKey_.isEmpty())
        return -1;
    // A trace of data too large to keep (the memory budget) reads the listed samples again.
    const DataOptions dataOptions = isTrace ? dataOptions_ : listOptions;
    const int serial = ++serial_;
    const int generation = doc_->generation();
    if (before)
        before();
    traceJob_ = isTrace;
    QPointer<SamplesPanel> self(this);
    job_ = jobs_->start(
        kind, title,
        [self, model, spec, dataOptions, cached, key, serial, generation, work](Progress& progress,
                                                                         const CancelToken& cancel) -> JobRunner::Deliver {
            std::shared_ptr<const Dataset> data = cached;
            if (!data) {
                progress.report(0, "loading data");
                auto loaded = std::make_shared<Dataset>(loadDataset(dataOptions, *model->graph));
                QString why;
                if (!imageLayout(*loaded, &why))
                    fail("samples: ", quoted(spec), ": ", why.toStdString());
                data = loaded;
            }
            cancel.check();
            Progress rest = progress.sub(cached ? 0 : 0.03, 1);
            std::function<void()> show = work(data, rest, cancel);
            return [self, data, key, dataOptions, serial, generation, show] {
                if (!self || self->serial_ != serial || self->doc_->generation() != generation)
                    return;
                // Kept for traces while within the cache budget; else read again by them.
                self->data_ = data->heldBytes() <= cacheBudgetBytes() ? data : nullptr;
                self->dataKey_ = key;
                self->dataOptions_ = dataOptions;
                show();
            };
        });
    progress_->setValue(0);
    progress_->show();
    status_->setText(QStringLiteral("Starting\u2026"));
    updateControls();
    return job_;
}

int SamplesPanel::run()
{
    const SampleOptions o = options();
    const Mode m = mode();
    if (m == Mode::Divergent) {
        const std::string layer = layerName();
        if (layer.empty()) {
            status_->setText(QStringLiteral("Select a layer first (in the table, the graph or the sensitivity view)."));
            return -1;
        }
        const int64_t k = top();
        const QString shortName = shortLayerName(layer, doc_->layer(selection_->currentLayer())->summary.op);
        return startJob(
            QStringLiteral("samples"), QStringLiteral("Samples diverging most for %1").arg(shortName), false, {},
            [self = QPointer<SamplesPanel>(this), model = doc_->model(), layer, k, o, shortName](const std::shared_ptr<const Dataset>& data,
                                                                          Progress& progress, const CancelToken& cancel) {
                auto rows = divergentSamples(*model->graph, *data, layer, k, o, progress, cancel);
                std::vector<int64_t> indices;
                for (const auto& r : rows)
                    indices.push_back(r.index);
                auto images = thumbnails(*data, indices, cancel);
                const int64_t examined = std::min<int64_t>(o.limit, data->count());
                return std::function<void()>([self, rows, images, o, examined, shortName] {
                    self->shownOptions_ = o;
                    self->divergent_ = rows;
                    self->flipped_.clear();
                    self->showList(images);
                    self->resultText_ = (QStringLiteral("The %1 of %2 samples whose output moves most (KL of the softmax) "
                                                          "with only %3 quantized (%4, %5 bits)")
                                               .arg(rows.size())
                                               .arg(examined)
                                               .arg(shortName, QString::fromLatin1(sensitivityModeName(o.mode)))
                                               .arg(o.bits));
                    emit self->listShown();
                });
            });
    }
    return startJob(QStringLiteral("samples"), QStringLiteral("Samples flipped at %1 bits").arg(o.bits), false, {},
                    [self = QPointer<SamplesPanel>(this), model = doc_->model(), o](
                        const std::shared_ptr<const Dataset>& data, Progress& progress, const CancelToken& cancel) {
                        auto all = flippedSamples(*model->graph, *data, o, progress, cancel);
                        std::vector<int64_t> shown;
                        for (std::size_t i = 0; i < all.size() && int64_t(i) < kMaxFlippedShown; ++i)
                            shown.push_back(all[i].index);
                        auto images = thumbnails(*data, shown, cancel);
                        const int64_t examined = std::min<int64_t>(o.limit, data->count());
                        return std::function<void()>([self, all, images, o, examined] {
                            self->shownOptions_ = o;
                            self->flipped_ = all;
                            self->divergent_.clear();
                            self->showList(images);
                            self->resultText_ = (
                                QStringLiteral("%1 of %2 samples are right in FP32 and wrong with every layer quantized "
                                               "(%3, %4 bits)%5")
                                    .arg(all.size())
                                    .arg(examined)
                                    .arg(QString::fromLatin1(sensitivityModeName(o.mode)))
                                    .arg(o.bits)
                                    .arg(int64_t(all.size()) > kMaxFlippedShown
                                             ? QStringLiteral("; the first %1 shown").arg(kMaxFlippedShown)
                                             : QString()));
                            emit self->listShown();
                        });
                    });
}

int SamplesPanel::trace(int64_t index)
{
    const SampleOptions o = shownOptions_;
    return startJob(
        QStringLiteral("samples-trace"), QStringLiteral("Tracing sample #%1").arg(index), true,
        [this, index] { clearTrace(QStringLiteral("Tracing sample #%1\u2026").arg(index)); },
        [self = QPointer<SamplesPanel>(this), model = doc_->model(), index, o](
            const std::shared_ptr<const Dataset>& data, Progress& progress, const CancelToken& cancel) {
            SampleTrace t = traceSample(*model->graph, *data, index, o, progress, cancel);
            return std::function<void()>([self, t] {
                self->showTrace(t);
                emit self->traceShown();
            });
        });
}

QString SamplesPanel::caption(const SampleDivergence& d) const
{
    QStringList lines;
    lines << QStringLiteral("#%1 \u00B7 KL %2").arg(d.index).arg(formatNumber(d.kl, 3));
    lines << QStringLiteral("%1 \u2192 %2").arg(className(d.fp32Class), className(d.quantClass));
    lines << (d.label ? QStringLiteral("label %1").arg(className(*d.label)) : QStringLiteral("no label"));
    return lines.join(QLatin1Char('\n'));
}

void SamplesPanel::showList(const std::vector<QImage>& images)
{
    grid_->clear();
    QSize thumb(kThumbPixels, kThumbPixels);
    if (!images.empty())
        thumb = images.front().size();
    grid_->setIconSize(thumb);
    const std::vector<SampleDivergence>& rows = divergent_.empty() ? flipped_ : divergent_;
    // Wide enough for the longest caption line (class names), within reason.
    const QFontMetrics fm = grid_->fontMetrics();
    int textWidth = 0;
    for (const SampleDivergence& d : rows)
        for (const QString& l : caption(d).split(QLatin1Char('\n')))
            textWidth = std::max(textWidth, fm.horizontalAdvance(l));
    grid_->setGridSize(QSize(std::clamp(textWidth + 12, thumb.width() + 16, 200), thumb.height() + 3 * fm.height() + 14));
    for (std::size_t i = 0; i < rows.size() && i < images.size(); ++i) {
        const SampleDivergence& d = rows[i];
        // Wrong: the quantized class misses the label (or, without labels, FP32's class);
        // every flipped sample is.
        const bool wrong = d.quantClass != d.label.value_or(d.fp32Class);
        const QString text = caption(d);
        // The same pixmap when selected: the style would tint the picture otherwise.
        const QPixmap pm = QPixmap::fromImage(images[i]);
        QIcon icon(pm);
        icon.addPixmap(pm, QIcon::Selected);
        auto* item = new QListWidgetItem(icon, text);
        item->setData(SampleIndexRole, qlonglong(d.index));
        item->setData(WrongRole, wrong);
        item->setData(KlRole, d.kl);
        item->setTextAlignment(Qt::AlignHCenter | Qt::AlignTop);
        item->setToolTip(text + QStringLiteral("\nclick: trace this sample layer by layer"));
        if (wrong) {
            item->setBackground(kWrongFill);
            item->setForeground(kWrongText);
        }
        grid_->addItem(item);
    }
    clearTrace(grid_->count() ? QStringLiteral("Click a sample to see its error layer by layer")
                              : QStringLiteral("No samples to trace"));
}

double SamplesPanel::drawnDb(double sqnrDb)
{
    return std::isfinite(sqnrDb) ? std::min(sqnrDb, kInfDb) : kInfDb;
}

void SamplesPanel::clearTrace(const QString& message)
{
    trace_.reset();
    bars_->data()->clear();
    worst_->data()->clear();
    selectedBar_->data()->clear();
    worstLabel_->setVisible(false);
    tracePanel_->setTitle(QStringLiteral("Error along the graph"));
    tracePanel_->setSubtitle(QString());
    tracePanel_->setMessage(message);
    tracePanel_->plot()->replot();
}

void SamplesPanel::showTrace(const SampleTrace& t)
{
    trace_ = t;
    QVector<double> keys, values;
    auto ticks = QSharedPointer<QCPAxisTickerText>::create();
    const int n = int(t.layers.size());
    const int every = (n + 24) / 25;
    int worst = -1;
    for (int i = 0; i < n; ++i) {
        const TracePoint& p = t.layers[std::size_t(i)];
        keys << i;
        values << drawnDb(p.sqnrDb);
        if (i % std::max(1, every) == 0)
            ticks->addTick(i, shortLayerName(p.layer, p.op));
        if (worst < 0 || p.sqnrDb < t.layers[std::size_t(worst)].sqnrDb)
            worst = i;
    }
    bars_->setData(keys, values, true);
    worst_->data()->clear();
    QCustomPlot* plot = tracePanel_->plot();
    plot->xAxis->setTicker(ticks);
    plot->xAxis->setRange(-0.6, std::max(1, n) - 0.4);
    double top = 1;
    for (double v : values)
        top = std::max(top, v);
    plot->yAxis->setRange(std::min(0.0, values.isEmpty() ? 0.0 : *std::min_element(values.begin(), values.end())),
                          top * 1.18);
    if (worst >= 0) {
        const TracePoint& w = t.layers[std::size_t(worst)];
        worst_->addData(worst, drawnDb(w.sqnrDb));
        // In the headroom above the tallest bar, over the worst one (kept inside at the ends).
        const Qt::Alignment h = worst == 0 && n > 1 ? Qt::AlignLeft : worst == n - 1 && n > 1 ? Qt::AlignRight : Qt::AlignHCenter;
        worstLabel_->setPositionAlignment(h | Qt::AlignTop);
        worstLabel_->position->setCoords(h == Qt::AlignLeft ? worst - 0.35 : h == Qt::AlignRight ? worst + 0.35 : worst,
                                         top * 1.17);
        worstLabel_->setText(QStringLiteral("worst: %1, %2 dB").arg(shortLayerName(w.layer, w.op)).arg(w.sqnrDb, 0, 'f', 1));
        worstLabel_->setVisible(true);
    }
    const bool wrong = t.quantClass != t.label.value_or(t.fp32Class);
    tracePanel_->setTitle(QStringLiteral("Sample #%1, all layers quantized").arg(t.index));
    tracePanel_->setSubtitle(QStringLiteral("label %1 \u00B7 FP32 %2 \u2192 %3 \u00B7 KL %4 \u00B7 SQNR %5 dB")
                                 .arg(t.label ? className(*t.label) : dash(), className(t.fp32Class),
                                      className(t.quantClass), formatNumber(t.outputKl, 3))
                                 .arg(t.outputSqnrDb, 0, 'f', 1));
    tracePanel_->setToolTip(QStringLiteral("Sample #%1 with every layer quantized (%2, %3 bits)%4: each bar is a layer "
                                           "output's SQNR against FP32; click a bar to select the layer")
                                .arg(t.index)
                                .arg(QString::fromLatin1(sensitivityModeName(shownOptions_.mode)))
                                .arg(shownOptions_.bits)
                                .arg(wrong ? QStringLiteral(", classified wrongly") : QString()));
    tracePanel_->setMessage(QString());
    markSelection();
    plot->replot();
    for (int i = 0; i < grid_->count(); ++i) {
        QListWidgetItem* item = grid_->item(i);
        if (item->data(SampleIndexRole).toLongLong() != t.index)
            continue;
        if (!item->isSelected()) {
            QSignalBlocker block(grid_);
            grid_->setCurrentItem(item);
        }
    }
}

void SamplesPanel::markSelection()
{
    selectedBar_->data()->clear();
    const std::string name = layerName();
    if (!trace_ || name.empty())
        return;
    for (std::size_t i = 0; i < trace_->layers.size(); ++i)
        if (trace_->layers[i].layer == name)
            selectedBar_->addData(double(i), drawnDb(trace_->layers[i].sqnrDb));
}

int SamplesPanel::traceBarAt(const QPoint& pos) const
{
    if (!trace_ || !tracePanel_->plot()->axisRect()->rect().contains(pos))
        return -1;
    const double key = tracePanel_->plot()->xAxis->pixelToCoord(pos.x());
    const int i = int(std::lround(key));
    if (i < 0 || i >= int(trace_->layers.size()) || std::abs(key - i) > 0.5)
        return -1;
    return i;
}

QString SamplesPanel::traceCsv() const
{
    if (!trace_)
        return {};
    QString out = QStringLiteral("layer,op,value,sqnr_db\n");
    for (const TracePoint& p : trace_->layers)
        out += QStringLiteral("%1,%2,%3,%4\n")
                   .arg(QString::fromStdString(p.layer), QString::fromStdString(p.op), QString::fromStdString(p.value))
                   .arg(p.sqnrDb, 0, 'g', 10);
    return out;
}

} // namespace qs::ui
