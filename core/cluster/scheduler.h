// Where shards run: a small interface over a batch scheduler's job arrays, and its
// Slurm implementation through the sbatch, squeue, sacct/scontrol and scancel commands
// (whatever SLURM_CONF and PATH select, so the studio and CLI reach any cluster the
// shell can).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace qs {

// sbatch options of every shard task.
struct SlurmOptions {
    std::string partition;        // empty: the cluster's default
    std::string time = "01:00:00"; // per shard, [D-]HH:MM:SS
    std::string memory = "4G";     // per shard (--mem)
    int cpusPerTask = 1;
};
// Checks the options (time and memory forms, CPUs >= 1); one-line Error naming the option.
void checkSlurmOptions(const SlurmOptions& options);

class Scheduler {
public:
    virtual ~Scheduler() = default;
    // Submits `script` as an array of the given task indices, each task's output
    // going to `logPattern` (%a: the task index). Returns the job id.
    virtual std::string submit(const std::string& script, const std::vector<int>& tasks, const std::string& logPattern) = 0;
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
    std::string submit(const std::string& script, const std::vector<int>& tasks, const std::string& logPattern) override;
    std::map<int, std::string> queued(const std::string& jobId) override;
    std::string endState(const std::string& jobId, int task) override;
    void cancel(const std::string& jobId) override;
    const SlurmOptions& options() const { return options_; }

private:
    SlurmOptions options_;
};

// "0,2,5" for sbatch --array.
std::string arraySpec(const std::vector<int>& tasks);

} // namespace qs
