#include "ui/jobs/job_status_widget.h"

#include "ui/widgets/format.h"
#include "ui/widgets/icons.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QTimer>
#include <QToolButton>

namespace qs::ui {

JobStatusWidget::JobStatusWidget(JobRunner* jobs, QWidget* parent) : QWidget(parent), jobs_(jobs)
{
    setObjectName(QStringLiteral("jobStatus"));
    text_ = new QLabel(this);
    text_->setObjectName(QStringLiteral("jobText"));
    bar_ = new QProgressBar(this);
    bar_->setObjectName(QStringLiteral("jobProgress"));
    bar_->setRange(0, 1000);
    bar_->setFixedWidth(180);
    bar_->setTextVisible(false);
    eta_ = new QLabel(this);
    eta_->setObjectName(QStringLiteral("jobEta"));
    eta_->setProperty("role", "muted");
    eta_->setMinimumWidth(fontMetrics().horizontalAdvance(QStringLiteral("100 % \u00B7 59 min 59 s left")));
    cancel_ = new QToolButton(this);
    cancel_->setObjectName(QStringLiteral("jobCancel"));
    cancel_->setIcon(icon(IconId::Cancel));
    cancel_->setText(QStringLiteral("Cancel"));
    cancel_->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    cancel_->setToolTip(QStringLiteral("Cancel the running job (Esc)"));
    cancel_->setAutoRaise(true);
    fade_ = new QTimer(this);
    fade_->setSingleShot(true);
    connect(fade_, &QTimer::timeout, this, [this] {
        text_->clear();
        idleText_.clear();
    });

    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(4, 0, 4, 0);
    layout->setSpacing(8);
    layout->addWidget(text_);
    layout->addWidget(bar_);
    layout->addWidget(eta_);
    layout->addWidget(cancel_);

    connect(jobs_, &JobRunner::jobStarted, this, &JobStatusWidget::onStarted);
    connect(jobs_, &JobRunner::jobProgress, this, &JobStatusWidget::onProgress);
    connect(jobs_, &JobRunner::jobFinished, this, &JobStatusWidget::onFinished);
    connect(cancel_, &QToolButton::clicked, this, [this] {
        if (job_ >= 0)
            jobs_->cancel(job_);
    });
    showIdle(QString());
}

void JobStatusWidget::onStarted(int id, const QString& title)
{
    fade_->stop();
    job_ = id;
    title_ = title;
    text_->setText(title);
    bar_->setRange(0, 0); // busy until the first progress report
    bar_->show();
    eta_->setText(QString());
    eta_->show();
    cancel_->show();
    cancel_->setEnabled(true);
}

void JobStatusWidget::onProgress(int id, double fraction, const QString& stage, double eta)
{
    if (id != job_)
        return;
    if (bar_->maximum() == 0)
        bar_->setRange(0, 1000);
    bar_->setValue(int(fraction * 1000));
    text_->setText(stage.isEmpty() ? title_ : title_ + QStringLiteral(": ") + stage);
    const QString pct = QString::number(int(fraction * 100)) + QStringLiteral(" %");
    eta_->setText(eta >= 0 ? pct + QStringLiteral(" \u00B7 ") + formatDuration(eta) + QStringLiteral(" left") : pct);
}

void JobStatusWidget::onFinished(int id, const QString& title, JobOutcome outcome, const QString&, double seconds)
{
    if (id != job_)
        return;
    job_ = -1;
    switch (outcome) {
    case JobOutcome::Done:
        // A job too quick to notice (reading the database) leaves the last message standing.
        showIdle(seconds < 0.25 ? idleText_ : QStringLiteral("%1: done in %2").arg(title, formatDuration(seconds)));
        break;
    case JobOutcome::Cancelled: showIdle(QStringLiteral("%1: cancelled").arg(title)); break;
    case JobOutcome::Failed: showIdle(QStringLiteral("%1: failed").arg(title)); break;
    }
    // Another job may still run: show it.
    const QList<int> running = jobs_->runningIds();
    if (!running.isEmpty())
        onStarted(running.back(), jobs_->title(running.back()));
}

void JobStatusWidget::showIdle(const QString& text)
{
    idleText_ = text;
    text_->setText(text);
    bar_->hide();
    eta_->hide();
    cancel_->hide();
    if (!text.isEmpty())
        fade_->start(8000);
}

} // namespace qs::ui
