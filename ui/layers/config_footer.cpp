#include "ui/layers/config_footer.h"

#include "ui/document/quant_config_document.h"
#include "ui/widgets/format.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QToolButton>

#include <cmath>

namespace qs::ui {

ConfigFooter::ConfigFooter(QuantConfigDocument* config, QWidget* parent) : QWidget(parent), config_(config)
{
    setObjectName(QStringLiteral("configFooter"));
    size_ = new QLabel(this);
    size_->setObjectName(QStringLiteral("configSize"));
    size_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    error_ = new QLabel(this);
    error_->setObjectName(QStringLiteral("configError"));
    error_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    presets_ = new QToolButton(this);
    presets_->setObjectName(QStringLiteral("presetButton"));
    presets_->setText(QStringLiteral("Preset"));
    presets_->setToolTip(QStringLiteral("Set the bits of every layer at once (one undo step)"));
    presets_->setPopupMode(QToolButton::InstantPopup);
    auto* menu = new QMenu(presets_);
    using Preset = QuantConfigDocument::Preset;
    for (Preset p : {Preset::All8, Preset::W4A8, Preset::KeepEnds8})
        connect(menu->addAction(QuantConfigDocument::presetName(p)), &QAction::triggered, config_,
                [this, p] { config_->applyPreset(p); });
    presets_->setMenu(menu);

    auto* row = new QHBoxLayout(this);
    row->setContentsMargins(8, 3, 6, 3);
    row->setSpacing(14);
    row->addWidget(size_);
    row->addWidget(error_, 1);
    row->addWidget(presets_);

    connect(config_, &QuantConfigDocument::configChanged, this, &ConfigFooter::update);
    connect(config_, &QuantConfigDocument::sizesChanged, this, &ConfigFooter::update);
    connect(config_, &QuantConfigDocument::sensitivityChanged, this, &ConfigFooter::update);
    update();
}

void ConfigFooter::update()
{
    presets_->setEnabled(config_->layerCount() > 0);
    const int64_t bits = config_->sizeBits();
    if (bits < 0 || !config_->sizes()) {
        size_->setText(config_->layerCount() ? QStringLiteral("Model size: counting\u2026") : QStringLiteral("No model"));
        size_->setToolTip({});
    } else {
        const auto bytes = uint64_t((bits + 7) / 8);
        const double fp32 = double(config_->sizes()->floatBits);
        size_->setText(QStringLiteral("Model size <b>%1</b> (%2 bytes) \u00B7 <b>%3\u00D7</b> smaller than FP32")
                           .arg(formatBytes(bytes), formatCount(int64_t(bytes)))
                           .arg(bits > 0 ? fp32 / double(bits) : 1.0, 0, 'f', 2));
        size_->setToolTip(QStringLiteral("Stored size of the whole model at the chosen bits, scales and zero points "
                                         "included; FP32: %1 (%2 bytes)")
                              .arg(formatBytes(uint64_t(fp32 / 8)), formatCount(int64_t(fp32 / 8))));
    }
    const auto& s = config_->sensitivity();
    const auto p = config_->prediction();
    if (!p) {
        error_->setText(QStringLiteral("Predicted error: <i>no sensitivity yet</i> (Analyze \u203A Sensitivity)"));
        error_->setToolTip(QStringLiteral("Run a sensitivity sweep to predict the output error of this configuration"));
        return;
    }
    QString text = std::isfinite(p->sqnrDb)
                       ? QStringLiteral("Predicted output SQNR <b>%1 dB</b>").arg(p->sqnrDb, 0, 'f', 1)
                       : QStringLiteral("Predicted output SQNR <b>\u221E</b> (no quantization error)");
    text += QStringLiteral(" from %1 sensitivity (%2)")
                .arg(QString::fromLatin1(sensitivityMethodName(s->method)), QString::fromLatin1(sensitivityModeName(s->mode)));
    if (p->layersMissing > 0)
        text += QStringLiteral(" \u00B7 %1 not measured").arg(countOf(p->layersMissing, QStringLiteral("layer"), QStringLiteral("layers")));
    if (p->interpolated > 0)
        text += QStringLiteral(" \u00B7 %1 interpolated").arg(p->interpolated);
    error_->setText(text);
    error_->setToolTip(QStringLiteral("Sum of each layer's output noise power when quantized alone at its bits "
                                      "(10^(-SQNR/10)), as the Pareto front predicts it; higher dB is less error. "
                                      "Bits between measured widths are interpolated in dB."));
}

} // namespace qs::ui
