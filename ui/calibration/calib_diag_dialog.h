// Calibration diagnostics (Analysis > Calibration Diagnostics): runs diagnoseCalibration
// as a job on the open calibration data, optionally against an evaluation set, and
// shows how each calibrator's range converges with the number of samples for one layer
// (the slowest by default), the tolerance, the recommended calibration size, and whether
// the evaluation data are shifted from the calibration data (a banner with the reasons).
#pragma once

#include "analysis/calib_diag.h"

#include <QDialog>

#include <functional>
#include <memory>

class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace qs::ui {

class JobProgressRow;
class JobRunner;
class ModelDocument;
class PlotView;
class Studio;

class CalibDiagDialog : public QDialog {
    Q_OBJECT
public:
    explicit CalibDiagDialog(Studio& studio, QWidget* parent = nullptr);

    CalibDiagOptions currentOptions() const;
    // Starts the diagnosis; returns the job id (-1 when nothing started).
    int start();
    void cancel();
    bool isRunning() const;

    const CalibDiagnostics* result() const { return result_.get(); }
    // The layer the chart shows, as an index into CalibDiagnostics::layers (-1: none).
    int shownLayer() const;
    void showLayer(int layer);
    bool shiftWarningShown() const; // the banner is up

    QLabel* dataLabel() const { return data_; }
    QLineEdit* evalEdit() const { return eval_; }
    QSpinBox* limitSpin() const { return limit_; }
    QDoubleSpinBox* toleranceSpin() const { return tolerance_; }
    QPushButton* runButton() const { return run_; }
    JobProgressRow* progressRow() const { return progress_; }
    PlotView* chart() const { return chart_; }
    QComboBox* layerCombo() const { return layer_; }
    QLabel* recommendedLabel() const { return recommended_; }
    QLabel* shiftBanner() const { return banner_; }
    QLabel* shiftSummary() const { return shiftText_; }
    QTableWidget* channelTable() const { return channels_; }

signals:
    void diagnosisFinished(bool complete);

protected:
    void showEvent(QShowEvent* event) override;

private:
    void chooseEval();
    void showResult(std::shared_ptr<const CalibDiagnostics> d);
    void rebuildChart();
    void showShift();
    void updateControls();
    QString chartCsv() const;

    Studio& studio_;
    ModelDocument* doc_;
    JobRunner* jobs_;
    std::shared_ptr<const CalibDiagnostics> result_;

    QLabel* data_;
    QLineEdit* eval_;
    QSpinBox* limit_;
    QDoubleSpinBox* tolerance_;
    QPushButton* run_;
    JobProgressRow* progress_;
    QLabel* status_;
    PlotView* chart_;
    QComboBox* layer_;
    QLabel* recommended_;
    QLabel* recommendedDetail_;
    QLabel* banner_;
    QLabel* shiftText_;
    QTableWidget* channels_;
};

} // namespace qs::ui
