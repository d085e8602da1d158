// The mixed-precision Pareto chart: predicted output SQNR against stored model size for
// the front computed (as a job) from the configuration's sensitivity result, the runs of
// this model measured in the store, and the configuration being edited as a marker that
// follows every edit. Clicking a front point applies its bit widths (one undo step); a
// draggable vertical budget line picks the best point within that size.
#pragma once

#include "analysis/mixed_precision.h"

#include <QString>
#include <QWidget>

#include <functional>
#include <optional>
#include <vector>

class QCPGraph;
class QCPItemStraightLine;
class QCPItemText;
class QLabel;
class QPushButton;

namespace qs::ui {

class JobRunner;
class ModelDocument;
class PlotPanel;
class QuantConfigDocument;

struct MeasuredRun {
    int64_t run = 0;
    QString kind;
    double sizeKiB = 0, sqnrDb = 0;
    std::optional<double> top1;
};

class ParetoPanel : public QWidget {
    Q_OBJECT
public:
    ParetoPanel(ModelDocument* doc, QuantConfigDocument* config, JobRunner* jobs, QWidget* parent = nullptr);

    void setStorePath(std::function<QString()> path) { storePath_ = std::move(path); }
    // Re-reads the measured runs of the open model from the store (a job).
    void reloadMeasured();

    const std::vector<FrontPoint>& front() const { return front_; }
    const std::vector<MeasuredRun>& measured() const { return measured_; }
    PlotPanel* chart() const { return panel_; }
    QCPGraph* frontGraph() const { return frontGraph_; }
    QCPGraph* currentGraph() const { return current_; }
    QCPGraph* measuredGraph() const { return measuredGraph_; }

    // Chart coordinates: whole-model size in KiB of a front point, its predicted SQNR.
    double sizeKiB(const FrontPoint& p) const;
    double budgetKiB() const { return budgetKiB_; }
    void setBudgetKiB(double kib);
    // The best front point within the budget (index into front()), -1 when none fits.
    int bestIndex() const { return best_; }
    // Applies front()[i]'s bits to the configuration (one undo step).
    void applyPoint(int index);
    // The front point drawn within `radius` pixels of a plot position, -1 for none.
    int pointAt(const QPoint& pos, double radius = 10) const;

signals:
    void frontChanged();
    void measuredChanged();
    void budgetChanged(double kib);

private:
    void recompute();
    void redraw();
    void updateCurrent();
    void updateBudget();
    QString csv() const;

    ModelDocument* doc_;
    QuantConfigDocument* config_;
    JobRunner* jobs_;
    std::function<QString()> storePath_;
    PlotPanel* panel_;
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
};

} // namespace qs::ui
