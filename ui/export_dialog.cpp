#include "ui/export_dialog.h"

#include "ui/format.h"
#include "ui/job_runner.h"

#include "export/export_run.h"
#include "graph/onnx_import.h"
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
    std::filesystem::create_directories(std::filesystem::path(c.onnxPath.toStdString()).parent_path());
    Store store = Store::open(storePath.toStdString(), {.createIfMissing = false});
    Progress qdq = progress.sub(0, 0.6);
    const ExportResult r = exportRun(store, runId, ExportFormat::Qdq, c.onnxPath.toStdString(), qdq, cancel);
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
    for (int c = 0; c < 3; ++c)
        artifactsView_->horizontalHeader()->setSectionResizeMode(c, QHeaderView::ResizeToContents);
    artifactsView_->horizontalHeader()->setSectionResizeMode(3, QHeaderView::Stretch);
    artifactsView_->verticalHeader()->setDefaultSectionSize(artifactsView_->fontMetrics().height() + 8);
    artifactsView_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    artifactsView_->setMinimumHeight(120);

    auto* form = new QFormLayout;
    form->addRow(QStringLiteral("Run"), run_);
    form->addRow(QStringLiteral("ONNX file"), pathRow);
    auto* buttons = new QHBoxLayout;
    buttons->addStretch(1);
    buttons->addWidget(export_);
    buttons->addWidget(close);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addLayout(buttons);
    layout->addWidget(result_);
    layout->addWidget(new QLabel(QStringLiteral("<b>Artifacts of the run in the store</b>"), this));
    layout->addWidget(artifactsView_, 1);
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

void ExportDialog::showCheck(std::shared_ptr<const ExportCheck> check)
{
    check_ = std::move(check);
    const ExportCheck& c = *check_;
    result_->setText(
        QStringLiteral("<b>\u2713 Run #%1 exported and checked.</b><br/>"
                       "%2 \u2014 %3, imports again: %4 nodes, %5 QuantizeLinear / %6 DequantizeLinear.<br/>"
                       "%7 layers re-derived and matching the store; %8 at the true bit widths, %9 as stored in the file.<br/>"
                       "Report: %10")
            .arg(c.runId)
            .arg(QDir::toNativeSeparators(c.onnxPath).toHtmlEscaped(), formatBytes(uint64_t(c.onnxBytes)))
            .arg(c.nodes)
            .arg(c.quantizeNodes)
            .arg(c.dequantizeNodes)
            .arg(c.checkedLayers)
            .arg(formatBytes(uint64_t(c.trueSizeBits / 8)), formatBytes(uint64_t(c.storedSizeBits / 8)),
                QDir::toNativeSeparators(c.reportPath).toHtmlEscaped()));
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
    emit exported(c.runId);
}

} // namespace qs::ui
