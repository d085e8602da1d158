#include "ui/sensitivity/sensitivity_panel.h"

#include "ui/document/graph_layout.h"
#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"
#include "ui/widgets/format.h"
#include "ui/widgets/plot_view.h"
#include "ui/widgets/theme.h"

#include "data/dataset.h"
#include "record/recording.h"
#include "record/sensitivity_record.h"
#include "store/store.h"
#include "util/error.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QThread>
#include <QTimer>
#include <QToolTip>
#include <QVBoxLayout>

#include <cmath>

namespace qs::ui {
namespace {

std::vector<int> parseBits(const QString& text, QString* error)
{
    std::vector<int> bits;
    for (const QString& part : text.split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        bool ok = false;
        const int b = part.trimmed().toInt(&ok);
        if (!ok || b < 2 || b > 8) {
            *error = QStringLiteral("bit widths: %1 is not 2..8").arg(part.trimmed());
            return {};
        }
        if (std::find(bits.begin(), bits.end(), b) == bits.end())
            bits.push_back(b);
    }
    std::sort(bits.begin(), bits.end());
    if (bits.empty())
        *error = QStringLiteral("bit widths: give at least one, e.g. 2,3,4,6,8");
    return bits;
}

// SQNR colours: sensitive (low dB) red, through amber, to green.
QCPColorGradient sqnrGradient()
{
    QCPColorGradient g;
    g.clearColorStops();
    g.setColorStopAt(0.0, QColor(0xb9, 0x1c, 0x1c));
    g.setColorStopAt(0.3, QColor(0xf9, 0x73, 0x16));
    g.setColorStopAt(0.55, QColor(0xfd, 0xe0, 0x47));
    g.setColorStopAt(0.8, QColor(0x86, 0xd1, 0x7a));
    g.setColorStopAt(1.0, QColor(0x15, 0x80, 0x3d));
    g.setNanHandling(QCPColorGradient::nhTransparent);
    return g;
}

} // namespace

SensitivityPanel::SensitivityPanel(Studio& studio, QWidget* parent)
    : QWidget(parent), studio_(studio), doc_(studio.document()), config_(studio.config()),
      selection_(studio.selection()), jobs_(studio.jobs())
{
    setObjectName(QStringLiteral("sensitivityPanel"));
    // A recorded sweep is the table's Sensitivity column now.
    connect(this, &SensitivityPanel::sweepFinished, &studio, &Studio::loadStoredResults);
    // The latest stored sweep of this model feeds the editor's prediction until a new one runs.
    connect(&studio, &Studio::storedResultsLoaded, this, &SensitivityPanel::readStoredSweep);
    method_ = new QComboBox(this);
    method_->setObjectName(QStringLiteral("sensitivityMethod"));
    method_->addItem(QStringLiteral("One-shot (model output)"), QStringLiteral("oneshot"));
    method_->addItem(QStringLiteral("Local (layer output)"), QStringLiteral("local"));
    method_->addItem(QStringLiteral("Hessian (HAWQ-V2)"), QStringLiteral("hessian"));
    method_->setToolTip(QStringLiteral("One-shot quantizes one layer at a time and measures the model output against FP32; "
                                       "local measures the layer's own output (fast); Hessian estimates second-order "
                                       "sensitivity"));
    mode_ = new QComboBox(this);
    mode_->setObjectName(QStringLiteral("sensitivityMode"));
    mode_->addItem(QStringLiteral("Weights"), QStringLiteral("weights"));
    mode_->addItem(QStringLiteral("Activations"), QStringLiteral("activations"));
    mode_->addItem(QStringLiteral("Both"), QStringLiteral("both"));
    attention_ = new QCheckBox(QStringLiteral("Attention operands"), this);
    attention_->setObjectName(QStringLiteral("sensitivityAttention"));
    attention_->setToolTip(QStringLiteral("Also sweep each attention operand (Q, K, V, P inputs of the activation x "
                                          "activation MatMuls) alone, on the configuration's operand granularity; its "
                                          "rows follow the layers and the Pareto front searches them"));
    bits_ = new QLineEdit(QStringLiteral("2,3,4,5,6,8"), this);
    bits_->setObjectName(QStringLiteral("sensitivityBits"));
    bits_->setToolTip(QStringLiteral("Bit widths to test, comma-separated (2..8)"));
    bits_->setMaximumWidth(120);
    limit_ = new QSpinBox(this);
    limit_->setObjectName(QStringLiteral("sensitivityLimit"));
    limit_->setRange(8, 100000);
    limit_->setValue(256);
    limit_->setSingleStep(64);
    limit_->setSuffix(QStringLiteral(" samples"));
    limit_->setToolTip(QStringLiteral("Samples of the calibration data each configuration is measured on"));
    run_ = new QPushButton(QStringLiteral("Run Sweep"), this);
    run_->setObjectName(QStringLiteral("sensitivityRun"));
    run_->setDefault(true);
    cancel_ = new QPushButton(QStringLiteral("Cancel"), this);
    cancel_->setObjectName(QStringLiteral("sensitivityCancel"));
    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("sensitivityStatus"));
    status_->setProperty("role", "muted");
    status_->setWordWrap(true);
    connect(run_, &QPushButton::clicked, this, [this] { startSweep(); });
    connect(cancel_, &QPushButton::clicked, this, &SensitivityPanel::cancelSweep);

    auto* controls = new QHBoxLayout;
    controls->setContentsMargins(8, 6, 8, 2);
    controls->setSpacing(6);
    auto label = [this](const QString& t) {
        auto* l = new QLabel(t, this);
        l->setProperty("role", "muted");
        return l;
    };
    controls->addWidget(label(QStringLiteral("Method")));
    controls->addWidget(method_);
    controls->addWidget(label(QStringLiteral("Quantize")));
    controls->addWidget(mode_);
    controls->addStretch(1);
    // A second row keeps the dock narrow enough to share the right side with the inspector.
    auto* controls2 = new QHBoxLayout;
    controls2->setContentsMargins(8, 0, 8, 2);
    controls2->setSpacing(6);
    controls2->addWidget(label(QStringLiteral("Bits")));
    controls2->addWidget(bits_);
    controls2->addWidget(limit_);
    controls2->addWidget(attention_);
    controls2->addStretch(1);
    controls2->addWidget(run_);
    controls2->addWidget(cancel_);

    heatPanel_ = new PlotView(QStringLiteral("Output SQNR by layer and bit width"), this);
    heatPanel_->setObjectName(QStringLiteral("sensitivityHeatmap"));
    heatPanel_->setFileStem(QStringLiteral("sensitivity-heatmap"));
    heatPanel_->setCsvProvider([this] { return heatmapCsv(); });
    QCustomPlot* hp = heatPanel_->plot();
    map_ = new QCPColorMap(hp->xAxis, hp->yAxis);
    map_->setInterpolate(false);
    map_->setTightBoundary(false); // whole cells around the cell centres
    auto* scale = new QCPColorScale(hp);
    hp->plotLayout()->addElement(0, 1, scale);
    scale->setType(QCPAxis::atRight);
    scale->setBarWidth(12);
    scale->axis()->setLabel(QStringLiteral("SQNR (dB)"));
    scale->axis()->setLabelColor(theme::mutedText);
    scale->axis()->setTickLabelColor(theme::mutedText);
    map_->setColorScale(scale);
    scale->setGradient(sqnrGradient()); // after setColorScale: the map takes the scale's gradient
    auto* margins = new QCPMarginGroup(hp);
    hp->axisRect()->setMarginGroup(QCP::msTop | QCP::msBottom, margins);
    scale->setMarginGroup(QCP::msTop | QCP::msBottom, margins);
    hp->yAxis->setRangeReversed(true); // graph order, first layer on top
    hp->xAxis->grid()->setVisible(false);
    hp->yAxis->grid()->setVisible(false);
    hp->xAxis->setLabel(QStringLiteral("bits (only this layer quantized)"));
    heatMark_ = new QCPItemRect(hp);
    heatMark_->setPen(QPen(theme::accent, 2));
    heatMark_->setBrush(Qt::NoBrush);
    heatMark_->setClipToAxisRect(true);
    heatMark_->setVisible(false);
    connect(hp, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        if (e->button() != Qt::LeftButton)
            return;
        const int row = layerAtHeatmap(e->pos());
        if (row >= 0 && row < doc_->layerCount()) // operand rows have no layer to select
            selection_->selectLayer(row);
    });

    connect(hp, &QCustomPlot::mouseMove, this, [this](QMouseEvent* e) {
        QCustomPlot* p = heatPanel_->plot();
        const int row = layerAtHeatmap(e->pos());
        const int col = int(std::lround(p->xAxis->pixelToCoord(e->pos().x())));
        const QString tip = row >= 0 ? cellToolTip(row, bitsShown_[std::size_t(col)]) : QString();
        if (tip.isEmpty())
            QToolTip::hideText();
        else
            QToolTip::showText(e->globalPosition().toPoint(), tip, p);
    });

    barPanel_ = new PlotView(QStringLiteral("Top-1 drop"), this);
    barPanel_->setObjectName(QStringLiteral("sensitivityBars"));
    barPanel_->setFileStem(QStringLiteral("sensitivity-drop"));
    barPanel_->setCsvProvider([this] { return barsCsv(); });
    barBits_ = new QComboBox(this);
    barBits_->setObjectName(QStringLiteral("sensitivityBarBits"));
    barBits_->setToolTip(QStringLiteral("The bit width the bars show"));
    barPanel_->addTool(barBits_);
    QCustomPlot* bp = barPanel_->plot();
    barsPlot_ = new QCPBars(bp->xAxis, bp->yAxis);
    barsPlot_->setPen(Qt::NoPen);
    barsPlot_->setBrush(QColor(0x93, 0xa8, 0xc4));
    barsPlot_->setWidth(0.7);
    bp->xAxis->grid()->setVisible(false);
    bp->xAxis->setTickLabelRotation(40);
    connect(barBits_, &QComboBox::currentIndexChanged, this, [this] {
        rebuildBars();
        barPanel_->plot()->replot();
    });
    connect(bp, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        if (e->button() != Qt::LeftButton || !barPanel_->plot()->axisRect()->rect().contains(e->pos()))
            return;
        const int row = int(std::lround(barPanel_->plot()->xAxis->pixelToCoord(e->pos().x())));
        if (row >= 0 && row < doc_->layerCount())
            selection_->selectLayer(row);
    });

    auto* split = new QSplitter(Qt::Vertical, this);
    split->addWidget(heatPanel_);
    split->addWidget(barPanel_);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 4);
    layout->setSpacing(2);
    layout->addLayout(controls);
    layout->addLayout(controls2);
    auto* statusRow = new QHBoxLayout;
    statusRow->setContentsMargins(8, 0, 8, 0);
    statusRow->addWidget(status_);
    layout->addLayout(statusRow);
    layout->addWidget(split, 1);

    replot_ = new QTimer(this);
    replot_->setSingleShot(true);
    replot_->setInterval(40); // live results replot at most 25 times a second
    connect(replot_, &QTimer::timeout, this, [this] {
        rebuildHeatmap();
        rebuildBars();
        heatPanel_->plot()->replot();
        barPanel_->plot()->replot();
    });

    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        jobs_->cancelKind(QStringLiteral("sensitivity"));
        ++sweep_;
        lastRun_ = 0;
        QString error;
        reset(parseBits(bits_->text(), &error));
        status_->setText(doc_->layerCount() ? QStringLiteral("No sweep yet: Run Sweep measures every layer at each bit width.")
                                            : QString());
    });
    connect(config_, &QuantConfigDocument::sensitivityChanged, this, [this] {
        if (!isRunning() && config_->sensitivity())
            showResult(*config_->sensitivity());
    });
    connect(selection_, &LayerSelection::currentChanged, this, [this] {
        markSelection();
        heatPanel_->plot()->replot();
        barPanel_->plot()->replot();
    });
    connect(jobs_, &JobRunner::jobFinished, this, [this](int id, const QString&, JobOutcome outcome, const QString& message) {
        if (id != job_)
            return;
        job_ = -1;
        if (outcome == JobOutcome::Cancelled)
            status_->setText(QStringLiteral("Cancelled: %1 of %2 layers measured; the partial sweep is kept in the database.")
                                 .arg(shown_.layers.size())
                                 .arg(doc_->layerCount()));
        else if (outcome == JobOutcome::Failed)
            status_->setText(QStringLiteral("Failed: %1").arg(message));
        updateControls();
        if (outcome != JobOutcome::Done)
            emit sweepFinished(false);
    });
    connect(jobs_, &JobRunner::jobProgress, this, [this](int id, double fraction, const QString& stage, double) {
        if (id == job_)
            status_->setText(QStringLiteral("%1 % \u00B7 %2").arg(int(fraction * 100)).arg(stage));
    });
    reset({2, 3, 4, 5, 6, 8});
    updateControls();
}

bool SensitivityPanel::isRunning() const
{
    return job_ >= 0 && jobs_->isRunning(job_);
}

void SensitivityPanel::updateControls()
{
    const bool running = isRunning();
    run_->setEnabled(!running && doc_->model());
    cancel_->setEnabled(running);
    method_->setEnabled(!running);
    mode_->setEnabled(!running);
    bits_->setEnabled(!running);
    limit_->setEnabled(!running);
}

void SensitivityPanel::cancelSweep()
{
    if (isRunning())
        jobs_->cancel(job_);
}

void SensitivityPanel::readStoredSweep()
{
    const auto stored = doc_->stored();
    if (!stored || !stored->sensitivityRun || config_->sensitivity() || isRunning())
        return;
    const QString store = stored->storePath;
    const int64_t run = stored->sensitivityRun;
    const int generation = doc_->generation();
    QPointer<SensitivityPanel> self(this);
    jobs_->start(QStringLiteral("stored-sensitivity"), tr("Reading sensitivity run #%1").arg(run),
                 [self, store, run, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
                     StoreOptions options;
                     options.mode = OpenMode::ReadOnly;
                     auto result = std::make_shared<const SensitivityResult>(
                         loadSensitivityRun(Store::open(store.toStdString(), options), run));
                     return [self, result, generation] {
                         if (self && self->doc_->generation() == generation && !self->config_->sensitivity())
                             self->config_->setSensitivity(result);
                     };
                 });
}

std::optional<SensitivityOptions> SensitivityPanel::sweepOptions(QString* error) const
{
    QString bad;
    SensitivityOptions opts;
    opts.bits = parseBits(bits_->text(), &bad);
    if (!bad.isEmpty()) {
        if (error)
            *error = bad;
        return std::nullopt;
    }
    opts.method = parseSensitivityMethod(method_->currentData().toString().toStdString());
    opts.mode = parseSensitivityMode(mode_->currentData().toString().toStdString());
    opts.limit = limit_->value();
    opts.attention = attention_->isChecked();
    opts.base = config_->config(); // granularity and calibrator of the tested layer
    opts.base.layers.clear();
    // One core stays free for the GUI thread (as calibration does).
    opts.threads = std::max(1, QThread::idealThreadCount() - 1);
    return opts;
}

void SensitivityPanel::beginClusterSweep(const SensitivityOptions& options)
{
    ++sweep_; // live results of a local sweep still arriving are dropped
    reset(options.bits);
    shown_.method = options.method;
    shown_.mode = options.mode;
    lastRun_ = 0;
    status_->setText(QStringLiteral("Running on the cluster\u2026"));
}

void SensitivityPanel::showClusterResult(const std::shared_ptr<const SensitivityResult>& result, int64_t runId)
{
    showResult(*result);
    if (runId == 0)
        return;
    lastRun_ = runId;
    status_->setText(QStringLiteral("%1 layers \u00D7 %2 bit widths on the cluster \u00B7 recorded as run #%3%4")
                         .arg(result->layers.size())
                         .arg(bitsShown_.size())
                         .arg(runId)
                         .arg(result->complete ? QString() : QStringLiteral(" (incomplete)")));
    if (result->complete) {
        config_->setSensitivity(result);
        emit sweepFinished(true);
    }
}

int SensitivityPanel::startSweep()
{
    const auto model = doc_->model();
    if (!model || isRunning())
        return -1;
    QString error;
    const std::optional<SensitivityOptions> options = sweepOptions(&error);
    if (!options) {
        status_->setText(error);
        return -1;
    }
    const SensitivityOptions opts = *options;
    const DataOptions dataOptions = studio_.calibrationDataOptions(opts.limit);
    const std::string storePath = studio_.storePath().toStdString();
    const std::string modelPath = model->path.toStdString();

    const int sweep = ++sweep_;
    const int generation = doc_->generation();
    reset(opts.bits);
    shown_.method = opts.method;
    shown_.mode = opts.mode;
    lastRun_ = 0;
    heatPanel_->setSubtitle(QStringLiteral("%1, %2, %3 samples")
                                .arg(QString::fromLatin1(sensitivityMethodName(opts.method)),
                                     QString::fromLatin1(sensitivityModeName(opts.mode)))
                                .arg(opts.limit));
    QPointer<SensitivityPanel> self(this);
    job_ = jobs_->start(
        QStringLiteral("sensitivity"), QStringLiteral("Sensitivity sweep of %1").arg(model->displayName()),
        [self, model, opts, dataOptions, storePath, modelPath, sweep, generation](Progress& progress,
                                                                          const CancelToken& cancel) -> JobRunner::Deliver {
            progress.report(0, "loading data");
            const Dataset data = loadDataset(dataOptions, *model->graph);
            cancel.check();
            std::optional<Store> store;
            std::optional<RunGuard> run;
            if (!storePath.empty() && !modelPath.empty()) {
                store = Store::open(storePath);
                run.emplace(*store, runStart(*store, RunKind::Sensitivity, *model->graph, modelPath, data,
                                             sensitivityRunConfig(opts), {"studio"}));
            }
            // Each measure goes to the GUI thread as a copy; the panel drops those of an older sweep.
            auto onResult = [self, sweep](const LayerSensitivity& layer, int bits) {
                QMetaObject::invokeMethod(
                    self.data(), [self, layer, bits, sweep] {
                        if (self)
                            self->onMeasured(layer, bits, sweep);
                    },
                    Qt::QueuedConnection);
            };
            Progress sweepProgress = progress.sub(0.02, 1);
            SensitivityResult r = runRecorded(
                run, [&] { return measureSensitivity(*model->graph, data, opts, sweepProgress, cancel, onResult); });
            int64_t runId = 0;
            if (run) {
                run->addLayers(sensitivityLayerRows(r));
                if (r.complete)
                    run->finish(sensitivityRunMetrics(r));
                else
                    run->cancel(sensitivityRunMetrics(r));
                runId = run->id();
            }
            auto result = std::make_shared<const SensitivityResult>(std::move(r));
            return [self, result, runId, sweep, generation] {
                if (!self || self->sweep_ != sweep || self->doc_->generation() != generation)
                    return;
                self->job_ = -1;
                self->lastRun_ = runId;
                self->showResult(*result);
                self->status_->setText(
                    QStringLiteral("%1 layers \u00D7 %2 bit widths in %3 s on %4 samples%5")
                        .arg(result->layers.size())
                        .arg(self->bitsShown_.size())
                        .arg(result->seconds, 0, 'f', 1)
                        .arg(result->samples)
                        .arg(runId ? QStringLiteral(" \u00B7 recorded as run #%1").arg(runId)
                                   : QStringLiteral(" \u00B7 not recorded (no database open)")));
                // Cells lower than at fewer bits are real, and said so where they are.
                int dips = 0;
                for (int row = 0; row < self->doc_->layerCount(); ++row)
                    for (int b : self->bitsShown_)
                        dips += self->betterAtFewerBits(row, b) ? 1 : 0;
                if (dips > 0)
                    self->status_->setText(self->status_->text() +
                        QStringLiteral(" \u00B7 %1 lower than at fewer bits (outlined; hover for why)")
                            .arg(dips == 1 ? QStringLiteral("1 cell") : QStringLiteral("%1 cells").arg(dips)));
                self->config_->setSensitivity(result);
                self->updateControls();
                emit self->sweepFinished(result->complete);
            };
        });
    status_->setText(QStringLiteral("Starting\u2026"));
    updateControls();
    return job_;
}

void SensitivityPanel::reset(const std::vector<int>& bits)
{
    shown_ = SensitivityResult{};
    bitsShown_ = bits;
    const int keep = barBits_->currentData().toInt();
    {
        QSignalBlocker block(barBits_);
        barBits_->clear();
        for (int b : bits)
            barBits_->addItem(QStringLiteral("at %1 bits").arg(b), b);
        const int i = barBits_->findData(keep);
        const int four = barBits_->findData(4); // where the interesting losses usually are
        barBits_->setCurrentIndex(i >= 0 ? i : four >= 0 ? four : barBits_->count() - 1);
    }
    rebuildHeatmap();
    rebuildBars();
    heatPanel_->plot()->replot();
    barPanel_->plot()->replot();
}

void SensitivityPanel::showResult(const SensitivityResult& r)
{
    std::vector<int> bits;
    for (const auto& l : r.layers)
        for (const auto& [b, m] : l.byBits)
            if (std::find(bits.begin(), bits.end(), b) == bits.end())
                bits.push_back(b);
    std::sort(bits.begin(), bits.end());
    if (bits != bitsShown_) {
        const SensitivityResult keep = r;
        reset(bits);
        shown_ = keep;
    } else {
        shown_ = r;
    }
    if (heatPanel_->hasMessage() || !isRunning())
        heatPanel_->setSubtitle(QStringLiteral("%1, %2, %3 samples")
                                    .arg(QString::fromLatin1(sensitivityMethodName(r.method)),
                                         QString::fromLatin1(sensitivityModeName(r.mode)))
                                    .arg(r.samples));
    replot_->stop();
    rebuildHeatmap();
    rebuildBars();
    heatPanel_->plot()->replot();
    barPanel_->plot()->replot();
}

void SensitivityPanel::onMeasured(const LayerSensitivity& layer, int bits, int sweep)
{
    if (sweep != sweep_)
        return;
    auto it = std::find_if(shown_.layers.begin(), shown_.layers.end(),
                           [&](const LayerSensitivity& l) { return l.layer == layer.layer; });
    if (it == shown_.layers.end())
        shown_.layers.push_back(layer);
    else
        *it = layer;
    const auto& m = doc_->model();
    emit resultArrived(m ? m->layerRow(layer.layer) : -1, bits);
    if (!replot_->isActive())
        replot_->start();
}

int SensitivityPanel::heatRows() const
{
    int operands = 0;
    for (const auto& s : shown_.layers)
        operands += s.op.rfind("MatMul:", 0) == 0 ? 1 : 0;
    return doc_->layerCount() + operands;
}

const LayerSensitivity* SensitivityPanel::operandAt(int row) const
{
    int i = row - doc_->layerCount();
    if (i < 0)
        return nullptr;
    for (const auto& s : shown_.layers)
        if (s.op.rfind("MatMul:", 0) == 0 && i-- == 0)
            return &s;
    return nullptr;
}

QString SensitivityPanel::rowLabel(int row) const
{
    if (const LayerSensitivity* o = operandAt(row))
        return QString::fromStdString(o->layer);
    const LayerData* l = doc_->layer(row);
    return l ? shortLayerName(l->summary.name, l->summary.op) : QString();
}

const BitMeasure* SensitivityPanel::measure(int layerRow, int bits) const
{
    const LayerSensitivity* found = operandAt(layerRow);
    if (const LayerData* l = found ? nullptr : doc_->layer(layerRow))
        for (const auto& s : shown_.layers)
            if (s.layer == l->summary.name)
                found = &s;
    if (!found)
        return nullptr;
    auto it = found->byBits.find(bits);
    return it == found->byBits.end() ? nullptr : &it->second;
}

double SensitivityPanel::cellValue(int layerRow, int bits) const
{
    const BitMeasure* m = measure(layerRow, bits);
    return m ? m->sqnrDb : NAN;
}

QString SensitivityPanel::cellText(int layerRow, int bits) const
{
    const double v = cellValue(layerRow, bits);
    if (std::isnan(v))
        return QString();
    if (std::isinf(v))
        return v > 0 ? QStringLiteral("\u221E") : QStringLiteral("\u2212\u221E");
    return sqnrText(v);
}

QString SensitivityPanel::sqnrText(double db)
{
    return QString::number(db, 'f', 2); // as `quantstudio-cli sensitivity` prints it (%.2f)
}

int SensitivityPanel::betterAtFewerBits(int layerRow, int bits) const
{
    const double v = cellValue(layerRow, bits);
    int best = 0;
    double bestDb = v;
    for (int b : bitsShown_)
        if (b < bits && cellValue(layerRow, b) > bestDb) {
            best = b;
            bestDb = cellValue(layerRow, b);
        }
    return best;
}

QString SensitivityPanel::cellToolTip(int layerRow, int bits) const
{
    const LayerData* l = doc_->layer(layerRow);
    const double v = cellValue(layerRow, bits);
    if (std::isnan(v))
        return QString();
    const bool local = shown_.method == SensitivityMethod::Local;
    if (const LayerSensitivity* o = operandAt(layerRow))
        return QStringLiteral("<b>%1</b> (attention operand, %2) at %3 bits: %4 %5 dB<br/>Only this operand "
                              "quantized, %6 against FP32.")
            .arg(QString::fromStdString(o->layer).toHtmlEscaped(), QString::fromStdString(o->op))
            .arg(bits)
            .arg(local ? QStringLiteral("the operand's own SQNR") : QStringLiteral("output SQNR"))
            .arg(cellText(layerRow, bits))
            .arg(local ? QStringLiteral("the operand itself") : QStringLiteral("the model output"));
    if (!l)
        return QString();
    QString tip = QStringLiteral("<b>%1</b> at %2 bits: %3 %4 dB<br/>%5")
                      .arg(shortLayerName(l->summary.name, l->summary.op).toHtmlEscaped())
                      .arg(bits)
                      .arg(local ? QStringLiteral("the layer's own output SQNR") : QStringLiteral("output SQNR"))
                      .arg(cellText(layerRow, bits))
                      .arg(local ? QStringLiteral("Only this layer quantized, its output against FP32.")
                                 : QStringLiteral("Only this layer quantized, the model output against FP32."));
    if (const int fewer = betterAtFewerBits(layerRow, bits)) {
        const Shape& shape = l->summary.weightShape;
        int64_t params = 1;
        for (int64_t d : shape)
            params *= std::max<int64_t>(d, 0);
        const int axis = l->summary.channelAxis;
        const int64_t channels = axis >= 0 && axis < int(shape.size()) ? shape[std::size_t(axis)] : 0;
        tip +=
            QStringLiteral("<br/><br/><b>Lower than at %1 bits (%2 dB).</b> Not a fault of the measure: each width is "
                           "its own rounding of the weights, and the sweep measures where that error lands, not "
                           "how large it is. With %3 weights%4 the rounding errors do not average out; at %5 bits "
                           "they happen to fall where the later layers amplify them more. The weights' own error "
                           "still shrinks with each bit (the Local method, which measures the layer's own "
                           "output, shows that trend), so choose from the measured values, not the trend.")
                .arg(fewer)
                .arg(cellText(layerRow, fewer))
                .arg(formatCount(params))
                .arg(channels > 0 ? QStringLiteral(" (%1 per output channel)").arg(formatCount(params / channels))
                                  : QString())
                .arg(bits);
    }
    return tip;
}

void SensitivityPanel::rebuildHeatmap()
{
    QCustomPlot* p = heatPanel_->plot();
    const int rows = heatRows(), cols = int(bitsShown_.size());
    for (int i = p->itemCount() - 1; i >= 0; --i)
        if (p->item(i) != heatMark_)
            p->removeItem(i);
    if (rows == 0 || cols == 0) {
        map_->data()->clear();
        heatPanel_->setMessage(QStringLiteral("Open a model to measure its sensitivity"));
        return;
    }
    map_->data()->setSize(cols, rows);
    map_->data()->setRange(QCPRange(0, cols - 1), QCPRange(0, rows - 1));
    // The colour range spans the measured values; an error-free cell (+inf dB) takes the top colour.
    double lo = 0, hi = 30;
    bool any = false;
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            const double v = cellValue(r, bitsShown_[std::size_t(c)]);
            any = any || !std::isnan(v);
            if (std::isfinite(v)) {
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
        }
    auto drawn = [lo, hi](double v) { return std::isinf(v) ? (v > 0 ? hi : lo) : v; };
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
            map_->data()->setCell(c, r, drawn(cellValue(r, bitsShown_[std::size_t(c)])));
    map_->setDataRange(QCPRange(lo, hi));
    // Values in the cells while they stay readable, as the CLI prints them; a cell lower
    // than at fewer bits is outlined (its tooltip says why).
    if (rows * cols <= 400) {
        QFont f = p->font();
        f.setPointSizeF(f.pointSizeF() * 0.85);
        for (int r = 0; r < rows; ++r)
            for (int c = 0; c < cols; ++c) {
                const int bits = bitsShown_[std::size_t(c)];
                const double v = cellValue(r, bits);
                if (std::isnan(v))
                    continue;
                auto* t = new QCPItemText(p);
                t->setObjectName(QStringLiteral("cell_%1_%2").arg(r).arg(bits));
                t->position->setCoords(c, r);
                t->setText(cellText(r, bits));
                t->setFont(f);
                const double frac = (drawn(v) - lo) / std::max(hi - lo, 1e-9);
                t->setColor(frac < 0.25 || frac > 0.85 ? Qt::white : theme::text);
                t->setClipToAxisRect(true);
                if (betterAtFewerBits(r, bits)) {
                    auto* mark = new QCPItemRect(p);
                    mark->setObjectName(QStringLiteral("dip_%1_%2").arg(r).arg(bits));
                    mark->topLeft->setCoords(c - 0.46, r - 0.42);
                    mark->bottomRight->setCoords(c + 0.46, r + 0.42);
                    mark->setPen(QPen(theme::text, 1.2, Qt::DashLine));
                    mark->setBrush(Qt::NoBrush);
                    mark->setClipToAxisRect(true);
                }
            }
    }
    auto xt = QSharedPointer<QCPAxisTickerText>::create();
    for (int c = 0; c < cols; ++c)
        xt->addTick(c, QStringLiteral("%1-bit").arg(bitsShown_[std::size_t(c)]));
    p->xAxis->setTicker(xt);
    p->xAxis->setRange(-0.5, cols - 0.5);
    auto yt = QSharedPointer<QCPAxisTickerText>::create();
    for (int r = 0; r < rows; ++r) {
        // Every row labelled while they fit; else every n-th.
        if (rows <= 40 || r % ((rows + 39) / 40) == 0)
            yt->addTick(r, rowLabel(r));
    }
    p->yAxis->setTicker(yt);
    p->yAxis->setRange(-0.5, rows - 0.5);
    heatPanel_->setMessage(any || isRunning() ? QString()
                                              : QStringLiteral("No sweep yet \u2014 Run Sweep measures each layer quantized "
                                                               "alone at every bit width"));
    markSelection();
}

void SensitivityPanel::rebuildBars()
{
    QCustomPlot* p = barPanel_->plot();
    const int bits = barBits_->currentData().toInt();
    QVector<double> keys, values;
    bool labelled = shown_.fp32Top1.has_value();
    auto textTicks = QSharedPointer<QCPAxisTickerText>::create();
    double top = 0;
    for (int r = 0; r < doc_->layerCount(); ++r) {
        const LayerData* l = doc_->layer(r);
        const int every = (doc_->layerCount() + 29) / 30;
        if (r % every == 0)
            textTicks->addTick(r, shortLayerName(l->summary.name, l->summary.op));
        for (const auto& s : shown_.layers) {
            if (s.layer != l->summary.name)
                continue;
            auto it = s.byBits.find(bits);
            if (it == s.byBits.end())
                break;
            const BitMeasure& m = it->second;
            const double v = labelled && m.top1 ? (*shown_.fp32Top1 - *m.top1) * 100 : (1 - m.top1Agreement) * 100;
            keys << r;
            values << v;
            top = std::max(top, v);
        }
    }
    barsPlot_->setData(keys, values, true);
    p->xAxis->setTicker(textTicks);
    p->xAxis->setRange(-0.6, std::max(1, doc_->layerCount()) - 0.4);
    const double low = values.isEmpty() ? 0.0 : std::min(0.0, *std::min_element(values.begin(), values.end()));
    p->yAxis->setRange(low * 1.15, std::max(1.0, top * 1.15));
    p->yAxis->setLabel(labelled ? QStringLiteral("top-1 drop (points)") : QStringLiteral("top-1 changed vs FP32 (%)"));
    barPanel_->setTitle(labelled ? QStringLiteral("Top-1 drop per layer") : QStringLiteral("Predictions changed per layer"));
    barPanel_->setMessage(values.isEmpty() && !isRunning() ? QStringLiteral("Bars appear as the sweep measures each layer")
                                                           : QString());
    markSelection();
}

void SensitivityPanel::markSelection()
{
    const int row = selection_->currentLayer();
    const int cols = int(bitsShown_.size());
    heatMark_->setVisible(row >= 0 && cols > 0);
    heatMark_->topLeft->setCoords(-0.5, row - 0.5);
    heatMark_->bottomRight->setCoords(cols - 0.5, row + 0.5);
    // The selected layer's bar in the accent colour.
    QCustomPlot* p = barPanel_->plot();
    QCPBars* selected = nullptr;
    for (int i = 0; i < p->plottableCount(); ++i)
        if (p->plottable(i) != barsPlot_)
            selected = qobject_cast<QCPBars*>(p->plottable(i));
    if (!selected) {
        selected = new QCPBars(p->xAxis, p->yAxis);
        selected->setPen(Qt::NoPen);
        selected->setBrush(theme::accent);
        selected->setWidth(barsPlot_->width());
    }
    selected->data()->clear();
    for (auto it = barsPlot_->data()->constBegin(); it != barsPlot_->data()->constEnd(); ++it)
        if (int(std::lround(it->key)) == row)
            selected->addData(it->key, it->value);
}

int SensitivityPanel::layerAtHeatmap(const QPoint& pos) const
{
    QCustomPlot* p = heatPanel_->plot();
    if (!p->axisRect()->rect().contains(pos) || bitsShown_.empty())
        return -1;
    const int row = int(std::lround(p->yAxis->pixelToCoord(pos.y())));
    const int col = int(std::lround(p->xAxis->pixelToCoord(pos.x())));
    if (row < 0 || row >= heatRows() || col < 0 || col >= int(bitsShown_.size()))
        return -1;
    return row;
}

QString SensitivityPanel::heatmapCsv() const
{
    QString out = QStringLiteral("layer");
    for (int b : bitsShown_)
        out += QStringLiteral(",sqnr_db_%1bit").arg(b);
    out += QLatin1Char('\n');
    for (int r = 0; r < heatRows(); ++r) {
        const LayerSensitivity* o = operandAt(r);
        out += QString::fromStdString(o ? o->layer : doc_->layer(r)->summary.name);
        for (int b : bitsShown_) {
            const double v = cellValue(r, b);
            out += QLatin1Char(',') +
                (std::isnan(v)          ? QString()
                        : std::isinf(v) ? QStringLiteral("inf")
                                        : QString::number(v, 'g', 6));
        }
        out += QLatin1Char('\n');
    }
    return out;
}

QString SensitivityPanel::barsCsv() const
{
    QString out = QStringLiteral("layer,%1\n").arg(barPanel_->plot()->yAxis->label());
    for (auto it = barsPlot_->data()->constBegin(); it != barsPlot_->data()->constEnd(); ++it)
        out += QStringLiteral("%1,%2\n")
                   .arg(QString::fromStdString(doc_->layer(int(it->key))->summary.name))
                   .arg(it->value, 0, 'g', 6);
    return out;
}

} // namespace qs::ui
