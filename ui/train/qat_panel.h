// The live view of a quantization-aware training job: training loss, held-out
// distillation loss and learning rate by step (QCustomPlot, as steps arrive), each
// learned activation scale against its calibrated value, progress with ETA, Cancel.
#pragma once

#include <QWidget>

#include <map>
#include <string>

class QCustomPlot;
class QLabel;
class QProgressBar;
class QPushButton;
class QTableWidget;

namespace qs::train {
struct QatStep;
struct QatEval;
} // namespace qs::train

namespace qs::ui {

class PlotView;

class QatPanel : public QWidget {
    Q_OBJECT
public:
    explicit QatPanel(QWidget* parent = nullptr);

    // Clears the curves for a job of `totalSteps` steps described by `title`.
    void begin(const QString& title, qint64 totalSteps);
    void addStep(const train::QatStep& step);
    void addEval(const train::QatEval& eval);
    void setProgress(double fraction, double etaSeconds);
    void addCheckpoint(qint64 step, qint64 runId);
    void finish(const QString& message); // the job ended (done, cancelled or failed)

    PlotView* plotView() const { return plot_; }
    QCustomPlot* plot() const;
    QTableWidget* scaleTable() const { return scales_; }
    QPushButton* cancelButton() const { return cancel_; }
    QProgressBar* progressBar() const { return progress_; }
    QLabel* statusLabel() const { return status_; }

    enum Curve { TrainLoss, HeldOutKd, LearningRate };
    enum ScaleColumn { ValueColumn, CalibratedColumn, LearnedColumn, ChangeColumn };

signals:
    void cancelRequested();

private:
    PlotView* plot_;
    QTableWidget* scales_;
    QProgressBar* progress_;
    QLabel *status_, *eta_;
    QPushButton* cancel_;
    std::map<std::string, float> initialScales_;
    bool haveInitial_ = false;
};

} // namespace qs::ui
