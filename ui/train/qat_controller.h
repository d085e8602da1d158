// The studio's training job: "Train (QAT)..." asks for a QatRequest, then runs
// trainQat (core/train) on the JobRunner with the open model as teacher and student
// and the current bit configuration, feeding the QatPanel as steps and evaluations
// arrive; every checkpoint is recorded as a run (record/qat_record, as `qat --db`)
// and the runs list refreshed, so it compares and exports like any run.
#pragma once

#include "ui/train/qat_dialog.h"

#include <QObject>

class QAction;

namespace qs::ui {

class QatPanel;
class Studio;

class QatController : public QObject {
    Q_OBJECT
public:
    QatController(Studio& studio, QatPanel* panel, QWidget* window);

    QAction* trainAction() const { return trainAction_; }
    QatRequest defaultRequest() const;
    // Starts training the open model; returns the job id (-1 when no model is open).
    // Without an open database the default one is used.
    int train(const QatRequest& request);
    int jobId() const { return job_; } // the running or last job, -1 before any
    void cancel();

public slots:
    void openDialog();

signals:
    void started(int jobId);
    void checkpointStored(qint64 runId, qint64 step);
    void finished(int jobId);

private:
    void checkpointDone(qint64 runId, qint64 step, const QString& storePath);

    Studio& studio_;
    QatPanel* panel_;
    QWidget* window_;
    QAction* trainAction_;
    QatRequest last_;
    bool haveLast_ = false;
    int job_ = -1;
};

} // namespace qs::ui
