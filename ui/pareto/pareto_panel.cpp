#include "ui/pareto/pareto_panel.h"

#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"
#include "ui/pareto/latency_table_model.h"
#include "ui/widgets/format.h"
#include "ui/widgets/plot_view.h"
#include "ui/widgets/theme.h"

#include "analysis/bit_budget.h"
#include "analysis/latency_front.h"
#include "data/dataset.h"
#include "quant/session.h"
#include "record/latency_record.h"
#include "record/recording.h"
#include "runtime/cpu_isa.h"
#include "store/store.h"
#include "util/hash.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QDateTime>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QToolTip>
#include <QUndoStack>
#include <QTabWidget>
#include <QTableView>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace qs::ui {
namespace {

// Read once: /proc/cpuinfo and oneDNN's dispatcher do not change while the studio runs.
const CpuIsa& cpuIsa()
{
    static const CpuIsa isa = detectCpuIsa();
    return isa;
}

std::vector<int> measuredBits(const SensitivityResult& sens)
{
    std::vector<int> bits;
    for (const auto& l : sens.layers)
        for (const auto& [b, m] : l.byBits)
            if (std::find(bits.begin(), bits.end(), b) == bits.end())
                bits.push_back(b);
    std::sort(bits.begin(), bits.end());
    return bits;
}

} // namespace

ParetoPanel::ParetoPanel(Studio& studio, QWidget* parent)
    : QWidget(parent), studio_(studio), doc_(studio.document()), config_(studio.config()), jobs_(studio.jobs())
{
    connect(&studio, &Studio::storedResultsLoaded, this, &ParetoPanel::reloadMeasured);
    setObjectName(QStringLiteral("paretoPanel"));
    panel_ = new PlotView(QStringLiteral("Mixed precision: predicted error vs size"), this);
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
    // Header: the cost axis, the latency profile's batch and threads, this CPU's ISA.
    axisCombo_ = new QComboBox(this);
    axisCombo_->setObjectName(QStringLiteral("paretoAxis"));
    axisCombo_->addItem(QStringLiteral("Size (bits)"), int(CostAxis::Size));
    axisCombo_->addItem(QStringLiteral("Measured latency (ms)"), int(CostAxis::Latency));
    axisCombo_->setToolTip(QStringLiteral("What the front trades error against: stored model size, or the latency "
                                          "measured per layer on this CPU (FP32, INT8 and the crossings between them)"));
    batch_ = new QSpinBox(this);
    batch_->setObjectName(QStringLiteral("paretoLatencyBatch"));
    batch_->setRange(1, 4096);
    batch_->setPrefix(QStringLiteral("batch "));
    threads_ = new QSpinBox(this);
    threads_->setObjectName(QStringLiteral("paretoLatencyThreads"));
    threads_->setRange(0, 256);
    threads_->setPrefix(QStringLiteral("threads "));
    threads_->setSpecialValueText(QStringLiteral("all threads"));
    threads_->setToolTip(QStringLiteral("oneDNN threads the latency is measured with (0: all cores)"));
    kvTokens_ = new QSpinBox(this);
    kvTokens_->setObjectName(QStringLiteral("paretoKvTokens"));
    kvTokens_->setRange(1, 1 << 24);
    kvTokens_->setValue(1024);
    kvTokens_->setPrefix(QStringLiteral("KV cache "));
    kvTokens_->setSuffix(QStringLiteral(" tokens"));
    kvTokens_->setToolTip(QStringLiteral("Tokens the KV cache holds: the attention operands of a sensitivity sweep "
                                         "with operands are choices of the front, K and V priced by their cache"));
    kvTokens_->setVisible(false);
    connect(kvTokens_, &QSpinBox::valueChanged, this, [this] { recompute(); });
    remeasure_ = new QPushButton(QStringLiteral("Remeasure"), this);
    remeasure_->setObjectName(QStringLiteral("paretoRemeasure"));
    remeasure_->setToolTip(QStringLiteral("Measure the latency profile again instead of using the stored one"));
    isa_ = new QLabel(this);
    isa_->setObjectName(QStringLiteral("paretoIsa"));
    const CpuIsa& cpu = cpuIsa();
    isa_->setText(QStringLiteral("<b>CPU</b> %1").arg(QString::fromStdString(cpu.summary()).toHtmlEscaped()));
    isa_->setToolTip(!cpu.saturationRisk() ? tr("oneDNN accumulates INT8 products in int32 (VNNI or AMX)")
            : int8UsesReferenceKernels()
            ? tr("No VNNI/AMX here: INT8 layers run oneDNN's exact reference kernels, so INT8 latency is slow")
            : tr("No VNNI/AMX here and QS_INT8_SATURATING=1: u8×s8 pair sums can saturate at int16"));
    auto* header = new QHBoxLayout;
    header->setContentsMargins(8, 4, 8, 0);
    auto* axisLabel = new QLabel(QStringLiteral("Cost axis"), this);
    header->addWidget(axisLabel);
    header->addWidget(axisCombo_);
    header->addWidget(batch_);
    header->addWidget(threads_);
    header->addWidget(remeasure_);
    header->addWidget(kvTokens_);
    header->addStretch(1);
    header->addWidget(isa_);

    // Where the profile came from, or the measurement in progress.
    profileText_ = new QLabel(this);
    profileText_->setObjectName(QStringLiteral("paretoProfile"));
    profileText_->setTextFormat(Qt::RichText);
    profileText_->setWordWrap(true);
    progress_ = new QProgressBar(this);
    progress_->setObjectName(QStringLiteral("paretoLatencyProgress"));
    progress_->setRange(0, 1000);
    progress_->setMaximumWidth(220);
    progress_->setTextVisible(false);
    eta_ = new QLabel(this);
    eta_->setObjectName(QStringLiteral("paretoLatencyEta"));
    cancel_ = new QPushButton(QStringLiteral("Cancel"), this);
    cancel_->setObjectName(QStringLiteral("paretoLatencyCancel"));
    connect(cancel_, &QPushButton::clicked, this, &ParetoPanel::cancelProfile);
    auto* status = new QHBoxLayout;
    status->setContentsMargins(8, 0, 8, 0);
    status->addWidget(profileText_, 1);
    status->addWidget(progress_);
    status->addWidget(eta_);
    status->addWidget(cancel_);

    tableModel_ = new LatencyTableModel(this);
    auto* sorted = new QSortFilterProxyModel(this);
    sorted->setSourceModel(tableModel_);
    sorted->setSortRole(LatencyTableModel::SortRole);
    table_ = new QTableView(this);
    table_->setObjectName(QStringLiteral("paretoLatencyTable"));
    table_->setModel(sorted);
    table_->setSortingEnabled(true);
    table_->sortByColumn(-1, Qt::AscendingOrder); // graph order until a header is clicked
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->verticalHeader()->hide();
    table_->horizontalHeader()->setSectionResizeMode(LatencyTableModel::Layer, QHeaderView::Stretch);
    table_->setAlternatingRowColors(true);
    tabs_ = new QTabWidget(this);
    tabs_->setObjectName(QStringLiteral("paretoTabs"));
    tabs_->setDocumentMode(true);
    tabs_->addTab(panel_, QStringLiteral("Front"));
    tabs_->addTab(table_, QStringLiteral("Latency table"));

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(2);
    layout->addLayout(header);
    layout->addLayout(status);
    layout->addWidget(tabs_, 1);
    layout->addLayout(row);

    latencyOptions_.threads = 0;
    batch_->setValue(latencyOptions_.batch);
    threads_->setValue(latencyOptions_.threads);
    connect(axisCombo_, &QComboBox::activated, this,
            [this](int i) { setCostAxis(CostAxis(axisCombo_->itemData(i).toInt())); });
    auto optionsEdited = [this] {
        LatencyOptions o = latencyOptions_;
        o.batch = batch_->value();
        o.threads = threads_->value();
        setLatencyOptions(o);
    };
    connect(batch_, &QSpinBox::editingFinished, this, optionsEdited);
    connect(threads_, &QSpinBox::editingFinished, this, optionsEdited);
    connect(remeasure_, &QPushButton::clicked, this, [this] { requestProfile(true); });
    connect(jobs_, &JobRunner::jobProgress, this, [this](int id, double fraction, const QString& stage, double eta) {
        if (id != profileJob_)
            return;
        progress_->setValue(int(std::lround(fraction * 1000)));
        progress_->setToolTip(stage);
        eta_->setText(eta >= 0 ? QStringLiteral("%1 left").arg(formatDuration(eta)) : QString());
    });
    connect(jobs_, &JobRunner::jobFinished, this,
            [this](int id, const QString&, JobOutcome outcome, const QString& message, double) {
                if (id != profileJob_)
                    return;
                profileJob_ = -1;
                if (outcome != JobOutcome::Done) {
                    // Without a profile there is no latency axis: back to size, saying why.
                    if (!profile_ && axis_ == CostAxis::Latency)
                        setCostAxis(CostAxis::Size);
                    updateProfileText();
                    profileText_->setText(outcome == JobOutcome::Cancelled
                                              ? QStringLiteral("Latency measurement cancelled")
                                              : QStringLiteral("Latency measurement failed: %1").arg(message.toHtmlEscaped()));
                    return;
                }
                updateProfileText();
            });

    // Click a front point to apply it; drag the budget line to move the budget.
    connect(p, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
        if (e->button() != Qt::LeftButton)
            return;
        QCustomPlot* plot = panel_->plot();
        const double lineX = plot->xAxis->coordToPixel(budgetValue());
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
        const double lineX = plot->xAxis->coordToPixel(budgetValue());
        if (dragging_)
            setBudgetValue(plot->xAxis->pixelToCoord(e->pos().x()));
        else
            plot->setCursor(budgetSet_ && std::abs(e->pos().x() - lineX) <= 6 ? Qt::SplitHCursor
                            : pointAt(e->pos()) >= 0                             ? Qt::PointingHandCursor
                                                                                 : Qt::ArrowCursor);
        if (const int i = dragging_ ? -1 : pointAt(e->pos()); i >= 0)
            QToolTip::showText(e->globalPosition().toPoint(), pointToolTip(i), plot);
        else
            QToolTip::hideText();
    });
    connect(p, &QCustomPlot::mouseRelease, this, [this] {
        if (dragging_)
            panel_->plot()->setInteraction(QCP::iRangeDrag, true);
        dragging_ = false;
    });

    connect(config_, &QuantConfigDocument::sensitivityChanged, this, &ParetoPanel::recompute);
    connect(config_, &QuantConfigDocument::sizesChanged, this, [this] {
        if (const auto sizes = config_->sizes(); sizes && sizes->kvContext > 0) {
            const QSignalBlocker quiet(kvTokens_); // one recompute below
            kvTokens_->setValue(int(std::min<int64_t>(sizes->kvContext, kvTokens_->maximum())));
        }
        recompute();
    });
    connect(config_, &QuantConfigDocument::configChanged, this, [this] {
        updateCurrent();
        panel_->plot()->replot();
    });
    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        measured_.clear();
        budgetSet_ = false;
        budgetMsSet_ = false;
        // A profile belongs to one model: drop it, and measure the new one's if on that axis.
        cancelProfile();
        profile_.reset();
        links_.reset();
        tableModel_->setProfile({});
        emit latencyProfileChanged();
        if (axis_ == CostAxis::Latency && doc_->model())
            requestProfile();
        updateProfileText();
    });
    updateAxisLabels();
    updateProfileText();
    recompute();
}

void ParetoPanel::setCostAxis(CostAxis axis)
{
    axisCombo_->setCurrentIndex(axisCombo_->findData(int(axis)));
    if (axis == axis_)
        return;
    axis_ = axis;
    updateAxisLabels();
    updateProfileText();
    if (axis_ == CostAxis::Latency && !profile_) {
        front_.clear();
        latencyMs_.clear();
        redraw();
        emit frontChanged();
        requestProfile();
        return;
    }
    recompute();
}

void ParetoPanel::setLatencyOptions(const LatencyOptions& options)
{
    const bool changed = options.batch != latencyOptions_.batch || options.threads != latencyOptions_.threads ||
                         options.repeats != latencyOptions_.repeats || options.warmup != latencyOptions_.warmup;
    latencyOptions_ = options;
    batch_->setValue(options.batch);
    threads_->setValue(options.threads);
    if (changed && (profile_ || isMeasuring()))
        requestProfile(); // the profile is per (batch, threads)
}

bool ParetoPanel::isMeasuring() const
{
    return profileJob_ >= 0 && jobs_->isRunning(profileJob_);
}

void ParetoPanel::cancelProfile()
{
    if (isMeasuring())
        jobs_->cancel(profileJob_);
}

int ParetoPanel::requestProfile(bool remeasure)
{
    const auto model = doc_->model();
    if (!model)
        return -1;
    const std::string db = studio_.storePath().toStdString();
    const std::string modelPath = model->path.toStdString();
    const LatencyOptions options = latencyOptions_;
    const int generation = doc_->generation();
    // The inputs' noise depends on the model and the data only: measured once per model.
    std::shared_ptr<const std::map<std::string, double>> noise;
    if (noiseGeneration_ == generation)
        noise = std::make_shared<const std::map<std::string, double>>(inputNoise_);
    const auto sens = config_->sensitivity();
    const int64_t samples = sens && sens->samples > 0 ? std::min<int64_t>(sens->samples, 256) : 64;
    const DataOptions dataOptions = studio_.calibrationDataOptions(samples);
    QPointer<ParetoPanel> self(this);
    profileJob_ = jobs_->start(
        QStringLiteral("latency"), QStringLiteral("Measuring latency of %1").arg(model->displayName()),
        [self, model, db, modelPath, dataOptions, options, generation, noise, samples, remeasure](
            Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            std::optional<Store> store;
            std::string hash = "in-memory";
            if (!modelPath.empty()) {
                hash = sha256FileCached(modelPath);
                if (!db.empty()) {
                    store = Store::open(db);
                    recordModel(*store, *model->graph, modelPath);
                }
            }
            bool cached = false;
            Progress measure = progress.sub(0, noise ? 1.0 : 0.8);
            auto profile = std::make_shared<const LatencyProfile>(cachedLatency(
                store ? &*store : nullptr, *model->graph, hash, options, remeasure, cached, measure, cancel));
            QuantSession folded(*model->graph, {});
            auto links = std::make_shared<const LayerLinks>(layerLinks(folded.graph()));
            auto inputNoise = noise;
            if (!inputNoise) {
                // An INT8 kernel also reads its input in 8 bits: that noise, from an activation sweep.
                progress.report(0.8, "INT8 input noise");
                const Dataset data = loadDataset(dataOptions, *model->graph);
                SensitivityOptions so;
                so.mode = SensitivityMode::Activations;
                so.bits = {8};
                so.limit = samples;
                so.threads = options.threads;
                Progress sweep = progress.sub(0.8, 1);
                const SensitivityResult act = measureSensitivity(*model->graph, data, so, sweep, cancel);
                if (!act.complete)
                    throw Cancelled();
                inputNoise = std::make_shared<const std::map<std::string, double>>(inputNoiseAt8(act));
            }
            return [self, profile, links, inputNoise, cached, generation] {
                if (!self || self->doc_->generation() != generation)
                    return;
                self->noiseGeneration_ = generation;
                self->onProfile(profile, links, inputNoise, cached);
            };
        });
    progress_->setValue(0);
    eta_->clear();
    updateProfileText();
    return profileJob_;
}

void ParetoPanel::onProfile(std::shared_ptr<const LatencyProfile> profile, std::shared_ptr<const LayerLinks> links,
                            std::shared_ptr<const std::map<std::string, double>> noise, bool cached)
{
    profile_ = std::move(profile);
    links_ = std::move(links);
    inputNoise_ = *noise;
    profileCached_ = cached;
    tableModel_->setProfile(*profile_);
    table_->resizeColumnsToContents();
    updateAxisLabels();
    updateProfileText();
    emit latencyProfileChanged();
    if (axis_ == CostAxis::Latency)
        recompute();
}

void ParetoPanel::updateAxisLabels()
{
    QCustomPlot* p = panel_->plot();
    const bool latency = axis_ == CostAxis::Latency;
    if (latency)
        measuredGraph_->removeFromLegend(); // runs are sized, not timed
    else if (!p->legend->hasItemWithPlottable(measuredGraph_))
        measuredGraph_->addToLegend();
    panel_->setTitle(latency ? QStringLiteral("Mixed precision: predicted error vs measured latency")
                             : QStringLiteral("Mixed precision: predicted error vs size"));
    p->xAxis->setLabel(latency ? QStringLiteral("predicted latency (ms per batch of %1, measured on this CPU)")
                                     .arg(profile_ ? profile_->batch : latencyOptions_.batch)
                               : QStringLiteral("model size (KiB, stored)"));
    panel_->setFileStem(latency ? QStringLiteral("pareto-latency") : QStringLiteral("pareto"));
}

void ParetoPanel::updateProfileText()
{
    const bool latency = axis_ == CostAxis::Latency;
    const bool measuring = isMeasuring();
    batch_->setVisible(latency);
    threads_->setVisible(latency);
    remeasure_->setVisible(latency);
    remeasure_->setEnabled(!measuring && doc_->model());
    progress_->setVisible(measuring);
    eta_->setVisible(measuring);
    cancel_->setVisible(measuring);
    profileText_->setVisible(latency || measuring);
    if (measuring) {
        profileText_->setText(QStringLiteral("Measuring the latency of every layer in FP32 and INT8 (batch %1)…")
                                  .arg(latencyOptions_.batch));
        return;
    }
    if (!profile_) {
        profileText_->setText(QStringLiteral("No latency profile yet"));
        return;
    }
    const LatencyProfile& p = *profile_;
    const QString when = p.measuredMs > 0 ? QDateTime::fromMSecsSinceEpoch(p.measuredMs).toLocalTime().toString(
                                                QStringLiteral("yyyy-MM-dd HH:mm"))
                                          : QString();
    const QString source = profileCached_ ? QStringLiteral("cached from %1").arg(when)
                           : p.id        ? QStringLiteral("measured now, stored as profile #%1").arg(p.id)
                                         : QStringLiteral("measured now (no database open: not stored)");
    profileText_->setText(QStringLiteral("Latency profile <b>%1</b> · batch %2, %3 · median of %4 · "
                                         "FP32 %5 ms, all INT8 %6 ms per pass")
                              .arg(source)
                              .arg(p.batch)
                              .arg(p.threads > 0 ? QStringLiteral("%1 threads").arg(p.threads) : QStringLiteral("all threads"))
                              .arg(p.repeats)
                              .arg(p.fp32TotalMs, 0, 'f', 3)
                              .arg(p.int8TotalMs, 0, 'f', 3));
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
    latencyMs_.clear();
    best_ = -1;
    const bool latency = axis_ == CostAxis::Latency;
    if (!sizes || !sens || sens->layers.empty() || (latency && !profile_)) {
        redraw();
        emit frontChanged();
        return;
    }
    QuantConfig base = config_->config();
    base.layers.clear();
    const auto profile = latency ? profile_ : nullptr;
    const auto links = links_;
    // Operands swept with the sensitivity join the size front, their KV cache over kvTokens().
    const bool operands = !latency && std::any_of(sens->layers.begin(), sens->layers.end(), [&](const LayerSensitivity& l) {
        return std::any_of(sizes->operands.begin(), sizes->operands.end(),
                           [&](const OperandShape& o) { return o.point == l.layer; });
    });
    kvTokens_->setVisible(operands);
    auto kvSizes = std::make_shared<ModelSizeTable>(*sizes);
    kvSizes->kvContext = kvTokens();
    const auto noise = std::make_shared<const std::map<std::string, double>>(inputNoise_);
    QPointer<ParetoPanel> self(this);
    // The DP is exact over 4096 cost buckets per layer: milliseconds for the demo, more for
    // hundreds of layers, so always off the GUI thread.
    jobs_->start(QStringLiteral("pareto"), QStringLiteral("Computing the Pareto front"),
                 [self, sizes, kvSizes, sens, base, profile, links, noise, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
                     const std::vector<int> bits = measuredBits(*sens);
                     auto front = std::make_shared<std::vector<FrontPoint>>();
                     auto ms = std::make_shared<std::vector<double>>();
                     if (profile) {
                         MixedConstraints c;
                         c.allowedBits = std::set<int>(bits.begin(), bits.end());
                         c.maxBits = kFloatBits;
                         *front = latencyFront(*sizes, *sens, bits, base, *profile, *links, *noise, c);
                         for (const FrontPoint& p : *front)
                             ms->push_back(predictLatencyMs(*profile, *links, int8Layers(p)));
                     } else {
                         std::vector<LayerOptions> options = mixedLayerOptions(*sizes, *sens, bits, base, false);
                         for (LayerOptions& o : mixedOperandOptions(*kvSizes, *sens, bits, base, false))
                             options.push_back(std::move(o));
                         *front = paretoFront(options);
                     }
                     return [self, front, ms, generation] {
                         if (!self || self->computeGeneration_ != generation)
                             return;
                         self->front_ = std::move(*front);
                         self->latencyMs_ = std::move(*ms);
                         self->redraw();
                         emit self->frontChanged();
                     };
                 });
}

void ParetoPanel::reloadMeasured()
{
    const auto model = doc_->model();
    const QString store = studio_.storePath();
    if (!model || model->path.isEmpty() || store.isEmpty())
        return;
    // The model's hash as the stored results found it: none when the store has no model
    // of the file's size, and then no runs of it either (the file is not read).
    const auto stored = doc_->stored();
    const std::string hash = stored ? stored->modelHash : std::string();
    if (hash.empty()) {
        measured_.clear();
        redraw();
        emit measuredChanged();
        return;
    }
    const std::string db = store.toStdString();
    const int generation = doc_->generation();
    QPointer<ParetoPanel> self(this);
    jobs_->start(QStringLiteral("pareto-runs"), QStringLiteral("Reading measured runs"),
                 [self, hash, db, generation](Progress&, const CancelToken&) -> JobRunner::Deliver {
                     StoreOptions options;
                     options.mode = OpenMode::ReadOnly;
                     const Store s = Store::open(db, options);
                     RunFilter f;
                     f.model = hash;
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
    const bool latency = axis_ == CostAxis::Latency;
    QVector<double> x, y;
    for (std::size_t i = 0; i < front_.size(); ++i)
        if (std::isfinite(front_[i].predictedSqnrDb)) {
            x << costOf(int(i));
            y << front_[i].predictedSqnrDb;
        }
    frontGraph_->setData(x, y, !latency); // the graph's latency need not grow with the chain's
    // Measured runs are sized, not timed: shown on the size axis only.
    QVector<double> mx, my;
    for (const auto& m : measured_)
        if (!latency) {
            mx << m.sizeKiB;
            my << m.sqnrDb;
        }
    measuredGraph_->setData(mx, my);
    if (front_.empty()) {
        panel_->setMessage(!config_->sensitivity() ? QStringLiteral("No sensitivity yet \u2014 run a sweep in the "
                                                                    "Sensitivity view; the front is predicted from it")
                           : latency && !profile_  ? (isMeasuring() ? QStringLiteral("Measuring the latency profile\u2026")
                                                                    : QStringLiteral("No latency profile"))
                                                   : QStringLiteral("Computing the front\u2026"));
    } else {
        panel_->setMessage(QString());
    }
    // Axes around everything drawn, the current marker included.
    updateCurrent();
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    if (latency ? budgetMsSet_ : budgetSet_) { // the budget line stays in view
        x0 = x1 = budgetValue();
    }
    for (QCPGraph* g : {frontGraph_, measuredGraph_, current_})
        for (auto it = g->data()->constBegin(); it != g->data()->constEnd(); ++it) {
            x0 = std::min(x0, it->key);
            x1 = std::max(x1, it->key);
            y0 = std::min(y0, it->value);
            y1 = std::max(y1, it->value);
        }
    if (std::isfinite(x0)) {
        const double dx = std::max((x1 - x0) * 0.06, latency ? 1e-3 : 1.0), dy = std::max((y1 - y0) * 0.08, 1.0);
        p->xAxis->setRange(std::max(0.0, x0 - dx), x1 + dx);
        p->yAxis->setRange(y0 - dy, y1 + dy);
    }
    // Each measured point names its run.
    for (QCPItemText* t : runLabels_)
        p->removeItem(t);
    runLabels_.clear();
    for (const auto& m : measured_) {
        if (latency)
            break;
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
    if (!budgetSet_ && !front_.empty() && !latency) {
        budgetKiB_ = config_->sizeBits() > 0 ? double(config_->sizeBits()) / 8192.0 : sizeKiB(front_.back());
        budgetSet_ = true;
    }
    if (!budgetMsSet_ && !front_.empty() && latency) {
        budgetMs_ = currentLatencyMs().value_or(*std::max_element(latencyMs_.begin(), latencyMs_.end()));
        budgetMsSet_ = true;
    }
    updateBudget();
    p->replot();
}

std::optional<double> ParetoPanel::currentLatencyMs() const
{
    if (!profile_ || !links_)
        return std::nullopt;
    try {
        return predictLatencyMs(*profile_, *links_, int8Layers(config_->config(), config_->layerNames()));
    } catch (const Error&) {
        return std::nullopt; // a profile of other layers (a model changing under it)
    }
}

std::optional<double> ParetoPanel::currentSqnrDb() const
{
    const auto pred = config_->prediction();
    if (!pred)
        return std::nullopt;
    if (axis_ == CostAxis::Size)
        return pred->sqnrDb;
    // The latency front's options add each INT8 layer's input noise; so does the marker.
    double noise = pred->noise;
    for (const auto& layer : int8Layers(config_->config(), config_->layerNames()))
        if (auto it = inputNoise_.find(layer); it != inputNoise_.end())
            noise += it->second;
    return noise > 0 ? -10.0 * std::log10(noise) : INFINITY;
}

void ParetoPanel::updateCurrent()
{
    current_->data()->clear();
    const auto sqnr = currentSqnrDb();
    if (!sqnr || !std::isfinite(*sqnr))
        return;
    if (axis_ == CostAxis::Latency) {
        if (auto ms = currentLatencyMs())
            current_->addData(*ms, *sqnr);
    } else if (const int64_t bits = config_->sizeBits(); bits > 0) {
        // With the operands on the front, the configuration's KV cache counts too.
        int64_t kv = 0;
        if (const auto sizes = config_->sizes(); sizes && !front_.empty() &&
                                                 !front_.front().operandBits.empty()) {
            ModelSizeTable t = *sizes;
            t.kvContext = kvTokens();
            for (const OperandShape& o : t.operands) {
                const auto spec = config_->config().forOperand(o.point, o.role);
                kv += t.operandBits(o, spec ? *spec : OperandSpec {});
            }
        }
        current_->addData(double(bits + kv) / 8192.0, *sqnr);
    }
}

void ParetoPanel::setBudgetKiB(double kib)
{
    budgetKiB_ = std::max(0.0, kib);
    budgetSet_ = true;
    updateBudget();
    panel_->plot()->replot();
    emit budgetChanged(budgetKiB_);
}

void ParetoPanel::setBudgetMs(double ms)
{
    budgetMs_ = std::max(0.0, ms);
    budgetMsSet_ = true;
    updateBudget();
    panel_->plot()->replot();
    emit budgetChanged(budgetMs_);
}

void ParetoPanel::setBudgetValue(double x)
{
    if (axis_ == CostAxis::Latency)
        setBudgetMs(x);
    else
        setBudgetKiB(x);
}

double ParetoPanel::costOf(int index) const
{
    if (axis_ == CostAxis::Latency)
        return index >= 0 && index < int(latencyMs_.size()) ? latencyMs_[std::size_t(index)] : NAN;
    return sizeKiB(front_[std::size_t(index)]);
}

void ParetoPanel::updateBudget()
{
    const bool latency = axis_ == CostAxis::Latency;
    const bool on = (latency ? budgetMsSet_ : budgetSet_) && !front_.empty();
    budgetLine_->setVisible(on);
    budgetText_->setVisible(on);
    bestGraph_->data()->clear();
    best_ = -1;
    const QString unit = latency ? QStringLiteral("ms") : QStringLiteral("KiB");
    const int decimals = latency ? 3 : 1;
    if (!on) {
        summary_->setText(front_.empty() ? QString()
                                         : latency ? QStringLiteral("Drag the green line to set a latency budget")
                                                   : QStringLiteral("Drag the green line to set a size budget"));
        applyBest_->setEnabled(false);
        return;
    }
    const double budget = budgetValue();
    budgetLine_->point1->setCoords(budget, 0);
    budgetLine_->point2->setCoords(budget, 1);
    budgetText_->position->setCoords(budget, 0.02);
    budgetText_->setText(QStringLiteral("budget %1 %2").arg(budget, 0, 'f', decimals).arg(unit));
    if (latency) {
        // The point drawn left of the line with the least predicted noise.
        for (std::size_t i = 0; i < front_.size(); ++i)
            if (latencyMs_[i] <= budget && (best_ < 0 || front_[i].predictedNoise < front_[std::size_t(best_)].predictedNoise))
                best_ = int(i);
    } else {
        // FrontPoint::cost is the quantized layers' stored bits; the budget is the whole model.
        const int64_t other = config_->sizes() ? config_->sizes()->otherBits : 0;
        const auto budgetBits = int64_t(std::floor(budgetKiB_ * 8192.0)) - other;
        if (auto best = bestWithin(front_, budgetBits)) {
            for (std::size_t i = 0; i < front_.size(); ++i)
                if (front_[i].bits == best->bits)
                    best_ = int(i);
        }
    }
    if (best_ < 0) {
        double smallest = costOf(0);
        for (std::size_t i = 1; i < front_.size(); ++i)
            smallest = std::min(smallest, costOf(int(i)));
        summary_->setText(QStringLiteral("Nothing fits in %1 %3: the smallest configuration needs %2 %3")
                              .arg(budget, 0, 'f', decimals)
                              .arg(smallest, 0, 'f', decimals)
                              .arg(unit));
        applyBest_->setEnabled(false);
        return;
    }
    const FrontPoint& b = front_[std::size_t(best_)];
    bestGraph_->addData(costOf(best_), b.predictedSqnrDb);
    const QString predicted = std::isfinite(b.predictedSqnrDb) ? QStringLiteral("%1 dB").arg(b.predictedSqnrDb, 0, 'f', 1)
                                                               : QStringLiteral("no error (all float)");
    if (latency) {
        const std::size_t int8 = int8Layers(b).size();
        summary_->setText(QStringLiteral("Best within <b>%1 ms</b>: %2 ms, predicted <b>%3</b>, %4 of %5 layers in INT8")
                              .arg(budget, 0, 'f', 3)
                              .arg(costOf(best_), 0, 'f', 3)
                              .arg(predicted)
                              .arg(int8)
                              .arg(b.bits.size()));
    } else {
        summary_->setText(QStringLiteral("Best within <b>%1 KiB</b>: %2 KiB, predicted <b>%3 dB</b>, %4 average weight bits")
                              .arg(budgetKiB_, 0, 'f', 1)
                              .arg(sizeKiB(b), 0, 'f', 1)
                              .arg(b.predictedSqnrDb, 0, 'f', 1)
                              .arg(b.averageBits, 0, 'f', 2));
    }
    applyBest_->setEnabled(true);
}

void ParetoPanel::applyPoint(int index)
{
    if (index < 0 || index >= int(front_.size()))
        return;
    const FrontPoint& p = front_[std::size_t(index)];
    std::map<std::string, std::pair<int, int>> bits;
    if (axis_ == CostAxis::Latency) {
        // INT8 kernels read 8-bit activations; the float option runs the whole layer in float.
        for (const auto& [layer, b] : p.bits)
            bits[layer] = b < 16 ? std::pair(b, 8) : std::pair(kFloatBits, kFloatBits);
        config_->applyBits(bits, QStringLiteral("Apply Pareto point (%1 ms, %2 dB)")
                                     .arg(costOf(index), 0, 'f', 3)
                                     .arg(p.predictedSqnrDb, 0, 'f', 1));
        return;
    }
    for (const auto& [layer, b] : p.bits)
        bits[layer] = {b, 0}; // activation bits stay
    const QString text =
        QStringLiteral("Apply Pareto point (%1 KiB, %2 dB)").arg(sizeKiB(p), 0, 'f', 1).arg(p.predictedSqnrDb, 0, 'f', 1);
    if (p.operandBits.empty()) {
        config_->applyBits(bits, text);
        return;
    }
    // The layers' bits and the operands' bits are one undo step.
    config_->undoStack()->beginMacro(text);
    config_->applyBits(bits, text);
    config_->setConfig(withOperandBits(config_->config(), p.operandBits), text);
    config_->undoStack()->endMacro();
}

int ParetoPanel::kvTokens() const
{
    return kvTokens_->value();
}

void ParetoPanel::setKvTokens(int tokens)
{
    kvTokens_->setValue(tokens);
}

QString ParetoPanel::pointToolTip(int index) const
{
    if (index < 0 || index >= int(front_.size()))
        return QString();
    const FrontPoint& p = front_[std::size_t(index)];
    QString t = QStringLiteral("<b>%1 KiB</b>").arg(sizeKiB(p), 0, 'f', 1);
    if (!p.operandBits.empty())
        t += QStringLiteral(" (KV cache %1 KiB over %2 tokens)").arg(double(p.kvCacheBits) / 8192.0, 0, 'f', 1).arg(kvTokens());
    t += QStringLiteral(", predicted %1 dB, %2 average bits").arg(p.predictedSqnrDb, 0, 'f', 1).arg(p.averageBits, 0, 'f', 2);
    // Layers grouped by bits: a front of hundreds of layers stays readable.
    std::map<int, int> byBits;
    for (const auto& [layer, b] : p.bits)
        ++byBits[b];
    QStringList groups;
    for (const auto& [b, n] : byBits)
        groups << QStringLiteral("%1 at %2").arg(n).arg(b >= 16 ? QStringLiteral("float") : QStringLiteral("%1 bits").arg(b));
    t += QStringLiteral("<br/>Layers: %1").arg(groups.join(QStringLiteral(", ")));
    if (!p.operandBits.empty()) {
        t += QStringLiteral("<br/>Attention operands:");
        for (const auto& [point, b] : p.operandBits)
            t += QStringLiteral("<br/>&nbsp;&nbsp;%1: %2")
                     .arg(QString::fromStdString(point).toHtmlEscaped(),
                          b >= 16 ? QStringLiteral("float") : QStringLiteral("%1 bits").arg(b));
    }
    return t + QStringLiteral("<br/><i>Click to apply</i>");
}

int ParetoPanel::pointAt(const QPoint& pos, double radius) const
{
    const QCustomPlot* p = panel_->plot();
    int best = -1;
    double bestD = radius;
    for (std::size_t i = 0; i < front_.size(); ++i) {
        if (!std::isfinite(front_[i].predictedSqnrDb))
            continue;
        const double dx = p->xAxis->coordToPixel(costOf(int(i))) - pos.x();
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
    QString out = QStringLiteral("kind,size_kib,latency_ms,sqnr_db,average_bits,run\n");
    for (std::size_t i = 0; i < front_.size(); ++i) {
        const FrontPoint& f = front_[i];
        const QString ms = i < latencyMs_.size() ? QString::number(latencyMs_[i], 'g', 8) : QString();
        out += QStringLiteral("front,%1,%2,%3,%4,\n")
                   .arg(sizeKiB(f), 0, 'g', 8)
                   .arg(ms)
                   .arg(f.predictedSqnrDb, 0, 'g', 6)
                   .arg(f.averageBits, 0, 'g', 4);
    }
    for (const auto& m : measured_)
        out += QStringLiteral("measured,%1,,%2,,%3\n").arg(m.sizeKiB, 0, 'g', 8).arg(m.sqnrDb, 0, 'g', 6).arg(m.run);
    return out;
}

} // namespace qs::ui
