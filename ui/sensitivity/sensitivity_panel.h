// The sensitivity view: starts a sweep (method, bit widths, mode, sample limit) as a job
// on the window's calibration data, fills a layers x bits heatmap of output SQNR live as
// each layer's result arrives, and shows each layer's top-1 drop at one bit width as bars.
// Clicking a cell or a bar selects that layer everywhere. A finished sweep is recorded in
// the open experiment store and becomes the configuration's sensitivity result.
#pragma once

#include "analysis/sensitivity.h"

#include <QWidget>

#include <functional>
#include <memory>
#include <optional>

class QCPBars;
class QCPColorMap;
class QCPItemRect;
class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QTimer;

namespace qs::ui {

class JobRunner;
class LayerSelection;
class ModelDocument;
class PlotView;
class QuantConfigDocument;
class Studio;

class SensitivityPanel : public QWidget {
    Q_OBJECT
public:
    // A sweep runs on the studio's calibration data and is recorded in its open store.
    explicit SensitivityPanel(Studio& studio, QWidget* parent = nullptr);

    // Starts a sweep with the controls' settings; returns the job id (-1 when nothing started).
    int startSweep();
    // The controls' settings as sweep options, or nullopt with the reason in `error`.
    std::optional<SensitivityOptions> sweepOptions(QString* error = nullptr) const;
    // A sweep on a cluster (ClusterSweepDialog): clears the view for its bit widths, then
    // shows each partial merge as shards finish; runId != 0 marks the recorded end, and a
    // complete result becomes the configuration's sensitivity.
    void beginClusterSweep(const SensitivityOptions& options);
    void showClusterResult(const std::shared_ptr<const SensitivityResult>& result, int64_t runId);
    void cancelSweep();
    bool isRunning() const;

    // What the view shows: filled live during a sweep, or the configuration's result.
    const SensitivityResult& shown() const { return shown_; }
    int64_t lastRunId() const { return lastRun_; } // the store run of the last finished sweep, 0 for none

    QComboBox* methodCombo() const { return method_; }
    QComboBox* modeCombo() const { return mode_; }
    QLineEdit* bitsEdit() const { return bits_; }
    QSpinBox* limitSpin() const { return limit_; }
    QComboBox* barBitsCombo() const { return barBits_; }
    QPushButton* runButton() const { return run_; }
    PlotView* heatmap() const { return heatPanel_; }
    PlotView* bars() const { return barPanel_; }
    QCPColorMap* colorMap() const { return map_; }
    QCPBars* barPlottable() const { return barsPlot_; }
    // The layer row of a heatmap cell / bar at a widget position of the plot; -1 when none.
    int layerAtHeatmap(const QPoint& pos) const;
    // A cell's measure: SQNR in dB (+inf when error-free, NaN while not measured).
    double cellValue(int layerRow, int bits) const;
    // The text in the cell: the measure as `quantstudio-cli sensitivity` prints it
    // (sqnrText), the infinity sign when error-free, "" while not measured.
    QString cellText(int layerRow, int bits) const;
    static QString sqnrText(double db);
    // The cell's tooltip: what was measured and, for a cell lower than at fewer bits, why.
    QString cellToolTip(int layerRow, int bits) const;
    // Of the widths below `bits`, the one that measured best on this layer when it measured
    // better than `bits` (a dip); 0 when none did.
    int betterAtFewerBits(int layerRow, int bits) const;
    QString heatmapCsv() const; // what the heatmap's CSV export writes

signals:
    void sweepFinished(bool complete);
    void resultArrived(int layerRow, int bits); // each live (layer, bits) measure, on the GUI thread

private:
    const BitMeasure* measure(int layerRow, int bits) const;
    // Heatmap rows: the model's layers, then the attention operands the shown sweep
    // measured (SensitivityOptions::attention), each a row like a layer's.
    int heatRows() const;
    const LayerSensitivity* operandAt(int row) const; // null for a layer row
    QString rowLabel(int row) const;
    void readStoredSweep();
    void reset(const std::vector<int>& bits);
    void showResult(const SensitivityResult& r);
    void onMeasured(const LayerSensitivity& layer, int bits, int generation);
    void rebuildHeatmap();
    void rebuildBars();
    void markSelection();
    void updateControls();
    QString barsCsv() const;

    Studio& studio_;
    ModelDocument* doc_;
    QuantConfigDocument* config_;
    LayerSelection* selection_;
    JobRunner* jobs_;

    QComboBox* method_;
    QComboBox* mode_;
    QCheckBox* attention_;
    QLineEdit* bits_;
    QSpinBox* limit_;
    QPushButton* run_;
    QPushButton* cancel_;
    QLabel* status_;
    QComboBox* barBits_;
    PlotView* heatPanel_;
    PlotView* barPanel_;
    QCPColorMap* map_ = nullptr;
    QCPBars* barsPlot_ = nullptr;
    QCPItemRect* heatMark_ = nullptr;
    QTimer* replot_;

    SensitivityResult shown_;
    std::vector<int> bitsShown_; // heatmap columns
    int job_ = -1;
    int sweep_ = 0; // bumped per sweep: late live results of an older one are dropped
    int64_t lastRun_ = 0;
};

} // namespace qs::ui
