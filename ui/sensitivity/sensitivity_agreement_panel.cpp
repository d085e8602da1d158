#include "ui/sensitivity/sensitivity_agreement_panel.h"

#include "ui/document/layer_selection.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_progress_row.h"
#include "ui/jobs/job_runner.h"
#include "ui/sensitivity/sensitivity_agreement_model.h"
#include "ui/widgets/format.h"
#include "ui/widgets/theme.h"

#include "data/dataset.h"
#include "record/recording.h"
#include "record/sensitivity_record.h"
#include "store/store.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPointer>
#include <QPushButton>
#include <QSpinBox>
#include <QTableView>
#include <QTableWidget>
#include <QThread>
#include <QVBoxLayout>

#include <cmath>

namespace qs::ui {
namespace {

// Spearman rho as a colour: blue agreeing, red opposed, white unrelated.
QColor rhoColor(double rho)
{
    const double a = std::clamp(std::abs(rho), 0.0, 1.0);
    const QColor end = rho >= 0 ? QColor(0x25, 0x63, 0xeb) : QColor(0xdc, 0x26, 0x26);
    auto mix = [a](int from, int to) { return int(std::lround(from + (to - from) * a * 0.75)); };
    return QColor(mix(255, end.red()), mix(255, end.green()), mix(255, end.blue()));
}

QLabel* mutedLabel(const QString& text, QWidget* parent)
{
    auto* l = new QLabel(text, parent);
    l->setProperty("role", "muted");
    return l;
}

} // namespace

SensitivityAgreementPanel::SensitivityAgreementPanel(Studio& studio, QWidget* parent)
    : QWidget(parent), studio_(studio), doc_(studio.document()), config_(studio.config()),
      selection_(studio.selection()), jobs_(studio.jobs())
{
    setObjectName(QStringLiteral("sensitivityAgreementView"));
    bits_ = new QSpinBox(this);
    bits_->setObjectName(QStringLiteral("agreementBits"));
    bits_->setRange(2, 8);
    bits_->setValue(4);
    bits_->setSuffix(QStringLiteral("-bit"));
    bits_->setToolTip(QStringLiteral("The weight bit width every metric is measured at"));
    bootstrap_ = new QSpinBox(this);
    bootstrap_->setObjectName(QStringLiteral("agreementBootstrap"));
    bootstrap_->setRange(0, 5000);
    bootstrap_->setValue(200);
    bootstrap_->setSingleStep(50);
    bootstrap_->setSuffix(QStringLiteral(" resamples"));
    bootstrap_->setToolTip(QStringLiteral("Bootstrap resamples of the calibration batches behind the 95% intervals "
                                          "(0: no intervals)"));
    limit_ = new QSpinBox(this);
    limit_->setObjectName(QStringLiteral("agreementLimit"));
    limit_->setRange(8, 100000);
    limit_->setValue(256);
    limit_->setSingleStep(64);
    limit_->setSuffix(QStringLiteral(" samples"));
    limit_->setToolTip(QStringLiteral("Samples of the calibration data, split into at least 8 batches (of at most 32) "
                                      "that the bootstrap resamples"));
    run_ = new QPushButton(QStringLiteral("Compare Metrics"), this);
    run_->setObjectName(QStringLiteral("agreementRun"));
    run_->setToolTip(QStringLiteral("Measure one-shot KL, local SQNR, Hessian and weight kurtosis for every layer and "
                                    "how far their rankings agree"));
    progress_ = new JobProgressRow(jobs_, this);
    status_ = new QLabel(this);
    status_->setObjectName(QStringLiteral("agreementStatus"));
    status_->setProperty("role", "muted");
    status_->setWordWrap(true);

    model_ = new SensitivityAgreementModel(this);
    proxy_ = new SensitivityAgreementProxy(this);
    proxy_->setSourceModel(model_);
    proxy_->setSortRole(SensitivityAgreementModel::SortRole);
    table_ = new QTableView(this);
    table_->setObjectName(QStringLiteral("agreementTable"));
    table_->setModel(proxy_);
    table_->setSortingEnabled(true);
    table_->sortByColumn(0, Qt::AscendingOrder);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setAlternatingRowColors(true);
    table_->verticalHeader()->hide();
    table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 8);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setStretchLastSection(false);
    table_->setWordWrap(false);

    spearman_ = new QTableWidget(this);
    spearman_->setObjectName(QStringLiteral("agreementSpearman"));
    spearman_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    spearman_->setSelectionMode(QAbstractItemView::NoSelection);
    spearman_->setFocusPolicy(Qt::NoFocus);
    spearman_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    spearman_->verticalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    spearman_->setToolTip(QStringLiteral("Spearman rank correlation between the metrics' layer rankings "
                                         "(each oriented so that higher = more sensitive)"));
    verdict_ = new QLabel(this);
    verdict_->setObjectName(QStringLiteral("agreementVerdict"));
    verdict_->setWordWrap(true);
    verdict_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    QFont vf = verdict_->font();
    vf.setBold(true);
    verdict_->setFont(vf);

    auto* controls = new QHBoxLayout;
    controls->setContentsMargins(8, 6, 8, 2);
    controls->setSpacing(6);
    controls->addWidget(mutedLabel(QStringLiteral("Bits"), this));
    controls->addWidget(bits_);
    controls->addWidget(mutedLabel(QStringLiteral("Bootstrap"), this));
    controls->addWidget(bootstrap_);
    controls->addWidget(limit_);
    controls->addStretch(1);
    controls->addWidget(run_);
    auto* progressRow = new QHBoxLayout;
    progressRow->setContentsMargins(8, 0, 8, 0);
    progressRow->addWidget(progress_);
    auto* statusRow = new QHBoxLayout;
    statusRow->setContentsMargins(8, 0, 8, 0);
    statusRow->addWidget(status_);

    auto* agreement = new QWidget(this);
    auto* al = new QVBoxLayout(agreement);
    al->setContentsMargins(8, 4, 8, 0);
    al->setSpacing(4);
    auto* heading = new QLabel(QStringLiteral("Rank agreement (Spearman \u03C1)"), agreement);
    QFont hf = heading->font();
    hf.setBold(true);
    heading->setFont(hf);
    al->addWidget(heading);
    al->addWidget(spearman_);
    al->addWidget(verdict_);
    auto* legend = mutedLabel(QStringLiteral("Each cell: value [95% bootstrap interval] \u00B7 # rank, 1 = most sensitive "
                                             "\u00B7 click a row to select the layer"),
                              this);
    legend->setWordWrap(true);
    auto* tableBox = new QVBoxLayout;
    tableBox->setContentsMargins(8, 0, 8, 0);
    tableBox->setSpacing(2);
    tableBox->addWidget(legend);
    tableBox->addWidget(table_, 1);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 4);
    layout->setSpacing(2);
    layout->addLayout(controls);
    layout->addLayout(progressRow);
    layout->addLayout(statusRow);
    layout->addLayout(tableBox, 1);
    layout->addWidget(agreement);

    connect(run_, &QPushButton::clicked, this, [this] { start(); });
    connect(progress_, &JobProgressRow::finished, this, [this](JobOutcome outcome, const QString& message) {
        if (outcome == JobOutcome::Cancelled)
            status_->setText(QStringLiteral("Cancelled: no comparison (intervals from part of the batches would mislead)."));
        else if (outcome == JobOutcome::Failed)
            status_->setText(QStringLiteral("Failed: %1").arg(message));
        updateControls();
        emit comparisonFinished(outcome == JobOutcome::Done);
    });
    connect(table_->selectionModel(), &QItemSelectionModel::currentRowChanged, this, [this](const QModelIndex& current) {
        if (syncing_ || !current.isValid())
            return;
        const int row = current.data(SensitivityAgreementModel::LayerRowRole).toInt();
        if (row >= 0)
            selection_->selectLayer(row);
    });
    connect(selection_, &LayerSelection::currentChanged, this, &SensitivityAgreementPanel::markSelection);
    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        jobs_->cancelKind(QStringLiteral("sensitivity-agreement"));
        model_->clear();
        fillSpearman();
        status_->setText(doc_->layerCount() ? QStringLiteral("Compare Metrics measures four sensitivity signals per "
                                                             "layer and how far their rankings agree.")
                                            : QString());
        updateControls();
    });
    fillSpearman();
    updateControls();
}

MetricsOptions SensitivityAgreementPanel::currentOptions() const
{
    MetricsOptions o;
    o.bits = bits_->value();
    o.bootstrap = bootstrap_->value();
    o.limit = limit_->value();
    // At least 8 batches: the bootstrap resamples batches, and a handful gives no interval worth the name.
    o.batch = std::clamp<int64_t>(o.limit / 8, 1, 32);
    o.threads = std::max(1, QThread::idealThreadCount() - 1); // one core stays free for the GUI thread
    o.base = config_->config(); // granularity and calibrator of the tested layer, as the sweep uses
    o.base.layers.clear();
    return o;
}

bool SensitivityAgreementPanel::isRunning() const
{
    return progress_->isRunning();
}

const SensitivityAgreement* SensitivityAgreementPanel::result() const
{
    return model_->result();
}

void SensitivityAgreementPanel::cancel()
{
    progress_->cancel();
}

void SensitivityAgreementPanel::updateControls()
{
    const bool running = isRunning();
    run_->setEnabled(!running && doc_->model());
    bits_->setEnabled(!running);
    bootstrap_->setEnabled(!running);
    limit_->setEnabled(!running);
}

int SensitivityAgreementPanel::start()
{
    const auto model = doc_->model();
    if (!model || isRunning())
        return -1;
    const MetricsOptions opts = currentOptions();
    const DataOptions dataOptions = studio_.calibrationDataOptions(opts.limit);
    const std::string storePath = studio_.storePath().toStdString();
    const std::string modelPath = model->path.toStdString();
    const int generation = doc_->generation();
    lastRun_ = 0;
    QPointer<SensitivityAgreementPanel> self(this);
    const int job = progress_->start(
        QStringLiteral("sensitivity-agreement"), QStringLiteral("Comparing sensitivity metrics of %1").arg(model->displayName()),
        [self, model, opts, dataOptions, storePath, modelPath, generation](Progress& progress,
                                                                   const CancelToken& cancel) -> JobRunner::Deliver {
            progress.report(0, "loading data");
            const Dataset data = loadDataset(dataOptions, *model->graph);
            cancel.check();
            std::optional<Store> store;
            std::optional<RunGuard> run;
            if (!storePath.empty() && !modelPath.empty()) {
                store = Store::open(storePath);
                run.emplace(*store, runStart(*store, RunKind::Sensitivity, *model->graph, modelPath, data,
                                             agreementRunConfig(opts), {"studio"}));
            }
            Progress sub = progress.sub(0.02, 1);
            auto r = std::make_shared<const SensitivityAgreement>(
                runRecorded(run, [&] { return measureSensitivityAgreement(*model->graph, data, opts, sub, cancel); }));
            int64_t runId = 0;
            if (run) {
                run->addLayers(agreementLayerRows(*r));
                run->finish(agreementRunMetrics(*r));
                runId = run->id();
            }
            return [self, r, runId, generation] {
                if (self && self->doc_->generation() == generation)
                    self->showResult(r, runId);
            };
        });
    status_->setText(QStringLiteral("Measuring %1 samples at %2 bits\u2026").arg(opts.limit).arg(opts.bits));
    updateControls();
    return job;
}

void SensitivityAgreementPanel::showResult(std::shared_ptr<const SensitivityAgreement> r, int64_t runId)
{
    lastRun_ = runId;
    const auto& m = doc_->model();
    std::vector<int> rows;
    for (const auto& name : r->layers)
        rows.push_back(m ? m->layerRow(name) : -1);
    const SensitivityAgreement& a = *r;
    model_->setResult(std::move(r), std::move(rows));
    status_->setText(QStringLiteral("%1 layers at %2 bits \u00B7 %3 samples in %4 batches \u00B7 %5 bootstrap resamples "
                                    "\u00B7 %6 \u00B7 %7")
                         .arg(a.layers.size())
                         .arg(a.bits)
                         .arg(a.samples)
                         .arg(a.batches)
                         .arg(a.bootstrap)
                         .arg(formatDuration(a.seconds),
                              runId ? QStringLiteral("recorded as run #%1").arg(runId)
                                    : QStringLiteral("not recorded (no database open)")));
    fillSpearman();
    markSelection();
}

void SensitivityAgreementPanel::fillSpearman()
{
    const SensitivityAgreement* r = model_->result();
    const int n = r ? int(r->metrics.size()) : 0;
    spearman_->clear();
    spearman_->setRowCount(n);
    spearman_->setColumnCount(n);
    QStringList names;
    for (int i = 0; i < n; ++i)
        names << metricTitle(r->metrics[std::size_t(i)].name);
    spearman_->setHorizontalHeaderLabels(names);
    spearman_->setVerticalHeaderLabels(names);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            const bool known = i == j || (metricComplete(r->metrics[std::size_t(i)]) && metricComplete(r->metrics[std::size_t(j)]));
            const double v = r->spearman[std::size_t(i)][std::size_t(j)];
            auto* item = new QTableWidgetItem(known ? QString::number(v, 'f', 2).replace(QLatin1Char('-'), QChar(0x2212))
                                                    : QStringLiteral("n/a"));
            item->setTextAlignment(Qt::AlignCenter);
            item->setData(Qt::UserRole, known ? v : double(NAN));
            if (known) {
                item->setBackground(rhoColor(v));
                item->setForeground(std::abs(v) > 0.75 ? QColor(Qt::white) : theme::text);
            } else {
                item->setForeground(theme::mutedText);
                item->setToolTip(QStringLiteral("A metric without a value for every layer has no rank correlation"));
            }
            spearman_->setItem(i, j, item);
        }
    // As tall as its rows: the verdict sits right under it.
    int height = spearman_->horizontalHeader()->sizeHint().height() + 2 * spearman_->frameWidth();
    for (int i = 0; i < n; ++i)
        height += spearman_->verticalHeader()->sectionSizeHint(i);
    spearman_->setFixedHeight(n ? height : spearman_->horizontalHeader()->sizeHint().height() + 2 * spearman_->frameWidth());
    verdict_->setText(r ? agreementVerdict(*r) : QString());
    verdict_->setVisible(r != nullptr);
}

void SensitivityAgreementPanel::markSelection()
{
    const int source = model_->rowOfLayer(selection_->currentLayer());
    const QModelIndex index = source >= 0 ? proxy_->mapFromSource(model_->index(source, 0)) : QModelIndex();
    syncing_ = true;
    if (index.isValid()) {
        table_->selectionModel()->setCurrentIndex(index, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
        table_->scrollTo(index);
    } else {
        table_->selectionModel()->clearSelection();
    }
    syncing_ = false;
}

} // namespace qs::ui
