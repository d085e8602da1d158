#include "ui/sensitivity/cluster_sweep_dialog.h"

#include "ui/document/model_document.h"
#include "ui/document/studio.h"
#include "ui/jobs/job_runner.h"
#include "ui/sensitivity/sensitivity_panel.h"

#include "cluster/sweep_command.h"
#include "data/dataset.h"
#include "record/sensitivity_record.h"
#include "store/store.h"
#include "util/error.h"
#include "util/hash.h"

#include <QColor>
#include <QCoreApplication>
#include <QDateTime>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileInfo>
#include <QFormLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>
#include <filesystem>

namespace qs::ui {

namespace {

QString etaText(double seconds)
{
    if (seconds < 0)
        return QStringLiteral("ETA after the first shard");
    const int s = int(std::lround(seconds));
    return s >= 60 ? QStringLiteral("ETA %1 min %2 s").arg(s / 60).arg(s % 60) : QStringLiteral("ETA %1 s").arg(s);
}

} // namespace

ClusterSweepDialog::ClusterSweepDialog(Studio& studio, SensitivityPanel& panel, QWidget* parent)
    : QDialog(parent), studio_(studio), panel_(panel)
{
    setObjectName(QStringLiteral("clusterSweepDialog"));
    setWindowTitle(tr("Run Sensitivity Sweep on Cluster"));
    factory_ = [](const SlurmOptions& o) { return std::make_unique<SlurmScheduler>(o); };

    summary_ = new QLabel(this);
    summary_->setWordWrap(true);
    shards_ = new QSpinBox(this);
    shards_->setObjectName(QStringLiteral("clusterShards"));
    shards_->setRange(1, 4096);
    shards_->setValue(8);
    shards_->setToolTip(tr("Tasks of the job array; each measures every N-th (layer, bits) pair"));
    partition_ = new QLineEdit(this);
    partition_->setPlaceholderText(tr("the cluster's default"));
    time_ = new QLineEdit(QStringLiteral("01:00:00"), this);
    time_->setToolTip(tr("Time limit per shard, [D-]HH:MM:SS"));
    memory_ = new QLineEdit(QStringLiteral("4G"), this);
    memory_->setToolTip(tr("Memory per shard (sbatch --mem)"));
    cpus_ = new QSpinBox(this);
    cpus_->setRange(1, 1024);
    cpus_->setValue(1);
    workDir_ = new QLineEdit(this);
    workDir_->setObjectName(QStringLiteral("clusterWorkDir"));
    workDir_->setToolTip(tr("A folder every node sees: job scripts, shard logs and shard stores go here"));
    const QString store = studio.storePath();
    const QString base = store.isEmpty() ? QDir::homePath() : QFileInfo(store).absolutePath();
    workDir_->setText(QDir(base).filePath(QStringLiteral("quantstudio-shards")));
    cli_ =
        new QLineEdit(QDir(QCoreApplication::applicationDirPath()).filePath(QStringLiteral("quantstudio-cli")), this);
    cli_->setObjectName(QStringLiteral("clusterCli"));
    cli_->setToolTip(tr("quantstudio-cli as the nodes reach it (a path every node sees)"));
    conf_ = new QLineEdit(qEnvironmentVariable("SLURM_CONF"), this);
    conf_->setObjectName(QStringLiteral("clusterConf"));
    conf_->setPlaceholderText(tr("Slurm's default (/etc/slurm/slurm.conf)"));
    conf_->setToolTip(tr("SLURM_CONF for sbatch, squeue and scancel; empty: the environment's"));

    auto* form = new QFormLayout;
    form->addRow(tr("Shards"), shards_);
    form->addRow(tr("Partition"), partition_);
    form->addRow(tr("Time per shard"), time_);
    form->addRow(tr("Memory per shard"), memory_);
    form->addRow(tr("CPUs per shard"), cpus_);
    form->addRow(tr("Shared folder"), workDir_);
    form->addRow(tr("quantstudio-cli"), cli_);
    form->addRow(tr("Slurm config"), conf_);

    status_ = new QLabel(tr("Model and data are read from their paths on the nodes."), this);
    status_->setObjectName(QStringLiteral("clusterStatus"));
    status_->setWordWrap(true);
    status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    status_->setAlignment(Qt::AlignLeft | Qt::AlignTop);
    status_->setMinimumHeight(status_->fontMetrics().lineSpacing() * 3); // a failure report's lines
    bar_ = new QProgressBar(this);
    bar_->setRange(0, 1000);
    bar_->setValue(0);
    table_ = new QTableWidget(0, 5, this);
    table_->setObjectName(QStringLiteral("clusterShardTable"));
    table_->setHorizontalHeaderLabels({tr("Shard"), tr("State"), tr("Attempt"), tr("Job"), tr("Log / error")});
    table_->verticalHeader()->hide();
    table_->horizontalHeader()->setStretchLastSection(true);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->setMinimumHeight(160);

    submit_ = new QPushButton(tr("Submit"), this);
    submit_->setObjectName(QStringLiteral("clusterSubmit"));
    submit_->setDefault(true);
    cancel_ = new QPushButton(tr("Cancel Jobs"), this);
    cancel_->setObjectName(QStringLiteral("clusterCancel"));
    auto* buttons = new QDialogButtonBox(this);
    buttons->addButton(submit_, QDialogButtonBox::ActionRole);
    buttons->addButton(cancel_, QDialogButtonBox::ActionRole);
    buttons->addButton(QDialogButtonBox::Close);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(submit_, &QPushButton::clicked, this, [this] { submit(); });
    connect(cancel_, &QPushButton::clicked, this, &ClusterSweepDialog::cancel);
    connect(studio.jobs(), &JobRunner::jobFinished, this,
        [this](int id, const QString&, JobOutcome outcome, const QString& message, double) {
            if (id != job_)
                return;
            job_ = -1;
            if (outcome == JobOutcome::Cancelled)
                status_->setText(tr("Cancelled: the shards' jobs were cancelled (scancel)."));
            else if (outcome == JobOutcome::Failed)
                status_->setText(tr("Failed: %1").arg(message));
            updateControls();
        });

    auto* layout = new QVBoxLayout(this);
    layout->addWidget(summary_);
    layout->addLayout(form);
    layout->addWidget(bar_);
    layout->addWidget(status_);
    layout->addWidget(table_, 1);
    layout->addWidget(buttons);
    resize(720, 600);

    QString error;
    const auto opts = panel_.sweepOptions(&error);
    summary_->setText(opts ? tr("Sweep: %1, %2, bits %3, %4 samples of %5 (the Sensitivity view's settings)")
                                 .arg(QString::fromLatin1(sensitivityMethodName(opts->method)),
                                     QString::fromLatin1(sensitivityModeName(opts->mode)), bitsText(opts->bits))
                                 .arg(opts->limit)
                                 .arg(studio.calibrationDataLabel())
                           : error);
    updateControls();
}

QString ClusterSweepDialog::bitsText(const std::vector<int>& bits)
{
    QStringList parts;
    for (int b : bits)
        parts << QString::number(b);
    return parts.join(',');
}

bool ClusterSweepDialog::isRunning() const
{
    return job_ >= 0 && studio_.jobs()->isRunning(job_);
}

QString ClusterSweepDialog::statusText() const
{
    return status_->text();
}

void ClusterSweepDialog::updateControls()
{
    const bool running = isRunning();
    const bool model = studio_.document()->model() && !studio_.document()->model()->path.isEmpty();
    submit_->setEnabled(!running && model);
    cancel_->setEnabled(running);
    for (QWidget* w :
        std::initializer_list<QWidget*> {shards_, partition_, time_, memory_, cpus_, workDir_, cli_, conf_})
        w->setEnabled(!running);
}

void ClusterSweepDialog::cancel()
{
    if (job_ >= 0)
        studio_.jobs()->cancel(job_); // the worker scancels within a poll step
}

int ClusterSweepDialog::submit()
{
    const auto model = studio_.document()->model();
    if (isRunning())
        return -1;
    if (!model || model->path.isEmpty()) {
        status_->setText(tr("Open a model file first: the nodes read it from its path."));
        return -1;
    }
    QString error;
    const auto options = panel_.sweepOptions(&error);
    if (!options) {
        status_->setText(error);
        return -1;
    }
    SensitivityOptions opts = *options;
    if (opts.method == SensitivityMethod::Hessian) {
        status_->setText(tr("The Hessian method ranks every layer at once and cannot be sharded."));
        return -1;
    }
    SlurmOptions slurm;
    slurm.partition = partition_->text().trimmed().toStdString();
    slurm.time = time_->text().trimmed().toStdString();
    slurm.memory = memory_->text().trimmed().toStdString();
    slurm.cpusPerTask = cpus_->value();
    slurm.conf = conf_->text().trimmed().toStdString();
    std::shared_ptr<Scheduler> scheduler;
    try {
        scheduler = factory_(slurm);
    } catch (const Error& e) {
        status_->setText(QString::fromUtf8(e.what()));
        return -1;
    }
    ShardedSweepOptions so;
    so.shards = shards_->value();
    const QString stamp = QDateTime::currentDateTimeUtc().toString(QStringLiteral("yyyyMMdd-HHmmss-zzz"));
    so.workDir = QDir(workDir_->text().trimmed()).absoluteFilePath(stamp).toStdString();
    so.chdir = QFileInfo(model->path).absolutePath().toStdString();
    const std::string cli = cli_->text().trimmed().toStdString();
    const std::string modelPath = QFileInfo(model->path).absoluteFilePath().toStdString();
    const DataOptions data = studio_.calibrationDataOptions(opts.limit);
    const std::string storePath = studio_.storePath().toStdString();

    const int generation = ++generation_;
    panel_.beginClusterSweep(opts);
    progress_ = {};
    table_->setRowCount(0);
    bar_->setValue(0);
    QPointer<ClusterSweepDialog> self(this);
    QPointer<SensitivityPanel> panel(&panel_);
    job_ = studio_.jobs()->start(QStringLiteral("cluster-sensitivity"),
        tr("Sensitivity sweep of %1 on the cluster").arg(model->displayName()),
        [self, panel, model, opts, so, cli, modelPath, data, storePath, scheduler, generation](
            Progress& progress, const CancelToken& cancel) mutable -> JobRunner::Deliver {
            progress.report(0, "loading data");
            const Dataset loaded = loadDataset(data, *model->graph); // its hash: every shard must have it
            cancel.check();
            std::filesystem::create_directories(so.workDir);
            const std::string base = (std::filesystem::path(so.workDir) / "base.json").string();
            opts.base.save(base);
            so.command = sensitivityCommand(cli, modelPath, data, opts, base);
            so.expected.modelHash = sha256File(modelPath);
            so.expected.datasetHash = loaded.hash;
            so.expected.config = sensitivityRunConfig(opts);
            applyKillShardEnvironment(so);
            const int total = so.shards;
            const ShardedSweepResult r = runShardedSweep(so, *scheduler, cancel,
                [&](const ClusterProgress& p, const std::vector<ShardRun>& finished, bool newShard) {
                    progress.report(double(p.done + p.failed) / double(total),
                        str("shards: ", p.done, " done, ", p.running, " running, ", p.failed, " failed"));
                    std::shared_ptr<const SensitivityResult> partial;
                    if (newShard)
                        partial = std::make_shared<const SensitivityResult>(mergeShardResults(finished));
                    QMetaObject::invokeMethod(
                        self.data(),
                        [self, panel, p, partial, generation] {
                            // Late updates of an older submission, or after the job ended (cancelled), are dropped.
                            if (!self || self->generation_ != generation || self->job_ < 0)
                                return;
                            self->showProgress(p);
                            if (partial && panel)
                                panel->showClusterResult(partial, 0);
                        },
                        Qt::QueuedConnection);
                });
            if (r.cancelled)
                throw Cancelled();
            int64_t runId = 0;
            if (!storePath.empty() && !r.finished.empty()) {
                Store store = Store::open(storePath);
                runId = recordShardedSweep(store, r);
            }
            SensitivityResult merged = mergeShardResults(r.finished);
            merged.seconds = r.seconds;
            auto result = std::make_shared<const SensitivityResult>(std::move(merged));
            const QString report = QString::fromStdString(r.failureReport());
            const ClusterProgress last = r.progress;
            const QString workDir = QString::fromStdString(so.workDir);
            return [self, panel, result, runId, report, last, generation, workDir] {
                if (!self || self->generation_ != generation)
                    return;
                self->showProgress(last);
                if (panel)
                    panel->showClusterResult(result, runId);
                const QString recorded =
                    runId ? tr("recorded as run #%1").arg(runId) : tr("not recorded (no store open)");
                self->status_->setText(report.isEmpty() ? tr("All %1 shards merged in %2 s; %3. Shard files: %4")
                                                              .arg(last.shards.size())
                                                              .arg(last.elapsedSeconds, 0, 'f', 1)
                                                              .arg(recorded, workDir)
                                                        : tr("%1 of %2 shards merged; %3.\n%4")
                                                              .arg(last.done)
                                                              .arg(last.shards.size())
                                                              .arg(recorded, report));
                emit self->finished(report.isEmpty());
            };
        });
    status_->setText(tr("Submitting\u2026"));
    updateControls();
    return job_;
}

void ClusterSweepDialog::showProgress(const ClusterProgress& p)
{
    progress_ = p;
    const int n = int(p.shards.size());
    bar_->setValue(n > 0 ? int(1000.0 * double(p.done + p.failed) / double(n)) : 0);
    QString jobs;
    for (const std::string& id : p.jobIds)
        jobs += (jobs.isEmpty() ? QString() : QStringLiteral(", ")) + QString::fromStdString(id);
    status_->setText(tr("Job %1: %2 done, %3 running, %4 pending, %5 failed of %6 shards \u00B7 %7")
                         .arg(jobs.isEmpty() ? tr("(submitting)") : jobs)
                         .arg(p.done)
                         .arg(p.running)
                         .arg(p.pending)
                         .arg(p.failed)
                         .arg(n)
                         .arg(p.done + p.failed >= n && n > 0 ? tr("finished") : etaText(p.etaSeconds)));
    table_->setRowCount(n);
    for (int i = 0; i < n; ++i) {
        const ShardStatus& s = p.shards[std::size_t(i)];
        const QString cells[] = {QString::number(s.index), QString::fromLatin1(shardStateName(s.state)),
            QString::number(s.attempt), QString::fromStdString(s.jobId),
            QString::fromStdString(s.state == ShardState::Failed ? s.detail + " (log " + s.log + ")" : s.log)};
        for (int c = 0; c < 5; ++c) {
            auto* item = table_->item(i, c);
            if (!item) {
                item = new QTableWidgetItem;
                table_->setItem(i, c, item);
            }
            item->setText(cells[c]);
            item->setToolTip(cells[c]);
            if (c == 1)
                item->setForeground(s.state == ShardState::Failed ? QColor(0xb9, 0x1c, 0x1c)
                        : s.state == ShardState::Done             ? QColor(0x15, 0x80, 0x3d)
                                                                  : palette().color(QPalette::Text));
        }
    }
}

} // namespace qs::ui
