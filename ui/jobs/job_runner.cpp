#include "ui/jobs/job_runner.h"

#include "util/error.h"

#include <QCoreApplication>

#include <algorithm>
#include <QEventLoop>
#include <QPointer>
#include <QTimer>

#ifdef __linux__
#include <sys/resource.h>
#include <unistd.h>
#endif

namespace qs::ui {
namespace {

// Workers yield to the GUI thread: a niced thread (and the kernel threads it starts,
// which inherit its nice value) gets a small share of a busy core, so the event
// loop keeps running on machines with few cores.
void lowerWorkerPriority()
{
#ifdef __linux__
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
#endif
}

} // namespace

JobRunner::JobRunner(QObject* parent) : QObject(parent)
{
    qRegisterMetaType<JobOutcome>();
    // Two workers: a model load and a calibration pass may overlap; each core
    // kernel parallelizes internally.
    pool_.setMaxThreadCount(2);
    pool_.setObjectName(QStringLiteral("quantstudio-jobs"));
}

JobRunner::~JobRunner()
{
    for (const auto& job : std::as_const(jobs_))
        job->cancel.cancel();
    pool_.waitForDone();
}

bool JobRunner::isBusy(const QString& kind) const
{
    for (const auto& job : jobs_)
        if (job->kind == kind)
            return true;
    return false;
}

QList<int> JobRunner::runningIds() const
{
    QList<int> ids = jobs_.keys();
    std::sort(ids.begin(), ids.end());
    return ids;
}

QString JobRunner::title(int id) const
{
    auto it = jobs_.constFind(id);
    return it == jobs_.constEnd() ? QString() : (*it)->title;
}

int JobRunner::start(const QString& kind, const QString& title, Work work)
{
    cancelKind(kind);
    const int id = nextId_++;
    auto job = std::make_shared<Job>();
    job->kind = kind;
    job->title = title;
    job->clock.start();
    jobs_.insert(id, job);
    emit jobStarted(id, title);

    QPointer<JobRunner> self(this);
    const CancelToken cancel = job->cancel;
    pool_.start([self, id, cancel, work = std::move(work)] {
        lowerWorkerPriority();
        // Progress arrives here on the worker; it is already rate-limited by Progress.
        Progress progress([self, id, cancel](const ProgressState& s) {
            if (cancel.cancelled() || !self)
                return;
            const QString stage = QString::fromStdString(s.stage);
            QMetaObject::invokeMethod(
                self, [self, id, s, stage] {
                    if (self && self->jobs_.contains(id))
                        emit self->jobProgress(id, s.fraction, stage, s.etaSeconds);
                },
                Qt::QueuedConnection);
        });
        JobOutcome outcome = JobOutcome::Done;
        QString message;
        Deliver deliver;
        try {
            deliver = work(progress, cancel);
            if (cancel.cancelled())
                outcome = JobOutcome::Cancelled;
        } catch (const Cancelled&) {
            outcome = JobOutcome::Cancelled;
        } catch (const std::exception& e) {
            outcome = JobOutcome::Failed;
            message = QString::fromStdString(e.what());
        } catch (...) {
            outcome = JobOutcome::Failed;
            message = QStringLiteral("unknown error");
        }
        if (!self)
            return;
        QMetaObject::invokeMethod(
            self,
            [self, id, outcome, message, deliver = std::move(deliver)] {
                // A job cancelled meanwhile was already reported; its result is dropped.
                if (!self || !self->jobs_.contains(id))
                    return;
                if (outcome == JobOutcome::Done && deliver) {
                    try {
                        deliver();
                    } catch (const std::exception& e) {
                        self->finish(id, JobOutcome::Failed, QString::fromStdString(e.what()));
                        return;
                    }
                }
                self->finish(id, outcome, message);
            },
            Qt::QueuedConnection);
    });
    return id;
}

void JobRunner::finish(int id, JobOutcome outcome, const QString& message)
{
    auto job = jobs_.take(id);
    if (!job)
        return;
    emit jobFinished(id, job->title, outcome, message, double(job->clock.nsecsElapsed()) * 1e-9);
}

void JobRunner::cancel(int id)
{
    auto it = jobs_.find(id);
    if (it == jobs_.end())
        return;
    (*it)->cancel.cancel();
    finish(id, JobOutcome::Cancelled, QString());
}

void JobRunner::cancelKind(const QString& kind)
{
    const auto ids = jobs_.keys();
    for (int id : ids)
        if (jobs_.value(id)->kind == kind)
            cancel(id);
}

void JobRunner::cancelAll()
{
    const auto ids = jobs_.keys();
    for (int id : ids)
        cancel(id);
}

bool JobRunner::waitForIdle(int timeoutMs)
{
    if (!isBusy())
        return true;
    QEventLoop loop;
    QTimer::singleShot(timeoutMs, &loop, &QEventLoop::quit);
    auto c = connect(this, &JobRunner::jobFinished, &loop, [this, &loop] {
        if (!isBusy())
            loop.quit();
    });
    loop.exec();
    disconnect(c);
    return !isBusy();
}

bool JobRunner::waitForWorkers(int timeoutMs)
{
    return pool_.waitForDone(timeoutMs);
}

} // namespace qs::ui
