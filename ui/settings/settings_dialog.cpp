#include "ui/settings/settings_dialog.h"

#include "ui/document/studio.h"
#include "util/memory_budget.h"

#include <QCheckBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QVBoxLayout>

#include <cstdlib>

namespace qs::ui {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// The default the checkbox stands for: QS_CACHE_BUDGET when it is set and valid, else a
// quarter of physical memory.
qint64 defaultBudget(QString* why)
{
    if (const char* env = std::getenv("QS_CACHE_BUDGET"); env && *env) {
        try {
            const qint64 b = parseByteSize(env, "QS_CACHE_BUDGET");
            *why = QStringLiteral("QS_CACHE_BUDGET=%1").arg(QString::fromLocal8Bit(env));
            return b;
        } catch (const std::exception&) {
        }
    }
    const int64_t ram = physicalMemoryBytes();
    *why = ram > 0 ? QStringLiteral("a quarter of this machine's %1").arg(QString::fromStdString(byteSizeText(ram)))
                   : QStringLiteral("this machine's memory is unknown");
    return defaultCacheBudgetBytes();
}

} // namespace

SettingsDialog::SettingsDialog(Studio& studio, QWidget* parent) : QDialog(parent), studio_(studio)
{
    setWindowTitle(tr("Settings"));
    auto* memory = new QGroupBox(tr("Memory budget of analysis caches"), this);
    useDefault_ = new QCheckBox(memory);
    useDefault_->setObjectName(QStringLiteral("cacheBudgetDefault"));
    budget_ = new QDoubleSpinBox(memory);
    budget_->setObjectName(QStringLiteral("cacheBudget"));
    budget_->setSuffix(QStringLiteral(" GiB"));
    budget_->setDecimals(2);
    budget_->setSingleStep(0.25);
    budget_->setMinimum(0.06);
    const int64_t ram = physicalMemoryBytes();
    budget_->setMaximum(ram > 0 ? double(ram) / kGiB : 1024.0);
    text_ = new QLabel(memory);
    text_->setWordWrap(true);
    text_->setTextFormat(Qt::RichText);
    auto* form = new QFormLayout(memory);
    form->addRow(useDefault_);
    form->addRow(tr("Budget:"), budget_);
    form->addRow(text_);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(memory);
    layout->addStretch(1);
    layout->addWidget(buttons);
    connect(useDefault_, &QCheckBox::toggled, this, [this](bool on) {
        budget_->setEnabled(!on);
        updateText();
    });
    connect(budget_, &QDoubleSpinBox::valueChanged, this, [this] { updateText(); });
    connect(buttons, &QDialogButtonBox::accepted, this, [this] {
        studio_.setCacheBudget(chosenBudget());
        accept();
    });
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    setMinimumWidth(520);
    load();
}

void SettingsDialog::load()
{
    QString why;
    const qint64 fallback = defaultBudget(&why);
    useDefault_->setText(tr("Use the default: %1 (%2)").arg(QString::fromStdString(byteSizeText(fallback)), why));
    const qint64 saved = studio_.savedCacheBudget();
    useDefault_->setChecked(saved <= 0);
    budget_->setEnabled(saved > 0);
    budget_->setValue(double(saved > 0 ? saved : fallback) / kGiB);
    updateText();
}

qint64 SettingsDialog::chosenBudget() const
{
    return useDefault_->isChecked() ? 0 : qint64(budget_->value() * kGiB);
}

void SettingsDialog::showEvent(QShowEvent* event)
{
    load();
    QDialog::showEvent(event);
}

void SettingsDialog::updateText()
{
    text_->setText(tr("What-if keeps each evaluation batch's FP32 and quantized activations, and the Samples "
                      "view its data, within this budget. Beyond it the least recently used batches are "
                      "dropped and computed again when a change needs them: slower, never different. "
                      "Applies to what-if sessions and sample data loaded from now on; the command line "
                      "takes <tt>--cache-budget SIZE</tt> or <tt>QS_CACHE_BUDGET</tt>."));
}

} // namespace qs::ui
