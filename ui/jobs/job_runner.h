// The one place the GUI starts core work: runs it on a worker thread, forwards its
// Progress to the GUI thread by queued calls, cancels it, and hands the result back.
#pragma once

#include "jobs/progress.h"

#include <QElapsedTimer>
#include <QHash>
#include <QObject>
#include <QString>
#include <QThreadPool>

#include <functional>
#include <memory>

namespace qs::ui {

enum class JobOutcome { Done, Cancelled, Failed };

class JobRunner : public QObject {
    Q_OBJECT
public:
    // Runs on a worker thread and returns what to do with its result on the GUI
    // thread (called there only when the job completes, never after cancel()).
    using Deliver = std::function<void()>;
    using Work = std::function<Deliver(Progress& progress, const CancelToken& cancel)>;

    explicit JobRunner(QObject* parent = nullptr);
    ~JobRunner() override; // cancels every job and waits for the workers

    // Starts `work` and returns its id. Jobs of the same `kind` replace each other:
    // a running one is cancelled first (e.g. opening a second model).
    int start(const QString& kind, const QString& title, Work work);
    void cancel(int id);
    void cancelKind(const QString& kind);
    void cancelAll();

    bool isRunning(int id) const { return jobs_.contains(id); }
    bool isBusy() const { return !jobs_.isEmpty(); }
    bool isBusy(const QString& kind) const;
    int runningCount() const { return int(jobs_.size()); }
    QString title(int id) const;
    QList<int> runningIds() const; // oldest first
    // For tests and shutdown: processes events until no job runs or `timeoutMs` passes.
    bool waitForIdle(int timeoutMs);
    // Blocks until every worker thread has returned, including cancelled ones.
    bool waitForWorkers(int timeoutMs);
    // Worker threads still running, including cancelled jobs that have not returned yet.
    int activeWorkers() const { return pool_.activeThreadCount(); }

signals:
    void jobStarted(int id, const QString& title);
    // fraction 0..1, etaSeconds < 0 while unknown.
    void jobProgress(int id, double fraction, const QString& stage, double etaSeconds);
    // A cancelled job reports as soon as cancel() is called; its worker finishes in the background.
    void jobFinished(int id, const QString& title, qs::ui::JobOutcome outcome, const QString& message,
                     double seconds);

private:
    struct Job {
        QString kind, title;
        CancelToken cancel;
        QElapsedTimer clock;
    };
    void finish(int id, JobOutcome outcome, const QString& message);

    QThreadPool pool_;
    QHash<int, std::shared_ptr<Job>> jobs_;
    int nextId_ = 1;
};

} // namespace qs::ui

Q_DECLARE_METATYPE(qs::ui::JobOutcome)
