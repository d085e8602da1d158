// The mixed-precision Pareto chart: predicted output SQNR against stored model size for
// the front computed (as a job) from the configuration's sensitivity result, the runs of
// this model measured in the store, and the configuration being edited as a marker that
// follows every edit. Clicking a front point applies its bit widths (one undo step); a
// draggable vertical budget line picks the best point within that size. On the measured
// latency axis the front is searched on this CPU's latency profile (from the store, else
// measured as a job) and the budget is in milliseconds; the profile's table is a tab.
#pragma once

#include "analysis/latency.h"
#include "analysis/mixed_precision.h"
#include "store/records.h"

#include <QString>
#include <QWidget>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

class QCPGraph;
class QCPItemStraightLine;
class QCPItemText;
class QComboBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTabWidget;
class QTableView;

namespace qs::ui {

class JobRunner;
class LatencyTableModel;
class ModelDocument;
class PlotView;
class QuantConfigDocument;
class Studio;

struct MeasuredRun {
    int64_t run = 0;
    QString kind;
    double sizeKiB = 0, sqnrDb = 0;
    std::optional<double> top1;
};

class ParetoPanel : public QWidget {
    Q_OBJECT
public:
    enum class CostAxis { Size, Latency };

    explicit ParetoPanel(Studio& studio, QWidget* parent = nullptr);

    // Re-reads the measured runs of the open model from the store (a job).
    void reloadMeasured();

    const std::vector<FrontPoint>& front() const { return front_; }
    const std::vector<MeasuredRun>& measured() const { return measured_; }
    PlotView* chart() const { return panel_; }
    QCPGraph* frontGraph() const { return frontGraph_; }
    QCPGraph* currentGraph() const { return current_; }
    QCPGraph* measuredGraph() const { return measuredGraph_; }

    // The x axis. Latency needs a profile: switching to it reads the store's or measures
    // one (a job), then computes the latency front.
    CostAxis costAxis() const { return axis_; }
    void setCostAxis(CostAxis axis);
    // Batch, threads (0: all cores), warm-up and repeats of the latency profile.
    void setLatencyOptions(const LatencyOptions& options);
    const LatencyOptions& latencyOptions() const { return latencyOptions_; }
    // Reads the store's profile for the options, else measures one (a job; its id, -1 when
    // none started). `remeasure` skips the store.
    int requestProfile(bool remeasure = false);
    void cancelProfile();
    bool isMeasuring() const;
    const std::shared_ptr<const LatencyProfile>& latencyProfile() const { return profile_; }
    const std::shared_ptr<const LayerLinks>& latencyLinks() const { return links_; }
    bool profileFromStore() const { return profileCached_; }
    // Noise of each layer's 8-bit input (from an activation sweep of the data) the latency options add.
    const std::map<std::string, double>& inputNoise() const { return inputNoise_; }
    QTableView* latencyTable() const { return table_; }
    LatencyTableModel* latencyModel() const { return tableModel_; }
    QComboBox* axisCombo() const { return axisCombo_; }
    QLabel* isaLabel() const { return isa_; }
    QLabel* profileLabel() const { return profileText_; }

    // Chart coordinates: whole-model size in KiB of a front point, its predicted SQNR.
    double sizeKiB(const FrontPoint& p) const;
    // x of front()[i] on the current axis: size in KiB, or predictLatencyMs() of its INT8 layers.
    double costOf(int index) const;
    // Predicted latency of the configuration being edited; nullopt without a profile.
    std::optional<double> currentLatencyMs() const;
    // The budget on the latency axis, in ms.
    double budgetMs() const { return budgetMs_; }
    void setBudgetMs(double ms);
    double budgetKiB() const { return budgetKiB_; }
    void setBudgetKiB(double kib);
    // The best front point within the budget (index into front()), -1 when none fits.
    int bestIndex() const { return best_; }
    // Applies front()[i]'s bits to the configuration (one undo step).
    void applyPoint(int index);
    // The front point drawn within `radius` pixels of a plot position, -1 for none.
    int pointAt(const QPoint& pos, double radius = 10) const;
    // What front()[i] is, for its hover tooltip: size (KV share), predicted SQNR, the
    // layers' bits and, when the search had attention operands, each operand's bits.
    QString pointToolTip(int index) const;
    // Tokens the KV cache of searched attention operands is sized for (the size axis);
    // starts at the model's context, else 1024.
    int kvTokens() const;
    void setKvTokens(int tokens);
    QSpinBox* kvTokensBox() const { return kvTokens_; }

signals:
    void frontChanged();
    void measuredChanged();
    void budgetChanged(double kib);
    void latencyProfileChanged();

private:
    void recompute();
    void redraw();
    void updateCurrent();
    void updateBudget();
    QString csv() const;
    void setBudgetValue(double x); // in the axis' unit
    double budgetValue() const { return axis_ == CostAxis::Latency ? budgetMs_ : budgetKiB_; }
    void updateAxisLabels();
    void updateProfileText();
    void onProfile(std::shared_ptr<const LatencyProfile> profile, std::shared_ptr<const LayerLinks> links,
                   std::shared_ptr<const std::map<std::string, double>> noise, bool cached);
    std::optional<double> currentSqnrDb() const; // with the INT8 inputs' noise on the latency axis

    Studio& studio_;
    ModelDocument* doc_;
    QuantConfigDocument* config_;
    JobRunner* jobs_;
    PlotView* panel_;
    QLabel* summary_;
    QPushButton* applyBest_;
    QCPGraph* frontGraph_;
    QCPGraph* measuredGraph_;
    QCPGraph* current_;
    QCPGraph* bestGraph_;
    QCPItemStraightLine* budgetLine_;
    QCPItemText* budgetText_;
    std::vector<QCPItemText*> runLabels_;
    std::vector<FrontPoint> front_;
    std::vector<MeasuredRun> measured_;
    double budgetKiB_ = 0;
    bool budgetSet_ = false;
    bool dragging_ = false;
    int best_ = -1;
    int computeGeneration_ = 0;

    CostAxis axis_ = CostAxis::Size;
    QComboBox* axisCombo_;
    QSpinBox* batch_;
    QSpinBox* threads_;
    QSpinBox* kvTokens_;
    QPushButton* remeasure_;
    QLabel* isa_;
    QLabel* profileText_;
    QProgressBar* progress_;
    QLabel* eta_;
    QPushButton* cancel_;
    QTabWidget* tabs_;
    QTableView* table_;
    LatencyTableModel* tableModel_;
    LatencyOptions latencyOptions_;
    std::shared_ptr<const LatencyProfile> profile_;
    std::shared_ptr<const LayerLinks> links_;
    std::map<std::string, double> inputNoise_;
    int noiseGeneration_ = -1; // the model generation inputNoise_ was measured for
    bool profileCached_ = false;
    int profileJob_ = -1;
    std::vector<double> latencyMs_; // per front point on the latency axis
    double budgetMs_ = 0;
    bool budgetMsSet_ = false;
};

} // namespace qs::ui
