#include "ui/export/export_dialog.h"

#include "ui/jobs/job_runner.h"
#include "ui/widgets/format.h"

#include "export/replay.h"
#include "graph/onnx_import.h"
#include "record/export_run.h"
#include "store/store.h"

#include <QComboBox>
#include <QDateTime>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QPushButton>
#include <QStandardItemModel>
#include <QTableView>
#include <QToolButton>
#include <QVBoxLayout>

#include <cmath>
#include <filesystem>

namespace qs::ui {

ExportCheck exportAndCheck(const QString& storePath, int64_t runId, const QString& onnxPath, Progress& progress,
    const CancelToken& cancel)
{
    ExportCheck c;
    c.runId = runId;
    c.onnxPath = QFileInfo(onnxPath).absoluteFilePath();
    c.reportPath = QFileInfo(onnxPath).absolutePath() + QLatin1Char('/') + QFileInfo(onnxPath).completeBaseName() +
                   QStringLiteral("-report.html");
    c.encodingsPath = QFileInfo(onnxPath).absolutePath() + QLatin1Char('/') + QFileInfo(onnxPath).completeBaseName() +
                      QStringLiteral(".encodings");
    std::filesystem::create_directories(std::filesystem::path(c.onnxPath.toStdString()).parent_path());
    Store store = Store::open(storePath.toStdString(), {.createIfMissing = false});
    Progress qdq = progress.sub(0, 0.6);
    const ExportResult r =
        exportRun(store, runId, ExportFormat::Qdq, c.onnxPath.toStdString(), qdq, cancel, c.encodingsPath.toStdString());
    c.checkedLayers = r.checkedLayers;
    c.trueSizeBits = r.trueSizeBits;
    c.storedSizeBits = r.storedSizeBits;
    cancel.check();
    Progress report = progress.sub(0.6, 0.85);
    exportRun(store, runId, ExportFormat::Report, c.reportPath.toStdString(), report, cancel);
    progress.report(0.85, "importing the exported file again");
    const Graph g = importOnnx(c.onnxPath.toStdString());
    c.onnxBytes = int64_t(std::filesystem::file_size(c.onnxPath.toStdString()));
    c.nodes = int(g.nodes.size());
    for (const Node& n : g.nodes) {
        c.quantizeNodes += n.opType == "QuantizeLinear";
        c.dequantizeNodes += n.opType == "DequantizeLinear";
    }
    c.artifacts = store.artifacts(runId);
    return c;
}

ParityResult parityOfExport(const QString& storePath, int64_t runId, const QString& onnxPath,
    const ParityOptions& options, Progress& progress, const CancelToken& cancel)
{
    const Store store = Store::open(storePath.toStdString(), {.mode = OpenMode::ReadOnly});
    Progress prep = progress.sub(0, 0.4), cmp = progress.sub(0.4, 1);
    RunReplay replay = replayRun(store, runId, prep, cancel);
    const Graph exported = importOnnx(onnxPath.toStdString());
    const QdqLowered lowered = lowerQdqModel(exported, onnxPath.toStdString());
    return checkParity(*replay.session, lowered, replay.calib, options, cmp, cancel);
}

ExportDialog::ExportDialog(JobRunner* jobs, const QString& storePath, const std::vector<RunRecord>& runs, int64_t runId,
    QWidget* parent)
    : QDialog(parent), jobs_(jobs), storePath_(storePath)
{
    setObjectName(QStringLiteral("exportDialog"));
    setWindowTitle(QStringLiteral("Export run"));
    run_ = new QComboBox(this);
    run_->setObjectName(QStringLiteral("exportRun"));
    for (const RunRecord& r : runs)
        if (r.kind == RunKind::Quantization && r.state == RunState::Done) {
            QString text = QStringLiteral("#%1 %2").arg(r.id).arg(QString::fromStdString(r.modelName));
            if (r.metrics.top1)
                text += QStringLiteral(" \u00B7 top-1 %1").arg(formatPercent(*r.metrics.top1, 2));
            if (r.metrics.sizeBits)
                text += QStringLiteral(" \u00B7 %1").arg(formatBytes(uint64_t(*r.metrics.sizeBits / 8)));
            run_->addItem(text, QVariant::fromValue<qint64>(r.id));
        }
    run_->setCurrentIndex(std::max(0, run_->findData(QVariant::fromValue<qint64>(runId))));
    path_ = new QLineEdit(this);
    path_->setObjectName(QStringLiteral("exportPath"));
    path_->setText(defaultPath(selectedRun()));
    connect(path_, &QLineEdit::textEdited, this, [this] { pathEdited_ = true; });
    connect(run_, &QComboBox::currentIndexChanged, this, [this] {
        if (!pathEdited_)
            path_->setText(defaultPath(selectedRun()));
    });
    auto* browse = new QToolButton(this);
    browse->setText(QStringLiteral("\u2026"));
    connect(browse, &QToolButton::clicked, this, [this] {
        const QString p = QFileDialog::getSaveFileName(this, QStringLiteral("Export as"), path_->text(),
            QStringLiteral("ONNX models (*.onnx)"));
        if (!p.isEmpty()) {
            path_->setText(p);
            pathEdited_ = true;
        }
    });
    auto* pathRow = new QHBoxLayout;
    pathRow->addWidget(path_, 1);
    pathRow->addWidget(browse);

    export_ = new QPushButton(QStringLiteral("Export"), this);
    export_->setObjectName(QStringLiteral("exportStart"));
    export_->setDefault(true);
    export_->setEnabled(run_->count() > 0);
    connect(export_, &QPushButton::clicked, this, &ExportDialog::startExport);
    auto* close = new QPushButton(QStringLiteral("Close"), this);
    connect(close, &QPushButton::clicked, this, &QDialog::close);

    result_ = new QLabel(this);
    result_->setObjectName(QStringLiteral("exportResult"));
    result_->setWordWrap(true);
    result_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    result_->setText(run_->count() > 0 ? QStringLiteral("Writes the run as QDQ ONNX (int8 containers, the run's true bit "
                                                        "widths in the scales) and an HTML report beside it.")
                                       : QStringLiteral("No finished quantization run in this database."));
    artifacts_ = new QStandardItemModel(0, 4, this);
    artifacts_->setHorizontalHeaderLabels(
        {QStringLiteral("Artifact"), QStringLiteral("Format"), QStringLiteral("Size"), QStringLiteral("File")});
    artifactsView_ = new QTableView(this);
    artifactsView_->setObjectName(QStringLiteral("exportArtifacts"));
    artifactsView_->setModel(artifacts_);
    artifactsView_->verticalHeader()->hide();
    artifactsView_->horizontalHeader()->setSectionResizeMode(3, QHeaderView::Stretch);
    artifactsView_->verticalHeader()->setDefaultSectionSize(artifactsView_->fontMetrics().height() + 8);
    artifactsView_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    artifactsView_->setMinimumHeight(120);

    parity_ = new QPushButton(QStringLiteral("Check Parity"), this);
    parity_->setObjectName(QStringLiteral("exportParity"));
    parity_->setToolTip(QStringLiteral("Run the exported file with real INT8 kernels and compare every layer with the "
                                       "simulated run (quantstudio-cli parity --run)"));
    parity_->setEnabled(false);
    connect(parity_, &QPushButton::clicked, this, &ExportDialog::startParity);
    parityResult_ = new QLabel(this);
    parityResult_->setObjectName(QStringLiteral("parityResult"));
    parityResult_->setWordWrap(true);
    parityResult_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    parityRows_ = new QStandardItemModel(0, 6, this);
    parityRows_->setHorizontalHeaderLabels({QStringLiteral("Layer"), QStringLiteral("Op"), QStringLiteral("Kernel"),
        QStringLiteral("SQNR dB"), QStringLiteral("Max diff (steps)"), QStringLiteral("Status")});
    parityView_ = new QTableView(this);
    parityView_->setObjectName(QStringLiteral("parityLayers"));
    parityView_->setModel(parityRows_);
    parityView_->verticalHeader()->hide();
    parityView_->horizontalHeader()->setSectionResizeMode(5, QHeaderView::Stretch);
    parityView_->verticalHeader()->setDefaultSectionSize(parityView_->fontMetrics().height() + 8);
    parityView_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    parityView_->setMinimumHeight(120);
    parityView_->hide();

    auto* form = new QFormLayout;
    form->addRow(QStringLiteral("Run"), run_);
    form->addRow(QStringLiteral("ONNX file"), pathRow);
    auto* buttons = new QHBoxLayout;
    buttons->addStretch(1);
    buttons->addWidget(export_);
    buttons->addWidget(parity_);
    buttons->addWidget(close);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addLayout(buttons);
    layout->addWidget(result_);
    layout->addWidget(new QLabel(QStringLiteral("<b>Artifacts of the run in the store</b>"), this));
    layout->addWidget(artifactsView_, 1);
    layout->addWidget(parityResult_);
    layout->addWidget(parityView_, 2);
    resize(760, 460);
}

qint64 ExportDialog::selectedRun() const
{
    return run_->currentData().toLongLong();
}

QString ExportDialog::defaultPath(qint64 runId) const
{
    return QDir(QFileInfo(storePath_).absolutePath()).filePath(QStringLiteral("exports/run-%1.onnx").arg(runId));
}

int ExportDialog::startExport()
{
    const qint64 id = selectedRun();
    const QString path = path_->text().trimmed();
    if (id <= 0 || path.isEmpty())
        return -1;
    export_->setEnabled(false);
    result_->setText(QStringLiteral("Exporting run #%1\u2026").arg(id));
    QPointer<ExportDialog> self(this);
    const QString store = storePath_;
    const int job = jobs_->start(QStringLiteral("export"), QStringLiteral("Exporting run %1").arg(id),
        [self, store, id, path](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            auto check = std::make_shared<const ExportCheck>(exportAndCheck(store, id, path, progress, cancel));
            return [self, check] {
                if (self)
                    self->showCheck(check);
            };
        });
    connect(jobs_, &JobRunner::jobFinished, this, [this, job](int finished, const QString&, JobOutcome outcome, const QString& message) {
        if (finished != job)
            return;
        export_->setEnabled(run_->count() > 0);
        if (outcome == JobOutcome::Failed)
            result_->setText(QStringLiteral("<span style='color:#c62828'>Export failed: %1</span>").arg(message.toHtmlEscaped()));
        else if (outcome == JobOutcome::Cancelled)
            result_->setText(QStringLiteral("Export cancelled."));
    });
    return job;
}

int ExportDialog::startParity()
{
    if (!check_)
        return -1;
    const qint64 id = check_->runId;
    const QString onnx = check_->onnxPath;
    parity_->setEnabled(false);
    parityResult_->setText(QStringLiteral("Checking run #%1's export against its simulated run\u2026").arg(id));
    QPointer<ExportDialog> self(this);
    const QString store = storePath_;
    const int job = jobs_->start(QStringLiteral("parity"), QStringLiteral("Parity of run %1's export").arg(id),
        [self, store, id, onnx](Progress& progress, const CancelToken& cancel) -> JobRunner::Deliver {
            auto parity = std::make_shared<const ParityResult>(parityOfExport(store, id, onnx, {}, progress, cancel));
            return [self, parity] {
                if (self)
                    self->showParity(parity);
            };
        });
    connect(jobs_, &JobRunner::jobFinished, this,
        [this, job](int finished, const QString&, JobOutcome outcome, const QString& message) {
            if (finished != job)
                return;
            parity_->setEnabled(check_ != nullptr);
            if (outcome == JobOutcome::Failed)
                parityResult_->setText(QStringLiteral("<span style='color:#c62828'>Parity check failed: %1</span>")
                                           .arg(message.toHtmlEscaped()));
            else if (outcome == JobOutcome::Cancelled)
                parityResult_->setText(QStringLiteral("Parity check cancelled."));
        });
    return job;
}

void ExportDialog::showParity(std::shared_ptr<const ParityResult> parity)
{
    parityCheck_ = std::move(parity);
    const ParityResult& r = *parityCheck_;
    auto db = [](double v) { return std::isfinite(v) ? QString::number(v, 'f', 1) : QStringLiteral("exact"); };
    QString verdict = r.passed()
        ? QStringLiteral("<b style='color:#2e7d32'>\u2713 No layer drifts</b>")
        : QStringLiteral("<b style='color:#c62828'>%1 introduce drift: %2</b>")
              .arg(countOf(int(r.flagged.size()), QStringLiteral("layer"), QStringLiteral("layers")),
                  toQStringList(r.flagged).join(QStringLiteral(", ")).toHtmlEscaped());
    parityResult_->setText(QStringLiteral("%1 \u2014 real INT8 kernels vs the simulated run on %2 of the run's "
                                          "calibration data: output SQNR %3 dB, top-1 agreement %4. Drift: SQNR "
                                          "below %5 dB or more than %6 steps. CPU: %7")
                               .arg(verdict, countOf(int(r.samples), QStringLiteral("sample"), QStringLiteral("samples")),
                                   db(r.outputSqnrDb), formatPercent(r.top1Agreement, 1))
                               .arg(r.thresholdDb)
                               .arg(r.maxSteps)
                               .arg(QString::fromStdString(r.isa.summary()).toHtmlEscaped()));
    parityRows_->removeRows(0, parityRows_->rowCount());
    for (const LayerParity& l : r.layers) {
        const QString status = l.introduced ? QStringLiteral("drift starts here")
                               : l.drifting ? QStringLiteral("drifts (from upstream)")
                                            : QStringLiteral("ok");
        QList<QStandardItem*> row = {new QStandardItem(QString::fromStdString(l.layer)),
            new QStandardItem(QString::fromStdString(l.op)),
            new QStandardItem(l.int8 ? QStringLiteral("INT8") : QStringLiteral("float: %1").arg(QString::fromStdString(l.notInt8))),
            new QStandardItem(db(l.sqnrDb)),
            new QStandardItem(l.maxDiffSteps < 0 ? dash() : QString::number(l.maxDiffSteps, 'f', 1)),
            new QStandardItem(status)};
        if (!l.paramDiffs.empty())
            row[5]->setToolTip(toQStringList(l.paramDiffs).join(QLatin1Char('\n')));
        if (l.drifting)
            for (QStandardItem* item : row)
                item->setBackground(QColor(l.introduced ? 0xffcdd2 : 0xfff3e0));
        parityRows_->appendRow(row);
    }
    for (int col = 0; col < 5; ++col)
        parityView_->resizeColumnToContents(col);
    parityView_->show();
    if (height() < 760)
        resize(width(), 760); // room for the layer table below the artifacts
    emit parityChecked(qint64(r.samples > 0 ? check_->runId : 0));
}

void ExportDialog::showCheck(std::shared_ptr<const ExportCheck> check)
{
    check_ = std::move(check);
    parity_->setEnabled(true);
    const ExportCheck& c = *check_;
    const QString row = QStringLiteral("<tr><td style='padding-right:12px'>%1</td><td>%2</td></tr>");
    QString html = QStringLiteral("<b>\u2713 Run #%1 exported and checked</b><table style='margin-top:4px'>").arg(c.runId);
    html += row.arg(QStringLiteral("QDQ ONNX"), QStringLiteral("%1 \u2014 %2")
                                                    .arg(QDir::toNativeSeparators(c.onnxPath).toHtmlEscaped(),
                                                        formatBytes(uint64_t(c.onnxBytes))));
    html += row.arg(QStringLiteral("Imported again"), QStringLiteral("%1 nodes, %2 QuantizeLinear, %3 DequantizeLinear")
                                                          .arg(c.nodes)
                                                          .arg(c.quantizeNodes)
                                                          .arg(c.dequantizeNodes));
    html += row.arg(QStringLiteral("Quantizer"),
        QStringLiteral("%1 re-derived and matching the store").arg(countOf(c.checkedLayers, QStringLiteral("layer"), QStringLiteral("layers"))));
    html += row.arg(QStringLiteral("Size"), QStringLiteral("%1 at the true bit widths, %2 as the file stores them")
                                                .arg(formatBytes(uint64_t(c.trueSizeBits / 8)),
                                                    formatBytes(uint64_t(c.storedSizeBits / 8))));
    html += row.arg(QStringLiteral("AIMET encodings"), QDir::toNativeSeparators(c.encodingsPath).toHtmlEscaped());
    html += row.arg(QStringLiteral("Report"), QDir::toNativeSeparators(c.reportPath).toHtmlEscaped());
    result_->setText(html + QStringLiteral("</table>"));
    artifacts_->removeRows(0, artifacts_->rowCount());
    for (const ArtifactRecord& a : c.artifacts) {
        QList<QStandardItem*> row = {new QStandardItem(QStringLiteral("#%1").arg(a.id)),
            new QStandardItem(QString::fromStdString(a.format)), new QStandardItem(formatBytes(uint64_t(a.sizeBytes))),
            new QStandardItem(QDir::toNativeSeparators(QString::fromStdString(a.path)))};
        row[3]->setToolTip(QStringLiteral("sha256 %1\n%2")
                               .arg(QString::fromStdString(a.hash),
                                   QDateTime::fromMSecsSinceEpoch(a.createdMs).toLocalTime().toString(Qt::ISODate)));
        artifacts_->appendRow(row);
    }
    for (int col = 0; col < 3; ++col)
        artifactsView_->resizeColumnToContents(col);
    emit exported(c.runId);
}

} // namespace qs::ui
