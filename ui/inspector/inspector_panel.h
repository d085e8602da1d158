// Everything about the selected layer: weight histogram (linear or log counts),
// per-output-channel ranges, the activation histogram with each calibrator's
// clipping range, and the numbers beside each plot. Draws only cached data, so a
// selection redraws in milliseconds even for layers with millions of weights.
#pragma once

#include "measure/stats.h"

#include <QWidget>

#include <map>
#include <memory>
#include <string>

class QComboBox;
class QLabel;
class QStackedWidget;
class QTableWidget;
class QToolButton;
class QVBoxLayout;

namespace qs {
struct ActivationProfile;
}

namespace qs::ui {

// A layer's weight as quantization sees it where that is not the model's own tensor
// (a conv with its BatchNormalization folded in): what the weight plot then shows.
struct WeightView {
    QString what; // "BN-folded"
    Histogram histogram;
    TensorStats stats; // channelRangeRatio included
    ChannelRanges channels;
};

class ElidedLabel;
class LayerSelection;
class ModelDocument;
class Studio;
class OutlierPanel;
class PlotView;

class InspectorPanel : public QWidget {
    Q_OBJECT
public:
    // Its Calibrate button runs the studio's calibration.
    explicit InspectorPanel(Studio& studio, QWidget* parent = nullptr);

    PlotView* weightPlot() const { return weightPlot_; }
    PlotView* channelPlot() const { return channelPlot_; }
    PlotView* activationPlot() const { return activationPlot_; }
    QTableWidget* weightTable() const { return weightTable_; }
    QTableWidget* calibratorTable() const { return calibTable_; }
    QToolButton* weightLogToggle() const { return weightLog_; }
    QComboBox* activationRole() const { return role_; }
    // Outlier channels and massive activations of a Gemm/MatMul layer's input.
    OutlierPanel* outlierPanel() const { return outliers_; }
    int shownLayer() const { return layer_; }

    // Shows a layer (row of ModelData::layers) and replots now; -1 clears.
    void showLayer(int layerRow);
    void showNode(int node);
    // The weight the plot shows for `layer` (a name of ModelData::layers) instead of the
    // model's own; null goes back to the model's. Redraws when that layer is shown.
    void setWeightView(const std::string& layer, std::shared_ptr<const WeightView> view);
    const WeightView* weightView(int layerRow) const;
    // Which weights the histogram, the channel ranges and their statistics show when a
    // layer has a WeightView: the model's own ("raw", what the layer table lists) or the
    // view's ("folded", the tensor quantization sees; the default, as what-if edits it).
    // Plot titles and the statistics say which.
    QComboBox* weightSource() const { return weightSource_; }
    const WeightView* shownWeightView(int layerRow) const; // null while the raw weights show
    // A panel below the plots (the what-if panel).
    void addPanel(QWidget* panel);

signals:
    void calibrateRequested();
    // The weight or activation plot was redrawn (its items cleared): overlays re-add theirs.
    void plotsRedrawn();

private:
    void refresh();
    void drawWeights();
    void drawChannels();
    void drawActivations();
    void showEmpty(const QString& message);
    const ActivationProfile* currentActivation() const;

    ModelDocument* doc_;
    LayerSelection* selection_;
    int layer_ = -1, node_ = -1;

    ElidedLabel* title_;
    QLabel* opBadge_;
    QLabel* details_;
    QStackedWidget* pages_;
    QLabel* emptyLabel_;
    QTableWidget* nodeTable_;
    PlotView* weightPlot_;
    PlotView* channelPlot_;
    PlotView* activationPlot_;
    QTableWidget* weightTable_;
    QTableWidget* channelTable_;
    QTableWidget* calibTable_;
    QToolButton* weightLog_;
    QToolButton* channelSort_;
    QToolButton* activationLog_;
    QComboBox* role_;
    QComboBox* weightSource_;
    OutlierPanel* outliers_;
    QVBoxLayout* plotsLayout_ = nullptr;
    std::map<std::string, std::shared_ptr<const WeightView>> weightViews_;
};

} // namespace qs::ui
