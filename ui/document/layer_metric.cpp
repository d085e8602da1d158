#include "ui/document/layer_metric.h"

#include "ui/document/model_document.h"
#include "ui/widgets/format.h"

#include <algorithm>
#include <cmath>

namespace qs::ui {

QString metricName(LayerMetric m)
{
    switch (m) {
    case LayerMetric::SizeShare: return QStringLiteral("Share of size");
    case LayerMetric::WeightKurtosis: return QStringLiteral("Weight kurtosis");
    case LayerMetric::WeightOutliers: return QStringLiteral("Weight outliers");
    case LayerMetric::ChannelRange: return QStringLiteral("Channel range ratio");
    case LayerMetric::InputKurtosis: return QStringLiteral("Input act. kurtosis");
    case LayerMetric::Sensitivity: return QStringLiteral("Sensitivity");
    case LayerMetric::Bits: return QStringLiteral("Bits");
    }
    return {};
}

QString metricExplanation(LayerMetric m)
{
    switch (m) {
    case LayerMetric::SizeShare:
        return QStringLiteral("Parameters of the layer as a share of all parameters: where bits buy the most size.");
    case LayerMetric::WeightKurtosis:
        return QStringLiteral("Pearson kurtosis of the weights; 3 for a normal distribution. "
                              "Heavy tails (above ~10) stretch a uniform quantization grid. Of the raw weights, "
                              "as in the model (the inspector can show the BN-folded ones quantization sees).");
    case LayerMetric::WeightOutliers:
        return QStringLiteral("Share of weights more than 6 standard deviations from the mean (raw weights, as in the "
                              "model).");
    case LayerMetric::ChannelRange:
        return QStringLiteral("Largest per-output-channel range over the median one. "
                              "High ratios lose precision under per-tensor scales; prefer per-channel. Of the raw "
                              "weights, as in the model.");
    case LayerMetric::InputKurtosis:
        return QStringLiteral("Kurtosis of the layer's input activations over the calibration data. "
                              "High values call for clipping calibrators (percentile, MSE, entropy).");
    case LayerMetric::Sensitivity:
        return QStringLiteral("How much the model suffers when only this layer is quantized: filled from the "
                              "latest sensitivity run of this model in the open database.");
    case LayerMetric::Bits:
        return QStringLiteral("Weight / activation bits of the layer in the latest quantization or mixed-precision "
                              "run of this model in the open database.");
    }
    return {};
}

std::optional<double> metricValue(LayerMetric m, const ModelDocument& doc, int row)
{
    const LayerData* l = doc.layer(row);
    if (!l)
        return std::nullopt;
    switch (m) {
    case LayerMetric::SizeShare: return l->sizeShare;
    // Weight statistics arrive after the model is shown (Studio's "weights" job).
    case LayerMetric::WeightKurtosis:
        return l->weightsReady ? std::optional(l->summary.stats.kurtosis) : std::nullopt;
    case LayerMetric::WeightOutliers:
        return l->weightsReady ? std::optional(l->summary.stats.outlierFraction) : std::nullopt;
    case LayerMetric::ChannelRange:
        return l->weightsReady ? std::optional(l->summary.stats.channelRangeRatio) : std::nullopt;
    case LayerMetric::InputKurtosis:
        if (const auto& a = doc.activations())
            if (const ActivationProfile* p = a->find(l->summary.name, "input"))
                return p->stats.kurtosis;
        return std::nullopt;
    case LayerMetric::Sensitivity:
        if (const auto& s = doc.stored())
            if (auto it = s->sensitivity.find(l->summary.name); it != s->sensitivity.end())
                return it->second;
        return std::nullopt;
    case LayerMetric::Bits:
        if (const auto& s = doc.stored())
            if (auto it = s->bits.find(l->summary.name); it != s->bits.end())
                return double(it->second.first);
        return std::nullopt;
    }
    return std::nullopt;
}

bool metricAvailable(LayerMetric m, const ModelDocument& doc)
{
    for (int r = 0; r < doc.layerCount(); ++r)
        if (metricValue(m, doc, r))
            return true;
    return false;
}

ColorScale metricScale(LayerMetric m, const ModelDocument& doc)
{
    double lo = 0, hi = 1;
    bool log = false, lowIsBad = false;
    ColorScale::Ramp ramp = ColorScale::Ramp::Heat;
    switch (m) {
    case LayerMetric::SizeShare: ramp = ColorScale::Ramp::Blues; lo = 0; hi = 0; break;
    case LayerMetric::WeightKurtosis:
    case LayerMetric::InputKurtosis: lo = 3; hi = 20; log = true; break;
    case LayerMetric::WeightOutliers: lo = 0; hi = 1e-3; break;
    case LayerMetric::ChannelRange: lo = 1; hi = 10; log = true; break;
    case LayerMetric::Sensitivity:
        // SQNR in dB: below ~20 dB a layer hurts; a Hessian score is relative, so the model's own range.
        lowIsBad = !doc.stored() || doc.stored()->sensitivityIsSqnr;
        lo = lowIsBad ? 20 : 0;
        hi = lowIsBad ? 40 : 0;
        break;
    case LayerMetric::Bits: ramp = ColorScale::Ramp::Blues; lo = 2; hi = 8; break;
    }
    for (int r = 0; r < doc.layerCount(); ++r)
        if (auto v = metricValue(m, doc, r); v && std::isfinite(*v)) {
            lo = std::min(lo, *v);
            hi = std::max(hi, *v);
        }
    if (log)
        lo = std::max(lo, 1e-3);
    return ColorScale(ramp, lo, hi, log, lowIsBad);
}

QString formatMetric(LayerMetric m, double value)
{
    switch (m) {
    case LayerMetric::SizeShare: return formatPercent(value, 1);
    case LayerMetric::WeightOutliers: return value == 0 ? QStringLiteral("0") : formatPercent(value, 3);
    case LayerMetric::Bits: return QString::number(int(value));
    case LayerMetric::Sensitivity: return formatNumber(value, 3);
    default: return formatNumber(value, 3);
    }
}

} // namespace qs::ui
