// The status bar's job area: what runs, a progress bar, the time left and Cancel.
#pragma once

#include "ui/jobs/job_runner.h"

#include <QWidget>

class QLabel;
class QProgressBar;
class QToolButton;
class QTimer;

namespace qs::ui {

class JobStatusWidget : public QWidget {
    Q_OBJECT
public:
    explicit JobStatusWidget(JobRunner* jobs, QWidget* parent = nullptr);

    QToolButton* cancelButton() const { return cancel_; }
    QProgressBar* progressBar() const { return bar_; }
    QLabel* etaLabel() const { return eta_; }
    int shownJob() const { return job_; }

private:
    void onStarted(int id, const QString& title);
    void onProgress(int id, double fraction, const QString& stage, double eta);
    void onFinished(int id, const QString& title, JobOutcome outcome, const QString& message, double seconds);
    void showIdle(const QString& text);

    JobRunner* jobs_;
    QLabel* text_;
    QProgressBar* bar_;
    QLabel* eta_;
    QToolButton* cancel_;
    QTimer* fade_;
    int job_ = -1;
    QString title_;
    QString idleText_; // the last finished job's message, until it fades
};

} // namespace qs::ui
