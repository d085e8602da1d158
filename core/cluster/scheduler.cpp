#include "cluster/scheduler.h"

#include "cluster/process.h"
#include "util/error.h"

#include <algorithm>
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

std::string SlurmScheduler::submit(const std::string& script, const std::vector<int>& tasks, const std::string& logPattern)
{
    std::vector<std::string> argv = {"sbatch", "--parsable", "--array=" + arraySpec(tasks),
        "--cpus-per-task=" + std::to_string(options_.cpusPerTask), "--mem=" + options_.memory,
        "--time=" + options_.time, "--output=" + logPattern, "--job-name=quantstudio-shards"};
    if (!options_.partition.empty())
        argv.push_back("--partition=" + options_.partition);
    argv.push_back(script);
    const ProcessResult r = runProcess(argv);
    std::string id = firstLine(r.out);
    id = id.substr(0, id.find(';')); // "<id>;<cluster>" on federations
    if (r.exitCode != 0 || id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
        fail("sbatch ", script, ": ", r.exitCode < 0 ? r.err : firstLine(r.err.empty() ? r.out : r.err));
    return id;
}

std::map<int, std::string> SlurmScheduler::queued(const std::string& jobId)
{
    // One line per array task (-r), pending ones too: "<array job>|<task>|<state>".
    const ProcessResult r = runProcess({"squeue", "-h", "-r", "--me", "-o", "%F|%K|%T"});
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
    ProcessResult r = runProcess({"sacct", "-n", "-P", "-X", "-j", id, "-o", "State,ExitCode"});
    if (r.exitCode == 0 && !firstLine(r.out).empty()) {
        std::string s = firstLine(r.out);
        std::replace(s.begin(), s.end(), '|', ' ');
        return s;
    }
    r = runProcess({"scontrol", "-o", "show", "job", id});
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
    const ProcessResult r = runProcess({"scancel", jobId});
    if (r.exitCode != 0)
        fail("scancel ", jobId, ": ", firstLine(r.err.empty() ? r.out : r.err));
}

} // namespace qs
