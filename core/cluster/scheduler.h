// Where shards run: a small interface over a batch scheduler's job arrays, and its
// Slurm implementation through the sbatch, squeue, sacct/scontrol and scancel commands
// (whatever SLURM_CONF and PATH select, so the studio and CLI reach any cluster the
// shell can).
#pragma once

#include "cluster/process.h"

#include <map>
#include <string>
#include <vector>

namespace qs {

// sbatch options of every shard task.
struct SlurmOptions {
    std::string partition;         // empty: the cluster's default
    std::string time = "01:00:00"; // per shard, [D-]HH:MM:SS
    std::string memory = "4G";     // per shard (--mem)
    int cpusPerTask = 1;
    std::string conf; // SLURM_CONF for the Slurm commands; empty: the environment's (or Slurm's default)
};
// Checks the options (time and memory forms, CPUs >= 1); one-line Error naming the option.
void checkSlurmOptions(const SlurmOptions& options);

class Scheduler {
public:
    virtual ~Scheduler() = default;
    // Submits `script` as an array of the given task indices, each task's output
    // going to `logPattern` (%a: the task index). Returns the job id.
    virtual std::string submit(
        const std::string& script, const std::vector<int>& tasks, const std::string& logPattern) = 0;
    // The tasks of the job still queued or running, with the scheduler's state
    // (PENDING, RUNNING, COMPLETING, ...). A task absent from the map has ended.
    virtual std::map<int, std::string> queued(const std::string& jobId) = 0;
    // How an ended task ended, in words ("COMPLETED 0:0", "FAILED 1:0", "CANCELLED"),
    // or empty when the scheduler no longer knows.
    virtual std::string endState(const std::string& jobId, int task) = 0;
    virtual void cancel(const std::string& jobId) = 0;
};

class SlurmScheduler : public Scheduler {
public:
    explicit SlurmScheduler(SlurmOptions options);
    std::string submit(
        const std::string& script, const std::vector<int>& tasks, const std::string& logPattern) override;
    std::map<int, std::string> queued(const std::string& jobId) override;
    std::string endState(const std::string& jobId, int task) override;
    void cancel(const std::string& jobId) override;
    const SlurmOptions& options() const { return options_; }

private:
    ProcessResult run(const std::vector<std::string>& argv) const;
    SlurmOptions options_;
};

// Array tasks as child processes of this one (bash SCRIPT with SLURM_ARRAY_TASK_ID and
// SLURM_CPUS_PER_TASK=1 set), at most `parallel` at a time: shards on this machine,
// and the scheduler the studio's tests run the cluster dialog on. Job ids count from 1.
class LocalScheduler : public Scheduler {
public:
    explicit LocalScheduler(int parallel = 1);
    ~LocalScheduler() override; // kills and reaps the tasks still running
    std::string submit(
        const std::string& script, const std::vector<int>& tasks, const std::string& logPattern) override;
    std::map<int, std::string> queued(const std::string& jobId) override;
    std::string endState(const std::string& jobId, int task) override;
    void cancel(const std::string& jobId) override;

private:
    struct Task {
        std::string job, script, log;
        int index = 0;
        int pid = 0;     // 0 while pending
        int status = -1; // exit status once ended
        bool ended = false;
    };
    void step(); // reaps ended tasks, starts pending ones
    int parallel_;
    int nextJob_ = 1;
    std::vector<Task> tasks_;
};

// "0,2,5" for sbatch --array.
std::string arraySpec(const std::vector<int>& tasks);

} // namespace qs
