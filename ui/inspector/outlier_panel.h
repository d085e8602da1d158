// The selected linear layer's input outliers (transformers): per-channel max |x| over
// every token as bars, outlier channels in red, and the per-token-position max |x|
// (massive activations), with the weight's kurtosis beside them. The profile is one
// job over the calibration data (core/analysis/outliers), never the GUI thread.
#pragma once

#include "analysis/outliers.h"

#include <QString>
#include <QWidget>

#include <functional>
#include <memory>
#include <string>
#include <vector>

class QPushButton;
class QTableWidget;

namespace qs::ui {

class JobRunner;
class ModelDocument;
class PlotView;
class Studio;

class OutlierPanel : public QWidget {
    Q_OBJECT
public:
    explicit OutlierPanel(Studio& studio, QWidget* parent = nullptr);

    PlotView* channelPlot() const { return channelPlot_; }
    PlotView* positionPlot() const { return positionPlot_; }
    QPushButton* profileButton() const { return button_; }
    QTableWidget* table() const { return table_; }
    bool hasResults() const { return results_ != nullptr; }
    const LinearInputOutliers* current() const;

    // Shows the layer (node name) from the last profile; "" clears.
    void showLayer(const std::string& layer);
    // Starts the profiling job; returns its id, -1 when nothing was started.
    int profile();

signals:
    void profiled(); // results reached the panel (GUI thread)

private:
    void draw();

    Studio& studio_;
    ModelDocument* doc_;
    JobRunner* jobs_;
    std::shared_ptr<const std::vector<LinearInputOutliers>> results_;
    QString dataLabel_;
    std::string layer_;
    PlotView* channelPlot_;
    PlotView* positionPlot_;
    QTableWidget* table_;
    QPushButton* button_;
};

} // namespace qs::ui
