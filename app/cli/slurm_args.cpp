#include "cli/slurm_args.h"
#include "cli/stop_signal.h"

#include "cli/output.h"

#include "cluster/sharded_sweep.h"
#include "store/store.h"
#include "util/error.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

namespace qs::cli {
namespace {

// Options of --slurm that the shards do not take (with --db and --json, which each
// shard replaces by its own store and the driver prints).
const std::set<std::string> kClusterOptions = {"shards", "partition", "time", "mem", "cpus-per-task", "work-dir", "db"};
const std::set<std::string> kClusterFlags = {"slurm", "json"};

// The shard command: this program, the command and its arguments without the cluster
// options, the model path absolute (tasks may start elsewhere).
std::vector<std::string> shardCommand(const std::vector<std::string>& argv, const std::set<std::string>& valued,
    const std::string& command, const std::string& model)
{
    std::vector<std::string> cmd = {std::filesystem::read_symlink("/proc/self/exe").string(), command};
    bool modelSeen = false;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& a = argv[i];
        if (a.rfind("--", 0) == 0) {
            const std::string name = a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
            const bool takesNext = valued.count(name) && a.find('=') == std::string::npos;
            if (kClusterOptions.count(name) || kClusterFlags.count(name)) {
                i += takesNext ? 1 : 0;
                continue;
            }
            cmd.push_back(a);
            if (takesNext && i + 1 < argv.size())
                cmd.push_back(argv[++i]);
            continue;
        }
        cmd.push_back(!modelSeen && a == model ? std::filesystem::absolute(a).string() : a);
        modelSeen |= a == model;
    }
    return cmd;
}

} // namespace

const std::set<std::string>& clusterValuedOptions()
{
    static const std::set<std::string> names = {"shards", "partition", "time", "mem", "cpus-per-task", "work-dir"};
    return names;
}

void refuseClusterOptionsWithoutSlurm(const Args& args)
{
    for (const std::string& option : clusterValuedOptions())
        if (args.value(option))
            fail("--", option, " needs --slurm");
}

int runShardsOnSlurm(const Args& args, const std::vector<std::string>& argv, const std::set<std::string>& valued,
    const std::string& command, const std::string& path, const ShardIdentity& expected)
{
    const auto db = args.value("db");
    if (!db)
        fail("--slurm merges the shards into a store: give --db STORE");
    if (args.value("shard"))
        fail("--slurm makes the shards itself; --shard is what each of its tasks runs");
    ShardedSweepOptions so;
    so.shards = args.intValue("shards", 4);
    if (so.shards < 1)
        fail("--shards ", so.shards, ": expected at least 1");
    SlurmOptions slurm;
    slurm.partition = args.value("partition", "");
    slurm.time = args.value("time", slurm.time);
    slurm.memory = args.value("mem", slurm.memory);
    slurm.cpusPerTask = args.intValue("cpus-per-task", 1);
    std::unique_ptr<Scheduler> scheduler;
    const char* kind = std::getenv("QS_CLUSTER_SCHEDULER");
    if (kind && std::string(kind) == "local")
        scheduler = std::make_unique<LocalScheduler>(2);
    else if (kind && *kind && std::string(kind) != "slurm")
        fail("QS_CLUSTER_SCHEDULER ", quoted(kind), ": expected slurm or local");
    else
        scheduler = std::make_unique<SlurmScheduler>(slurm);
    so.command = shardCommand(argv, valued, command, path);
    so.chdir = std::filesystem::current_path().string();
    const std::filesystem::path dbPath = std::filesystem::absolute(*db);
    so.workDir = args.value("work-dir",
        (dbPath.parent_path() / (dbPath.stem().string() + ".shards") /
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::system_clock::now().time_since_epoch()).count()))
            .string());
    so.workDir = std::filesystem::absolute(so.workDir).string();
    so.expected = expected;
    applyKillShardEnvironment(so);
    Store store = Store::open(*db);
    CancelToken cancel;
    StopOnSignal stopOnSignal(cancel);
    const bool quiet = args.flag("json");
    std::size_t reported = 0;
    bool announced = false;
    const ShardedSweepResult r = runShardedSweep(so, *scheduler, cancel,
        [&](const ClusterProgress& p, const std::vector<ShardRun>& finished, bool) {
            if (quiet)
                return;
            for (; reported < finished.size(); ++reported)
                std::fprintf(stderr, "  merged shard %d (%zu of %zu finished)\n", finished[reported].shard.index,
                    reported + 1, p.shards.size());
            if (!std::exchange(announced, true))
                std::fprintf(stderr, "submitted job %s: %d shards, work dir %s\n", p.jobIds.front().c_str(),
                    int(p.shards.size()), so.workDir.c_str());
            std::fprintf(stderr, "shards: %d done, %d running, %d pending, %d failed%s\n", p.done, p.running, p.pending,
                p.failed, p.etaSeconds >= 0 ? str(", ETA ", std::lround(p.etaSeconds), " s").c_str() : "");
        });
    std::optional<int64_t> runId;
    if (!r.finished.empty())
        runId = recordShardedSweep(store, r);
    const std::string report = r.failureReport();
    if (args.flag("json")) {
        nlohmann::json j = r.clusterJson();
        j["run_id"] = runId ? nlohmann::json(*runId) : nlohmann::json(nullptr);
        j["complete"] = !r.cancelled && report.empty();
        j["seconds"] = r.seconds;
        j["work_dir"] = so.workDir;
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        std::printf("sharded sweep: %zu of %zu shards merged in %.2f s, jobs", r.finished.size(), r.progress.shards.size(),
            r.seconds);
        for (const auto& id : r.progress.jobIds)
            std::printf(" %s", id.c_str());
        std::printf("; run %s\n", runId ? std::to_string(*runId).c_str() : "(none)");
    }
    if (r.cancelled) {
        std::fprintf(stderr, "quantstudio-cli %s: cancelled; the shards' jobs were cancelled\n", command.c_str());
        return 130;
    }
    if (!report.empty()) {
        std::fprintf(stderr, "%s\n", report.c_str());
        return 1;
    }
    return 0;
}

} // namespace qs::cli
