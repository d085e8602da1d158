// quantstudio-cli merge: shard stores of a sweep (sensitivity --shard I/N --db FILE)
// into the main store as one run, refusing shards of another model, data or config.
#include "cli/args.h"
#include "cli/command.h"
#include "cli/recording.h"

#include "cluster/merge.h"
#include "util/error.h"

#include <cstdio>

namespace qs::cli {
namespace {

int runMerge(const std::vector<std::string>& argv)
{
    Args args(argv, {"db"}, {"json"});
    const auto db = args.value("db");
    if (!db)
        fail("merge: give the main store as --db STORE");
    if (args.positional().empty())
        fail("merge: give the shard stores (SHARD.db ...)");
    Store store = Store::open(*db);
    const int64_t id = mergeShardFiles(store, args.positional());
    if (args.flag("json"))
        std::printf("{\"run_id\": %lld, \"shards\": %zu}\n", (long long)id, args.positional().size());
    else
        std::printf("merged %zu shards into run %lld of %s\n", args.positional().size(), (long long)id, db->c_str());
    return 0;
}

const bool registered = registerCommand({"merge", "--db STORE SHARD.db... [--json]",
    "merge the shard stores of a sharded sweep into STORE as one run (same model, data and config)", runMerge});

} // namespace
} // namespace qs::cli
