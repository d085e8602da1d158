// "Run on Cluster...": the sensitivity view's sweep split into shards of a Slurm job
// array (core/cluster): sbatch options, then the shards' progress (done, running,
// pending, failed, ETA from finished shards, each shard's state and log) while the
// heatmap fills in as shards merge; Cancel scancels the jobs. Everything runs as a
// JobRunner job, off the GUI thread; the merged run goes to the open store.
#pragma once

#include "cluster/scheduler.h"
#include "cluster/sharded_sweep.h"

#include <QDialog>

#include <functional>
#include <memory>

class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace qs::ui {

class SensitivityPanel;
class Studio;

class ClusterSweepDialog : public QDialog {
    Q_OBJECT
public:
    // Makes the scheduler the sweep runs on (tests give a fake); default: Slurm.
    using SchedulerFactory = std::function<std::unique_ptr<Scheduler>(const SlurmOptions&)>;
    ClusterSweepDialog(Studio& studio, SensitivityPanel& panel, QWidget* parent = nullptr);
    void setSchedulerFactory(SchedulerFactory factory) { factory_ = std::move(factory); }

    // Submits with the fields' settings; returns the job id (-1 when nothing started, the
    // reason in statusText()).
    int submit();
    void cancel();
    bool isRunning() const;
    QString statusText() const;
    // The last progress the shards reported (shard table rows follow it).
    const ClusterProgress& progress() const { return progress_; }

    QSpinBox* shardsSpin() const { return shards_; }
    QLineEdit* workDirEdit() const { return workDir_; }
    QLineEdit* cliEdit() const { return cli_; }
    QLineEdit* confEdit() const { return conf_; }
    QTableWidget* shardTable() const { return table_; }

signals:
    void finished(bool complete); // the sweep ended and was recorded (or not: no store)

private:
    static QString bitsText(const std::vector<int>& bits);
    void showProgress(const ClusterProgress& p);
    void updateControls();

    Studio& studio_;
    SensitivityPanel& panel_;
    SchedulerFactory factory_;
    QSpinBox* shards_;
    QLineEdit* partition_;
    QLineEdit* time_;
    QLineEdit* memory_;
    QSpinBox* cpus_;
    QLineEdit* workDir_;
    QLineEdit* cli_;
    QLineEdit* conf_;
    QLabel* summary_;
    QLabel* status_;
    QProgressBar* bar_;
    QTableWidget* table_;
    QPushButton* submit_;
    QPushButton* cancel_;
    ClusterProgress progress_;
    int job_ = -1;
    int generation_ = 0; // bumped per submission: late updates of an older one are dropped
};

} // namespace qs::ui
