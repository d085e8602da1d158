// Recording CLI work in the experiment store (--db): the store named by --db, and
// the run row that follows the work it records. Model and dataset rows: store/recording.h.
#pragma once

#include "cli/args.h"
#include "store/recording.h"
#include "store/store.h"
#include "util/error.h"

#include <exception>
#include <optional>
#include <string>

namespace qs::cli {

// The store named by --db, or nullopt when --db is absent.
std::optional<Store> storeFromArgs(const Args& args);

// Runs `work`; if it throws, the run (when recorded) ends as cancelled for
// qs::Cancelled and as failed with the message otherwise, and the exception goes on.
template<class Work>
auto runRecorded(std::optional<RunGuard>& run, Work&& work) -> decltype(work())
{
    try {
        return work();
    } catch (const Cancelled&) {
        if (run)
            run->cancel();
        throw;
    } catch (const std::exception& e) {
        if (run)
            run->fail(e.what());
        throw;
    }
}

} // namespace qs::cli
