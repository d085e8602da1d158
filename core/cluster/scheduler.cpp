#include "cluster/scheduler.h"

#include "cluster/process.h"
#include "util/error.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

extern char** environ;
#include <cstring>
#include <regex>
#include <sstream>

namespace qs {

void checkSlurmOptions(const SlurmOptions& o)
{
    static const std::regex time(R"((\d+-)?\d{1,2}(:\d{2}){0,2}|\d+)");
    static const std::regex memory(R"(\d+[KMGT]?)");
    static const std::regex partition(R"([A-Za-z0-9_.,-]*)");
    if (!std::regex_match(o.time, time))
        fail("--time ", quoted(o.time), ": expected Slurm's [D-]HH:MM:SS or minutes");
    if (!std::regex_match(o.memory, memory))
        fail("--mem ", quoted(o.memory), ": expected a size like 4G or 500M");
    if (!std::regex_match(o.partition, partition))
        fail("--partition ", quoted(o.partition), ": expected a partition name");
    if (o.cpusPerTask < 1 || o.cpusPerTask > 1024)
        fail("--cpus-per-task ", o.cpusPerTask, ": expected 1..1024");
}

std::string arraySpec(const std::vector<int>& tasks)
{
    std::string s;
    for (int t : tasks)
        s += (s.empty() ? "" : ",") + std::to_string(t);
    return s;
}

SlurmScheduler::SlurmScheduler(SlurmOptions options) : options_(std::move(options))
{
    checkSlurmOptions(options_);
}

ProcessResult SlurmScheduler::run(const std::vector<std::string>& argv) const
{
    if (options_.conf.empty())
        return runProcess(argv);
    return runProcess(argv, {"SLURM_CONF=" + options_.conf});
}

std::string SlurmScheduler::submit(
    const std::string& script, const std::vector<int>& tasks, const std::string& logPattern)
{
    std::vector<std::string> argv = {"sbatch", "--parsable", "--array=" + arraySpec(tasks),
        "--cpus-per-task=" + std::to_string(options_.cpusPerTask), "--mem=" + options_.memory,
        "--time=" + options_.time, "--output=" + logPattern, "--job-name=quantstudio-shards"};
    if (!options_.partition.empty())
        argv.push_back("--partition=" + options_.partition);
    argv.push_back(script);
    const ProcessResult r = run(argv);
    std::string id = firstLine(r.out);
    id = id.substr(0, id.find(';')); // "<id>;<cluster>" on federations
    if (r.exitCode != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
        fail("sbatch ", script, ": ", r.exitCode < 0 ? r.err : firstLine(r.err.empty() ? r.out : r.err));
    return id;
}

std::map<int, std::string> SlurmScheduler::queued(const std::string& jobId)
{
    // One line per array task (-r), pending ones too: "<array job>|<task>|<state>".
    const ProcessResult r = run({"squeue", "-h", "-r", "--me", "-o", "%F|%K|%T"});
    if (r.exitCode != 0)
        fail("squeue: ", firstLine(r.err.empty() ? r.out : r.err));
    std::map<int, std::string> tasks;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        const std::size_t a = line.find('|'), b = line.find('|', a + 1);
        if (a == std::string::npos || b == std::string::npos || line.substr(0, a) != jobId)
            continue;
        const std::string task = line.substr(a + 1, b - a - 1);
        if (task.empty() || task.find_first_not_of("0123456789") != std::string::npos)
            continue;
        tasks[std::stoi(task)] = firstLine(line.substr(b + 1));
    }
    return tasks;
}

std::string SlurmScheduler::endState(const std::string& jobId, int task)
{
    const std::string id = jobId + "_" + std::to_string(task);
    // sacct where accounting is on; else slurmctld's record (kept for MinJobAge).
    ProcessResult r = run({"sacct", "-n", "-P", "-X", "-j", id, "-o", "State,ExitCode"});
    if (r.exitCode == 0 && !firstLine(r.out).empty()) {
        std::string s = firstLine(r.out);
        std::replace(s.begin(), s.end(), '|', ' ');
        return s;
    }
    r = run({"scontrol", "-o", "show", "job", id});
    if (r.exitCode != 0)
        return {};
    auto field = [&](const std::string& name) {
        const std::size_t at = r.out.find(" " + name + "=");
        if (at == std::string::npos)
            return std::string();
        const std::size_t from = at + name.size() + 2;
        return r.out.substr(from, r.out.find_first_of(" \n", from) - from);
    };
    const std::string state = field("JobState"), exit = field("ExitCode"), reason = field("Reason");
    if (state.empty())
        return {};
    return state + " " + exit + (reason.empty() || reason == "None" ? "" : " (" + reason + ")");
}

void SlurmScheduler::cancel(const std::string& jobId)
{
    const ProcessResult r = run({"scancel", jobId});
    if (r.exitCode != 0)
        fail("scancel ", jobId, ": ", firstLine(r.err.empty() ? r.out : r.err));
}

LocalScheduler::LocalScheduler(int parallel) : parallel_(std::max(1, parallel))
{
}

LocalScheduler::~LocalScheduler()
{
    for (Task& t : tasks_)
        if (t.pid > 0 && !t.ended) {
            ::kill(t.pid, SIGKILL);
            waitpid(t.pid, nullptr, 0);
        }
}

std::string LocalScheduler::submit(
    const std::string& script, const std::vector<int>& tasks, const std::string& logPattern)
{
    const std::string job = std::to_string(nextJob_++);
    for (int i : tasks) {
        Task t;
        t.job = job;
        t.script = script;
        t.index = i;
        t.log = logPattern;
        for (std::size_t at; (at = t.log.find("%a")) != std::string::npos;)
            t.log.replace(at, 2, std::to_string(i));
        tasks_.push_back(t);
    }
    step();
    return job;
}

void LocalScheduler::step()
{
    int running = 0;
    for (Task& t : tasks_) {
        if (t.pid <= 0 || t.ended)
            continue;
        int status = 0;
        if (waitpid(t.pid, &status, WNOHANG) == t.pid) {
            t.ended = true;
            t.status = status;
        } else {
            ++running;
        }
    }
    for (Task& t : tasks_) {
        if (running >= parallel_)
            break;
        if (t.pid != 0)
            continue;
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 1, t.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&actions, 1, 2);
        std::vector<std::string> env = {"SLURM_ARRAY_TASK_ID=" + std::to_string(t.index), "SLURM_CPUS_PER_TASK=1"};
        std::vector<char*> envp;
        for (char** e = environ; *e; ++e)
            if (std::strncmp(*e, "SLURM_ARRAY_TASK_ID=", 20) != 0 && std::strncmp(*e, "SLURM_CPUS_PER_TASK=", 20) != 0)
                envp.push_back(*e);
        for (std::string& e : env)
            envp.push_back(e.data());
        envp.push_back(nullptr);
        std::string bash = "/bin/bash";
        std::vector<char*> argv = {bash.data(), t.script.data(), nullptr};
        pid_t pid = 0;
        const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) {
            t.pid = -1;
            t.ended = true;
            t.status = 127 << 8;
            continue;
        }
        t.pid = pid;
        ++running;
    }
}

std::map<int, std::string> LocalScheduler::queued(const std::string& jobId)
{
    step();
    std::map<int, std::string> q;
    for (const Task& t : tasks_)
        if (t.job == jobId && !t.ended)
            q[t.index] = t.pid > 0 ? "RUNNING" : "PENDING";
    return q;
}

std::string LocalScheduler::endState(const std::string& jobId, int task)
{
    for (const Task& t : tasks_)
        if (t.job == jobId && t.index == task && t.ended)
            return WIFSIGNALED(t.status)     ? str("FAILED 0:", WTERMSIG(t.status))
                : WEXITSTATUS(t.status) == 0 ? std::string("COMPLETED 0:0")
                                             : str("FAILED ", WEXITSTATUS(t.status), ":0");
    return {};
}

void LocalScheduler::cancel(const std::string& jobId)
{
    for (Task& t : tasks_) {
        if (t.job != jobId || t.ended)
            continue;
        if (t.pid > 0) {
            ::kill(t.pid, SIGKILL);
            waitpid(t.pid, &t.status, 0);
        } else {
            t.pid = -1;
            t.status = SIGKILL;
        }
        t.ended = true;
    }
}

} // namespace qs
