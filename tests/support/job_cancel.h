// Cancelling a view's job the way a user does: once the job reports progress past a
// fraction, click the view's Cancel and time until every worker thread has returned.
#pragma once

#include "ui/jobs/job_progress_row.h"
#include "ui/jobs/job_runner.h"

#include <QElapsedTimer>
#include <QPushButton>
#include <QSignalSpy>
#include <QTest>

namespace qs::test {

// Milliseconds from the click until the workers returned; < 0 on a failure, described in `why`.
inline double cancelByButton(ui::JobRunner* jobs, ui::JobProgressRow* row, int job, double pastFraction, QString* why)
{
    QSignalSpy progress(jobs, &ui::JobRunner::jobProgress);
    for (int i = 0; i < 600; ++i) {
        if (!progress.isEmpty() && progress.back().at(1).toDouble() > pastFraction)
            break;
        progress.wait(100);
    }
    if (!jobs->isRunning(job)) {
        *why = QStringLiteral("the job ended before it could be cancelled");
        return -1;
    }
    QElapsedTimer clock;
    clock.start();
    QTest::mouseClick(row->cancelButton(), Qt::LeftButton);
    if (jobs->isRunning(job)) {
        *why = QStringLiteral("the job still runs after Cancel");
        return -1;
    }
    if (!jobs->waitForWorkers(5000)) {
        *why = QStringLiteral("the worker did not return within 5 s");
        return -1;
    }
    return double(clock.nsecsElapsed()) * 1e-6;
}

} // namespace qs::test
