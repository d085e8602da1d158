#include "cli/recording.h"

namespace qs::cli {

std::optional<Store> storeFromArgs(const Args& args)
{
    auto db = args.value("db");
    if (!db)
        return std::nullopt;
    return Store::open(*db);
}

} // namespace qs::cli
