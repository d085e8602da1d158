// One job's progress inside a view: a bar, the stage with the time left, and Cancel.
// The views that start their own long job (metric comparison, calibration
// diagnostics) show it next to their controls, not only in the status bar.
#pragma once

#include "ui/jobs/job_runner.h"

#include <QWidget>

class QLabel;
class QProgressBar;
class QPushButton;

namespace qs::ui {

class JobProgressRow : public QWidget {
    Q_OBJECT
public:
    explicit JobProgressRow(JobRunner* jobs, QWidget* parent = nullptr);

    // Starts `work` on the runner (JobRunner::start) and follows it; returns the job id.
    int start(const QString& kind, const QString& title, JobRunner::Work work);
    // Follows job `id` (a JobRunner id) until it finishes; -1 follows nothing.
    void track(int id);
    void cancel(); // the followed job, if it runs
    int job() const { return job_; }
    bool isRunning() const;

    QProgressBar* progressBar() const { return bar_; }
    QLabel* etaLabel() const { return eta_; }
    QPushButton* cancelButton() const { return cancel_; }

signals:
    // The followed job ended, after a finished job delivered its result; `message` is the
    // runner's (the error text when Failed).
    void finished(qs::ui::JobOutcome outcome, const QString& message);

private:
    JobRunner* jobs_;
    QProgressBar* bar_;
    QLabel* eta_;
    QPushButton* cancel_;
    int job_ = -1;
};

} // namespace qs::ui
