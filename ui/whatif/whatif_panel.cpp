#include "ui/whatif/whatif_panel.h"

#include "measure/activations.h"
#include "analysis/bit_budget.h"
#include "ui/document/model_document.h"
#include "ui/document/quant_config_document.h"
#include "ui/inspector/inspector_panel.h"
#include "ui/whatif/range_editor.h"
#include "ui/whatif/whatif_controller.h"
#include "ui/widgets/format.h"
#include "ui/widgets/plot_view.h"
#include "ui/widgets/theme.h"

#include <QComboBox>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace qs::ui {
namespace {

QString db(double v)
{
    return std::isfinite(v) ? QString::number(v, 'f', 1) + QStringLiteral(" dB") : QStringLiteral("\u221E");
}

QString beforeAfter(const QString& before, const QString& after)
{
    return before + QStringLiteral(" \u2192 <b>") + after + QStringLiteral("</b>");
}

QString pct(const std::optional<double>& v)
{
    return v ? QString::number(*v * 100, 'f', 1) + QStringLiteral(" %") : dash();
}

// Top-1 before and after, with the change in points.
QString top1Text(const WhatIfResult& r)
{
    QString top1 = beforeAfter(pct(r.base.top1), pct(r.metrics.top1));
    if (auto d = r.top1Delta())
        top1 += QStringLiteral(" (%1%2 pt)").arg(*d >= 0 ? QStringLiteral("+") : QString()).arg(*d * 100, 0, 'f', 1);
    return top1;
}

} // namespace

WhatIfPanel::WhatIfPanel(ModelDocument* doc, WhatIfController* whatIf, InspectorPanel* inspector)
    : QFrame(inspector), doc_(doc), whatIf_(whatIf), inspector_(inspector)
{
    setObjectName(QStringLiteral("whatIfPanel"));
    setFrameShape(QFrame::StyledPanel);
    setStyleSheet(QStringLiteral("#whatIfPanel { background: #f8fafc; border: 1px solid #e2e8f0; border-radius: 4px; }"));
    weightEditor_ = new RangeEditor(inspector->weightPlot()->plot(), this);
    activationEditor_ = new RangeEditor(inspector->activationPlot()->plot(), this);

    auto* title = new QLabel(QStringLiteral("<b>What-if</b>"), this);
    wbits_ = new QSpinBox(this);
    wbits_->setObjectName(QStringLiteral("whatIfWeightBits"));
    abits_ = new QSpinBox(this);
    abits_->setObjectName(QStringLiteral("whatIfActivationBits"));
    for (QSpinBox* s : {wbits_, abits_}) {
        s->setRange(2, 8);
        s->setSuffix(QStringLiteral(" bits"));
        s->setKeyboardTracking(false); // one what-if per committed value, not per keystroke
    }
    wbits_->setToolTip(QStringLiteral("What if this layer's weights had this many bits"));
    abits_->setToolTip(QStringLiteral("What if this layer's input activation had this many bits"));
    keep_ = new QPushButton(QStringLiteral("Keep range"), this);
    keep_->setObjectName(QStringLiteral("whatIfKeep"));
    keep_->setToolTip(QStringLiteral("Store the dragged range as a per-tensor override of the configuration"));
    keep_->setEnabled(false);
    error_ = new QLabel(this);
    error_->setObjectName(QStringLiteral("whatIfError"));
    error_->setTextFormat(Qt::RichText);
    result_ = new QLabel(this);
    result_->setObjectName(QStringLiteral("whatIfResult"));
    result_->setTextFormat(Qt::RichText);
    kept_ = new QLabel(this);
    kept_->setProperty("role", "muted");

    // Long lines elide at the panel's edge rather than widen the inspector dock.
    for (QLabel* l : {error_, result_, kept_})
        l->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    auto* head = new QHBoxLayout;
    head->addWidget(title);
    head->addStretch(1);
    head->addWidget(new QLabel(QStringLiteral("W"), this));
    head->addWidget(wbits_);
    head->addWidget(new QLabel(QStringLiteral("A"), this));
    head->addWidget(abits_);
    head->addWidget(keep_);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 6, 8, 6);
    layout->setSpacing(3);
    layout->addLayout(head);
    layout->addWidget(error_);
    layout->addWidget(result_);
    layout->addWidget(kept_);

    // Attention operands: one what-if of a point's bits and granularity at a time.
    operandRow_ = new QWidget(this);
    operand_ = new QComboBox(operandRow_);
    operand_->setObjectName(QStringLiteral("whatIfOperand"));
    operand_->setToolTip(QStringLiteral("An attention operand (Q, K, V or P input of an activation x activation MatMul)"));
    obits_ = new QComboBox(operandRow_);
    obits_->setObjectName(QStringLiteral("whatIfOperandBits"));
    obits_->addItem(QStringLiteral("float"), 32);
    for (int b = 8; b >= 2; --b)
        obits_->addItem(QStringLiteral("%1 bits").arg(b), b);
    ogran_ = new QComboBox(operandRow_);
    ogran_->setObjectName(QStringLiteral("whatIfOperandGranularity"));
    for (auto g : {OperandGranularity::Tensor, OperandGranularity::Head, OperandGranularity::Token, OperandGranularity::Channel})
        ogran_->addItem(QString(operandGranularityName(g)), int(g));
    auto* orow = new QHBoxLayout(operandRow_);
    orow->setContentsMargins(0, 4, 0, 0);
    orow->addWidget(new QLabel(QStringLiteral("Operand"), operandRow_));
    orow->addWidget(operand_, 1);
    orow->addWidget(obits_);
    orow->addWidget(ogran_);
    operandResult_ = new QLabel(this);
    operandResult_->setObjectName(QStringLiteral("whatIfOperandResult"));
    operandResult_->setTextFormat(Qt::RichText);
    operandResult_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    layout->addWidget(operandRow_);
    layout->addWidget(operandResult_);
    connect(operand_, &QComboBox::currentIndexChanged, this, [this] {
        // Show the chosen point's current spec; trying it needs a change of bits or granularity.
        const QSignalBlocker a(obits_), b(ogran_);
        const int i = operand_->currentIndex();
        if (i < 0 || i >= int(operands_.size()))
            return;
        const OperandSpec spec = operandSpecOf(operands_[std::size_t(i)]);
        obits_->setCurrentIndex(std::max(0, obits_->findData(spec.isFloat() ? 32 : spec.bits)));
        ogran_->setCurrentIndex(std::max(0, ogran_->findData(int(spec.granularity))));
        showOperandResult();
    });
    connect(obits_, &QComboBox::currentIndexChanged, this, &WhatIfPanel::operandEdited);
    connect(ogran_, &QComboBox::currentIndexChanged, this, &WhatIfPanel::operandEdited);

    for (auto [editor, target] : {std::pair{weightEditor_, Target::Weight}, std::pair{activationEditor_, Target::Activation}}) {
        connect(editor, &RangeEditor::rangeChanged, this, [this, target = target](double lo, double hi) { rangeMoved(target, lo, hi); });
        connect(editor, &RangeEditor::rangeReleased, this,
                [this, target = target](double lo, double hi) { rangeReleased(target, lo, hi); });
    }
    connect(wbits_, &QSpinBox::valueChanged, this, &WhatIfPanel::bitsEdited);
    connect(abits_, &QSpinBox::valueChanged, this, &WhatIfPanel::bitsEdited);
    connect(keep_, &QPushButton::clicked, this, [this] {
        if (change_ && !change_->setRanges.empty()) {
            whatIf_->keep(*change_);
            keep_->setEnabled(false);
        }
    });
    connect(inspector_, &InspectorPanel::plotsRedrawn, this, &WhatIfPanel::layerShown);
    connect(whatIf_, &WhatIfController::sessionUpdated, this, [this] {
        // A BN-folded conv's weight plot shows the folded tensor, the one whose range is edited.
        if (doc_->model())
            for (const LayerData& l : doc_->model()->layers) {
                const WhatIfLayerInfo* info = whatIf_->layerInfo(l.summary.name);
                inspector_->setWeightView(l.summary.name, info ? info->folded : nullptr);
            }
        layerShown();
    });
    connect(whatIf_, &WhatIfController::resultReady, this, &WhatIfPanel::showResult);
    connect(whatIf_, &WhatIfController::resultReady, this, &WhatIfPanel::showOperandResult);
    connect(whatIf_, &WhatIfController::configChanged, this, &WhatIfPanel::showKept);
    connect(whatIf_, &WhatIfController::failed, this, [this](const QString& message) {
        result_->setText(QStringLiteral("<span style='color:#b91c1c'>%1</span>").arg(message.toHtmlEscaped()));
    });
    // Another model: nothing of the last one's what-if is true of it.
    connect(doc_, &ModelDocument::modelChanged, this, [this] {
        change_.reset();
        errorNow_.reset();
        error_->setText(idleText());
        showResult();
        listOperands();
    });
    error_->setText(idleText());
    showKept();
    listOperands();
}

void WhatIfPanel::listOperands()
{
    const auto model = doc_->model();
    operands_ = model && model->graph ? findAttentionOperands(*model->graph).points : std::vector<AttentionPoint> {};
    {
        const QSignalBlocker quiet(operand_);
        operand_->clear();
        for (const AttentionPoint& p : operands_)
            operand_->addItem(QString::fromStdString(p.name));
    }
    operandRow_->setVisible(!operands_.empty());
    operandResult_->setVisible(!operands_.empty());
    if (!operands_.empty())
        emit operand_->currentIndexChanged(operand_->currentIndex());
}

OperandSpec WhatIfPanel::operandSpecOf(const AttentionPoint& p) const
{
    const QuantConfig& c = whatIf_->config();
    auto own = c.attention.points.find(p.name);
    return own != c.attention.points.end() ? own->second : c.attention.role(p.role);
}

void WhatIfPanel::operandEdited()
{
    const int i = operand_->currentIndex();
    if (i < 0 || i >= int(operands_.size()))
        return;
    const AttentionPoint& p = operands_[std::size_t(i)];
    OperandSpec spec = operandSpecOf(p);
    spec.bits = obits_->currentData().toInt();
    spec.granularity = OperandGranularity(ogran_->currentData().toInt());
    if (spec.granularity == OperandGranularity::Token)
        spec.calibrator = "minmax"; // per token is each token's min-max at run time
    WhatIfChange change;
    change.operand = p.name;
    change.operandSpec = spec;
    start(change, operandResult_);
}

void WhatIfPanel::showOperandResult()
{
    const auto& r = whatIf_->lastResult();
    const int i = operand_->currentIndex();
    const std::string point = i >= 0 && i < int(operands_.size()) ? operands_[std::size_t(i)].name : std::string();
    if (!r || point.empty() || r->layer != point) {
        if (!whatIf_->isBusy())
            operandResult_->setText(QStringLiteral("<span style='color:#6b7280'>Change an operand's bits or "
                                                   "granularity: measured and predicted output SQNR show here.</span>"));
        return;
    }
    // Predicted from the sensitivity sweep (its operand curves), before and after.
    QString predicted = QStringLiteral("no sweep of the operands yet");
    const QuantConfigDocument* cd = whatIf_->configDocument();
    const auto sens = cd ? cd->sensitivity() : nullptr;
    if (sens && doc_->model()) {
        std::vector<std::string> names;
        for (const LayerData& l : doc_->model()->layers)
            names.push_back(l.summary.name);
        const ErrorPrediction before = predictError(*sens, whatIf_->config(), names);
        const ErrorPrediction after = predictError(*sens, r->config, names);
        const bool swept = std::any_of(sens->layers.begin(), sens->layers.end(),
                                       [&](const LayerSensitivity& l) { return l.layer == point; });
        predicted = swept ? beforeAfter(db(before.sqnrDb), db(after.sqnrDb))
                          : QStringLiteral("not swept (run sensitivity with attention operands)");
    }
    const QString top1 = top1Text(*r);
    operandResult_->setText(QStringLiteral("<b>%1</b>: measured output SQNR %2 &nbsp;·&nbsp; predicted %3<br>"
                                           "KL %4 &nbsp;·&nbsp; Top-1 %5<br><span style='color:#6b7280'>vs FP32 "
                                           "on %6 samples, full re-run in %7 ms</span>")
                                .arg(QString::fromStdString(point).toHtmlEscaped(),
                                     beforeAfter(db(r->base.outputSqnrDb), db(r->metrics.outputSqnrDb)), predicted,
                                     beforeAfter(formatNumber(r->base.kl, 3), formatNumber(r->metrics.kl, 3)), top1)
                                .arg(r->samples)
                                .arg(r->seconds * 1e3, 0, 'f', 0));
}

QString WhatIfPanel::idleText()
{
    return QStringLiteral("Drag the dark lines on a histogram to try a clipping range.");
}

std::string WhatIfPanel::layerName() const
{
    const LayerData* l = doc_->layer(inspector_->shownLayer());
    return l ? l->summary.name : std::string();
}

std::string WhatIfPanel::tensorName(Target target) const
{
    const LayerData* l = doc_->layer(inspector_->shownLayer());
    if (!l)
        return {};
    if (const WhatIfLayerInfo* info = whatIf_->layerInfo(l->summary.name))
        return target == Target::Weight ? info->weight : info->input;
    const Graph& g = *doc_->model()->graph;
    const Node& n = g.nodes[std::size_t(l->node)];
    return target == Target::Weight ? g.weightOf(n) : layerInputOf(g, n);
}

QuantSpec WhatIfPanel::spec(Target target) const
{
    const auto lq = whatIf_->config().forLayer(layerName());
    const LayerQuant q = lq ? *lq : LayerQuant{};
    return target == Target::Weight ? q.weight : q.activation;
}

const Histogram* WhatIfPanel::histogram(Target target) const
{
    const LayerData* l = doc_->layer(inspector_->shownLayer());
    if (!l)
        return nullptr;
    if (target == Target::Weight) {
        const WhatIfLayerInfo* info = whatIf_->layerInfo(l->summary.name);
        return info && info->folded ? &info->folded->histogram : &l->weights.histogram;
    }
    const auto& a = doc_->activations();
    const ActivationProfile* p = a ? a->find(l->summary.name, "input") : nullptr;
    return p ? &p->calibration.histogram : nullptr;
}

void WhatIfPanel::layerShown()
{
    const LayerData* l = doc_->layer(inspector_->shownLayer());
    if (!l) {
        weightEditor_->setShown(false);
        activationEditor_->setShown(false);
        return;
    }
    const std::string name = l->summary.name;
    const WhatIfLayerInfo* info = whatIf_->layerInfo(name);
    if (!whatIf_->hasSession() && doc_->activations() && !whatIf_->isBusy())
        whatIf_->prepare(); // built in the background while the user looks

    // Weight lines on the tensor that gets quantized: the model's own, or the BN-folded one.
    // With the raw weight shown instead of the folded one, the folded tensor's lines would not fit the plot.
    const bool weightEditable = info && (info->weightAsStored || info->folded) && !spec(Target::Weight).isFloat() &&
        (!info->folded || inspector_->shownWeightView(inspector_->shownLayer()));
    const auto& ranges = whatIf_->config().ranges;
    // The lines start at the current range of the tensor, and stay where the user left
    // them until that range, or the layer, changes.
    auto place = [this, &name](RangeEditor* editor, Target target, double lo, double hi) {
        const std::pair<double, double> base{lo, hi};
        auto& placed = placed_[int(target)];
        if (placed && placed->first == name && placed->second == base)
            return;
        placed = std::make_pair(name, base);
        editor->setRange(lo, hi);
    };
    if (weightEditable) {
        const auto kept = ranges.find(info->weight);
        const TensorStats& s = info->folded ? info->folded->stats : l->summary.stats;
        place(weightEditor_, Target::Weight, kept != ranges.end() ? kept->second.first : s.min,
              kept != ranges.end() ? kept->second.second : s.max);
    }
    weightEditor_->setShown(weightEditable);
    inspector_->weightPlot()->setToolTip(
        info && info->folded ? QStringLiteral("This layer's BatchNormalization is folded into the weight before "
                                              "quantization: the histogram and the clipping lines are of the folded "
                                              "weight %1")
                                   .arg(QString::fromStdString(info->weight))
                             : QString());

    const bool input = inspector_->activationRole()->currentData().toString() == QStringLiteral("input");
    const Histogram* h = histogram(Target::Activation);
    const bool actEditable = input && h && !spec(Target::Activation).isFloat();
    if (actEditable) {
        const std::string value = tensorName(Target::Activation);
        const auto kept = ranges.find(value);
        double lo = h->lo, hi = h->hi;
        if (kept != ranges.end()) {
            lo = kept->second.first;
            hi = kept->second.second;
        } else if (info && info->activationRange) {
            lo = info->activationRange->lo;
            hi = info->activationRange->hi;
        } else if (const ActivationProfile* p = doc_->activations()->find(name, "input")) {
            lo = p->stats.min;
            hi = p->stats.max;
        }
        place(activationEditor_, Target::Activation, lo, hi);
    }
    activationEditor_->setShown(actEditable);

    QSignalBlocker bw(wbits_), ba(abits_);
    const QuantSpec w = spec(Target::Weight), a = spec(Target::Activation);
    wbits_->setValue(w.isFloat() ? 8 : w.bits);
    abits_->setValue(a.isFloat() ? 8 : a.bits);
    wbits_->setEnabled(whatIf_->config().forLayer(name).has_value());
    abits_->setEnabled(wbits_->isEnabled());
    keep_->setEnabled(change_ && !change_->setRanges.empty() && change_->layer == name && !whatIf_->isBusy());
    showResult();
}

void WhatIfPanel::rangeMoved(Target target, double lo, double hi)
{
    const Histogram* h = histogram(target);
    if (!h)
        return;
    const QuantSpec s = spec(target);
    const int bits = s.isFloat() ? 8 : s.bits;
    errorNow_ = histogramQuantError(*h, float(lo), float(hi), bits, s.symmetric);
    error_->setText(QStringLiteral("%1 clipping range [%2, %3] at %4 bits, from its histogram:<br>MSE <b>%5</b> "
                                   "\u00B7 SQNR <b>%6</b> \u00B7 clips %7 of the values")
                        .arg(target == Target::Weight ? QStringLiteral("Weight") : QStringLiteral("Input"),
                             formatNumber(lo, 3), formatNumber(hi, 3))
                        .arg(bits)
                        .arg(formatNumber(errorNow_->mse, 3), db(errorNow_->sqnrDb),
                             formatPercent(errorNow_->clippedFraction, 2)));
}

void WhatIfPanel::rangeReleased(Target target, double lo, double hi)
{
    const std::string tensor = tensorName(target);
    if (tensor.empty())
        return;
    WhatIfChange c;
    c.layer = layerName();
    c.setRanges[tensor] = {float(lo), float(hi)};
    start(c);
}

void WhatIfPanel::bitsEdited()
{
    const std::string name = layerName();
    const auto lq = whatIf_->config().forLayer(name);
    if (name.empty() || !lq)
        return;
    WhatIfChange c;
    c.layer = name;
    c.spec = *lq;
    c.spec->weight.bits = wbits_->value();
    c.spec->activation.bits = abits_->value();
    start(c);
}

void WhatIfPanel::start(const WhatIfChange& change, QLabel* status)
{
    change_ = change;
    keep_->setEnabled(false);
    job_ = whatIf_->evaluate(change);
    (status ? status : result_)->setText(whatIf_->hasSession() ? QStringLiteral("<i>Running what-if\u2026</i>")
                                           : QStringLiteral("<i>Preparing what-if (calibrating, caching "
                                                            "activations)\u2026</i>"));
}

void WhatIfPanel::showResult()
{
    const auto& r = whatIf_->lastResult();
    if (!r || r->layer != layerName()) {
        if (!whatIf_->isBusy())
            result_->setText(QStringLiteral("<span style='color:#6b7280'>Release a line or change the bits:<br>the "
                                            "layer and the model against FP32 show here.</span>"));
        return;
    }
    const QString top1 = top1Text(*r);
    result_->setText(QStringLiteral("Layer SQNR %1 &nbsp;\u00B7&nbsp; Measured output SQNR %2<br>KL %3 &nbsp;\u00B7&nbsp; "
                                    "Top-1 %4<br><span style='color:#6b7280'>vs FP32 on %5 samples, re-run "
                                    "downstream in %6 ms</span>")
                         .arg(beforeAfter(db(r->baseLayerSqnrDb), db(r->layerSqnrDb)),
                              beforeAfter(db(r->base.outputSqnrDb), db(r->metrics.outputSqnrDb)),
                              beforeAfter(formatNumber(r->base.kl, 3), formatNumber(r->metrics.kl, 3)), top1)
                         .arg(r->samples)
                         .arg(r->seconds * 1e3, 0, 'f', 0));
    keep_->setEnabled(change_ && !change_->setRanges.empty() && change_->layer == r->layer);
}

void WhatIfPanel::showKept()
{
    const auto& ranges = whatIf_->config().ranges;
    if (ranges.empty()) {
        kept_->setText(QStringLiteral("No kept ranges."));
        kept_->setToolTip(QString());
        return;
    }
    QStringList lines;
    for (const auto& [name, r] : ranges)
        lines << QStringLiteral("%1: [%2, %3]").arg(QString::fromStdString(name), formatNumber(r.first), formatNumber(r.second));
    kept_->setText(QStringLiteral("Kept ranges: %1 (what-ifs start from them)").arg(ranges.size()));
    kept_->setToolTip(lines.join(QLatin1Char('\n')));
}

} // namespace qs::ui
