// The per-layer numbers the studio colours and sorts by, with what they mean for
// quantization. Shared by the layer table, the graph view's colouring and its legend.
#pragma once

#include "ui/widgets/color_scale.h"

#include <QString>

#include <optional>

namespace qs::ui {

class ModelDocument;

enum class LayerMetric {
    SizeShare,       // parameters / model parameters
    WeightKurtosis,  // Pearson kurtosis of the weights (3 = normal)
    WeightOutliers,  // share of weights beyond 6 std
    ChannelRange,    // max / median per-output-channel range
    InputKurtosis,   // kurtosis of the layer's input activations (after calibration)
    Sensitivity,     // accuracy loss when this layer alone is quantized (later issue)
    Bits,            // chosen weight bits (later issue)
};
inline constexpr int layerMetricCount = 7;

QString metricName(LayerMetric m);
QString metricExplanation(LayerMetric m);
// nullopt when the number is not known (yet) for that layer.
std::optional<double> metricValue(LayerMetric m, const ModelDocument& doc, int row);
bool metricAvailable(LayerMetric m, const ModelDocument& doc);
// A scale anchored where the metric starts to matter, widened to the model's values.
ColorScale metricScale(LayerMetric m, const ModelDocument& doc);
QString formatMetric(LayerMetric m, double value);

} // namespace qs::ui
