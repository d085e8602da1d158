#include "ui/runs/run_details_dialog.h"
#include "ui/runs/runs_table_model.h"

#include "ui/widgets/format.h"

#include "measure/stats.h"
#include "store/compare.h"

#include <QDateTime>
#include <QDialogButtonBox>
#include <QFontDatabase>
#include <QFormLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPlainTextEdit>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>

#include <cmath>

namespace qs::ui {
namespace {

QString when(int64_t ms)
{
    return QDateTime::fromMSecsSinceEpoch(ms).toLocalTime().toString(QStringLiteral("yyyy-MM-dd HH:mm:ss"));
}

std::optional<double> extraNumber(const RunMetrics& m, const char* key)
{
    auto it = m.extra.find(key);
    return it != m.extra.end() && it->is_number() ? std::optional(it->get<double>()) : std::nullopt;
}

} // namespace

RunDetailsDialog::RunDetailsDialog(const RunRecord& run, QWidget* parent) : QDialog(parent)
{
    setObjectName(QStringLiteral("runDetailsDialog"));
    setWindowTitle(QStringLiteral("Run #%1").arg(run.id));

    auto* facts = new QFormLayout;
    auto add = [&](const QString& label, const QString& value) {
        auto* text = new QLabel(value, this);
        text->setTextInteractionFlags(Qt::TextSelectableByMouse);
        text->setWordWrap(true);
        facts->addRow(label, text);
    };
    add(QStringLiteral("Kind"), QString::fromStdString(runKindName(run.kind)));
    add(QStringLiteral("State"), QString::fromStdString(runStateName(run.state)));
    if (!run.error.empty())
        add(QStringLiteral("Error"), QString::fromStdString(run.error));
    add(QStringLiteral("Model"), QStringLiteral("%1 (sha256 %2)")
                                     .arg(QString::fromStdString(run.modelName),
                                         QString::fromStdString(run.modelHash.substr(0, 16))));
    if (!run.datasetPath.empty())
        add(QStringLiteral("Data"), QString::fromStdString(run.datasetPath));
    const QString measuredOn = RunsTableModel::evaluationData(run, true);
    if (!measuredOn.isEmpty())
        add(QStringLiteral("Metrics measured on"), measuredOn);
    QString time = when(run.startedMs);
    if (run.finishedMs)
        time += QStringLiteral(" \u00B7 took %1").arg(formatDuration(double(*run.finishedMs - run.startedMs) / 1000));
    add(QStringLiteral("Started"), time);
    if (run.machine)
        add(QStringLiteral("Machine"), QStringLiteral("%1 \u00B7 %2 \u00B7 %3 cores \u00B7 %4")
                                           .arg(QString::fromStdString(run.machine->hostname),
                                               QString::fromStdString(run.machine->cpu))
                                           .arg(run.machine->cores)
                                           .arg(formatBytes(uint64_t(run.machine->memoryBytes))));
    if (!run.tags.empty())
        add(QStringLiteral("Tags"), toQStringList(run.tags).join(QStringLiteral(", ")));
    if (!run.note.empty())
        add(QStringLiteral("Note"), QString::fromStdString(run.note));

    // Each metric beside its FP32 baseline when the run measured one; accuracies with
    // the sample size and 95 % Wilson interval.
    const std::optional<double> samples = evaluationSamples(run);
    const RunMetrics& m = run.metrics;
    struct Row {
        std::string name;
        std::optional<double> value, fp32;
    };
    const std::vector<Row> rows = {{"top1", m.top1, extraNumber(m, "fp32_top1")}, {"sqnr_db", m.sqnrDb, {}},
        {"cosine", m.cosine, {}}, {"top1_agreement", m.top1Agreement, {}}, {"kl", m.kl, {}},
        {"size_bits", m.sizeBits, extraNumber(m, "fp32_size_bits")},
        {"latency_ms", m.latencyMs, extraNumber(m, "fp32_latency_ms")}};
    metrics_ = new QTableWidget(0, 4, this);
    metrics_->setObjectName(QStringLiteral("runDetailsMetrics"));
    metrics_->setHorizontalHeaderLabels({QStringLiteral("Metric"), QStringLiteral("This run"),
        QStringLiteral("FP32 baseline"), QStringLiteral("Measured on")});
    metrics_->verticalHeader()->hide();
    metrics_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    const std::string latency = latencySetup(run);
    for (const Row& r : rows) {
        if (!r.value)
            continue;
        const int row = metrics_->rowCount();
        metrics_->insertRow(row);
        QString value = formatMetricValue(r.name, *r.value);
        QString on;
        if ((r.name == "top1" || r.name == "top1_agreement") && samples) {
            const auto [lo, hi] = wilsonInterval(*r.value, int64_t(*samples));
            value += QStringLiteral(" (95 % CI %1 \u2013 %2)").arg(formatPercent(lo, 1), formatPercent(hi, 1));
        }
        if (r.name == "latency_ms")
            on = QString::fromStdString(latency);
        else if (samples && r.name != "size_bits")
            on = QStringLiteral("%1 samples of %2")
                     .arg(formatCount(int64_t(*samples)))
                     .arg(measuredOn.isEmpty() ? QStringLiteral("the evaluation data")
                                               : RunsTableModel::evaluationData(run));
        metrics_->setItem(row, 0, new QTableWidgetItem(runMetricTitle(r.name)));
        metrics_->setItem(row, 1, new QTableWidgetItem(value));
        metrics_->setItem(row, 2, new QTableWidgetItem(r.fp32 ? formatMetricValue(r.name, *r.fp32) : dash()));
        metrics_->setItem(row, 3, new QTableWidgetItem(on));
    }
    metrics_->resizeColumnsToContents();
    metrics_->horizontalHeader()->setStretchLastSection(true);

    config_ = new QPlainTextEdit(this);
    config_->setObjectName(QStringLiteral("runDetailsConfig"));
    config_->setReadOnly(true);
    config_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    config_->setPlainText(QString::fromStdString(run.config.dump(2)));

    auto* tabs = new QTabWidget(this);
    auto* summary = new QWidget(tabs);
    auto* sv = new QVBoxLayout(summary);
    sv->addLayout(facts);
    sv->addWidget(metrics_, 1);
    tabs->addTab(summary, QStringLiteral("Summary"));
    tabs->addTab(config_, QStringLiteral("Configuration"));

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close, this);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::close);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(tabs, 1);
    layout->addWidget(buttons);
    resize(720, 520); // within a 1366x768 screen
}

} // namespace qs::ui
