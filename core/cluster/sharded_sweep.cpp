#include "cluster/sharded_sweep.h"

#include "util/error.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

namespace qs {
namespace fs = std::filesystem;

namespace {

std::string shellQuoted(const std::string& s)
{
    std::string q = "'";
    for (char c : s)
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

std::string shardStore(const ShardedSweepOptions& o, int index)
{
    return (fs::path(o.workDir) / ("shard-" + std::to_string(index) + ".db")).string();
}

std::string logPattern(const ShardedSweepOptions& o, int attempt)
{
    return (
        fs::path(o.workDir) / (attempt == 1 ? "shard-%a.log" : "shard-%a.attempt" + std::to_string(attempt) + ".log"))
        .string();
}

std::string logOf(const ShardedSweepOptions& o, int index, int attempt)
{
    std::string p = logPattern(o, attempt);
    return p.replace(p.find("%a"), 2, std::to_string(index));
}

// The job script of one attempt: the shard command with the task's --shard and --db.
std::string writeScript(const ShardedSweepOptions& o, int attempt)
{
    std::ostringstream s;
    s << "#!/bin/bash\n# quantstudio sensitivity shards, attempt " << attempt << ": task I runs shard I/" << o.shards
      << "\nexport OMP_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n"
      << "cd " << shellQuoted(o.chdir) << " || exit 1\n"
      << "i=\"$SLURM_ARRAY_TASK_ID\"\n";
    if (o.killShard >= 0 && attempt <= o.killAttempts)
        s << "if [ \"$i\" = " << o.killShard
          << " ]; then echo 'killed by QS_CLUSTER_KILL_SHARD' >&2; kill -KILL $$; fi\n";
    s << "exec";
    for (const std::string& a : o.command)
        s << " " << shellQuoted(a);
    s << " --shard \"$i/" << o.shards << "\" --db " << shellQuoted((fs::path(o.workDir) / "shard-").string())
      << "\"$i\".db\n";
    const fs::path path = fs::path(o.workDir) / ("shards.attempt" + std::to_string(attempt) + ".sh");
    std::ofstream f(path);
    f << s.str();
    f.close();
    if (!f)
        fail(path.string(), ": cannot write the job script");
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add);
    return path.string();
}

void removeStore(const std::string& file)
{
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm", "-journal", "-writers"})
        fs::remove(file + suffix, ec);
}

std::string logTail(const std::string& file, int lines)
{
    std::ifstream in(file);
    std::vector<std::string> all;
    for (std::string line; std::getline(in, line);)
        if (!line.empty())
            all.push_back(line);
    std::string tail;
    for (std::size_t i = all.size() > std::size_t(lines) ? all.size() - lines : 0; i < all.size(); ++i)
        tail += (tail.empty() ? "" : " | ") + all[i];
    return tail;
}

} // namespace

void applyKillShardEnvironment(ShardedSweepOptions& o)
{
    const char* v = std::getenv("QS_CLUSTER_KILL_SHARD");
    if (!v || !*v)
        return;
    const std::string text = v;
    const std::size_t colon = text.find(':');
    try {
        o.killShard = std::stoi(text.substr(0, colon));
        o.killAttempts = colon == std::string::npos ? 1 : std::stoi(text.substr(colon + 1));
    } catch (const std::exception&) {
        fail("QS_CLUSTER_KILL_SHARD ", quoted(text), ": expected SHARD[:ATTEMPTS]");
    }
}

const char* shardStateName(ShardState s)
{
    switch (s) {
    case ShardState::Pending:
        return "pending";
    case ShardState::Running:
        return "running";
    case ShardState::Done:
        return "done";
    case ShardState::Failed:
        return "failed";
    }
    return "pending";
}

std::string ShardedSweepResult::failureReport() const
{
    std::string report;
    for (const ShardStatus& s : progress.shards)
        if (s.state == ShardState::Failed)
            report += str(report.empty() ? "" : "\n", "shard ", s.index, "/", progress.shards.size(), " failed after ",
                s.attempt, " attempts: ", s.detail, " (log ", s.log, ")");
    return report;
}

nlohmann::json ShardedSweepResult::clusterJson() const
{
    nlohmann::json shards = nlohmann::json::array();
    for (const ShardStatus& s : progress.shards)
        shards.push_back({{"index", s.index}, {"state", shardStateName(s.state)}, {"attempts", s.attempt},
            {"job", s.jobId}, {"seconds", s.seconds}, {"log", s.log},
            {"error", s.state == ShardState::Failed ? nlohmann::json(s.detail) : nlohmann::json(nullptr)}});
    return {
        {"scheduler", "slurm"}, {"jobs", progress.jobIds}, {"shard_count", progress.shards.size()}, {"shards", shards}};
}

ShardedSweepResult runShardedSweep(
    const ShardedSweepOptions& o, Scheduler& scheduler, const CancelToken& cancel, const ClusterUpdate& onUpdate)
{
    if (o.shards < 1)
        fail("--shards ", o.shards, ": expected at least 1");
    if (o.command.empty())
        fail("sharded sweep: no shard command");
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    fs::create_directories(o.workDir);
    ShardedSweepResult result;
    ClusterProgress& p = result.progress;
    ShardIdentity expected = o.expected;
    expected.count = o.shards;
    std::vector<char> endedOnce(std::size_t(o.shards), 0);
    for (int i = 0; i < o.shards; ++i) {
        removeStore(shardStore(o, i));
        ShardStatus s;
        s.index = i;
        s.log = logOf(o, i, 1);
        p.shards.push_back(s);
    }
    auto submit = [&](const std::vector<int>& tasks, int attempt) {
        const std::string job = scheduler.submit(writeScript(o, attempt), tasks, logPattern(o, attempt));
        p.jobIds.push_back(job);
        for (int t : tasks) {
            p.shards[std::size_t(t)].jobId = job;
            p.shards[std::size_t(t)].state = ShardState::Pending;
        }
    };
    std::vector<int> all;
    for (int i = 0; i < o.shards; ++i)
        all.push_back(i);
    submit(all, 1);

    auto count = [&] {
        p.done = p.running = p.pending = p.failed = 0;
        for (const ShardStatus& s : p.shards)
            (s.state == ShardState::Done             ? p.done
                    : s.state == ShardState::Running ? p.running
                    : s.state == ShardState::Pending ? p.pending
                                                     : p.failed)++;
        p.elapsedSeconds = elapsed();
        const int left = o.shards - p.done - p.failed;
        p.etaSeconds = p.done > 0 ? p.elapsedSeconds * double(left) / double(p.done) : -1;
    };
    count();
    if (onUpdate)
        onUpdate(p, result.finished, false);

    auto waitPoll = [&] { // in steps of 50 ms, so a cancel is seen at once
        for (double waited = 0; waited < o.pollSeconds && !cancel.cancelled(); waited += 0.05)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
    };
    int queueFailures = 0;
    while (p.done + p.failed < o.shards) {
        if (cancel.cancelled()) {
            for (const std::string& job : p.jobIds)
                try {
                    scheduler.cancel(job);
                } catch (const Error&) { // a job that already ended
                }
            result.cancelled = true;
            break;
        }
        std::map<std::string, std::map<int, std::string>> queues;
        try {
            for (const ShardStatus& s : p.shards)
                if ((s.state == ShardState::Pending || s.state == ShardState::Running) && !queues.count(s.jobId))
                    queues[s.jobId] = scheduler.queued(s.jobId);
            queueFailures = 0;
        } catch (const Error&) {
            // slurmctld busy or restarting: ask again next poll, give up after a minute of it
            if (++queueFailures * o.pollSeconds > 60)
                throw;
            waitPoll();
            continue;
        }
        bool changed = false, newShard = false;
        std::vector<int> retry;
        for (ShardStatus& s : p.shards) {
            if (s.state == ShardState::Done || s.state == ShardState::Failed)
                continue;
            const auto& q = queues[s.jobId];
            auto it = q.find(s.index);
            if (it != q.end()) {
                const ShardState now =
                    it->second == "PENDING" || it->second == "CONFIGURING" ? ShardState::Pending : ShardState::Running;
                changed |= now != s.state;
                s.state = now;
                continue;
            }
            // Ended: its store says whether it finished.
            const std::string file = shardStore(o, s.index);
            std::string why;
            std::optional<ShardRun> run;
            try {
                run = readShard(file);
            } catch (const Error& e) {
                why = e.what();
            }
            if (run) { // another model, data or config is an error of the whole sweep
                if (expected.modelHash.empty() && result.finished.empty()) {
                    expected = identityOf(*run);
                    expected.count = o.shards;
                }
                checkShard(*run, expected);
                if (run->shard.index != s.index)
                    fail(file, ": config.shard is ", run->shard.index, "/", run->shard.count, ", expected ", s.index,
                        "/", o.shards);
                s.state = ShardState::Done;
                s.seconds = run->result.seconds;
                result.finished.push_back(std::move(*run));
                changed = newShard = true;
                continue;
            }
            if (!endedOnce[std::size_t(s.index)]) { // a shared filesystem may show the store a poll later
                endedOnce[std::size_t(s.index)] = 1;
                continue;
            }
            endedOnce[std::size_t(s.index)] = 0;
            const std::string state = scheduler.endState(s.jobId, s.index);
            const std::string tail = logTail(s.log, 3);
            s.detail = str(state.empty() ? "ended" : state, "; ", fs::exists(file) ? why : "no shard store written",
                tail.empty() ? "" : "; log: " + tail);
            changed = true;
            if (s.attempt <= o.retries) {
                ++s.attempt;
                s.log = logOf(o, s.index, s.attempt);
                removeStore(file);
                retry.push_back(s.index);
            } else {
                s.state = ShardState::Failed;
            }
        }
        if (!retry.empty())
            submit(retry, p.shards[std::size_t(retry.front())].attempt);
        count();
        if (changed && onUpdate)
            onUpdate(p, result.finished, newShard);
        if (p.done + p.failed >= o.shards)
            break;
        waitPoll();
    }
    std::sort(result.finished.begin(), result.finished.end(),
        [](const ShardRun& a, const ShardRun& b) { return a.shard.index < b.shard.index; });
    count();
    result.seconds = elapsed();
    if (onUpdate)
        onUpdate(p, result.finished, false);
    return result;
}

int64_t recordShardedSweep(Store& store, const ShardedSweepResult& result)
{
    MergeRecord rec;
    rec.cluster = result.clusterJson();
    rec.seconds = result.seconds;
    rec.cancelled = result.cancelled;
    rec.error = result.failureReport();
    if (rec.error.empty() && !result.cancelled && result.finished.size() < result.progress.shards.size())
        rec.error = "shards missing";
    return recordMergedRun(store, result.finished, rec);
}

} // namespace qs
