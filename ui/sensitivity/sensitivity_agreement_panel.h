// "Compare metrics" in the sensitivity dock: measures the one-shot KL, local SQNR,
// Hessian and weight kurtosis of every layer at one bit width as a job, with 95%
// bootstrap intervals, and shows them as a sortable layer table, the metrics' Spearman
// rank correlations and a verdict in words. Clicking a row selects that layer everywhere.
#pragma once

#include "analysis/sensitivity_metrics.h"

#include <QWidget>

#include <functional>
#include <memory>

class QLabel;
class QPushButton;
class QSpinBox;
class QTableView;
class QTableWidget;

namespace qs::ui {

class JobProgressRow;
class JobRunner;
class LayerSelection;
class ModelDocument;
class QuantConfigDocument;
class SensitivityAgreementModel;
class SensitivityAgreementProxy;
class Studio;

class SensitivityAgreementPanel : public QWidget {
    Q_OBJECT
public:
    // Measures on the studio's calibration data; a comparison is recorded in its open
    // store (none open: not recorded), as `sensitivity --metrics --db` records it.
    explicit SensitivityAgreementPanel(Studio& studio, QWidget* parent = nullptr);
    // The run the last finished comparison was recorded as (0: not recorded).
    int64_t lastRun() const { return lastRun_; }

    // What a comparison started now would measure with (the controls' settings).
    MetricsOptions currentOptions() const;
    // Starts the comparison; returns the job id (-1 when nothing started).
    int start();
    void cancel();
    bool isRunning() const;

    const SensitivityAgreement* result() const;
    SensitivityAgreementModel* model() const { return model_; }
    QTableView* table() const { return table_; }
    QTableWidget* spearmanTable() const { return spearman_; }
    QLabel* verdictLabel() const { return verdict_; }
    QLabel* statusLabel() const { return status_; }
    QSpinBox* bitsSpin() const { return bits_; }
    QSpinBox* bootstrapSpin() const { return bootstrap_; }
    QSpinBox* limitSpin() const { return limit_; }
    QPushButton* compareButton() const { return run_; }
    JobProgressRow* progressRow() const { return progress_; }

signals:
    void comparisonFinished(bool complete);

private:
    void showResult(std::shared_ptr<const SensitivityAgreement> r, int64_t runId);
    void fillSpearman();
    void markSelection();
    void updateControls();

    Studio& studio_;
    ModelDocument* doc_;
    QuantConfigDocument* config_;
    LayerSelection* selection_;
    JobRunner* jobs_;
    int64_t lastRun_ = 0;

    QSpinBox* bits_;
    QSpinBox* bootstrap_;
    QSpinBox* limit_;
    QPushButton* run_;
    JobProgressRow* progress_;
    QLabel* status_;
    SensitivityAgreementModel* model_;
    SensitivityAgreementProxy* proxy_;
    QTableView* table_;
    QTableWidget* spearman_;
    QLabel* verdict_;
    bool syncing_ = false;
};

} // namespace qs::ui
