#include "ui/jobs/job_progress_row.h"

#include "ui/widgets/format.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>

namespace qs::ui {

JobProgressRow::JobProgressRow(JobRunner* jobs, QWidget* parent) : QWidget(parent), jobs_(jobs)
{
    bar_ = new QProgressBar(this);
    bar_->setObjectName(QStringLiteral("jobRowProgress"));
    bar_->setRange(0, 1000);
    bar_->setValue(0);
    bar_->setTextVisible(false);
    bar_->setMaximumHeight(10);
    eta_ = new QLabel(this);
    eta_->setObjectName(QStringLiteral("jobRowEta"));
    eta_->setProperty("role", "muted");
    eta_->setMinimumWidth(fontMetrics().horizontalAdvance(QStringLiteral("100 % \u00B7 59 min 59 s left")));
    cancel_ = new QPushButton(QStringLiteral("Cancel"), this);
    cancel_->setObjectName(QStringLiteral("jobRowCancel"));
    cancel_->setEnabled(false);
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(6);
    layout->addWidget(bar_, 1);
    layout->addWidget(eta_);
    layout->addWidget(cancel_);

    connect(cancel_, &QPushButton::clicked, this, &JobProgressRow::cancel);
    connect(jobs_, &JobRunner::jobProgress, this, [this](int id, double fraction, const QString& stage, double eta) {
        if (id != job_)
            return;
        if (bar_->maximum() == 0)
            bar_->setRange(0, 1000);
        bar_->setValue(int(fraction * 1000));
        const QString pct = QString::number(int(fraction * 100)) + QStringLiteral(" %");
        eta_->setText(eta >= 0 ? pct + QStringLiteral(" \u00B7 ") + formatDuration(eta) + QStringLiteral(" left") : pct);
        eta_->setToolTip(stage);
    });
    connect(jobs_, &JobRunner::jobFinished, this,
            [this](int id, const QString&, JobOutcome outcome, const QString& message, double seconds) {
                if (id != job_)
                    return;
                job_ = -1;
                bar_->setRange(0, 1000);
                bar_->setValue(outcome == JobOutcome::Done ? 1000 : 0);
                cancel_->setEnabled(false);
                eta_->setText(outcome == JobOutcome::Done ? QStringLiteral("done in %1").arg(formatDuration(seconds))
                              : outcome == JobOutcome::Cancelled ? QStringLiteral("cancelled")
                                                                 : QStringLiteral("failed"));
                emit finished(outcome, message);
            });
}

int JobProgressRow::start(const QString& kind, const QString& title, JobRunner::Work work)
{
    const int id = jobs_->start(kind, title, std::move(work));
    track(id);
    return id;
}

void JobProgressRow::cancel()
{
    if (isRunning())
        jobs_->cancel(job_);
}

void JobProgressRow::track(int id)
{
    job_ = id;
    const bool running = isRunning();
    bar_->setRange(0, running ? 0 : 1000); // busy until the first progress report
    bar_->setValue(0);
    eta_->setText(running ? QStringLiteral("starting\u2026") : QString());
    cancel_->setEnabled(running);
}

bool JobProgressRow::isRunning() const
{
    return job_ >= 0 && jobs_->isRunning(job_);
}

} // namespace qs::ui
